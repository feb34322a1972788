from __future__ import annotations

import itertools

import pytest

from nas.architecture import ModelConfig
from nas.formats import QuantConfig
from nas.memory import KB, Budget, budget_bytes_from_kb, format_bytes, largest_hidden, memory_breakdown
from nas.models import RecurrentClassifier, count_parameters


def test_gru_pow2_by_hand():
    # GRU 1x64, 13 inputs, 4-bit pow2 weights, 16-bit biases and state (docs/memory-model.md)
    m = memory_breakdown(ModelConfig(hidden=64), QuantConfig.make("pow2", 4))
    assert m.weight_bytes == (192 * 13 * 4) // 8 + (192 * 64 * 4) // 8 + (10 * 64 * 4) // 8 == 7712
    assert m.bias_bytes == 2 * (192 + 64 + 10) == 532
    assert m.meta_bytes == 3
    assert m.table_bytes == 129 * 2
    assert m.state_bytes == 2 * 64 + 2 * 13 + 2 * 4 * 64 + 4 * 10 == 706
    assert m.total_bytes == 9211


def test_lstm_fixed_two_layers_by_hand():
    m = memory_breakdown(ModelConfig(cell="lstm", layers=2, hidden=16, n_input=10), QuantConfig.make("fixed", 6, state_bits=8))
    assert m.weight_bytes == 64 * 10 * 6 // 8 + 3 * (64 * 16 * 6 // 8) + 10 * 16 * 6 // 8 == 2904
    assert m.bias_bytes == 2 * (64 + 64 + 10)
    assert m.meta_bytes == 5
    assert m.state_bytes == 4 * 16 + 10 + 2 * 4 * 16 + 4 * 10  # h and c of two layers, 8-bit; scratch 16-bit
    state = [(i.name, i.count, i.bits) for i in m.items if i.category == "state"]
    assert state[:4] == [("layer0.h", 16, 8), ("layer0.c", 16, 8), ("layer1.h", 16, 8), ("layer1.c", 16, 8)]
    assert m.total_bytes == 2904 + 276 + 5 + 258 + 242


def test_each_tensor_is_padded_to_a_byte():
    m = memory_breakdown(ModelConfig(hidden=3), QuantConfig.make("pow2", 3))
    w_hh = next(i for i in m.items if i.name == "layer0.w_hh")
    assert (w_hh.count, w_hh.nbytes) == (27, 11)  # 81 bits -> 11 bytes


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("layers", [1, 3])
def test_float_weights_and_biases_equal_the_torch_parameters(cell, layers):
    config = ModelConfig(cell=cell, layers=layers, hidden=24, n_input=20)
    m = memory_breakdown(config, QuantConfig())
    assert m.weight_bytes + m.bias_bytes == 4 * count_parameters(RecurrentClassifier(config))
    assert m.meta_bytes == 0 and m.table_bytes == 0


GRID = [
    (cell, layers, n_input, quant)
    for cell, layers, n_input in itertools.product(["gru", "lstm", "rnn"], [1, 2, 3], [8, 13, 20])
    for quant in [
        QuantConfig(),
        QuantConfig.make("fixed", 3),
        QuantConfig.make("fixed", 8, bias_bits=32),
        QuantConfig.make("pow2", 4),
        QuantConfig.make("pow2", 5, state_bits=8),
    ]
]


@pytest.mark.parametrize(("cell", "layers", "n_input", "quant"), GRID)
def test_solver_agrees_with_brute_force(cell, layers, n_input, quant):
    base = ModelConfig(cell=cell, layers=layers, n_input=n_input, hidden=1)
    for budget_kb, scope in [(0.5, "total"), (4, "total"), (36, "total"), (36, "weights"), (150, "total")]:
        budget = int(budget_kb * KB)
        brute = 0  # count up until the first size over budget (bytes grow with the hidden size)
        while memory_breakdown(ModelConfig(**(base.to_dict() | {"hidden": brute + 1})), quant).scoped_bytes(scope) <= budget:
            brute += 1
        assert largest_hidden(budget, base, quant, scope) == brute, (budget_kb, scope)


def test_budget_units_are_1024_bytes():
    assert KB == 1024
    h = largest_hidden(36 * KB, ModelConfig(), QuantConfig.make("pow2", 4))
    assert memory_breakdown(ModelConfig(hidden=h), QuantConfig.make("pow2", 4)).total_bytes <= 36_864
    assert memory_breakdown(ModelConfig(hidden=h + 1), QuantConfig.make("pow2", 4)).total_bytes > 36_864


def test_worked_example_items_are_the_docs_table():
    """docs/memory-model.md's table, item by item: what `nas memory` prints."""
    items = [
        (i.category, i.name, i.count, i.bits, i.nbytes) for i in memory_breakdown(ModelConfig(hidden=64), QuantConfig.make("pow2", 4)).items
    ]
    assert items == [
        ("weights", "layer0.w_ih", 192 * 13, 4, 1248),
        ("weights", "layer0.w_hh", 192 * 64, 4, 6144),
        ("weights", "classifier.w", 640, 4, 320),
        ("biases", "layer0.b_rzn", 192, 16, 384),
        ("biases", "layer0.b_hn", 64, 16, 128),
        ("biases", "classifier.b", 10, 16, 20),
        ("meta", "layer0.w_ih.shift", 1, 8, 1),
        ("meta", "layer0.w_hh.shift", 1, 8, 1),
        ("meta", "classifier.w.shift", 1, 8, 1),
        ("tables", "sigmoid table", 129, 16, 258),
        ("state", "layer0.h", 64, 16, 128),
        ("state", "input frame", 13, 16, 26),
        ("state", "gate scratch", 256, 16, 512),
        ("state", "logits", 10, 32, 40),
    ]


def test_a_float_model_holds_everything_as_float32():
    m = memory_breakdown(ModelConfig(hidden=64), QuantConfig())
    assert m.state_bytes == 4 * (64 + 13 + 4 * 64 + 10) == 1372
    assert m.total_bytes == 63_272 + 1372 == 64_644  # the README's float32 figure
    assert {i.bits for i in m.items} == {32} and m.meta_bytes == m.table_bytes == 0
    assert [i.name for i in m.items if i.category == "biases"] == ["layer0.b_ih", "layer0.b_hh", "classifier.b"]  # torch's layout


def test_rnn_and_two_layer_gru_by_hand():
    rnn = memory_breakdown(ModelConfig(cell="rnn", hidden=10, n_input=5), QuantConfig.make("fixed", 8))
    assert rnn.weight_bytes == 10 * 5 + 10 * 10 + 10 * 10 and rnn.bias_bytes == 2 * (10 + 10)
    assert rnn.state_bytes == 2 * 10 + 2 * 5 + 2 * 10 + 4 * 10  # one pre-activation of scratch per unit
    gru = memory_breakdown(ModelConfig(layers=2, hidden=8, n_input=5), QuantConfig.make("pow2", 5, bias_bits=32))
    assert [i.name for i in gru.items if i.category == "biases"] == [
        "layer0.b_rzn",
        "layer0.b_hn",
        "layer1.b_rzn",
        "layer1.b_hn",
        "classifier.b",
    ]
    assert gru.bias_bytes == 4 * (24 + 8 + 24 + 8 + 10) and gru.meta_bytes == 5


def test_budget_scopes_and_printed_sizes():
    m = memory_breakdown(ModelConfig(hidden=64), QuantConfig.make("pow2", 4))
    assert m.scoped_bytes("weights") == 7712 + 532 + 3 == m.packed_bytes and m.scoped_bytes("total") == 9211
    assert m.to_dict() == {
        "weight_bytes": 7712,
        "bias_bytes": 532,
        "meta_bytes": 3,
        "table_bytes": 258,
        "state_bytes": 706,
        "total_bytes": 9211,
    }
    assert format_bytes(9211) == "9.00 kB (9,211 B)" and format_bytes(36 * KB) == "36.00 kB (36,864 B)"
    assert budget_bytes_from_kb(36) == 36_864 and budget_bytes_from_kb(0.2) == 204  # "at most": rounded down
    assert Budget.from_kb(4, "weights") == Budget(4096, "weights")


@pytest.mark.parametrize(("cell", "layers", "n_input", "quant"), GRID[::7])
def test_solver_is_closed_form(cell, layers, n_input, quant, monkeypatch):
    """The root of the quadratic lands within a step or two of the answer: few exact evaluations."""
    import nas.memory

    exact_calls = []
    original = nas.memory.memory_breakdown

    def counting(model, q, _continuous=False):
        if not _continuous:
            exact_calls.append(model.hidden)
        return original(model, q, _continuous)

    monkeypatch.setattr(nas.memory, "memory_breakdown", counting)
    base = ModelConfig(cell=cell, layers=layers, n_input=n_input, hidden=1)
    for budget_kb in (0.5, 4, 36, 150):
        exact_calls.clear()
        largest_hidden(int(budget_kb * KB), base, quant)
        assert len(exact_calls) <= 3, (budget_kb, exact_calls)


def test_solver_answers_zero_when_nothing_fits():
    quant = QuantConfig.make("pow2", 3)
    assert largest_hidden(50, ModelConfig(), quant) == 0
    one = memory_breakdown(ModelConfig(hidden=1), quant).total_bytes
    # one byte short of hidden 1: the unpadded quadratic still admits it, the padded bytes do not
    assert memory_breakdown(ModelConfig(hidden=1), quant, _continuous=True).total_bytes <= one - 1
    assert largest_hidden(one - 1, ModelConfig(), quant) == 0 and largest_hidden(one, ModelConfig(), quant) == 1

from __future__ import annotations

import itertools

import pytest

from nas.architecture import ModelConfig
from nas.formats import QuantConfig
from nas.memory import KB, largest_hidden, memory_breakdown
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

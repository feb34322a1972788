from __future__ import annotations

import itertools

import pytest

from nas.device.compute import TOLERANCE, in_real_time, predict_instructions
from nas.device.memory import KB, Budget, budget_bytes_from_kb, format_bytes, largest_hidden, memory_breakdown
from nas.device.regions import STACK_RESERVE_BYTES
from nas.features.extract import FeatureConfig
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.model.models import RecurrentClassifier, count_parameters

FEATURES = FeatureConfig()  # the integer front-end: 256-sample window, 40 mel bands, 13 MFCC, running normalisation
SMALL = FeatureConfig(n_fft=128, n_mels=20)


def test_gru_pow2_by_hand():
    # GRU 1x64, 13 inputs, 4-bit pow2 weights, 16-bit biases and state, the default front-end (docs/memory-model.md)
    m = memory_breakdown(ModelConfig(hidden=64), QuantConfig.make("pow2", 4), FEATURES)
    # every row padded to a byte: 13 codes of 4 bits take 7 bytes
    assert m.weight_bytes == 192 * 7 + 192 * 64 * 4 // 8 + 10 * 64 * 4 // 8 == 7808
    assert m.bias_bytes == 2 * (192 + 64 + 10) == 532
    assert m.meta_bytes == 3
    assert m.table_bytes == 129 * 2 + 16 * 2  # the sigmoid table; the 4-bit pow2 multipliers
    # half window 129, cos 128, mel first/offsets 40 + 41 and 247 weights, log table 33, DCT 13 x 40 (16-bit);
    # mean, scale 13 + 13 (32-bit)
    assert m.frontend_bytes == 2 * (129 + 128 + 81 + 247 + 33 + 520) + 4 * 26 == 2380
    assert m.flash_bytes == 7808 + 532 + 3 + 290 + 2380 == 11_013
    assert m.state_bytes == 2 * 64 + 4 * 13  # h, and the running normalisation's int32 mean per coefficient
    assert m.buffer_bytes == 4 * 10 + 4 + 4 + 2 * 256 + 2 * 13  # logits, two counters, the audio window, the input frame
    # the half-length FFT's re/im (128 int32 each) and the mel logs: larger than the GRU's 2H int16 gate values
    assert m.scratch_bytes == 4 * (128 + 128 + 40) == 1184
    assert m.padding_bytes == 2 and m.stack_bytes == STACK_RESERVE_BYTES
    assert m.struct_bytes == 1952 and m.struct_bytes % 4 == 0
    assert m.ram_bytes == 1952 + STACK_RESERVE_BYTES
    assert m.total_bytes == 11_013 + 1952 + STACK_RESERVE_BYTES == 13_221


def test_lstm_fixed_two_layers_by_hand():
    quant = QuantConfig.make("fixed", 6, state_bits=8)
    m = memory_breakdown(ModelConfig(cell="lstm", layers=2, hidden=16, n_input=10), quant, None)
    # rows of 10 codes of 6 bits: 60 bits, padded to 8 bytes
    assert m.weight_bytes == 64 * 8 + 3 * (64 * 16 * 6 // 8) + 10 * 16 * 6 // 8 == 2936
    assert m.bias_bytes == 2 * (64 + 64 + 10)
    assert m.meta_bytes == 5 and m.frontend_bytes == 0
    assert m.state_bytes == 4 * 16  # h and c of two layers, 8-bit
    state = [(i.name, i.count, i.bits) for i in m.items if i.category == "state"]
    assert state == [("layer0.h", 16, 8), ("layer1.h", 16, 8), ("layer0.c", 16, 8), ("layer1.c", 16, 8)]
    assert m.scratch_bytes == 2 * 2 * 16  # i (then the new h) and f, int16
    assert m.buffer_bytes == 4 * 10 + 4 + 10  # logits, frame counter, the 8-bit input frame
    assert m.padding_bytes == 2  # 40 + 4 + 64 + 64 + 10 = 182 -> 184
    assert m.total_bytes == 2936 + 276 + 5 + 258 + 184 + STACK_RESERVE_BYTES


def test_each_row_is_padded_to_a_byte():
    m = memory_breakdown(ModelConfig(hidden=3), QuantConfig.make("pow2", 3), None)
    w_hh = next(i for i in m.items if i.name == "layer0.w_hh")
    assert (w_hh.count, w_hh.nbytes) == (27, 18)  # 9 rows of 9 bits, 2 bytes each (81 bits packed as one stream: 11)


def test_the_gate_scratch_takes_the_union_when_it_outgrows_the_fft():
    small = memory_breakdown(ModelConfig(hidden=100), QuantConfig.make("pow2", 4), SMALL)
    assert small.scratch_bytes == 4 * (64 + 64 + 20) == 592  # 2 * 100 int16 gate values = 400 B fit inside
    large = memory_breakdown(ModelConfig(hidden=200), QuantConfig.make("pow2", 4), SMALL)
    assert large.scratch_bytes == 2 * 2 * 200 == 800


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("layers", [1, 3])
def test_float_weights_and_biases_equal_the_torch_parameters(cell, layers):
    config = ModelConfig(cell=cell, layers=layers, hidden=24, n_input=20)
    m = memory_breakdown(config, QuantConfig(), None)
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
LIMITS = [
    (0.5, "total", None, None),
    (4, "total", None, None),
    (36, "total", None, None),
    (36, "weights", None, None),
    (150, "total", None, None),
    (36, "total", 30, None),
    (36, "total", None, 3),
    (150, "total", 100, 6),
]


@pytest.mark.parametrize(("cell", "layers", "n_input", "quant"), GRID)
def test_solver_agrees_with_brute_force(cell, layers, n_input, quant):
    base = ModelConfig(cell=cell, layers=layers, n_input=n_input, hidden=1)
    features = SMALL if layers != 2 else None
    for budget_kb, scope, flash_kb, ram_kb in LIMITS:
        budget = Budget.from_kb(budget_kb, scope, flash_kb, ram_kb)
        brute = 0  # count up until the first size over budget (bytes grow with the hidden size)
        while budget.admits(memory_breakdown(base.with_hidden(brute + 1), quant, features).to_dict()):
            brute += 1
        assert largest_hidden(budget, base, quant, features) == brute, (budget_kb, scope, flash_kb, ram_kb)


def test_budget_units_are_1024_bytes():
    assert KB == 1024
    h = largest_hidden(Budget(36 * KB), ModelConfig(), QuantConfig.make("pow2", 4), FEATURES)
    assert memory_breakdown(ModelConfig(hidden=h), QuantConfig.make("pow2", 4), FEATURES).total_bytes <= 36_864
    assert memory_breakdown(ModelConfig(hidden=h + 1), QuantConfig.make("pow2", 4), FEATURES).total_bytes > 36_864


def test_worked_example_items_are_the_docs_table():
    """docs/memory-model.md's table, item by item: what `nas memory` prints."""
    items = [
        (i.region, i.category, i.symbol, i.count, i.bits, i.nbytes)
        for i in memory_breakdown(ModelConfig(hidden=64), QuantConfig.make("pow2", 4), FEATURES).items
    ]
    assert items == [
        ("flash", "weights", "nas_packed", 192 * 13, 4, 192 * 7),
        ("flash", "weights", "nas_packed", 192 * 64, 4, 6144),
        ("flash", "weights", "nas_packed", 640, 4, 320),
        ("flash", "biases", "nas_packed", 192, 16, 384),
        ("flash", "biases", "nas_packed", 64, 16, 128),
        ("flash", "biases", "nas_packed", 10, 16, 20),
        ("flash", "meta", "nas_packed", 1, 8, 1),
        ("flash", "meta", "nas_packed", 1, 8, 1),
        ("flash", "meta", "nas_packed", 1, 8, 1),
        ("flash", "tables", "SIGMOID", 129, 16, 258),
        ("flash", "tables", "MULTIPLIER", 16, 16, 32),
        ("flash", "frontend", "WINDOW", 129, 16, 258),
        ("flash", "frontend", "COS", 128, 16, 256),
        ("flash", "frontend", "MEL_FIRST", 40, 16, 80),
        ("flash", "frontend", "MEL_OFFSET", 41, 16, 82),
        ("flash", "frontend", "MEL_WEIGHTS", 247, 16, 494),
        ("flash", "frontend", "LOG2_TABLE", 33, 16, 66),
        ("flash", "frontend", "DCT", 520, 16, 1040),
        ("flash", "frontend", "MEAN_Q8", 13, 32, 52),
        ("flash", "frontend", "SCALE", 13, 32, 52),
        ("ram", "buffers", "logits", 10, 32, 40),
        ("ram", "buffers", "frames", 1, 32, 4),
        ("ram", "buffers", "fill", 1, 32, 4),
        ("ram", "state", "running", 13, 32, 52),
        ("ram", "scratch", "scratch", 296, 32, 1184),
        ("ram", "buffers", "audio", 256, 16, 512),
        ("ram", "state", "h", 64, 16, 128),
        ("ram", "buffers", "x", 13, 16, 26),
        ("ram", "padding", "", 2, 8, 2),
        ("ram", "stack", "", STACK_RESERVE_BYTES, 8, STACK_RESERVE_BYTES),
    ]


def test_a_float_model_holds_everything_as_float32():
    m = memory_breakdown(ModelConfig(hidden=64), QuantConfig(), None)
    assert m.state_bytes == 4 * 64 and m.scratch_bytes == 4 * 2 * 64
    assert m.weight_bytes + m.bias_bytes == 63_272  # the README's float32 parameters
    assert {i.bits for i in m.items if i.category not in ("padding", "stack")} == {32} and m.meta_bytes == m.table_bytes == 0
    assert [i.name for i in m.items if i.category == "biases"] == ["layer0.b_ih", "layer0.b_hh", "classifier.b"]  # torch's layout


def test_rnn_and_two_layer_gru_by_hand():
    rnn = memory_breakdown(ModelConfig(cell="rnn", hidden=10, n_input=5), QuantConfig.make("fixed", 8), None)
    assert rnn.weight_bytes == 10 * 5 + 10 * 10 + 10 * 10 and rnn.bias_bytes == 2 * (10 + 10)
    assert rnn.state_bytes == 2 * 10 and rnn.scratch_bytes == 2 * 10  # one new state value per unit
    gru = memory_breakdown(ModelConfig(layers=2, hidden=8, n_input=5), QuantConfig.make("pow2", 5, bias_bits=32), None)
    assert [i.name for i in gru.items if i.category == "biases"] == [
        "layer0.b_rzn",
        "layer0.b_hn",
        "layer1.b_rzn",
        "layer1.b_hn",
        "classifier.b",
    ]
    assert gru.bias_bytes == 4 * (24 + 8 + 24 + 8 + 10) and gru.meta_bytes == 5


def test_budget_scopes_and_printed_sizes():
    m = memory_breakdown(ModelConfig(hidden=64), QuantConfig.make("pow2", 4), FEATURES)
    assert m.scoped_bytes("weights") == 7808 + 532 + 3 == m.packed_bytes and m.scoped_bytes("total") == m.total_bytes
    assert m.scoped_bytes("flash") == m.flash_bytes and m.scoped_bytes("ram") == m.ram_bytes
    assert m.to_dict() == {
        "weight_bytes": 7808,
        "bias_bytes": 532,
        "meta_bytes": 3,
        "table_bytes": 290,
        "frontend_bytes": 2380,
        "flash_bytes": 11_013,
        "state_bytes": 180,
        "buffer_bytes": 586,
        "scratch_bytes": 1184,
        "padding_bytes": 2,
        "stack_bytes": STACK_RESERVE_BYTES,
        "ram_bytes": 1952 + STACK_RESERVE_BYTES,
        "total_bytes": 11_013 + 1952 + STACK_RESERVE_BYTES,
    }
    assert format_bytes(9211) == "9.00 kB (9,211 B)" and format_bytes(36 * KB) == "36.00 kB (36,864 B)"
    assert budget_bytes_from_kb(36) == 36_864 and budget_bytes_from_kb(0.2) == 204  # "at most": rounded down
    assert Budget.from_kb(4, "weights") == Budget(4096, "weights")
    assert Budget.from_kb(36, flash_kb=30, ram_kb=2.5) == Budget(36_864, "total", 30_720, 2560)


def test_budget_names_each_limit_it_breaks():
    m = memory_breakdown(ModelConfig(hidden=64), QuantConfig.make("pow2", 4), FEATURES).to_dict()
    assert Budget.from_kb(36, ram_kb=3.2).admits(m) is True
    assert Budget.from_kb(36, ram_kb=2).exceeded(m) == [f"ram {m['ram_bytes']:,} B > 2,048 B"]
    assert Budget.from_kb(36, flash_kb=10).exceeded(m) == [f"flash {m['flash_bytes']:,} B > 10,240 B"]
    assert m["total_bytes"] == 13_221 and not Budget.from_kb(12.91).admits(m) and Budget.from_kb(12.92).admits(m)


@pytest.mark.parametrize(("cell", "layers", "n_input", "quant"), GRID[::7])
def test_solver_is_closed_form(cell, layers, n_input, quant, monkeypatch):
    """The root of the quadratic lands within a step or two of the answer: few exact evaluations."""
    import nas.device.memory

    exact_calls = []
    original = nas.device.memory.memory_breakdown

    def counting(model, q, features, _continuous=False):
        if not _continuous:
            exact_calls.append(model.hidden)
        return original(model, q, features, _continuous)

    monkeypatch.setattr(nas.device.memory, "memory_breakdown", counting)
    base = ModelConfig(cell=cell, layers=layers, n_input=n_input, hidden=1)
    for budget_kb in (0.5, 4, 36, 150):
        exact_calls.clear()
        largest_hidden(Budget.from_kb(budget_kb), base, quant, SMALL)
        assert len(exact_calls) <= 3, (budget_kb, exact_calls)


def test_solver_answers_zero_when_nothing_fits():
    quant = QuantConfig.make("pow2", 3)
    assert largest_hidden(Budget(50), ModelConfig(), quant, None) == 0
    one = memory_breakdown(ModelConfig(hidden=1), quant, None).total_bytes
    # one byte short of hidden 1: the unpadded quadratic still admits it, the padded bytes do not
    assert memory_breakdown(ModelConfig(hidden=1), quant, None, _continuous=True).total_bytes <= one - 1
    assert largest_hidden(Budget(one - 1), ModelConfig(), quant, None) == 0 and largest_hidden(Budget(one), ModelConfig(), quant, None) == 1


def test_a_budget_is_at_most_its_bytes_and_names_what_each_line_holds():
    m = memory_breakdown(ModelConfig(hidden=64), QuantConfig.make("pow2", 4), FEATURES)
    exact = Budget(m.total_bytes, flash_bytes=m.flash_bytes, ram_bytes=m.ram_bytes)
    assert exact.admits(m.to_dict()) and exact.exceeded(m.to_dict()) == []  # "at most": equal is within
    names = {i.symbol: i.name for i in m.items if i.category in ("frontend", "tables")}
    assert names == {
        "SIGMOID": "sigmoid table",
        "MULTIPLIER": "pow2 multipliers",
        "WINDOW": "window (Hann, Q15; first half, mirrored)",
        "COS": "FFT twiddles (cos, Q15; sin read from it)",
        "MEL_FIRST": "mel filters: first bin",
        "MEL_OFFSET": "mel filters: weight offsets",
        "MEL_WEIGHTS": "mel filters: weights (Q15)",
        "LOG2_TABLE": "log2 table (Q15)",
        "DCT": "DCT (Q14)",
        "MEAN_Q8": "normalisation mean (Q8)",
        "SCALE": "normalisation scale",
    }
    assert exact.describe() == "12.91 kB (13,221 B) (total), flash 10.75 kB (11,013 B), ram 2.16 kB (2,208 B)"


def test_the_compute_budget_keeps_the_compute_models_tolerance_free():
    """A configuration is in real time when the most QEMU may count for it (the prediction over
    1 - TOLERANCE, the tests' bound on the model) fits the clock: one predicted just inside the
    clock is over, and says so on one line."""
    features, quant, model = FeatureConfig(), QuantConfig.make("pow2", 4), ModelConfig(hidden=64)
    predicted = predict_instructions(model, quant, features).per_frame
    just_inside = predicted / 1e4 * 1.01  # MHz at which the prediction alone is 1% inside one 10 ms hop
    assert not in_real_time(model, quant, features, just_inside, "cortex-m4")
    assert in_real_time(model, quant, features, predicted / (1 - TOLERANCE) / 1e4 * 1.001, "cortex-m4")
    (line,) = Budget(36 * 1024, mcu_mhz=just_inside).compute_exceeded(model, quant, features)
    assert f"{predicted:,.0f} instructions per frame" in line and "tolerance" in line


def test_pow2_4bit_holds_its_multipliers_in_pairs_from_32768_codes():
    """The pair table (1 kB at 4 bits) once it is at most 1/16 of the packed weights; at 3 bits (256 B)
    always; at 5 bits (4 kB) never; in its place the single multipliers' table."""

    def tables(hidden: int, bits: int) -> set[str]:
        breakdown = memory_breakdown(ModelConfig(hidden=hidden, n_input=13), QuantConfig.make("pow2", bits), None)
        return {item.name for item in breakdown.items if item.category == "tables"}

    # a 13-input GRU with 10 classes: 3H(H + 13) + 10H codes, 32,640 at H = 96 and 32,980 at H = 97
    assert "pow2 multiplier pairs" not in tables(96, 4) and "pow2 multipliers" in tables(96, 4)
    assert "pow2 multiplier pairs" in tables(97, 4) and "pow2 multipliers" not in tables(97, 4)
    assert "pow2 multiplier pairs" in tables(4, 3)
    assert "pow2 multiplier pairs" not in tables(200, 5)
    pairs = next(
        i
        for i in memory_breakdown(ModelConfig(hidden=97, n_input=13), QuantConfig.make("pow2", 4), None).items
        if i.symbol == "MULTIPLIER_PAIRS"
    )
    assert pairs.nbytes == 1024

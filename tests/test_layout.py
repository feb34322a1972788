"""The layout of the packed constants: one list of tensors, at contiguous offsets, that the memory
model counts, pack writes and the C code names."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from nas.device.cexport import generate
from nas.device.memory import memory_breakdown
from nas.engine.intmodel import from_float_model, pack
from nas.engine.layout import packed_layout, weight_tensors
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.model.models import RecurrentClassifier


@pytest.mark.parametrize(
    ("cell", "layers", "quant"),
    list(itertools.product(["gru", "lstm", "rnn"], [1, 3], [QuantConfig.make("pow2", 3), QuantConfig.make("fixed", 7, bias_bits=32)])),
)
def test_slots_are_contiguous_and_sum_to_the_memory_models_packed_bytes(cell, layers, quant):
    config = ModelConfig(cell=cell, layers=layers, hidden=5, n_input=3)
    layout = packed_layout(config, quant)
    slots = layout.slots()
    assert slots[0].offset == 0 and all(a.end == b.offset for a, b in itertools.pairwise(slots))
    breakdown = memory_breakdown(config, quant, None)
    assert layout.total_bytes == breakdown.packed_bytes
    assert [s.nbytes for s in layout.weights] == [i.nbytes for i in breakdown.items if i.category == "weights"]
    assert [s.tensor.name for s in layout.weights] == [t.name for t in weight_tensors(config)]
    assert len({s.tensor.symbol for s in slots}) == len(slots)  # every symbol is its own C name


def test_pack_puts_each_tensor_at_its_slot():
    torch.manual_seed(0)
    config, quant = ModelConfig(layers=2, hidden=6, n_input=4), QuantConfig.make("fixed", 8)
    engine = from_float_model(RecurrentClassifier(config), quant)
    data, layout = pack(engine), packed_layout(config, quant)
    for slot in layout.weights:
        codes = np.frombuffer(data[slot.offset : slot.end], np.int8)  # 8-bit two's complement codes are bytes
        assert np.array_equal(codes, engine.weights[slot.tensor.name].codes.reshape(-1))
        assert data[layout.shift_of(slot.tensor.name).offset] == engine.weights[slot.tensor.name].shift & 0xFF
    for slot in layout.biases:
        assert np.array_equal(np.frombuffer(data[slot.offset : slot.end], "<i2"), engine.biases[slot.tensor.name])


def test_c_code_names_each_tensor_by_its_layout_symbol():
    config, quant = ModelConfig(layers=2, hidden=6, n_input=4), QuantConfig.make("pow2", 4)
    torch.manual_seed(0)
    engine = from_float_model(RecurrentClassifier(config), quant)
    _, source = generate(engine)
    layout = packed_layout(config, quant)
    for slot in layout.weights:  # offset, the accumulator's frac bits (the shift is folded into them), columns
        acc_frac = engine.weights[slot.tensor.name].acc_frac
        assert f"#define {slot.tensor.symbol} {slot.offset}u, {acc_frac}, {slot.tensor.cols}\n" in source
    for slot in layout.biases:
        assert f"#define {slot.tensor.symbol} {slot.offset}u" in source
    assert "dot2(LAYER1_W_HH," in source and "dot2(CLASSIFIER_W," in source
    assert "TENSORS" not in source  # no table of tensors in flash: every field is a compile-time constant

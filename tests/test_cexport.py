"""The generated C code against the integer engine, bit for bit, for every cell and format."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from nas.device.cexport import generate
from nas.device.memory import memory_breakdown
from nas.engine.intmodel import from_float_model
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.model.models import RecurrentClassifier
from tests.ccheck import run_c_model

FORMATS = [
    QuantConfig.make("pow2", 4),
    QuantConfig.make("fixed", 8),
    QuantConfig.make("pow2", 5, bias_bits=32, state_bits=8),
    QuantConfig.make("fixed", 3),
]


@pytest.mark.parametrize(("cell", "quant"), list(itertools.product(["gru", "lstm", "rnn"], FORMATS)))
def test_c_logits_equal_the_integer_engine(tmp_path, cell, quant):
    torch.manual_seed(0)
    config = ModelConfig(cell=cell, layers=2, hidden=9, n_input=5)
    engine = from_float_model(RecurrentClassifier(config), quant)
    header, source = generate(engine)
    (tmp_path / "model.h").write_text(header)
    (tmp_path / "model.c").write_text(source)
    rng = np.random.default_rng(1)
    # Q3.12 feature frames, * 3: some saturate the 8-bit state's inputs
    sequences = [np.clip(np.round(rng.standard_normal((1 + 3 * i, 5)) * 3 * 4096), -32768, 32767).astype(np.int16) for i in range(12)]
    classes, logits, frames, (packed, struct) = run_c_model(tmp_path, sequences)
    expected = np.concatenate([engine.logits([engine.quantize_frames(s / 4096.0)]) for s in sequences])
    assert np.array_equal(logits, expected)
    assert np.array_equal(classes, expected.argmax(axis=1))
    assert list(frames) == [len(s) for s in sequences]
    breakdown = memory_breakdown(config, quant, None)
    assert packed == breakdown.packed_bytes
    assert struct == breakdown.struct_bytes
    assert "malloc" not in source and "float" not in source and "double" not in source

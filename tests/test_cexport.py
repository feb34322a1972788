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


WIDTHS = [("pow2", bits) for bits in range(3, 7)] + [("fixed", bits) for bits in range(2, 9)]


def extreme_engine(config: ModelConfig, quant: QuantConfig, pattern: str):
    """An engine whose every weight is the format's largest magnitude: all positive, or signs
    alternating along each row (the accumulators' worst cases; the widest multiplier of pow2)."""
    from nas.engine.intmodel import IntWeight

    torch.manual_seed(0)
    engine = from_float_model(RecurrentClassifier(config), quant)
    half = 2 ** (quant.weight_bits - 1)
    for name, weight in engine.weights.items():
        rows, cols = weight.codes.shape
        negative = np.zeros((rows, cols), bool) if pattern == "positive" else (np.arange(cols) % 2 == 1)[None, :].repeat(rows, 0)
        # pow2: k = 0 is the largest magnitude and the sign is the top bit; fixed: +-(2**(bits-1) - 1)
        codes = np.where(negative, half, 0) if quant.weights == "pow2" else np.where(negative, -(half - 1), half - 1)
        engine.weights[name] = IntWeight(weight.scheme, weight.bits, weight.shift, codes, weight.input_bits)
    return engine


SMALL_EXTREME = ModelConfig(cell="gru", layers=2, hidden=27, n_input=7)
# pow2 4-bit holds its multipliers in pairs from 32,768 codes on (nas.device.regions.pair_table)
PAIRED_EXTREME = ModelConfig(cell="gru", layers=1, hidden=100, n_input=7)


@pytest.mark.parametrize(("scheme", "bits", "config"), [(s, b, SMALL_EXTREME) for s, b in WIDTHS] + [("pow2", 4, PAIRED_EXTREME)])
def test_every_width_at_its_extremes_equals_the_engine_under_sanitizers(tmp_path, scheme, bits, config):
    """Largest codes and full-scale, silent and sign-alternating inputs, rows long enough for whole
    windows and a partial one, both accumulator widths, pow2 4-bit with and without the multiplier
    pairs: the C (ASan and UBSan on) = the engine."""
    quant = QuantConfig.make(scheme, bits)
    full, silent = np.full((6, 7), 32767, np.int16), np.zeros((4, 7), np.int16)
    alternating = np.where(np.indices((9, 7)).sum(axis=0) % 2 == 0, 32767, -32768).astype(np.int16)
    sequences = [full, silent, alternating, -full]
    for pattern in ("positive", "alternating"):
        engine = extreme_engine(config, quant, pattern)
        header, source = generate(engine)
        paired = scheme == "pow2" and (bits == 3 or config is PAIRED_EXTREME)
        assert ("MULTIPLIER_PAIRS[" in source) == paired
        (tmp_path / "model.h").write_text(header)
        (tmp_path / "model.c").write_text(source)
        _, logits, _, _ = run_c_model(tmp_path, sequences, sanitize=True)
        expected = np.concatenate([engine.logits([engine.quantize_frames(s / 4096.0)]) for s in sequences])
        assert np.array_equal(logits, expected), (pattern, logits, expected)
    wide = {w.accumulator_bits for w in engine.weights.values()}
    assert wide == ({64} if (scheme, bits) in (("pow2", 5), ("pow2", 6)) else {32}), wide

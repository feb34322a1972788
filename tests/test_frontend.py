"""The integer device front-end: each step against its float counterpart, the whole against
torchaudio's MFCC, the streaming property, and normalisation onto the engine's input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torchaudio

from nas.core.errors import NasError
from nas.data.dataset import list_recordings, read_all
from nas.engine.intmodel import from_float_model
from nas.features.extract import FeatureCache, FeatureConfig, Normaliser
from nas.features.frontend import (
    DB_PER_LOG2,
    LOG_FRAC,
    MFCC_FRAC,
    fft_power,
    frontend_tables,
    integer_mfcc,
    log2_q,
    mel_filterbank,
    normalisation_constants,
    normalise_integers,
    round_shift,
)
from nas.features.mfcc import compute_mfcc
from nas.model.formats import QuantConfig
from nas.model.models import ModelConfig, RecurrentClassifier

TABLES = frontend_tables(FeatureConfig(frontend="integer"))


@pytest.fixture(scope="module")
def waves(fsdd_dir):
    """Index 0-1 of every speaker and digit: 120 real recordings."""
    return read_all([r for r in list_recordings(fsdd_dir) if r.index < 2])


@pytest.mark.parametrize(("n_fft", "n_mels"), [(256, 40), (512, 64), (128, 20)])
def test_filterbank_is_torchaudios(n_fft, n_mels):
    reference = torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, 20.0, 4000.0, n_mels, 8000, None, "htk").double().numpy()
    assert np.abs(mel_filterbank(n_fft, n_mels, 20.0, 4000.0) - reference).max() < 1e-5


def test_integer_log2_is_within_a_step_of_log2():
    values = np.unique(np.concatenate([np.arange(1, 5000), np.geomspace(1, 2**46, 20000).astype(np.int64)]))
    exact = np.log2(values.astype(np.float64)) * 2**LOG_FRAC
    result = log2_q(values, TABLES)
    assert np.abs(result - exact).max() <= 1.0  # within one Q11 step
    assert np.all(np.diff(result) >= 0)  # monotone
    powers = 2 ** np.arange(47, dtype=np.int64)
    assert np.array_equal(log2_q(powers, TABLES), np.arange(47) << LOG_FRAC)  # exact at powers of two


def test_integer_fft_power_tracks_the_float_fft():
    rng = np.random.default_rng(0)
    windowed = rng.integers(-(2**22), 2**22, size=(16, 256))  # the scale the window leaves for n_fft 256
    power = fft_power(windowed, TABLES).astype(np.float64)
    reference = np.abs(np.fft.rfft(windowed.astype(np.float64), axis=1)) ** 2 / 2**13
    strong = reference > 1e-6 * reference.max()
    # Q15 twiddles (1.0 is stored as 32767) leave the power about 1e-4 low: -0.0004 dB
    assert np.median(np.abs(power[strong] / reference[strong] - 1)) < 3e-4
    assert np.abs(power - reference).max() < 1e-3 * reference.max()


def test_close_to_torchaudios_mfcc_on_real_speech(waves):
    """The arithmetic, with the floor out of the way (2^0): the chosen default floor (2^16) lifts
    quiet bands on purpose (docs/training.md)."""
    config = FeatureConfig()
    integer = integer_mfcc([w.samples for w in waves], 256, 80, frontend_tables(FeatureConfig(frontend="integer", floor_bits=0)))
    reference = compute_mfcc(waves, config)
    assert [len(a) for a in integer] == [len(b) for b in reference]  # the same framing
    gaps = np.concatenate([np.abs(a[:, 1:] / 2**MFCC_FRAC - b[:, 1:]) for a, b in zip(integer, reference, strict=True)])
    assert np.median(gaps) < 0.02 and np.percentile(gaps, 90) < 0.1  # dB; the rest is torchaudio's per-file floor


def test_a_frame_depends_only_on_its_own_samples(waves):
    """Streaming: the first frames of a file do not change when more audio follows. torchaudio's
    per-file dB floor (maximum minus 80 dB) changes them in some files: the reason for this front-end."""
    prefixes = [w.samples[: 256 + 80 * 9] for w in waves]  # exactly 10 frames each
    whole = integer_mfcc([w.samples for w in waves], 256, 80, TABLES)
    heads = integer_mfcc(prefixes, 256, 80, TABLES)
    assert all(len(h) == 10 and np.array_equal(w[:10], h) for w, h in zip(whole, heads, strict=True))
    float_whole = compute_mfcc(waves, FeatureConfig())
    float_heads = compute_mfcc([replace(w, samples=p) for w, p in zip(waves, prefixes, strict=True)], FeatureConfig())
    changed = sum(not np.allclose(w[:10], h, atol=1e-3) for w, h in zip(float_whole, float_heads, strict=True))
    assert changed > 0


def test_silence_and_a_short_file():
    silent, short = integer_mfcc([np.zeros(1000, np.int16), np.full(100, 1000, np.int16)], 256, 80, TABLES)
    assert silent.shape == (10, 13) and np.all(silent == silent[0])  # the fixed floor everywhere
    floor = frontend_tables(FeatureConfig(frontend="integer", floor_bits=12))
    assert not np.array_equal(integer_mfcc([np.zeros(1000, np.int16)], 256, 80, floor)[0], silent)  # log2(2^12) != log2(1)
    assert short.shape == (1, 13)


def test_normalisation_lands_on_the_engines_input_integers(waves):
    config = FeatureConfig(frontend="integer")
    raw = FeatureCache(None).get(waves, config)
    normaliser = Normaliser.fit(raw, "global", integer=True)
    mean_q, scale_q = normaliser.constants()
    frames = normaliser.apply(raw[0])
    q = normalise_integers(raw[0], mean_q, scale_q)
    assert np.array_equal(frames * 2**12, q.astype(np.float32))  # floats that are the integers, exactly
    engine = from_float_model(RecurrentClassifier(ModelConfig()), QuantConfig.make("pow2", 4))
    assert np.array_equal(engine.quantize_frames(frames), q)  # the engine reads back the same integers
    stacked = np.concatenate([normaliser.apply(f) for f in raw])
    assert np.abs(stacked.mean(axis=0)).max() < 0.01 and np.abs(stacked.std(axis=0) - 1).max() < 0.01
    expected = np.clip(np.round((raw[0] - normaliser.mean) / normaliser.std * 4096), -32768, 32767)
    assert np.abs(q - expected).max() <= 1
    again = Normaliser.from_dict(normaliser.to_dict())
    assert again.integer and np.array_equal(again.apply(raw[0]), frames)
    assert normaliser.to_dict()["integer"]["mean_q8"] == mean_q.tolist()
    with pytest.raises(ValueError, match="too small"):
        normalisation_constants(np.zeros(2), np.array([1.0, 1e-6]))


def test_the_integer_front_end_is_a_feature_option():
    with pytest.raises(NasError, match="power of two"):
        FeatureConfig(n_fft=200, frontend="integer").validate()
    with pytest.raises(NasError, match="--frontend"):
        FeatureConfig(frontend="float").validate()
    FeatureConfig(n_fft=200, frontend="torchaudio").validate()  # torchaudio takes any length
    assert FeatureConfig().frontend == "integer"  # the default: what a device can compute
    assert FeatureCache.key([], FeatureConfig()) != FeatureCache.key([], FeatureConfig(frontend="torchaudio"))


def test_rounding_is_half_up_with_an_arithmetic_shift():
    assert round_shift(np.array([5, 6, 7, -5, -6, -7]), 2).tolist() == [1, 2, 2, -1, -1, -2]
    assert pytest.approx(3.0103, abs=1e-4) == DB_PER_LOG2
    assert torch.__version__  # torch and torchaudio only serve as references here


@pytest.mark.parametrize("n_fft", [64, 128, 256, 512, 1024])
def test_the_stored_half_window_and_cosines_give_every_entry(n_fft):
    """The device stores half the window and no sine table: mirrored and shifted, they are the
    values computed entry by entry (so the C's reads change no feature)."""
    tables = frontend_tables(FeatureConfig(n_fft=n_fft))
    n, k = np.arange(n_fft), np.arange(n_fft // 2)
    direct_window = np.clip(np.floor((0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)) * 2**15 + 0.5), -32768, 32767)
    direct_sin = np.clip(np.floor(np.sin(2 * np.pi * k / n_fft) * 2**15 + 0.5), -32768, 32767)
    assert np.array_equal(tables.window, direct_window) and np.array_equal(tables.sin, direct_sin)

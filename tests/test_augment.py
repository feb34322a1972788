"""Waveform augmentation (copies for training only) and the "running" normalisation (a streaming
per-utterance mean that the device computes too)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from nas.data.dataset import SAMPLE_RATE, load_split
from nas.device.memory import memory_breakdown
from nas.features.augment import WaveCopy, alter_samples
from nas.features.extract import FeatureCache, FeatureConfig, FeatureSet, Normaliser, build_feature_set
from nas.features.frontend import (
    RUNNING_FRAC,
    RUNNING_MAX_FRAMES,
    RUNNING_PRIOR_FRAMES,
    divide_round,
    frontend_tables,
    running_centre_float,
    running_centre_integers,
    running_count,
    warp_frequencies,
)
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.training.recipe import TrainConfig
from nas.training.train import train_model
from tests.conftest import index_of, link_subset

COPY = WaveCopy(1, speed_range=0.15, vtlp_range=0.1, gain_db=6.0, noise_snr_db=15.0)


@pytest.fixture(scope="module")
def subset(fsdd_dir, tmp_path_factory):
    return link_subset(fsdd_dir, tmp_path_factory.mktemp("aug") / "data", lambda name: index_of(name) in (0, 5, 10))


def rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(values, np.float64) ** 2)))


def test_a_copys_parameters_depend_on_the_recording_and_copy_only():
    first = COPY.parameters("3_theo_7.wav")
    assert first == COPY.parameters("3_theo_7.wav")  # deterministic: one cached copy serves every fold and seed
    assert first != COPY.parameters("3_theo_8.wav") and first != WaveCopy(2, 0.15, 0.1, 6.0, 15.0).parameters("3_theo_7.wav")
    drawn = [COPY.parameters(f"{d}_george_{i}.wav") for d in range(10) for i in range(20)]
    speeds, warps = [p["speed"] for p in drawn], [p["warp"] for p in drawn]
    assert 0.85 <= min(speeds) < 0.9 and 1.1 < max(speeds) <= 1.15 and all(round(s, 2) == s for s in speeds)
    assert min(warps) >= 0.9 and max(warps) <= 1.1 and len(set(warps)) > 5
    assert all(abs(p["gain_db"]) <= 6 and 15 <= p["snr_db"] <= 35 for p in drawn)
    assert all(np.isinf(WaveCopy(1, 0.1, 0, 0, 0).parameters(f"{i}.wav")["snr_db"]) for i in range(5))  # 0: no noise


def test_speed_gain_and_noise_change_the_samples_as_asked():
    time = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (8000 * np.sin(2 * np.pi * 440 * time)).astype(np.int16)
    faster = alter_samples(tone, 1.1, 0.0, np.inf, 0)
    assert abs(len(faster) - len(tone) / 1.1) <= 1  # 10% faster: 10% fewer samples
    spectrum = np.abs(np.fft.rfft(faster.astype(np.float64)))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(faster) - 484) < 3  # and 10% higher in pitch
    louder = alter_samples(tone, 1.0, 6.0, np.inf, 0)
    assert rms(louder) / rms(tone) == pytest.approx(10 ** (6 / 20), rel=1e-3)
    noisy = alter_samples(tone, 1.0, 0.0, 20.0, 7)
    assert rms(noisy.astype(np.int64) - tone) / rms(tone) == pytest.approx(0.1, rel=0.05)
    assert np.array_equal(alter_samples(tone, 1.0, 0.0, np.inf, 0), tone)  # nothing asked, nothing changed


def test_vtlp_warps_frequencies_below_the_boundary_and_keeps_the_ends():
    freqs = np.linspace(0, SAMPLE_RATE / 2, 129)
    for warp in (0.9, 1.1):
        warped = warp_frequencies(freqs, warp)
        assert warped[0] == 0 and warped[-1] == pytest.approx(SAMPLE_RATE / 2)
        assert np.all(np.diff(warped) > 0)
        assert warped[10] == pytest.approx(freqs[10] * warp)
    config = FeatureConfig()
    assert frontend_tables(config, 1.0) is frontend_tables(config)
    moved = frontend_tables(config, 1.1)
    assert not np.array_equal(moved.mel_first, frontend_tables(config).mel_first)
    assert np.array_equal(moved.dct, frontend_tables(config).dct) and np.array_equal(moved.window, frontend_tables(config).window)


def test_copies_are_for_training_only(subset):
    """The copies come from the train part, in its order; the normalisation statistics and the
    validation and test parts are those of the originals."""
    split, waves = load_split(subset, "speaker:lucas")
    config = FeatureConfig(n_mels=20)
    plain = build_feature_set(split, waves, config, FeatureCache(None))
    augmented = build_feature_set(split, waves, config, FeatureCache(None), copies=[COPY, WaveCopy(2, 0.15, 0.1, 6.0, 15.0)])
    assert np.array_equal(plain.normaliser.mean, augmented.normaliser.mean) and np.array_equal(
        plain.normaliser.std, augmented.normaliser.std
    )
    for part in ("train", "val", "test"):
        assert all(np.array_equal(a, b) for a, b in zip(plain.part(part)[0], augmented.part(part)[0], strict=True))
    assert len(augmented.train_copies) == 2 and all(len(c) == len(split.train) for c in augmented.train_copies)
    originals = plain.part("train")[0]
    ratios = [len(c) / len(o) for c, o in zip(augmented.train_copies[0], originals, strict=True)]
    speeds = [COPY.parameters(r.name)["speed"] for r in split.train]
    assert np.corrcoef(ratios, 1 / np.array(speeds))[0, 1] > 0.9  # each copy is its own recording, sped up or slowed down
    # torchaudio's features: speed, gain and noise, no warp (VTLP is a change of the integer filterbank)
    warped = FeatureCache(None).get([waves[r.name] for r in split.train[:3]], FeatureConfig(frontend="torchaudio"), COPY)
    unwarped = FeatureCache(None).get(
        [waves[r.name] for r in split.train[:3]], FeatureConfig(frontend="torchaudio"), replace(COPY, vtlp_range=0)
    )
    assert all(np.array_equal(a, b) for a, b in zip(warped, unwarped, strict=True))


def test_training_draws_from_the_copies(subset):
    """Each epoch trains on the original or a copy of each recording: copies that hold other
    frames give other weights, and a run without copies is the run it always was."""
    split, waves = load_split(subset, "speaker:lucas")
    features = build_feature_set(split, waves, FeatureConfig(n_mels=20), FeatureCache(None))
    model = ModelConfig("gru", 1, 8, n_input=13)
    recipe = TrainConfig.for_epochs(2, augment=False)

    def weights(feature_set: FeatureSet) -> torch.Tensor:
        result = train_model(feature_set, model, recipe, torch.device("cpu"), quant=QuantConfig())
        return torch.cat([p.detach().flatten() for p in result.model.parameters()])

    zeros = [[np.zeros_like(f) for f in features.part("train")[0]]]
    with_copies = FeatureSet(features.config, features.normaliser, features.parts, train_copies=zeros)
    assert not torch.equal(weights(features), weights(with_copies))
    assert torch.equal(weights(features), weights(FeatureSet(features.config, features.normaliser, features.parts)))


def test_a_checkpoint_from_before_the_copies_trained_without_them():
    stored = TrainConfig().to_dict()
    del stored["wave_copies"]
    assert TrainConfig.from_stored(stored).wave_copies == 0 and TrainConfig.from_stored(stored).wave_copy_recipes() == []
    assert TrainConfig.from_stored(TrainConfig(wave_copies=3).to_dict()).wave_copies == 3


def test_recipe_copies_and_their_limits():
    assert TrainConfig().wave_copy_recipes() == [] or TrainConfig().wave_copies > 0
    recipe = TrainConfig(wave_copies=3, speed_range=0.1, vtlp_range=0.05, gain_db=3, noise_snr_db=20)
    assert [c.index for c in recipe.wave_copy_recipes()] == [1, 2, 3]
    assert recipe.wave_copy_recipes()[0] == WaveCopy(1, 0.1, 0.05, 3, 20)
    assert TrainConfig(wave_copies=3, augment=False).wave_copy_recipes() == []  # --no-augment: no copies either
    for field, value, option in [("wave_copies", 17, "--wave-copies"), ("speed_range", 0.6, "--speed"), ("vtlp_range", -0.1, "--vtlp")]:
        with pytest.raises(Exception, match=option):
            TrainConfig(**{field: value}).validate()


# ------------------------------------------------------------------------------ running mean
def test_divide_round_is_symmetric_as_the_c_writes_it():
    values = np.array([-7, -6, -5, -1, 0, 1, 5, 6, 7])
    assert divide_round(values, 2).tolist() == [-4, -3, -3, -1, 0, 1, 3, 3, 4]
    assert divide_round(values, 4).tolist() == [-2, -2, -1, 0, 0, 0, 1, 2, 2]


def test_running_count_is_a_prior_then_a_moving_average():
    assert running_count(0) == 1 + RUNNING_PRIOR_FRAMES
    assert running_count(5) == 6 + RUNNING_PRIOR_FRAMES
    assert running_count(RUNNING_MAX_FRAMES - 1 - RUNNING_PRIOR_FRAMES) == RUNNING_MAX_FRAMES
    assert running_count(10**6) == RUNNING_MAX_FRAMES


def test_running_centre_follows_the_mean_of_the_utterance_so_far():
    rng = np.random.default_rng(0)
    frames = rng.integers(-3000, 3000, (300, 4)) + np.array([5000, -2000, 0, 700])  # an offset per coefficient
    exact = running_centre_float(frames)
    integer = running_centre_integers(frames)
    assert np.abs(integer - exact).max() <= 2  # the integer mean keeps 8 fraction bits
    # the first frame sees the prior (the train mean, 0 here) as PRIOR frames beside itself
    assert np.allclose(exact[0], frames[0] - frames[0] / (1 + RUNNING_PRIOR_FRAMES))
    # by the end the offsets are gone: what is left has mean near 0 over the last frames
    assert np.abs(integer[-100:].mean(axis=0)).max() < 400 < np.abs(frames[-100:].mean(axis=0)).max()
    constant = np.full((RUNNING_MAX_FRAMES * 12, 2), 4096)  # the moving average's time constant is MAX frames
    assert np.abs(running_centre_integers(constant)[-1]).max() <= 1  # a steady input is removed entirely
    assert RUNNING_FRAC == 8


def test_running_normaliser_fits_after_both_means_and_round_trips(subset):
    split, waves = load_split(subset, "speaker:lucas")
    config = FeatureConfig(normalisation="running")
    features = build_feature_set(split, waves, config, FeatureCache(None))
    normaliser = features.normaliser
    assert normaliser.running and normaliser.integer
    train = np.concatenate(features.part("train")[0])
    assert np.allclose(train.std(axis=0), 1.0, atol=0.02)  # the scale is the spread after the running mean
    stored = normaliser.to_dict()
    assert "running_centre" in stored["integer"]["formula"] and stored["running"]["max_frames"] == RUNNING_MAX_FRAMES
    again = Normaliser.from_dict(stored)
    raw = (np.arange(150 * 13).reshape(150, 13) * 37 % 5000).astype(np.float32)  # Q8 integers, as the front-end gives
    assert again.running and np.array_equal(again.apply(raw), normaliser.apply(raw))
    plain = build_feature_set(split, waves, FeatureConfig(normalisation="global"), FeatureCache(None))
    assert not np.allclose(plain.part("test")[0][0], features.part("test")[0][0])


@pytest.mark.parametrize("frontend", ["integer", "torchaudio"])
def test_normalising_in_batches_gives_each_utterance_what_it_gets_alone(subset, frontend, monkeypatch):
    """The running mean steps through time for many utterances at once (padded with zeros at the
    end, sorted by length): each must still get exactly its own numbers, in the order given."""
    from nas.features import extract as features_module
    from nas.features.extract import compute_frames

    monkeypatch.setattr(features_module, "UTTERANCE_BATCH", 7)  # several batches of unequal lengths
    _, waves = load_split(subset, "official")
    raw = compute_frames([waves[name] for name in sorted(waves)], FeatureConfig(frontend=frontend))
    assert len({len(r) for r in raw}) > 20  # lengths vary, so padding is exercised
    for kind in ("running", "global", "none"):
        normaliser = Normaliser.fit(raw, kind, integer=frontend == "integer")
        batched = normaliser.apply_all(raw)
        assert len(batched) == len(raw)
        assert all(b.dtype == np.float32 and np.array_equal(b, normaliser.apply(r)) for b, r in zip(batched, raw, strict=True)), kind
    # the fit's spread after the running mean, utterance by utterance as before the batches
    integer = frontend == "integer"
    normaliser = Normaliser.fit(raw, "running", integer=integer)
    alone = np.concatenate([Normaliser._running_centred(r, normaliser.mean, integer) for r in raw])
    assert np.array_equal(normaliser.std, np.maximum(alone.std(axis=0), 1e-6).astype(np.float32))


def test_the_running_mean_is_one_int32_per_coefficient_of_ram():
    model, quant = ModelConfig("gru", 1, 32, n_input=10), QuantConfig.make("pow2", 4)
    plain = memory_breakdown(model, quant, FeatureConfig(n_mfcc=10, normalisation="global"))
    running = memory_breakdown(model, quant, FeatureConfig(n_mfcc=10, normalisation="running"))
    assert running.flash_bytes == plain.flash_bytes
    assert running.ram_bytes - plain.ram_bytes == 4 * 10
    assert [i.symbol for i in running.items if i.symbol == "running"] == ["running"]

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from nas.core.errors import NasError
from nas.data.dataset import Waveform, list_recordings, make_split, read_all
from nas.features.extract import FeatureCache, FeatureConfig, build_feature_set
from nas.features.mfcc import compute_mfcc


@pytest.fixture(scope="module")
def small(fsdd_dir):
    """Index 0-11 of every speaker: a 720-file official-split subset (train = index 10-11)."""
    recordings = [r for r in list_recordings(fsdd_dir) if r.index < 12]
    waveforms = {w.recording.name: w for w in read_all(recordings)}
    return make_split(recordings, "official"), waveforms


def test_mfcc_shape_follows_the_config(small):
    _, waveforms = small
    wave = waveforms["3_theo_0.wav"]
    config = FeatureConfig(n_mfcc=20, n_fft=256, hop_length=80)
    frames = compute_mfcc([wave], config)[0]
    assert frames.shape == (1 + (len(wave.samples) - 256) // 80, 20)
    assert frames.dtype == np.float32 and np.isfinite(frames).all()


def test_short_file_still_gives_one_frame(small):
    _, waveforms = small
    wave = waveforms["3_theo_0.wav"]
    short = Waveform(wave.recording, wave.samples[:100], "x")
    assert compute_mfcc([short], FeatureConfig())[0].shape == (1, 13)


def test_normalisation_uses_train_statistics_only(small, tmp_path):
    split, waveforms = small
    # torchaudio features: float statistics, applied in float (the integer front-end's constants are tested in test_frontend.py)
    config = FeatureConfig(frontend="torchaudio", normalisation="global")  # "running" is tested in test_augment.py
    features = build_feature_set(split, waveforms, config, FeatureCache(tmp_path))
    train = np.concatenate(features.part("train")[0])
    assert np.allclose(train.mean(axis=0), 0, atol=1e-4) and np.allclose(train.std(axis=0), 1, atol=1e-3)
    test = np.concatenate(features.part("test")[0])
    assert not np.allclose(test.mean(axis=0), 0, atol=1e-3)  # other parts are scaled with train's statistics
    raw = FeatureCache(tmp_path).get([waveforms[r.name] for r in split.train], FeatureConfig(frontend="torchaudio"))
    stacked = np.concatenate(raw)
    assert np.allclose(features.normaliser.mean, stacked.mean(axis=0), atol=1e-4)
    labels = features.part("test")[1]
    assert list(labels) == [r.digit for r in split.test]


def test_cache_hit_miss_and_invalidation(small, tmp_path):
    _, waveforms = small
    ordered = [waveforms[n] for n in sorted(waveforms)]
    config = FeatureConfig()
    cache = FeatureCache(tmp_path)
    first = cache.get(ordered, config)
    assert (cache.misses, cache.hits, cache.disk_hits) == (1, 0, 0)
    assert cache.get(ordered, config) is first
    assert cache.hits == 1
    assert len(list(tmp_path.glob("mfcc-*.npz"))) == 1

    fresh = FeatureCache(tmp_path)  # a new run: served from disk, equal values
    again = fresh.get(ordered, config)
    assert (fresh.misses, fresh.disk_hits) == (0, 1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))

    fresh.get(ordered, replace(config, n_mfcc=12))  # another config: a miss
    assert fresh.misses == 1
    changed = list(ordered)
    changed[0] = Waveform(changed[0].recording, changed[0].samples[::-1].copy(), "0" * 64)  # other audio
    fresh.get(changed, config)
    assert fresh.misses == 2
    assert len(list(tmp_path.glob("mfcc-*.npz"))) == 3


def test_damaged_cache_file_is_recomputed(small, tmp_path):
    _, waveforms = small
    ordered = [waveforms[n] for n in sorted(waveforms)][:50]
    expected = FeatureCache(tmp_path).get(ordered, FeatureConfig())
    (cached,) = tmp_path.glob("mfcc-*.npz")
    cached.write_bytes(b"garbage")
    cache = FeatureCache(tmp_path)
    values = cache.get(ordered, FeatureConfig())
    assert (cache.misses, cache.disk_hits) == (1, 0)
    assert all(np.array_equal(a, b) for a, b in zip(expected, values, strict=True))


def test_memory_only_cache_writes_nothing(small, tmp_path, monkeypatch):
    """--no-cache: nothing lands in the folder the cache would otherwise use."""
    _, waveforms = small
    default = tmp_path / "default-cache"
    monkeypatch.setenv("NAS_CACHE_DIR", str(default))
    FeatureCache().get([waveforms["3_theo_0.wav"]], FeatureConfig())
    assert len(list(default.glob("mfcc-*.npz"))) == 1  # the folder the memory-only cache must leave alone
    for file in default.iterdir():
        file.unlink()
    cache = FeatureCache.at(None, memory_only=True)
    assert cache.get([waveforms["3_theo_0.wav"]], FeatureConfig()) is cache.get([waveforms["3_theo_0.wav"]], FeatureConfig())
    assert (cache.misses, cache.hits) == (1, 1) and not list(default.iterdir())
    assert FeatureCache.at(str(tmp_path / "given")).directory == tmp_path / "given"


@pytest.mark.parametrize(
    ("change", "option"),
    [
        ({"n_mfcc": 0}, "--n-mfcc"),
        ({"n_mfcc": 41}, "--n-mfcc"),
        ({"hop_length": 0}, "--hop-length"),
        ({"normalisation": "x"}, "--normalisation"),
    ],
)
def test_feature_config_ranges(change, option):
    with pytest.raises(NasError, match=option):
        replace(FeatureConfig(), **change).validate()


def test_front_end_description_is_read_off_the_transform():
    """model.json's front_end block comes from the transform that computes the features."""
    from nas.features.mfcc import describe_frontend

    default, other = describe_frontend(FeatureConfig()), describe_frontend(FeatureConfig(n_mfcc=20, n_mels=64, n_fft=512, hop_length=160))
    assert "length 256, hop 80, centre padding off" in default["window"] and "periodic" in default["window"]
    assert default["mel"].startswith("40 HTK-scale") and "20-4000 Hz" in default["mel"]
    assert default["dct"] == "type 2, norm ortho, first 13 coefficients" and "- 80 dB" in default["log"]
    assert "length 512, hop 160" in other["window"] and other["mel"].startswith("64 ") and other["dct"].endswith("first 20 coefficients")


def test_only_the_integer_front_end_runs_on_the_device():
    """The memory model and the C count a front-end only when the device can compute it bit for bit."""
    assert FeatureConfig().on_device == FeatureConfig() and FeatureConfig(n_fft=128).on_device.n_fft == 128
    assert FeatureConfig(frontend="torchaudio").on_device is None

"""Shared fixtures: the real FSDD recordings (from NAS_DATA_DIR, as CI sets it) and small WAVs
that tests write themselves for edge cases."""

from __future__ import annotations

import os
import signal
import wave
from pathlib import Path

import numpy as np
import pytest

# A shell that starts the tests as a background job without job control (`make test &` in a
# script) hands them SIGINT ignored, and every process they start would ignore Ctrl-C too: the
# Ctrl-C tests need the ordinary handler, here and (reset to the default on exec) in children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parent.parent


def real_data_dir() -> Path:
    candidates = [os.environ.get("NAS_DATA_DIR"), REPO.parent / "shared" / "fsdd" / "recordings"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir() and any(Path(candidate).glob("*.wav")):
            return Path(candidate)
    pytest.fail("FSDD recordings not found: set NAS_DATA_DIR to the folder of the 3,000 WAV files", pytrace=False)


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    return real_data_dir()


@pytest.fixture(scope="session")
def subset(fsdd_dir, tmp_path_factory):
    """Takes 0-13 of every digit and speaker (840 files): the official split's test (0-4) and
    validation (5-9) parts in small, and 4 takes to train on."""
    return link_subset(fsdd_dir, tmp_path_factory.mktemp("subset") / "data", lambda name: index_of(name) < 14)


def search_argv(subset, results, *extra):
    """A smoke search; unconfirmed unless `extra` says --confirm-seeds N (the last one counts):
    confirmation retrains the front, which only tests/test_confirm.py needs to pay for."""
    argv = ["search", "--budget-kb", "4", "--space", "smoke", "--data-dir", str(subset), "--results-dir", str(results)]
    return [*argv, "--confirm-seeds", "0", *extra]


@pytest.fixture(scope="session")
def searched(subset, tmp_path_factory):
    """A finished 3-trial search of the smoke space, study 's' (read only: tests must not change it)."""
    from nas.cli.main import main

    results = tmp_path_factory.mktemp("searched")
    assert main([*search_argv(subset, results, "--study", "s", "--workers", "1", "--trials", "3")]) == 0
    return results


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test runs as `nas train` and the search workers do, with one torch thread, whatever
    an earlier test set: results then do not depend on the order tests run in."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own feature cache folder, so no test sees another's cache files."""
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def write_wav(path: Path, samples: np.ndarray | None = None, rate: int = 8000, channels: int = 1, sample_bytes: int = 2) -> Path:
    """A small WAV, 16-bit mono 8 kHz unless told otherwise."""
    if samples is None:
        t = np.arange(2000) / rate
        samples = (3000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    # 8-bit WAV is unsigned with 128 as zero; 16-bit is signed little-endian
    unsigned_8bit = (samples.astype(np.int32) // 256 + 128).astype(np.uint8)
    data = unsigned_8bit.tobytes() if sample_bytes == 1 else samples.astype("<i2").tobytes()
    if channels == 2:
        width = sample_bytes
        frames = np.frombuffer(data, dtype=np.uint8).reshape(-1, width)
        data = np.concatenate([frames, frames], axis=1).tobytes()
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(sample_bytes)
        writer.setframerate(rate)
        writer.writeframes(data)
    return path


def link_subset(source: Path, target: Path, keep) -> Path:
    """A folder of symbolic links to the real recordings for which keep(name) is true."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.wav")):
        if keep(path.name):
            (target / path.name).symlink_to(path.resolve())
    return target


def index_of(name: str) -> int:
    return int(name.rsplit("_", 1)[1].split(".")[0])

"""The generated C front-end against nas.frontend, bit for bit, on real recordings."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from nas.cfrontend import generate_frontend
from nas.data import list_recordings, read_all
from nas.features import FeatureCache, FeatureConfig, Normaliser
from nas.frontend import frame_samples, frontend_tables, integer_mfcc, normalise_integers

HARNESS = r"""
#include <stdio.h>
#include "frontend.h"
int main(int argc, char **argv) {
    FILE *f;
    int16_t samples[NAS_FRAME_SAMPLES], features[NAS_FEATURES];
    int i;
    if (argc != 2 || !(f = fopen(argv[1], "rb"))) return 2;
    while (fread(samples, sizeof(int16_t), NAS_FRAME_SAMPLES, f) == NAS_FRAME_SAMPLES) {
        nas_frontend_frame(samples, features);
        for (i = 0; i < NAS_FEATURES; i++) printf(i ? " %d" : "%d", features[i]);
        printf("\n");
    }
    return 0;
}
"""


def run_c_frontend(folder, config: FeatureConfig, normaliser: Normaliser, frames: np.ndarray) -> np.ndarray:
    header, source = generate_frontend(config, *normaliser.constants())
    (folder / "frontend.h").write_text(header)
    (folder / "frontend.c").write_text(source)
    (folder / "harness.c").write_text(HARNESS)
    binary = folder / "harness"
    compiled = subprocess.run(
        ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-o", str(binary), str(folder / "frontend.c"), str(folder / "harness.c")],
        capture_output=True,
        text=True,
    )
    assert compiled.returncode == 0, compiled.stderr
    (folder / "frames.bin").write_bytes(np.asarray(frames, "<i2").tobytes())
    result = subprocess.run([str(binary), str(folder / "frames.bin")], capture_output=True, text=True, check=True)
    return np.array([[int(v) for v in line.split()] for line in result.stdout.splitlines()], np.int64)


@pytest.fixture(scope="module")
def waves(fsdd_dir):
    return read_all([r for r in list_recordings(fsdd_dir) if r.index == 0])  # 60 recordings, every speaker and digit


@pytest.mark.parametrize(
    "config",
    [
        FeatureConfig(frontend="integer"),
        FeatureConfig(n_mfcc=16, frontend="integer"),
        FeatureConfig(n_mfcc=20, n_mels=64, n_fft=512, hop_length=160, frontend="integer"),
    ],
    ids=["default", "16-mfcc-floor14", "512-fft"],
)
def test_c_frontend_equals_python_bit_for_bit(tmp_path, waves, config):
    raw = FeatureCache(None).get(waves, config)
    normaliser = Normaliser.fit(raw, "global", integer=True)
    frames = np.concatenate([frame_samples(w.samples, config.n_fft, config.hop_length) for w in waves])
    tables = frontend_tables(config)
    expected = normalise_integers(
        np.concatenate(integer_mfcc([w.samples for w in waves], config.n_fft, config.hop_length, tables)), *normaliser.constants()
    )
    assert np.array_equal(np.concatenate([normaliser.apply(f) for f in raw]) * 4096, expected)  # what training sees
    produced = run_c_frontend(tmp_path, config, normaliser, frames)
    assert produced.shape == expected.shape and len(produced) > 1000
    assert np.array_equal(produced, expected)


def test_c_frontend_on_extreme_input(tmp_path):
    """Full-scale square waves, silence and single clicks: the integer bounds of the docstring hold."""
    config = FeatureConfig(frontend="integer")
    n = config.n_fft
    frames = np.stack(
        [np.full(n, 32767), np.full(n, -32768), np.where(np.arange(n) % 2, 32767, -32768), np.zeros(n), np.eye(1, n, n // 2)[0] * 32767]
    ).astype(np.int16)
    normaliser = Normaliser(np.zeros(13, np.float32), np.full(13, 256.0, np.float32), integer=True)
    tables = frontend_tables(config)
    from nas.frontend import integer_mfcc_frames

    expected = normalise_integers(integer_mfcc_frames(frames.astype(np.int64), tables), *normaliser.constants())
    assert np.array_equal(run_c_frontend(tmp_path, config, normaliser, frames), expected)

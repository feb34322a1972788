"""The generated C front-end against nas.features.frontend, bit for bit, on real recordings."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from nas.data.dataset import Waveform, list_recordings, read_all
from nas.device.cfrontend import generate_frontend
from nas.features.extract import FeatureCache, FeatureConfig, Normaliser
from nas.features.frontend import RUNNING_MAX_FRAMES, frame_samples, frontend_tables, integer_mfcc, normalise_integers
from tests.ccheck import SANITIZERS

HARNESS = r"""
#include <stdio.h>
#include "frontend.h"
int main(int argc, char **argv) { /* each file: one utterance's frames */
    FILE *f;
    int16_t samples[NAS_FRAME_SAMPLES], features[NAS_FEATURES];
    int i, file;
    for (file = 1; file < argc; file++) {
        if (!(f = fopen(argv[file], "rb"))) return 2;
        nas_frontend_reset();
        while (fread(samples, sizeof(int16_t), NAS_FRAME_SAMPLES, f) == NAS_FRAME_SAMPLES) {
            nas_frontend_frame(samples, features);
            for (i = 0; i < NAS_FEATURES; i++) printf(i ? " %d" : "%d", features[i]);
            printf("\n");
        }
        fclose(f);
    }
    return 0;
}
"""


def run_c_frontend(
    folder, config: FeatureConfig, normaliser: Normaliser, frames: np.ndarray | list[np.ndarray], sanitize: bool = False
) -> np.ndarray:
    """The C front-end's features of `frames` (PCM windows; a list: one array per utterance);
    `sanitize`: built with ASan and UBSan, and any report fails the run."""
    header, source = generate_frontend(config, *normaliser.constants())
    (folder / "frontend.h").write_text(header)
    (folder / "frontend.c").write_text(source)
    (folder / "harness.c").write_text(HARNESS)
    binary = folder / "harness"
    command = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", *(SANITIZERS if sanitize else ())]
    command += ["-o", str(binary), str(folder / "frontend.c"), str(folder / "harness.c")]
    compiled = subprocess.run(command, capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    utterances = frames if isinstance(frames, list) else [frames]
    paths = []
    for number, utterance in enumerate(utterances):
        paths.append(folder / f"frames-{number}.bin")
        paths[-1].write_bytes(np.asarray(utterance, "<i2").tobytes())
    result = subprocess.run([str(binary), *map(str, paths)], capture_output=True, text=True, check=True)
    return np.array([[int(v) for v in line.split()] for line in result.stdout.splitlines()], np.int64)


@pytest.fixture(scope="module")
def waves(fsdd_dir):
    return read_all([r for r in list_recordings(fsdd_dir) if r.index == 0])  # 60 recordings, every speaker and digit


@pytest.mark.parametrize(
    "config",
    [
        # global normalisation: one utterance of all frames (the running mean: the next test)
        FeatureConfig(frontend="integer", normalisation="global"),
        FeatureConfig(n_mfcc=16, frontend="integer", normalisation="global"),
        FeatureConfig(n_mfcc=20, n_mels=64, n_fft=512, hop_length=160, frontend="integer", normalisation="global"),
    ],
    ids=["default-global", "16-mfcc-floor14", "512-fft"],
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


def test_c_running_normalisation_equals_python_per_utterance(tmp_path, waves):
    """The running mean starts again at each utterance and follows nas.features.frontend bit for bit, past
    the frame where it turns from a mean into a moving average."""
    config = FeatureConfig(n_mfcc=10, frontend="integer", normalisation="running")
    joined = np.concatenate([w.samples for w in waves[:4]])  # one long utterance: past RUNNING_MAX_FRAMES
    waves = [*waves, Waveform(waves[0].recording, joined, "joined")]
    raw = FeatureCache(None).get(waves, config)
    normaliser = Normaliser.fit(raw, "running", integer=True)
    expected = np.concatenate([normaliser.apply(f) for f in raw]) * 4096
    produced = run_c_frontend(tmp_path, config, normaliser, [frame_samples(w.samples, config.n_fft, config.hop_length) for w in waves])
    assert produced.shape == expected.shape
    assert np.array_equal(produced, expected)
    # without the running mean the same frames differ: the test sees it
    plain = np.concatenate([normalise_integers(f, *normaliser.constants()) for f in raw])
    assert not np.array_equal(plain, expected)
    assert max(len(f) for f in raw) > RUNNING_MAX_FRAMES


@pytest.mark.parametrize("normalisation", ["global", "running"])
def test_c_frontend_on_extreme_input(tmp_path, normalisation):
    """Full-scale square waves, silence and single clicks, over and over (past the running mean's
    switch to a moving average): the integer bounds of the docstrings hold, in Python and C alike
    (the C built with ASan and UBSan)."""
    config = FeatureConfig(frontend="integer", normalisation=normalisation)
    n = config.n_fft
    frames = np.stack(
        [np.full(n, 32767), np.full(n, -32768), np.where(np.arange(n) % 2, 32767, -32768), np.zeros(n), np.eye(1, n, n // 2)[0] * 32767]
    ).astype(np.int16)
    frames = np.tile(frames, (30, 1))  # 150 frames of one utterance
    running = normalisation == "running"
    normaliser = Normaliser(np.zeros(13, np.float32), np.full(13, 256.0, np.float32), integer=True, running=running)
    tables = frontend_tables(config)
    from nas.features.frontend import integer_mfcc_frames

    expected = normalise_integers(integer_mfcc_frames(frames.astype(np.int64), tables), *normaliser.constants(), running=running)
    assert np.array_equal(run_c_frontend(tmp_path, config, normaliser, frames, sanitize=True), expected)

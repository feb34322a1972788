"""Waveform augmentation for training: altered copies of the recordings, for new voices.

Each recording gets `copies` copies, each with its own speed (pitch, formants and duration
together, as Kaldi's speed perturbation), vocal-tract-length warp (VTLP: the mel filterbank of
the integer front-end reads a frequency-warped spectrum; torchaudio's float reference features
get no warp), gain, and white noise. Their features
come from the same front-end and are cached like the originals. Every epoch trains on one
version of each training recording, drawn at random with the original among them (nas.train).

Training only: the device computes nothing new, so the memory model, the engine and the C are
untouched. A copy's parameters depend on the recording's name and the copy's number alone, not on
the training seed or the split, so one cached copy serves every fold and seed.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass

import numpy as np

from nas.data import Waveform

AUGMENT_SEED = 10  # the copies are a fixed data set: the same for every training seed
SPEED_STEP = 0.01  # speeds are rounded to this, so resampling is by a ratio of small integers
VTLP_STEP = 0.02  # warps are rounded to this, so a handful of filterbanks serve every file


@dataclass(frozen=True)
class WaveCopy:
    """How copy number `index` of every recording is made (TrainConfig's ranges)."""

    index: int  # 1, 2, ...: copy 0 is the recording itself
    speed_range: float  # speed factor drawn from [1 - range, 1 + range]
    vtlp_range: float  # frequency warp drawn from [1 - range, 1 + range]
    gain_db: float  # gain drawn from [-gain_db, +gain_db] dB
    noise_snr_db: float  # 0: no noise; else white noise at an SNR drawn from [snr, snr + 20] dB

    def to_dict(self) -> dict:
        return asdict(self)

    def parameters(self, name: str) -> dict[str, float]:
        """The speed, warp, gain and SNR of this copy of recording `name` (deterministic)."""
        rng = np.random.default_rng([AUGMENT_SEED, self.index, zlib.crc32(name.encode())])
        speed, warp, gain, snr = rng.uniform(-1, 1, 4)
        return {
            "speed": round(1 + self.speed_range * speed, 2),
            "warp": round(round((1 + self.vtlp_range * warp) / VTLP_STEP) * VTLP_STEP, 2),
            "gain_db": self.gain_db * gain,
            "snr_db": self.noise_snr_db + 10 * (snr + 1) if self.noise_snr_db > 0 else np.inf,
            "noise_seed": zlib.crc32(f"{self.index}:{name}".encode()),
        }


def alter_samples(samples: np.ndarray, speed: float, gain_db: float, snr_db: float, noise_seed: int) -> np.ndarray:
    """int16 PCM at another speed (band-limited resampling), gain and signal-to-noise ratio."""
    from scipy.signal import resample_poly

    values = samples.astype(np.float64)
    if speed != 1.0:
        # faster speech is fewer samples: resample by 100 / (100 * speed)
        values = resample_poly(values, 100, round(speed / SPEED_STEP))
    values *= 10 ** (gain_db / 20)
    if np.isfinite(snr_db):
        rms = np.sqrt(np.mean(values**2)) if len(values) else 0.0
        values += np.random.default_rng(noise_seed).normal(0.0, rms / 10 ** (snr_db / 20), len(values))
    return np.clip(np.round(values), -32768, 32767).astype(np.int16)


def copy_frames(waveforms: list[Waveform], config, copy: WaveCopy) -> list[np.ndarray]:
    """Raw frames of this copy of each recording, as `nas.features.compute_frames` gives the originals."""
    from nas.features import compute_frames

    params = [copy.parameters(w.recording.name) for w in waveforms]
    altered = [
        Waveform(w.recording, alter_samples(w.samples, p["speed"], p["gain_db"], p["snr_db"], p["noise_seed"]), w.sha256)
        for w, p in zip(waveforms, params, strict=True)
    ]
    if copy.vtlp_range == 0 or not config.integer:
        # VTLP warps the integer front-end's filterbank; torchaudio's float reference gets speed, gain and noise only
        return compute_frames(altered, config)
    from nas.frontend import frontend_tables, integer_mfcc

    frames: list[np.ndarray | None] = [None] * len(altered)
    for warp in sorted({p["warp"] for p in params}):  # one filterbank per warp: files grouped by it
        members = [i for i, p in enumerate(params) if p["warp"] == warp]
        tables = frontend_tables(config, warp)
        values = integer_mfcc([altered[i].samples for i in members], config.n_fft, config.hop_length, tables)
        for i, value in zip(members, values, strict=True):
            frames[i] = value.astype(np.float32)
    return frames

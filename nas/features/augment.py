"""Waveform augmentation for training: altered copies of the recordings, for new voices.

Each recording gets `copies` copies, each with its own speed (pitch, formants and duration
together, as Kaldi's speed perturbation), vocal-tract-length warp (VTLP: the mel filterbank of
the integer front-end reads a frequency-warped spectrum; torchaudio's float reference features
get no warp), gain, and white noise. Their features
come from the same front-end and are cached like the originals. Every epoch trains on one
version of each training recording, drawn at random with the original among them (nas.training.train).

Training only: the device computes nothing new, so the memory model, the engine and the C are
untouched. A copy's parameters depend on the recording's name and the copy's number alone, not on
the training seed or the split, so one cached copy serves every fold and seed.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass

import numpy as np

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

"""MFCC features (torchaudio), train-split normalisation, and the feature cache.

A search runs hundreds of trainings over a handful of feature configs, so each config's
features are computed once: kept in memory for the run and on disk between runs, keyed by the
config and the checksums of the audio they came from.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchaudio

from nas.data import SAMPLE_RATE, Split, Waveform
from nas.errors import NasError

# Bump when the way features are computed changes, so old cache files are not reused.
FEATURE_CODE_VERSION = 1
CACHE_ENV = "NAS_CACHE_DIR"
NORMALISATIONS = ("global", "none")


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that decides the MFCC frames. Frame k covers samples [k*hop, k*hop + n_fft)
    (no centre padding), so a device front-end can reproduce it without look-ahead."""

    n_mfcc: int = 13
    n_mels: int = 40
    n_fft: int = 256  # 32 ms window at 8 kHz (Hann)
    hop_length: int = 80  # 10 ms
    f_min: float = 20.0
    f_max: float = 4000.0
    # "global": per-coefficient mean and standard deviation of the train split's frames.
    normalisation: str = "global"

    def validate(self) -> None:
        checks = [
            (1 <= self.n_mfcc <= self.n_mels, "--n-mfcc", self.n_mfcc, f"1..n_mels ({self.n_mels})"),
            (8 <= self.n_mels <= 128, "--n-mels", self.n_mels, "8..128"),
            (64 <= self.n_fft <= 1024, "--n-fft", self.n_fft, "64..1024 samples"),
            (1 <= self.hop_length <= self.n_fft, "--hop-length", self.hop_length, f"1..n_fft ({self.n_fft})"),
            (0 <= self.f_min < self.f_max <= SAMPLE_RATE / 2, "f_max", self.f_max, "f_min < f_max <= 4000 Hz"),
            (self.normalisation in NORMALISATIONS, "--normalisation", self.normalisation, " or ".join(NORMALISATIONS)),
        ]
        for ok, option, value, expected in checks:
            if not ok:
                raise NasError(f"{option} {value}: out of range; expected {expected}")

    def to_dict(self) -> dict:
        return asdict(self)

    def transform(self) -> torchaudio.transforms.MFCC:
        return torchaudio.transforms.MFCC(
            sample_rate=SAMPLE_RATE,
            n_mfcc=self.n_mfcc,
            log_mels=False,  # power mel spectrogram in dB (top_db=80), then DCT-II (ortho)
            melkwargs={
                "n_fft": self.n_fft,
                "hop_length": self.hop_length,
                "n_mels": self.n_mels,
                "f_min": self.f_min,
                "f_max": self.f_max,
                "center": False,
            },
        )


def compute_mfcc(waveforms: list[Waveform], config: FeatureConfig) -> list[np.ndarray]:
    """One (frames, n_mfcc) float32 array per file. Files shorter than a window are zero-padded
    to one window so every file yields at least one frame."""
    transform = config.transform()
    out = []
    with torch.no_grad():
        for wave in waveforms:
            audio = torch.from_numpy(wave.samples.astype(np.float32) / 32768.0)
            if audio.numel() < config.n_fft:
                audio = torch.nn.functional.pad(audio, (0, config.n_fft - audio.numel()))
            out.append(transform(audio).T.contiguous().numpy())
    return out


@dataclass
class Normaliser:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, frames: list[np.ndarray], kind: str) -> Normaliser:
        width = frames[0].shape[1]
        if kind == "none":
            return cls(np.zeros(width, np.float32), np.ones(width, np.float32))
        stacked = np.concatenate(frames)
        std = stacked.std(axis=0)
        return cls(stacked.mean(axis=0).astype(np.float32), np.maximum(std, 1e-6).astype(np.float32))

    def apply(self, frames: np.ndarray) -> np.ndarray:
        return ((frames - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, values: dict) -> Normaliser:
        return cls(np.asarray(values["mean"], np.float32), np.asarray(values["std"], np.float32))


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "nas" / "features"


@dataclass
class FeatureCache:
    """In-memory and on-disk store of raw (unnormalised) MFCC frames per file.

    `hits`, `disk_hits` and `misses` count how each request was served.
    """

    directory: Path | None = field(default_factory=default_cache_dir)
    memory: dict[str, list[np.ndarray]] = field(default_factory=dict)
    hits: int = 0
    disk_hits: int = 0
    misses: int = 0

    @staticmethod
    def key(waveforms: list[Waveform], config: FeatureConfig) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps([FEATURE_CODE_VERSION, torchaudio.__version__, config.to_dict()], sort_keys=True).encode())
        for wave in waveforms:
            digest.update(f"{wave.recording.name}:{wave.sha256}\n".encode())
        return digest.hexdigest()[:32]

    def get(self, waveforms: list[Waveform], config: FeatureConfig) -> list[np.ndarray]:
        key = self.key(waveforms, config)
        if key in self.memory:
            self.hits += 1
            return self.memory[key]
        frames = self._load(key, len(waveforms))
        if frames is not None:
            self.disk_hits += 1
        else:
            self.misses += 1
            frames = compute_mfcc(waveforms, config)
            self._save(key, frames)
        self.memory[key] = frames
        return frames

    def _path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"mfcc-{key}.npz"

    def _load(self, key: str, count: int) -> list[np.ndarray] | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as stored:
                lengths, flat = stored["lengths"], stored["frames"]
        except (OSError, ValueError, KeyError, EOFError):
            return None  # a damaged cache file is recomputed, never trusted
        if len(lengths) != count or lengths.sum() != len(flat):
            return None
        return np.split(flat, np.cumsum(lengths)[:-1])

    def _save(self, key: str, frames: list[np.ndarray]) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".tmp.npz")
            np.savez(partial, frames=np.concatenate(frames), lengths=np.array([len(f) for f in frames]))
            partial.replace(path)  # atomic: a reader never sees half a file
        except OSError:
            pass  # the cache is an optimisation; a read-only disk must not stop training


@dataclass
class FeatureSet:
    """Normalised features of one split, ready for training and evaluation."""

    config: FeatureConfig
    normaliser: Normaliser
    parts: dict[str, tuple[list[np.ndarray], np.ndarray]]  # name -> (frames per file, labels)

    def part(self, name: str) -> tuple[list[np.ndarray], np.ndarray]:
        return self.parts[name]


def build_feature_set(
    split: Split, waveforms: dict[str, Waveform], config: FeatureConfig, cache: FeatureCache, normaliser: Normaliser | None = None
) -> FeatureSet:
    """Features for every part of the split; normalisation statistics from the train part only,
    or the given ones (an exported model brings the statistics it was trained with)."""
    config.validate()
    # Key the cache on the whole data set, not the split, so every split shares one entry.
    ordered = [waveforms[name] for name in sorted(waveforms)]
    frames = dict(zip(sorted(waveforms), cache.get(ordered, config), strict=True))
    normaliser = normaliser or Normaliser.fit([frames[r.name] for r in split.train], config.normalisation)
    parts = {}
    for name, recordings in split.parts().items():
        parts[name] = (
            [normaliser.apply(frames[r.name]) for r in recordings],
            np.array([r.digit for r in recordings], dtype=np.int64),
        )
    return FeatureSet(config=config, normaliser=normaliser, parts=parts)

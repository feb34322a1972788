"""Feature configuration, train-split normalisation, and the feature cache.

A search runs hundreds of trainings over a handful of feature configs, so each config's
features are computed once: kept in memory for the run and on disk between runs, keyed by the
config and the checksums of the audio they came from. The frames themselves come from
`nas.features.mfcc` (torchaudio), which is imported only when a cache miss needs it: this module, like
every config module, loads without torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np

from nas.core import limits
from nas.core.errors import NasError
from nas.data.dataset import SAMPLE_RATE, Split, Waveform, load_split
from nas.features.augment import WaveCopy, alter_samples

# Bump when the way features are computed changes, so old cache files are not reused.
FEATURE_CODE_VERSION = 2  # 2: the integer front-end's real FFT of half the length
CACHE_ENV = "NAS_CACHE_DIR"
# "running": global, then each utterance's running mean subtracted as frames arrive (nas.features.frontend)
NORMALISATIONS = ("global", "running", "none")
# "torchaudio": float MFCC (the reference); "integer": the device front-end of nas.features.frontend
FRONTENDS = ("torchaudio", "integer")


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that decides the MFCC frames. Frame k covers samples [k*hop, k*hop + n_fft)
    (no centre padding), so a device front-end can reproduce it without look-ahead."""

    n_mfcc: int = 13
    n_mels: int = 40
    n_fft: int = 256  # 32 ms window at 8 kHz (Hann)
    hop_length: int = 80  # 10 ms
    f_min: float = 20.0
    f_max: float = SAMPLE_RATE / 2
    # "global": per-coefficient mean and standard deviation of the train split's frames;
    # "running" (the default, for new voices: docs/training.md): each utterance's running mean too
    normalisation: str = "running"
    frontend: str = "integer"  # one of FRONTENDS; "torchaudio" is the float reference
    # integer front-end only: mel energies E are taken as log2(E + 2^floor_bits); 16 was chosen on
    # validation (bench/frontend.py --floor-sweep; docs/training.md)
    floor_bits: int = 16

    def validate(self) -> None:
        limits.N_MELS.check("--n-mels", self.n_mels)
        limits.N_MFCC.check("--n-mfcc", self.n_mfcc)
        if self.n_mfcc > self.n_mels:
            raise NasError(f"--n-mfcc {self.n_mfcc}: out of range; expected 1..n_mels ({self.n_mels})")
        limits.N_FFT.check("--n-fft", self.n_fft)
        limits.HOP_LENGTH.check("--hop-length", self.hop_length)
        if self.hop_length > self.n_fft:
            raise NasError(f"--hop-length {self.hop_length}: out of range; expected 1..n_fft ({self.n_fft})")
        if not 0 <= self.f_min < self.f_max <= SAMPLE_RATE / 2:
            raise NasError(f"f_max {self.f_max}: out of range; expected f_min < f_max <= {SAMPLE_RATE // 2} Hz")
        if self.normalisation not in NORMALISATIONS:
            raise NasError(f"--normalisation {self.normalisation}: expected {' or '.join(NORMALISATIONS)}")
        if self.frontend not in FRONTENDS:
            raise NasError(f"--frontend {self.frontend}: expected {' or '.join(FRONTENDS)}")
        limits.FLOOR_BITS.check("--floor-bits", self.floor_bits)
        if self.frontend == "integer" and self.n_fft & (self.n_fft - 1):
            raise NasError(f"--n-fft {self.n_fft}: the integer front-end's FFT needs a power of two (64, 128, 256, 512 or 1024)")

    @property
    def integer(self) -> bool:
        return self.frontend == "integer"

    @property
    def on_device(self) -> FeatureConfig | None:
        """The front-end the device runs, for the memory model and the C: this config for the
        integer front-end; None for torchaudio's MFCC, which a device cannot reproduce bit for bit
        (its C is then fed feature frames, and only the model is counted)."""
        return self if self.integer else None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Normaliser:
    """Per-coefficient mean and standard deviation of the train split's frames. For the integer
    front-end the statistics become integer constants (`nas.features.frontend.normalisation_constants`) and
    `apply` gives exactly the integer engine's input, as floats (q / 2^12)."""

    mean: np.ndarray
    std: np.ndarray
    integer: bool = False
    running: bool = False  # also subtract each utterance's running mean (after `mean`, before `std`)

    @classmethod
    def fit(cls, frames: list[np.ndarray], kind: str, integer: bool = False) -> Normaliser:
        width = frames[0].shape[1]
        if kind == "none":
            # integer MFCC are in Q8: "none" then only rescales them to the engine's Q3.12
            unit = 256.0 if integer else 1.0
            return cls(np.zeros(width, np.float32), np.full(width, unit, np.float32), integer)
        # float32 statistics for torchaudio frames, as always (float64 moves some inputs by a step);
        # float64 for the integer front-end, whose statistics then become stored integer constants
        stacked = np.concatenate(frames).astype(np.float64 if integer else np.float32)
        mean = stacked.mean(axis=0).astype(np.float32)
        if kind == "running":  # the spread of what is left after both means, as the device computes it
            stacked = np.concatenate(by_utterance_batches(frames, lambda batch: cls._running_centred(batch, mean, integer)))
        std = stacked.std(axis=0)
        return cls(mean, np.maximum(std, 1e-6).astype(np.float32), integer, kind == "running")

    @staticmethod
    def _running_centred(frames: np.ndarray, mean: np.ndarray, integer: bool) -> np.ndarray:
        from nas.features.frontend import mean_constant, running_centre_float, running_centre_integers

        if integer:
            return running_centre_integers(np.asarray(frames, np.int64) - mean_constant(mean)).astype(np.float64)
        return running_centre_float(np.asarray(frames, np.float64) - mean)

    def constants(self) -> tuple[np.ndarray, np.ndarray]:
        from nas.features.frontend import normalisation_constants

        return normalisation_constants(self.mean, self.std)

    def apply(self, frames: np.ndarray) -> np.ndarray:
        """One utterance's (frames, n) raw features, normalised; (utterances, frames, n) also works."""
        if self.integer:
            from nas.features.frontend import NORM_FRAC, normalise_integers

            normalised = normalise_integers(frames, *self.constants(), running=self.running)
            return (normalised.astype(np.float32) / 2**NORM_FRAC).astype(np.float32)
        if self.running:
            return (self._running_centred(frames, self.mean, False) / self.std).astype(np.float32)
        return ((frames - self.mean) / self.std).astype(np.float32)

    def apply_all(self, utterances: list[np.ndarray]) -> list[np.ndarray]:
        """`apply` to each utterance, the same numbers, done in batches: the running mean is a
        recurrence over frames, which one utterance at a time costs a numpy step per frame, 4 s for
        a split and its augmented copies (every worker paid it for each front-end shape)."""
        return by_utterance_batches(utterances, self.apply)

    def to_dict(self) -> dict:
        values = {"mean": self.mean.tolist(), "std": self.std.tolist()}
        if self.running:
            from nas.features.frontend import RUNNING_FRAC, RUNNING_MAX_FRAMES, RUNNING_PRIOR_FRAMES

            values["running"] = {
                "prior_frames": RUNNING_PRIOR_FRAMES,
                "max_frames": RUNNING_MAX_FRAMES,
                "frac": RUNNING_FRAC,
                "formula": "per utterance, frame t from 0: count = min(t + 1 + prior_frames, max_frames); "
                "m += div_round((c << frac) - m, count) (m = 0 at reset); c -= round_shift(m, frac); c = mfcc - mean first",
            }
        if self.integer:
            from nas.features.frontend import NORM_FRAC, NORM_SHIFT

            mean_q, scale_q = self.constants()
            centred = "running_centre(mfcc_q8 - mean_q8)" if self.running else "(mfcc_q8 - mean_q8)"
            formula = f"q = clamp(round_shift({centred} * scale, shift), int16): Q3.12"
            values["integer"] = {"mean_q8": mean_q.tolist(), "scale": scale_q.tolist(), "shift": NORM_SHIFT, "frac": NORM_FRAC}
            values["integer"]["formula"] = formula
        return values

    @classmethod
    def from_dict(cls, values: dict) -> Normaliser:
        return cls(np.asarray(values["mean"], np.float32), np.asarray(values["std"], np.float32), "integer" in values, "running" in values)


UTTERANCE_BATCH = 256  # utterances stepped through time together: 256 x 230 frames x 16 x 8 B = 7.5 MB of int64


def by_utterance_batches(utterances: list[np.ndarray], function) -> list[np.ndarray]:
    """[function(u) for u in utterances] for a `function` of (frames, n) arrays that also takes
    (utterances, frames, n) and treats each utterance on its own, frame t depending on frames up to
    t only (normalisation, the running mean): utterances of similar length are zero-padded at the
    end into one array, and each result is cut back to its utterance's frames."""
    order = sorted(range(len(utterances)), key=lambda i: len(utterances[i]))
    results: list[np.ndarray] = [None] * len(utterances)  # type: ignore[list-item]
    for start in range(0, len(order), UTTERANCE_BATCH):
        chunk = order[start : start + UTTERANCE_BATCH]
        lengths = [len(utterances[i]) for i in chunk]
        first = np.asarray(utterances[chunk[0]])
        padded = np.zeros((len(chunk), max(lengths), first.shape[1]), first.dtype)
        for row, i in enumerate(chunk):
            padded[row, : lengths[row]] = utterances[i]
        done = function(padded)
        for row, i in enumerate(chunk):
            results[i] = done[row, : lengths[row]]
    return results


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "nas" / "features"


@dataclass
class FeatureCache:
    """In-memory and on-disk store of raw (unnormalised) MFCC frames per file.

    `directory=None` keeps features in memory only. `hits`, `disk_hits` and `misses` count how
    each request was served.
    """

    directory: Path | None = field(default_factory=default_cache_dir)
    memory: dict[str, list[np.ndarray]] = field(default_factory=dict)
    hits: int = 0
    disk_hits: int = 0
    misses: int = 0

    @classmethod
    def at(cls, directory: str | os.PathLike | None, memory_only: bool = False) -> FeatureCache:
        """The cache a command asked for: memory only, a given folder, or the default folder."""
        if memory_only:
            return cls(directory=None)
        return cls(directory=Path(directory)) if directory else cls()

    @staticmethod
    def key(waveforms: list[Waveform], config: FeatureConfig, copy: WaveCopy | None = None) -> str:
        digest = hashlib.sha256()
        # normalisation happens after the cache (raw frames are stored), so it is not in the key
        raw = {k: v for k, v in config.to_dict().items() if k != "normalisation"}
        described = [FEATURE_CODE_VERSION, version("torchaudio"), raw]
        if copy is not None:
            described.append(copy.to_dict())
        digest.update(json.dumps(described, sort_keys=True).encode())
        for wave in waveforms:
            digest.update(f"{wave.recording.name}:{wave.sha256}\n".encode())
        return digest.hexdigest()[:32]

    def has(self, waveforms: list[Waveform], config: FeatureConfig, copy: WaveCopy | None = None) -> bool:
        """Whether `get` would find these frames without computing them."""
        key = self.key(waveforms, config, copy)
        path = self._path(key)
        return key in self.memory or (path is not None and path.is_file())

    def get(self, waveforms: list[Waveform], config: FeatureConfig, copy: WaveCopy | None = None) -> list[np.ndarray]:
        """Frames of the recordings, or of an augmented copy of them (nas.features.augment)."""
        key = self.key(waveforms, config, copy)
        if key in self.memory:
            self.hits += 1
            return self.memory[key]
        frames = self._load(key, len(waveforms))
        if frames is not None:
            self.disk_hits += 1
        else:
            self.misses += 1
            frames = compute_frames(waveforms, config) if copy is None else copy_frames(waveforms, config, copy)
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


def compute_frames(waveforms: list[Waveform], config: FeatureConfig) -> list[np.ndarray]:
    """Raw (unnormalised) frames per file, float32: torchaudio's MFCC, or the integer front-end's
    Q8 integers (exact in float32)."""
    if config.integer:
        from nas.features.frontend import frontend_tables, integer_mfcc

        tables = frontend_tables(config)
        return [f.astype(np.float32) for f in integer_mfcc([w.samples for w in waveforms], config.n_fft, config.hop_length, tables)]
    from nas.features.mfcc import compute_mfcc  # torchaudio: loaded only when something is computed

    return compute_mfcc(waveforms, config)


def copy_frames(waveforms: list[Waveform], config, copy: WaveCopy) -> list[np.ndarray]:
    """Raw frames of this copy of each recording (nas.features.augment alters the samples), as
    `compute_frames` gives the originals."""
    params = [copy.parameters(w.recording.name) for w in waveforms]
    altered = [
        Waveform(w.recording, alter_samples(w.samples, p["speed"], p["gain_db"], p["snr_db"], p["noise_seed"]), w.sha256)
        for w, p in zip(waveforms, params, strict=True)
    ]
    if copy.vtlp_range == 0 or not config.integer:
        # VTLP warps the integer front-end's filterbank; torchaudio's float reference gets speed, gain and noise only
        return compute_frames(altered, config)
    from nas.features.frontend import frontend_tables, integer_mfcc

    frames: list[np.ndarray | None] = [None] * len(altered)
    for warp in sorted({p["warp"] for p in params}):  # one filterbank per warp: files grouped by it
        members = [i for i, p in enumerate(params) if p["warp"] == warp]
        tables = frontend_tables(config, warp)
        values = integer_mfcc([altered[i].samples for i in members], config.n_fft, config.hop_length, tables)
        for i, value in zip(members, values, strict=True):
            frames[i] = value.astype(np.float32)
    return frames


@dataclass
class FeatureSet:
    """Normalised features of one split, ready for training and evaluation."""

    config: FeatureConfig
    normaliser: Normaliser
    parts: dict[str, tuple[list[np.ndarray], np.ndarray]]  # name -> (frames per file, labels)
    # augmented copies of the train part's frames (nas.features.augment), in the train part's order
    train_copies: list[list[np.ndarray]] = field(default_factory=list)

    def part(self, name: str) -> tuple[list[np.ndarray], np.ndarray]:
        return self.parts[name]


def build_feature_set(
    split: Split,
    waveforms: dict[str, Waveform],
    config: FeatureConfig,
    cache: FeatureCache,
    normaliser: Normaliser | None = None,
    copies: list[WaveCopy] | tuple[WaveCopy, ...] = (),
) -> FeatureSet:
    """Features for every part of the split; normalisation statistics from the train part only
    (never its augmented copies), or the given ones (an exported model brings the statistics it
    was trained with). `copies`: augmented copies of the train part (TrainConfig.wave_copies())."""
    config.validate()
    # Key the cache on the whole data set, not the split, so every split shares one entry.
    ordered = [waveforms[name] for name in sorted(waveforms)]
    frames = dict(zip(sorted(waveforms), cache.get(ordered, config), strict=True))
    normaliser = normaliser or Normaliser.fit([frames[r.name] for r in split.train], config.normalisation, config.integer)
    parts = {}
    for name, recordings in split.parts().items():
        parts[name] = (
            normaliser.apply_all([frames[r.name] for r in recordings]),
            np.array([r.digit for r in recordings], dtype=np.int64),
        )
    train_copies = []
    for copy in copies:
        copied = dict(zip(sorted(waveforms), cache.get(ordered, config, copy), strict=True))
        train_copies.append(normaliser.apply_all([copied[r.name] for r in split.train]))
    return FeatureSet(config=config, normaliser=normaliser, parts=parts, train_copies=train_copies)


def load_features(
    data_dir: Path,
    split_name: str,
    config: FeatureConfig,
    cache: FeatureCache,
    normaliser: Normaliser | None = None,
    copies: list[WaveCopy] | tuple[WaveCopy, ...] = (),
) -> tuple[Split, FeatureSet]:
    """Read and check the recordings of a folder, split them, and build the split's features."""
    split, waveforms = load_split(data_dir, split_name)
    return split, build_feature_set(split, waveforms, config, cache, normaliser, copies)

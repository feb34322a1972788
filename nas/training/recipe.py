"""The training recipe as data (TrainConfig): what `nas train` and every search trial do.

Kept free of torch so that the command line can show its defaults without loading torch.
docs/training.md records how the defaults were chosen on the validation split.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace

from nas.core import limits
from nas.core.errors import NasError

TRAIN_THREADS = 1  # torch threads of a training run: as fast as two for these models, and repeatable


@contextlib.contextmanager
def train_threads() -> Iterator[None]:
    """TRAIN_THREADS torch threads inside the block, the caller's count again after it: a library
    call leaves the process's global state as it found it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def with_train_threads(function: Callable) -> Callable:
    """`function` run inside `train_threads()`."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with train_threads():
            return function(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class TrainConfig:
    # The full recipe (issue 21): what the best hand-trained models of docs/training.md use, and
    # the search's highest fidelity (nas/spaces/default.toml sets the same three numbers; a test
    # holds them equal), so `nas train` of a confirmed point reproduces its confirmation.
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    warmup_epochs: int = 2  # shortened to epochs - 1 for very short runs (`for_epochs`)
    patience: int = 30  # epochs without a better validation score before stopping
    grad_clip: float = 1.0
    label_smoothing: float = 0.0
    augment: bool = True
    noise_std: float = 0.1  # Gaussian noise on normalised features
    time_mask_fraction: float = 0.2  # one time mask of up to this share of each sequence
    freq_mask_width: int = 2  # one band of up to this many MFCC coefficients
    # waveform augmentation (nas.features.augment): altered copies of each training recording; each epoch
    # trains on one version of each recording, the original or a copy
    # (chosen on speaker-disjoint validation: bench/recipe_new_voices.py, docs/training.md)
    wave_copies: int = 8
    speed_range: float = 0.15  # speed factor from [1 - r, 1 + r]
    vtlp_range: float = 0.1  # vocal-tract-length warp from [1 - r, 1 + r]
    gain_db: float = 6.0  # gain from [-g, +g] dB
    noise_snr_db: float = 15.0  # 0: none; else white noise at an SNR from [snr, snr + 20] dB
    seed: int = 0

    def validate(self) -> None:
        limits.EPOCHS.check("--epochs", self.epochs)
        limits.BATCH_SIZE.check("--batch-size", self.batch_size)
        limits.LEARNING_RATE.check("--lr", self.learning_rate)
        limits.WEIGHT_DECAY.check("--weight-decay", self.weight_decay)
        if not 0 <= self.warmup_epochs < self.epochs:
            raise NasError(f"warmup_epochs {self.warmup_epochs}: out of range; expected 0..epochs-1 ({self.epochs - 1})")
        limits.PATIENCE.check("--patience", self.patience)
        limits.LABEL_SMOOTHING.check("--label-smoothing", self.label_smoothing)
        limits.NOISE_STD.check("--noise-std", self.noise_std)
        limits.TIME_MASK.check("--time-mask", self.time_mask_fraction)
        limits.FREQ_MASK.check("--freq-mask", self.freq_mask_width)
        limits.WAVE_COPIES.check("--wave-copies", self.wave_copies)
        limits.SPEED_RANGE.check("--speed", self.speed_range)
        limits.VTLP_RANGE.check("--vtlp", self.vtlp_range)
        limits.GAIN_DB.check("--gain-db", self.gain_db)
        limits.NOISE_SNR_DB.check("--noise-snr-db", self.noise_snr_db)
        limits.SEED.check("--seed", self.seed)

    def wave_copy_recipes(self) -> list:
        """The augmented copies this recipe trains on (nas.features.augment.WaveCopy), none without augmentation."""
        from nas.features.augment import WaveCopy

        if not self.augment:
            return []
        ranges = (self.speed_range, self.vtlp_range, self.gain_db, self.noise_snr_db)
        return [WaveCopy(index, *ranges) for index in range(1, self.wave_copies + 1)]

    @classmethod
    def from_stored(cls, values: dict) -> TrainConfig:
        """The recipe a checkpoint was trained with. One written before waveform copies existed
        (issue 10) trained without them: a missing count is 0, not today's default."""
        return cls(**({"wave_copies": 0} | values))

    @classmethod
    def for_epochs(cls, epochs: int, **values) -> TrainConfig:
        """The default recipe for a run of `epochs` epochs: the warm-up never takes the whole run."""
        return cls(epochs=epochs, warmup_epochs=min(cls.warmup_epochs, epochs - 1), **values)

    def with_seed(self, seed: int) -> TrainConfig:
        return replace(self, seed=seed)

    def to_dict(self) -> dict:
        return asdict(self)

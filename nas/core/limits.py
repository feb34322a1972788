"""Every numeric limit of every option, defined once.

The configs' `validate()` methods, argparse (`Bound.parse` as an option type), the search-space
reader and the memory solver all read these bounds, so a limit cannot differ between the
command line, a config built in code and a TOML file. Imports nothing heavy: `nas --help`
builds its parser from this module without loading torch.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from nas.core.errors import NasError


@dataclass(frozen=True)
class Bound:
    """An inclusive range low..high (high excluded with `high_open`), of integers or numbers."""

    low: float
    high: float
    integer: bool = True
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        return self.low <= value < self.high if self.high_open else self.low <= value <= self.high

    def expected(self) -> str:
        if self.integer:
            return f"an integer in {self.low}..{self.high}"
        return f"a number in {self.low} <= x < {self.high}" if self.high_open else f"a number in {self.low}..{self.high}"

    def check(self, option: str, value: float) -> None:
        """Raise the one-line NasError that names the option, the value and the range."""
        if not self.contains(value):
            raise NasError(f"{option} {value}: out of range; expected {self.expected()}")

    def parse(self, text: str) -> float:
        """argparse `type=`: the value, or an ArgumentTypeError that says what was expected."""
        try:
            value = int(text) if self.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {self.expected()}, got '{text}'") from None
        if not self.contains(value):
            raise argparse.ArgumentTypeError(f"expected {self.expected()}, got {value}")
        return value


# Architecture (nas.model.architecture.ModelConfig)
LAYERS = Bound(1, 3)
HIDDEN = Bound(1, 1024)  # also the largest answer of the budget solver
DROPOUT = Bound(0, 1, integer=False, high_open=True)

# Features (nas.features.extract.FeatureConfig); n_mfcc must also be at most n_mels, n_hop at most n_fft
N_MELS = Bound(8, 128)
N_MFCC = Bound(1, N_MELS.high)
N_FFT = Bound(64, 1024)
HOP_LENGTH = Bound(1, N_FFT.high)
FLOOR_BITS = Bound(0, 40)  # the integer front-end's fixed floor: log2(E + 2^floor_bits)

# Number formats (nas.model.formats.QuantConfig)
FIXED_BITS = Bound(2, 8)
POW2_BITS = Bound(3, 6)
FLOAT_BITS = 32
STATE_BITS = (8, 16)
BIAS_BITS = (16, 32)

# Training (nas.training.recipe.TrainConfig)
EPOCHS = Bound(1, 10_000)
BATCH_SIZE = Bound(1, 4096)
LEARNING_RATE = Bound(1e-6, 1, integer=False)
WEIGHT_DECAY = Bound(0, 1, integer=False)
PATIENCE = Bound(1, 10_000)
LABEL_SMOOTHING = Bound(0, 1, integer=False, high_open=True)
NOISE_STD = Bound(0, 10, integer=False)
TIME_MASK = Bound(0, 1, integer=False, high_open=True)
FREQ_MASK = Bound(0, 64)
RUNG_MARGIN = Bound(0, 100, integer=False)  # percentage points (the search's early stopping at rungs, nas.study.rungs)
SPEAKER_FOLDS = Bound(0, 6)  # nas search --speaker-folds: leave-one-speaker-out folds per trial
CONFIRM_SEEDS = Bound(0, 20)  # nas search --confirm-seeds: retrainings of each front candidate (0: none)
MIN_CONFIRM_SEEDS = 2  # fewer retrainings than this is no mean: --confirm-seeds is 0 (none) or at least this
CONFIRM_FOLDS = Bound(0, 3)  # nas search --confirm-folds: at most half the six speakers (nas.data.dataset.fold_speakers)
CONFIRM_POINTS = Bound(1, 50)  # nas search --confirm-points: front points confirmed
WAVE_COPIES = Bound(0, 16)  # augmented copies of each training recording (nas.features.augment)
SPEED_RANGE = Bound(0, 0.5, integer=False)
VTLP_RANGE = Bound(0, 0.3, integer=False)
GAIN_DB = Bound(0, 40, integer=False)
NOISE_SNR_DB = Bound(0, 60, integer=False)
# Seeds: the search adds the trial number and a worker offset, and numpy takes at most 2**32 - 1.
SEED = Bound(0, 2**31 - 1)
THREADS = Bound(1, 256)

# Search and reports
BUDGET_KB = Bound(0.001, 1e6, integer=False)
MCU_MHZ = Bound(0.1, 10_000, integer=False)  # --mcu-mhz: the clock a frame must keep up with
TRIALS = Bound(1, 100_000)
WORKERS = Bound(1, 64)
HEARTBEAT_S = Bound(1, 3600)  # nas search --heartbeat: a worker's sign of life, in seconds
TIMEOUT_S = Bound(1, 1e7, integer=False)
TRIAL_NUMBER = Bound(0, 10**9)

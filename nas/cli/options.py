"""The options that several commands share, and the parser classes. Each command's own options
are defined beside it (nas/cli/<group>.py); `nas.cli.main.build_parser` puts them together.

Ranges come from `nas.core.limits` and defaults from the configs, so argparse cannot disagree with
the library; every option's help shows its default. Each command sets `command` (e.g. "train",
"data verify"), which `nas.cli.main` maps to the function that runs it. Building the parser imports
neither torch nor Optuna: `nas --help` starts at once.
"""

from __future__ import annotations

import argparse
import sys

from nas.core import limits
from nas.core.errors import EXIT_BAD_INPUT, NasError
from nas.data.dataset import OFFICIAL
from nas.device.memory import BUDGET_SCOPES, DEFAULT_BUDGET_SCOPE
from nas.device.targets import DEFAULT_TARGET, TARGETS
from nas.features.extract import FRONTENDS, NORMALISATIONS, FeatureConfig
from nas.model.architecture import CELLS, ModelConfig
from nas.model.formats import DEFAULT_WEIGHT_BITS, WEIGHT_SCHEMES, QuantConfig
from nas.study.confirm import FOLD_SEEDS, ConfirmSettings, confirm_seeds_problem
from nas.study.settings import (
    DEFAULT_RESULTS,
)
from nas.training.recipe import TRAIN_THREADS, TrainConfig


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless it says in words what happens without it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "default:" in text or not action.option_strings or unset:
            return text
        shown = " ".join(map(str, action.default)) if isinstance(action.default, list | tuple) else "%(default)s"
        return f"{text} (default: {shown})".strip()


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=HelpFormatter, **kwargs)

    def error(self, message: str) -> None:  # argparse prints usage + message; we print one line
        print(f"{self.prog}: error: {' '.join(message.split())}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def split_type(text: str) -> str:
    from nas.data.dataset import parse_split_name

    try:
        return parse_split_name(text)
    except NasError as error:
        raise argparse.ArgumentTypeError(str(error).split(": ", 1)[1]) from None


def add_data_options(parser: argparse.ArgumentParser, cache: bool = True) -> None:
    parser.add_argument("--data-dir", help="folder of FSDD WAV files (default: $NAS_DATA_DIR, then the project's data/fsdd/recordings)")
    if cache:
        parser.add_argument("--cache-dir", help="feature cache folder (default: $NAS_CACHE_DIR, then ~/.cache/nas/features)")
        parser.add_argument("--no-cache", action="store_true", help="keep features in memory only")


def add_model_options(parser: argparse.ArgumentParser, features: bool = True) -> None:
    model, feature = ModelConfig(), FeatureConfig()
    group = parser.add_argument_group("architecture")
    group.add_argument("--cell", choices=CELLS, default=model.cell, help="recurrent cell")
    group.add_argument("--layers", type=limits.LAYERS.parse, default=model.layers, help="stacked layers")
    group.add_argument("--hidden", type=limits.HIDDEN.parse, default=model.hidden, help="hidden size")
    group.add_argument("--n-mfcc", type=limits.N_MFCC.parse, default=feature.n_mfcc, help="MFCC coefficients per frame")
    if features:
        group.add_argument("--dropout", type=limits.DROPOUT.parse, default=model.dropout, help="dropout")
    group = parser.add_argument_group("features (MFCC at 8 kHz)")
    group.add_argument("--n-mels", type=limits.N_MELS.parse, default=feature.n_mels, help="mel bands")
    group.add_argument("--n-fft", type=limits.N_FFT.parse, default=feature.n_fft, help="window length in samples (256 = 32 ms)")
    group.add_argument("--hop-length", type=limits.HOP_LENGTH.parse, default=feature.hop_length, help="hop in samples (80 = 10 ms)")
    group.add_argument(
        "--normalisation",
        choices=NORMALISATIONS,
        default=feature.normalisation,
        help="per coefficient, statistics from the train split; 'running' also subtracts each utterance's running mean",
    )
    if not features:
        group.add_argument("--no-frontend", action="store_true", help="count the model alone, fed feature frames by the caller")
        return
    group.add_argument(
        "--frontend",
        choices=FRONTENDS,
        default=feature.frontend,
        help="torchaudio's float MFCC, or the integer device front-end (docs/data-and-features.md)",
    )
    group.add_argument(
        "--floor-bits",
        type=limits.FLOOR_BITS.parse,
        default=feature.floor_bits,
        help="integer front-end: log2(E + 2^bits) of mel energies E",
    )


def add_quant_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("number formats")
    group.add_argument("--weights", choices=WEIGHT_SCHEMES, default=QuantConfig().weights, help="weight scheme")
    bits = ", ".join(f"{scheme} {bits}" for scheme, bits in DEFAULT_WEIGHT_BITS.items())
    ranges = f"fixed {limits.FIXED_BITS.low}-{limits.FIXED_BITS.high}, pow2 {limits.POW2_BITS.low}-{limits.POW2_BITS.high}"
    group.add_argument(
        "--weight-bits",
        type=int,  # the scheme decides the range: QuantConfig.validate names it
        help=f"bits per weight: {ranges} (default: {bits})",
    )
    group.add_argument("--bias-bits", type=int, choices=limits.BIAS_BITS, default=QuantConfig().bias_bits, help="bias width")
    group.add_argument(
        "--state-bits", type=int, choices=limits.STATE_BITS, default=QuantConfig().state_bits, help="activation and state width"
    )


def add_training_options(parser: argparse.ArgumentParser) -> None:
    train = TrainConfig()
    group = parser.add_argument_group("training")
    for flag, bound, default, text in [
        ("--epochs", limits.EPOCHS, train.epochs, "maximum epochs"),
        ("--batch-size", limits.BATCH_SIZE, train.batch_size, "sequences per batch"),
        ("--lr", limits.LEARNING_RATE, train.learning_rate, "AdamW peak learning rate"),
        ("--weight-decay", limits.WEIGHT_DECAY, train.weight_decay, "AdamW weight decay"),
        ("--patience", limits.PATIENCE, train.patience, "early stopping: epochs without a better validation score"),
        ("--label-smoothing", limits.LABEL_SMOOTHING, train.label_smoothing, "cross-entropy label smoothing"),
        ("--noise-std", limits.NOISE_STD, train.noise_std, "feature noise, in standard deviations"),
        ("--time-mask", limits.TIME_MASK, train.time_mask_fraction, "longest time mask, as a share of the sequence"),
        ("--freq-mask", limits.FREQ_MASK, train.freq_mask_width, "widest coefficient mask"),
        ("--wave-copies", limits.WAVE_COPIES, train.wave_copies, "augmented copies of each training recording (0: none)"),
        ("--speed", limits.SPEED_RANGE, train.speed_range, "copies' speed factor from 1 +- this"),
        ("--vtlp", limits.VTLP_RANGE, train.vtlp_range, "copies' vocal-tract-length warp from 1 +- this"),
        ("--gain-db", limits.GAIN_DB, train.gain_db, "copies' gain from +- this many dB"),
        ("--noise-snr-db", limits.NOISE_SNR_DB, train.noise_snr_db, "copies' white noise at an SNR from this to this + 20 dB (0: none)"),
    ]:
        group.add_argument(flag, type=bound.parse, default=default, help=text)
    group.add_argument("--no-augment", action="store_true", help="train without augmentation (feature masking, noise, waveform copies)")
    group.add_argument(
        "--seed", type=limits.SEED.parse, nargs="+", default=[train.seed], help="one or more seeds: several give a mean and interval"
    )
    group.add_argument(
        "--threads",
        type=limits.THREADS.parse,
        default=TRAIN_THREADS,
        help="CPU threads for torch: one is as fast as two for these models; the same seed gives the same result only with "
        "the same thread count, torch version and CPU type",
    )
    group.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when torch sees a GPU")


SPLIT_HELP = f"'{OFFICIAL}' or 'speaker:NAME'"


def add_split_option(parser: argparse.ArgumentParser, default: str | None = OFFICIAL, help: str = SPLIT_HELP) -> None:
    parser.add_argument("--split", type=split_type, default=default, help=help)


STORED = "the study's, when it exists"  # the help of a setting a resume reads back from the study


def add_budget_options(parser: argparse.ArgumentParser, stored: bool = False) -> None:
    """--budget-kb and its scope. `stored`: `nas search`'s, which a resume reads from the study
    (None when not given, nas.study.request)."""
    if stored:
        budget_help = f"memory budget in kB (1 kB = 1024 B) (default: {STORED}; a new study needs one)"
        scope_help = f"total_bytes, or only the packed weights (default: {STORED}; else {DEFAULT_BUDGET_SCOPE})"
    else:
        budget_help = "memory budget in kB (1 kB = 1024 B) (default: none, the breakdown only)"
        scope_help = "total_bytes, or only the packed weights"
    limit = f" (default: {STORED}; else no separate limit)" if stored else " (default: no separate limit)"
    parser.add_argument("--budget-kb", type=limits.BUDGET_KB.parse, help=budget_help)
    parser.add_argument("--budget-scope", choices=BUDGET_SCOPES, default=None if stored else DEFAULT_BUDGET_SCOPE, help=scope_help)
    parser.add_argument("--flash-kb", type=limits.BUDGET_KB.parse, help="also at most this much flash (constants)" + limit)
    parser.add_argument("--ram-kb", type=limits.BUDGET_KB.parse, help="also at most this much RAM (state, buffers, stack)" + limit)


def add_study_options(parser: argparse.ArgumentParser, default: str | None) -> None:
    where = "" if default else " (default: <weights>-<budget>kb, e.g. pow2-36kb)"
    parser.add_argument("--study", default=default, help=f"study name; its folder is <results-dir>/<study>{where}")
    parser.add_argument("--storage", help="any Optuna storage URL (default: SQLite in the study folder)")
    parser.add_argument("--results-dir", default=str(DEFAULT_RESULTS), help="where study folders live")
    parser.add_argument(
        "--artifacts",
        help="where trial checkpoints are kept for every host: a (shared) folder, s3://BUCKET or gs://BUCKET (default: the "
        "study's, fixed when it was created; a new study's is <results-dir>/<study>/artifacts)",
    )


def parse_confirm_seeds(text: str) -> int:
    """argparse `type=` of --confirm-seeds: 0 (no confirmation) or MIN_CONFIRM_SEEDS..; one seed is one more draw."""
    seeds = limits.CONFIRM_SEEDS.parse(text)
    problem = confirm_seeds_problem(seeds)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return seeds


def add_confirm_options(parser: argparse.ArgumentParser) -> None:
    defaults = ConfirmSettings()
    group = parser.add_argument_group("confirming the front (retraining its candidates with the full recipe; docs/search.md)")
    group.add_argument(
        "--confirm-seeds",
        type=parse_confirm_seeds,
        default=defaults.seeds,
        help="seeds 0..N-1 each candidate is retrained on (the split's; 0: no confirmation)",
    )
    group.add_argument(
        "--confirm-folds",
        type=limits.CONFIRM_FOLDS.parse,
        default=defaults.folds,
        help=f"leave-one-speaker-out folds each candidate is also trained on (new voices; {FOLD_SEEDS} seed each)",
    )
    group.add_argument(
        "--confirm-points",
        type=limits.CONFIRM_POINTS.parse,
        default=defaults.points,
        help="front points confirmed: the most accurate of each size band first, then the most accurate",
    )


def add_target_option(parser: argparse.ArgumentParser, stored: bool = False) -> None:
    """--target; `stored`: `nas search`'s, which a resume reads from the study."""
    default = f"{STORED}; else {DEFAULT_TARGET}" if stored else DEFAULT_TARGET
    parser.add_argument(
        "--target",
        choices=list(TARGETS),
        default=None if stored else DEFAULT_TARGET,
        help=f"the core whose instructions per frame the compute model predicts (default: {default})",
    )


def add_compute_budget_option(parser: argparse.ArgumentParser, stored: bool = False) -> None:
    """--mcu-mhz; `stored`: `nas search`'s, stored with the study (and its trials pruned before training)."""
    effect = "configurations that cannot are pruned before training" if stored else "--solve hidden keeps to it too"
    default = f"{STORED}; else no compute limit" if stored else "no compute limit"
    parser.add_argument(
        "--mcu-mhz",
        type=limits.MCU_MHZ.parse,
        help=f"also every frame in real time at this clock (MHz, one instruction per cycle) on --target, by the compute model; "
        f"{effect} (default: {default})",
    )


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as one JSON document on stdout (docs/cli.md), not tables")

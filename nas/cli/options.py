"""The command line's parser: every command and option of `nas`, in one place.

Ranges come from `nas.core.limits` and defaults from the configs, so argparse cannot disagree with
the library; every option's help shows its default. Each command sets `command` (e.g. "train",
"data verify"), which `nas.cli.main` maps to the function that runs it. Building the parser imports
neither torch nor Optuna: `nas --help` starts at once.
"""

from __future__ import annotations

import argparse
import sys

from nas import __version__
from nas.core import limits
from nas.core.errors import EXIT_BAD_INPUT, NasError
from nas.data.dataset import OFFICIAL, PARTS
from nas.device.memory import BUDGET_SCOPES
from nas.features.extract import FRONTENDS, NORMALISATIONS, FeatureConfig
from nas.model.architecture import CELLS, ModelConfig
from nas.model.formats import DEFAULT_WEIGHT_BITS, WEIGHT_SCHEMES, QuantConfig
from nas.study.confirm import FOLD_SEEDS, ConfirmSettings, confirm_seeds_problem
from nas.study.settings import (
    DEFAULT_HEARTBEAT_S,
    DEFAULT_RESULTS,
    DEFAULT_SAMPLER,
    DEFAULT_SEED,
    DEFAULT_STUDY,
    DEFAULT_TRIALS,
    DEFAULT_WEIGHTS,
    DEFAULT_WORKERS,
    GRACE_HEARTBEATS,
    MAX_RETRIES,
    SAMPLERS,
    SEARCH_WEIGHTS,
    SearchOptions,
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


# -------------------------------------------------------------------------------------- options
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


def add_budget_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "--budget-kb",
        type=limits.BUDGET_KB.parse,
        required=required,
        help="memory budget in kB (1 kB = 1024 B)" + ("" if required else " (default: none, the breakdown only)"),
    )
    parser.add_argument("--budget-scope", choices=BUDGET_SCOPES, default="total", help="total_bytes, or only the packed weights")
    parser.add_argument(
        "--flash-kb", type=limits.BUDGET_KB.parse, help="also at most this much flash (constants) (default: no separate limit)"
    )
    parser.add_argument(
        "--ram-kb", type=limits.BUDGET_KB.parse, help="also at most this much RAM (state, buffers, stack) (default: no separate limit)"
    )


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


def build_parser() -> Parser:
    parser = Parser(prog="nas", description="Hardware-aware architecture search for tiny fixed-point recurrent classifiers (FSDD).")
    parser.add_argument("--version", action="version", version=f"nas {__version__}")
    commands = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND", parser_class=Parser)
    commands_in_order = (add_data_commands, add_train_command, add_crossval_command, add_memory_command, add_search_command)
    for add_command in (*commands_in_order, add_study_commands):
        add_command(commands)
    return parser


def add_data_commands(commands) -> None:
    """nas data verify | inspect | download"""
    data = commands.add_parser("data", help="verify, inspect or download the FSDD recordings")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION", parser_class=Parser)
    verify = actions.add_parser("verify", help="check count, format, labels and checksums; print a summary table")
    add_data_options(verify, cache=False)
    verify.add_argument("--checksums", help="sha256sum file (default: SHA256SUMS beside the data, else the bundled v1.0.10 list)")
    verify.add_argument("--allow-subset", action="store_true", help="accept a partial copy (missing files are not an error)")
    verify.set_defaults(command="data verify")
    inspect = actions.add_parser("inspect", help="show a split's parts, or one file's details; --html: a page of the whole dataset")
    add_data_options(inspect, cache=False)
    add_split_option(inspect)
    inspect.add_argument("file", nargs="*", help="recording file names to describe (e.g. 3_theo_12.wav)")
    inspect.add_argument(
        "--html",
        metavar="FILE",
        help="write a page of the dataset: durations, counts, levels, the split's parts, MFCC images and every file failing a check "
        "(default: no page)",
    )
    inspect.set_defaults(command="data inspect")
    download = actions.add_parser("download", help="fetch FSDD v1.0.10 (recordings only) and verify it")
    download.add_argument("--dest", help="target folder (default: the project's data/fsdd/recordings)")
    download.add_argument("--url", help="archive address (default: the v1.0.10 tag archive on GitHub)")
    download.add_argument("--force", action="store_true", help="replace recordings that are already there")
    download.set_defaults(command="data download")


def add_train_command(commands) -> None:
    """nas train"""
    train = commands.add_parser("train", help="train one configuration (float32, or quantization-aware) and report val/test accuracy")
    add_model_options(train)
    add_quant_options(train)
    add_training_options(train)
    add_data_options(train)
    add_split_option(train)
    train.add_argument("--out", help="folder for checkpoints and summary.json (default: results/train/<cell>-l<layers>-h<hidden>-mfcc<n>)")
    train.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue an interrupted run from its checkpoint, with its own configuration (default: start a new run)",
    )
    train.set_defaults(command="train")


def add_crossval_command(commands) -> None:
    """nas crossval"""
    crossval = commands.add_parser(
        "crossval", help="leave-one-speaker-out cross-validation: retrain a configuration on each speaker:NAME fold"
    )
    add_model_options(crossval)
    add_quant_options(crossval)
    add_training_options(crossval)
    add_data_options(crossval)
    source = crossval.add_mutually_exclusive_group()
    source.add_argument(
        "--from-export", metavar="DIR", help="take the configuration and recipe from an export folder (default: the options above)"
    )
    source.add_argument(
        "--trial",
        type=limits.TRIAL_NUMBER.parse,
        help="take the configuration and recipe from this trial of --study (its checkpoint) (default: the options above)",
    )
    add_study_options(crossval, DEFAULT_STUDY)
    crossval.add_argument("--speakers", nargs="+", help="held-out speakers to run (default: every speaker, six folds)")
    crossval.add_argument(
        "--workers", type=limits.WORKERS.parse, default=DEFAULT_WORKERS, help="parallel worker processes, one CPU thread each"
    )
    crossval.add_argument("--out", help="JSON file of the results (default: results/crossval/<cell>-l<layers>-h<hidden>-...json)")
    crossval.set_defaults(command="crossval")


def add_memory_command(commands) -> None:
    """nas memory"""
    memory = commands.add_parser("memory", help="size breakdown of a configuration; --solve hidden for the largest that fits a budget")
    add_model_options(memory, features=False)
    add_quant_options(memory)
    add_budget_options(memory, required=False)
    memory.add_argument(
        "--solve", choices=("hidden",), help="find the largest hidden size within --budget-kb (default: size the given --hidden)"
    )
    memory.set_defaults(command="memory")


def add_search_command(commands) -> None:
    """nas search"""
    search = commands.add_parser("search", help="search architectures and formats for the Pareto front of accuracy against memory")
    add_budget_options(search, required=True)
    search.add_argument("--weights", choices=SEARCH_WEIGHTS, default=DEFAULT_WEIGHTS, help="weight scheme(s) to search; 'any' searches all")
    search.add_argument("--space", help="search space: a TOML file, or a bundled space's name (default: nas/spaces/default.toml)")
    search.add_argument("--trials", type=limits.TRIALS.parse, default=DEFAULT_TRIALS, help="finished trials the study should hold")
    search.add_argument(
        "--timeout", type=limits.TIMEOUT_S.parse, help="stop starting new trials after this many seconds (default: no limit)"
    )
    search.add_argument(
        "--workers", type=limits.WORKERS.parse, default=DEFAULT_WORKERS, help="parallel worker processes, one CPU thread each"
    )
    search.add_argument(
        "--heartbeat",
        type=limits.HEARTBEAT_S.parse,
        default=DEFAULT_HEARTBEAT_S,
        help=f"seconds between a worker's signs of life; a trial silent for {GRACE_HEARTBEATS} of them is failed and run again "
        f"(at most {MAX_RETRIES} times), on any host",
    )
    search.add_argument(
        "--seed",
        type=limits.SEED.parse,
        default=DEFAULT_SEED,
        help="sampler and training seed; with --workers 1 the same seed gives the same trials",
    )
    search.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default=DEFAULT_SAMPLER,
        help=f"Optuna sampler (default {DEFAULT_SAMPLER}; measured against each other in docs/search.md)",
    )
    add_split_option(search)
    search.add_argument(
        "--speaker-folds",
        type=limits.SPEAKER_FOLDS.parse,
        default=SearchOptions.speaker_folds,
        help="select for new voices: each trial also trains on this many leave-one-speaker-out folds and is scored on their "
        "validation speakers (each fold costs one more training per trial: K+1 in all; 0: the split's validation part)",
    )
    search.add_argument(
        "--quick",
        action="store_true",
        help="a first look in minutes: trials trained 40 epochs (patience 15, 4 copies) instead of the full recipe, and the front "
        "not confirmed; its own study (<weights>-<budget>kb-quick)",
    )
    add_confirm_options(search)
    add_study_options(search, None)
    add_data_options(search)
    search.set_defaults(command="search")


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


def add_study_commands(commands) -> None:
    """nas studies, pareto, report, export, evaluate: commands on studies or an export"""
    studies = commands.add_parser("studies", help="list the studies under the results folder: budget, weights, trials, best point")
    studies.add_argument("--results-dir", default=str(DEFAULT_RESULTS), help="where study folders live")
    studies.set_defaults(command="studies")
    pareto = commands.add_parser("pareto", help="print a study's Pareto front; write pareto.json, pareto.csv, trials.csv and report.html")
    add_study_options(pareto, DEFAULT_STUDY)
    pareto.add_argument(
        "--confirm", action="store_true", help="first confirm the front (retrain its candidates; resumes an interrupted confirmation)"
    )
    add_confirm_options(pareto)
    pareto.add_argument(
        "--workers", type=limits.WORKERS.parse, default=DEFAULT_WORKERS, help="parallel processes for --confirm, one CPU thread each"
    )
    add_data_options(pareto)
    pareto.set_defaults(command="pareto")
    report = commands.add_parser(
        "report",
        aliases=["plot"],  # `nas plot` wrote the chart alone before the report page
        help="write a study's report page: front, history, memory, confusion matrices, every trial (offline HTML; no training)",
    )
    add_study_options(report, DEFAULT_STUDY)
    report.add_argument("--out", help="the page to write (default: <study folder>/report.html)")
    report.set_defaults(command="report")

    export = commands.add_parser(
        "export", help="write a finished trial's model.pt, model.json, weights.bin, C code and README (no retraining)"
    )
    add_study_options(export, DEFAULT_STUDY)
    choice = export.add_mutually_exclusive_group(required=True)
    choice.add_argument("--trial", type=limits.TRIAL_NUMBER.parse, help="the trial number")
    choice.add_argument("--best", action="store_true", help="the most accurate trial (validation) within the study's budget")
    choice.add_argument("--max-kb", type=limits.BUDGET_KB.parse, help="the most accurate trial within this many kB")
    export.add_argument("--out", help="export folder (default: <study folder>/exports/trial-NNNN)")
    export.add_argument(
        "--no-measure",
        action="store_true",
        help="skip compiling the C (host gcc, arm-none-eabi-gcc) and the QEMU run of the golden vectors",
    )
    add_data_options(export, cache=False)
    export.set_defaults(command="export")

    evaluate = commands.add_parser("evaluate", help="score an export folder with the integer engine: accuracy, report, confusion matrix")
    evaluate.add_argument("export_dir", help="a folder written by 'nas export'")
    add_split_option(evaluate, default=None, help=f"{SPLIT_HELP} (default: the split the model was trained on)")
    evaluate.add_argument("--part", choices=PARTS, default="test", help="which part of the split")
    evaluate.add_argument("--html", help="also write the confusion matrix as a plotly heatmap page (default: no page)")
    evaluate.add_argument(
        "--c", action="store_true", help="also run the exported C (host gcc) on every file's PCM and compare with the engine"
    )
    add_data_options(evaluate)
    evaluate.set_defaults(command="evaluate")

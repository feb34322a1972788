"""The `nas` command line. Each subcommand parses options, calls the library, prints with rich.

Bad input never produces a traceback: option values are range-checked by argparse types, the
library raises NasError, and both end as one `nas: error: ...` line with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nas import __version__
from nas.errors import EXIT_BAD_INPUT, NasError

# Logs and pipes get a wide console so tables keep their columns; terminals use their own width.
console = Console() if Console().is_terminal else Console(width=160)
error_console = Console(stderr=True)
DEFAULT_TRAIN_DIR = Path("results") / "train"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage + message; we print one line
        error_console.print(f"{self.prog}: error: {message}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(EXIT_BAD_INPUT)


def int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer in {low}..{high}, got '{text}'") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer in {low}..{high}, got {value}")
        return value

    return parse


def float_in(low: float, high: float, high_open: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in {low}..{high}, got '{text}'") from None
        if not (low <= value < high if high_open else low <= value <= high):
            bound = f"{low} <= x < {high}" if high_open else f"{low}..{high}"
            raise argparse.ArgumentTypeError(f"expected a number in {bound}, got {value}")
        return value

    return parse


def split_type(text: str) -> str:
    from nas.data import parse_split_name

    try:
        return parse_split_name(text)
    except NasError as error:
        raise argparse.ArgumentTypeError(str(error).split(": ", 1)[1]) from None


def kb(total_bytes: int) -> str:
    return f"{total_bytes / 1024:,.2f} kB ({total_bytes:,} B)"


# ---------------------------------------------------------------------------------------- data


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        help="folder of FSDD WAV files (default: $NAS_DATA_DIR, then the project's data/fsdd/recordings)",
    )


def cmd_data_verify(args: argparse.Namespace) -> int:
    from nas.data import find_data_dir
    from nas.verify import verify_data

    data_dir = find_data_dir(args.data_dir)
    report = verify_data(data_dir, Path(args.checksums) if args.checksums else None, args.allow_subset)
    print_data_summary([w.recording for w in report.waveforms], {w.recording.name: w.duration_s for w in report.waveforms})
    console.print(f"checksums: {report.checksums_matched} of {len(report.waveforms)} files match {report.checksum_file}")
    if report.problems:
        for problem in report.problems:
            error_console.print(problem, markup=False, highlight=False, soft_wrap=True)
        raise NasError(f"{data_dir}: verification failed with {len(report.problems)} problem(s), listed above")
    console.print(f"[green]OK[/green]: {len(report.waveforms)} recordings in {data_dir} verified", highlight=False)
    return 0


def print_data_summary(recordings, durations: dict[str, float] | None = None, title: str = "FSDD recordings") -> None:
    """Files per digit and speaker, with durations."""
    counts = Counter((r.speaker, r.digit) for r in recordings)
    table = Table(title=title)
    table.add_column("speaker")
    for digit in range(10):
        table.add_column(str(digit), justify="right")
    table.add_column("files", justify="right")
    if durations is not None:
        for column in ("min s", "mean s", "max s"):
            table.add_column(column, justify="right")
    for speaker in sorted({r.speaker for r in recordings}):
        row = [speaker] + [str(counts[(speaker, d)]) for d in range(10)]
        mine = [r for r in recordings if r.speaker == speaker]
        row.append(str(len(mine)))
        if durations is not None:
            row.extend(_duration_stats([durations[r.name] for r in mine]))
        table.add_row(*row)
    total = [str(sum(counts[(s, d)] for s in {r.speaker for r in recordings})) for d in range(10)]
    footer = ["all", *total, str(len(recordings))]
    if durations is not None:
        footer.extend(_duration_stats([durations[r.name] for r in recordings]))
    table.add_row(*footer, style="bold")
    console.print(table)


def _duration_stats(values: list[float]) -> list[str]:
    if not values:
        return ["-", "-", "-"]
    return [f"{min(values):.2f}", f"{sum(values) / len(values):.2f}", f"{max(values):.2f}"]


def cmd_data_inspect(args: argparse.Namespace) -> int:
    from nas.data import find_data_dir, list_recordings, make_split, read_wav
    from nas.features import FeatureConfig, compute_mfcc

    data_dir = find_data_dir(args.data_dir)
    recordings = list_recordings(data_dir)
    if args.file:
        by_name = {r.name: r for r in recordings}
        for name in args.file:
            if Path(name).name not in by_name:
                raise NasError(f"{name}: no such recording in {data_dir}")
            wave = read_wav(by_name[Path(name).name])
            config = FeatureConfig()
            frames = compute_mfcc([wave], config)[0]
            table = Table(title=wave.recording.name, show_header=False)
            for key, value in [
                ("digit", wave.recording.digit),
                ("speaker", wave.recording.speaker),
                ("index", wave.recording.index),
                ("samples", f"{len(wave.samples):,} ({wave.duration_s:.3f} s at 8 kHz)"),
                ("peak amplitude", f"{int(abs(wave.samples.astype(int)).max())} of 32767"),
                ("MFCC frames", f"{len(frames)} x {frames.shape[1]} (default features)"),
                ("sha256", wave.sha256),
            ]:
                table.add_row(key, str(value))
            console.print(table)
        return 0
    split = make_split(recordings, args.split)
    table = Table(title=f"split '{split.name}' of {data_dir}")
    table.add_column("part")
    table.add_column("files", justify="right")
    table.add_column("speakers")
    table.add_column("indices")
    table.add_column("files per digit")
    for name, part in split.parts().items():
        per_digit = Counter(r.digit for r in part)
        indices = sorted({r.index for r in part})
        index_text = f"{indices[0]}-{indices[-1]}" if indices else "-"
        table.add_row(
            name,
            str(len(part)),
            ", ".join(sorted({r.speaker for r in part})),
            index_text + (" (gaps)" if indices and len(indices) != indices[-1] - indices[0] + 1 else ""),
            " ".join(str(per_digit[d]) for d in range(10)),
        )
    console.print(table)
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from nas.data import PROJECT_DATA_DIR
    from nas.download import download

    dest = Path(args.dest) if args.dest else PROJECT_DATA_DIR
    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("FSDD v1.0.10", total=None)
        report = download(
            dest, url=args.url, force=args.force, on_progress=lambda done, total: progress.update(task, completed=done, total=total)
        )
    console.print(f"[green]OK[/green]: {len(report.waveforms)} recordings verified in {dest}", highlight=False)
    return 0


# --------------------------------------------------------------------------------------- train


def add_model_options(parser: argparse.ArgumentParser) -> None:
    from nas.features import NORMALISATIONS, FeatureConfig
    from nas.models import CELLS, MAX_HIDDEN, MAX_LAYERS, ModelConfig

    model, features = ModelConfig(), FeatureConfig()
    group = parser.add_argument_group("architecture")
    group.add_argument("--cell", choices=CELLS, default=model.cell, help="recurrent cell (default: %(default)s)")
    group.add_argument("--layers", type=int_in(1, MAX_LAYERS), default=model.layers, help="stacked layers (default: %(default)s)")
    group.add_argument("--hidden", type=int_in(1, MAX_HIDDEN), default=model.hidden, help="hidden size (default: %(default)s)")
    group.add_argument("--dropout", type=float_in(0, 1, high_open=True), default=model.dropout, help="dropout (default: %(default)s)")
    group = parser.add_argument_group("features (MFCC at 8 kHz)")
    group.add_argument("--n-mfcc", type=int_in(1, 128), default=features.n_mfcc, help="MFCC coefficients (default: %(default)s)")
    group.add_argument("--n-mels", type=int_in(8, 128), default=features.n_mels, help="mel bands (default: %(default)s)")
    group.add_argument(
        "--n-fft", type=int_in(64, 1024), default=features.n_fft, help="window length in samples (default: %(default)s = 32 ms)"
    )
    group.add_argument(
        "--hop-length", type=int_in(1, 1024), default=features.hop_length, help="hop in samples (default: %(default)s = 10 ms)"
    )
    group.add_argument(
        "--normalisation",
        choices=NORMALISATIONS,
        default=features.normalisation,
        help="feature normalisation, statistics from the train split (default: %(default)s)",
    )


def add_training_options(parser: argparse.ArgumentParser) -> None:
    from nas.train import TrainConfig

    train = TrainConfig()
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int_in(1, 10_000), default=train.epochs, help="maximum epochs (default: %(default)s)")
    group.add_argument("--batch-size", type=int_in(1, 4096), default=train.batch_size, help="(default: %(default)s)")
    group.add_argument(
        "--lr", type=float_in(1e-6, 1.0), default=train.learning_rate, help="AdamW peak learning rate (default: %(default)s)"
    )
    group.add_argument("--weight-decay", type=float_in(0, 1), default=train.weight_decay, help="AdamW weight decay (default: %(default)s)")
    group.add_argument(
        "--patience",
        type=int_in(1, 10_000),
        default=train.patience,
        help="early stopping: epochs without a better validation score (default: %(default)s)",
    )
    group.add_argument(
        "--label-smoothing", type=float_in(0, 1, high_open=True), default=train.label_smoothing, help="(default: %(default)s)"
    )
    group.add_argument("--no-augment", action="store_true", help="train without feature masking and noise")
    group.add_argument(
        "--noise-std", type=float_in(0, 10), default=train.noise_std, help="feature noise, in standard deviations (default: %(default)s)"
    )
    group.add_argument(
        "--time-mask",
        type=float_in(0, 1, high_open=True),
        default=train.time_mask_fraction,
        help="longest time mask, as a share of the sequence (default: %(default)s)",
    )
    group.add_argument(
        "--freq-mask", type=int_in(0, 64), default=train.freq_mask_width, help="widest coefficient mask (default: %(default)s)"
    )
    group.add_argument(
        "--seed",
        type=int_in(0, 2**32 - 1),
        nargs="+",
        default=[train.seed],
        help="one or more seeds; several give a mean and interval (default: 0)",
    )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)
    parser.add_argument("--split", type=split_type, default="official", help="'official' or 'speaker:NAME' (default: %(default)s)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="(default: %(default)s)")
    parser.add_argument("--cache-dir", help="feature cache folder (default: $NAS_CACHE_DIR or ~/.cache/nas/features)")
    parser.add_argument("--no-cache", action="store_true", help="keep features in memory only")


def feature_cache(args: argparse.Namespace):
    from nas.features import FeatureCache

    if args.no_cache:
        return FeatureCache(directory=None)
    return FeatureCache(directory=Path(args.cache_dir)) if args.cache_dir else FeatureCache()


def cmd_train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from nas.data import find_data_dir, load_split
    from nas.features import FeatureConfig, build_feature_set
    from nas.models import ModelConfig, count_parameters
    from nas.stats import Accuracy, mean_interval
    from nas.train import TrainConfig, load_checkpoint, resolve_device, save_checkpoint, train_model

    device = resolve_device(args.device)
    resume = None
    if args.resume:
        resume = load_checkpoint(Path(args.resume))
        model_config = ModelConfig(**resume["model_config"])
        feature_config = FeatureConfig(**resume["feature_config"])
        base_config = TrainConfig(**resume["train_config"])
        seeds = [base_config.seed]
        split_name = resume.get("split", args.split)
        paths = {base_config.seed: Path(args.resume)}
    else:
        feature_config = FeatureConfig(args.n_mfcc, args.n_mels, args.n_fft, args.hop_length, normalisation=args.normalisation)
        model_config = ModelConfig(args.cell, args.layers, args.hidden, n_input=args.n_mfcc, dropout=args.dropout)
        base_config = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            weight_decay=args.weight_decay,
            warmup_epochs=min(TrainConfig.warmup_epochs, args.epochs - 1),
            patience=args.patience,
            label_smoothing=args.label_smoothing,
            augment=not args.no_augment,
            noise_std=args.noise_std,
            time_mask_fraction=args.time_mask,
            freq_mask_width=args.freq_mask,
        )
        feature_config.validate()
        model_config.validate()
        base_config.validate()
        seeds = list(dict.fromkeys(args.seed))
        split_name = args.split
        name = f"{model_config.cell}-l{model_config.layers}-h{model_config.hidden}-mfcc{feature_config.n_mfcc}"
        out_dir = Path(args.out) if args.out else DEFAULT_TRAIN_DIR / name
        paths = {seed: out_dir / f"seed{seed}.pt" for seed in seeds}

    data_dir = find_data_dir(args.data_dir)
    started = time.perf_counter()
    split, waveforms = load_split(data_dir, split_name)
    cache = feature_cache(args)
    features = build_feature_set(split, waveforms, feature_config, cache)
    feature_seconds = time.perf_counter() - started
    console.print(
        f"data: {data_dir} | split '{split.name}': {len(split.train)} train, {len(split.val)} val, {len(split.test)} test | "
        f"features {feature_config.n_mfcc} MFCC ({'cached' if cache.misses == 0 else 'computed'}, {feature_seconds:.1f} s) | "
        f"device {device}",
        highlight=False,
    )

    results = []
    for seed in seeds:
        config = TrainConfig(**(base_config.to_dict() | {"seed": seed}))
        with Progress(
            TextColumn(f"seed {seed}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            done = resume["resume"]["epoch"] if resume else 0
            task = progress.add_task("train", total=config.epochs, completed=done, status="")

            def on_epoch(record, state, task=task, progress=progress):
                progress.update(
                    task, completed=record.epoch, status=f"val {100 * record.val_accuracy:.1f}% (best epoch {state.best_epoch})"
                )

            extra = {"split": split.name, "nas_version": __version__}
            result = train_model(features, model_config, config, device, paths[seed], resume, on_epoch, extra)
        checkpoint = load_checkpoint(paths[seed])
        checkpoint["metrics"] = {
            "val_correct": result.val.correct,
            "val_total": result.val.total,
            "test_correct": result.test.correct,
            "test_total": result.test.total,
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "mean_epoch_seconds": result.mean_epoch_seconds,
        }
        save_checkpoint(paths[seed], checkpoint)
        results.append((seed, result))

    parameters = count_parameters(results[0][1].model)
    float_bytes = 4 * parameters
    table = Table(
        title=f"{model_config.cell.upper()} {model_config.layers}x{model_config.hidden}, {feature_config.n_mfcc} MFCC, split '{split.name}'"
    )
    for column in ("seed", "best epoch", "val accuracy", "test accuracy", "epoch time", "checkpoint"):
        table.add_column(column, justify="right" if column != "checkpoint" else "left")
    for seed, result in results:
        table.add_row(
            str(seed),
            f"{result.best_epoch}/{len(result.history)}",
            str(result.val),
            str(result.test),
            f"{result.mean_epoch_seconds:.2f} s",
            str(paths[seed]),
        )
    console.print(table)
    console.print(f"parameters: {parameters:,} | float32 size: {kb(float_bytes)}", highlight=False)
    if len(results) > 1:
        for part in ("val", "test"):
            values = [100 * getattr(r, part).value for _, r in results]
            mean, low, high = mean_interval(values)
            pooled = Accuracy(sum(getattr(r, part).correct for _, r in results), sum(getattr(r, part).total for _, r in results))
            console.print(
                f"{part} accuracy over {len(results)} seeds: mean {mean:.2f}% (95% t-interval {low:.2f}-{high:.2f}; pooled {pooled})",
                highlight=False,
            )
    summary = {
        "model_config": model_config.to_dict(),
        "feature_config": feature_config.to_dict(),
        "train_config": base_config.to_dict(),
        "split": split.name,
        "parameters": parameters,
        "float_bytes": float_bytes,
        "runs": [
            {
                "seed": seed,
                "checkpoint": str(paths[seed]),
                "best_epoch": r.best_epoch,
                "epochs_run": len(r.history),
                "val_accuracy": r.val.value,
                "test_accuracy": r.test.value,
                "mean_epoch_seconds": r.mean_epoch_seconds,
            }
            for seed, r in results
        ],
    }
    summary_path = paths[seeds[0]].parent / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


# ------------------------------------------------------------------------------------- parsing


def build_parser() -> Parser:
    parser = Parser(prog="nas", description="Hardware-aware architecture search for tiny fixed-point recurrent classifiers (FSDD).")
    parser.add_argument("--version", action="version", version=f"nas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="verify, inspect or download the FSDD recordings")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    verify = data_commands.add_parser("verify", help="check count, format, labels and checksums; print a summary table")
    add_data_dir(verify)
    verify.add_argument("--checksums", help="sha256sum file (default: SHA256SUMS beside the data, else the bundled v1.0.10 list)")
    verify.add_argument("--allow-subset", action="store_true", help="accept a partial copy (missing files are not an error)")
    verify.set_defaults(handler=cmd_data_verify)
    inspect = data_commands.add_parser("inspect", help="show a split's parts, or one file's details")
    add_data_dir(inspect)
    inspect.add_argument("--split", type=split_type, default="official", help="'official' or 'speaker:NAME' (default: %(default)s)")
    inspect.add_argument("file", nargs="*", help="recording file names to describe (e.g. 3_theo_12.wav)")
    inspect.set_defaults(handler=cmd_data_inspect)
    download = data_commands.add_parser("download", help="fetch FSDD v1.0.10 (recordings only) and verify it")
    download.add_argument("--dest", help="target folder (default: the project's data/fsdd/recordings)")
    download.add_argument("--url", default=None, help="archive address (default: the v1.0.10 tag archive on GitHub)")
    download.add_argument("--force", action="store_true", help="replace recordings that are already there")
    download.set_defaults(handler=cmd_data_download)

    train = commands.add_parser("train", help="train one configuration (float32) and report val/test accuracy")
    add_model_options(train)
    add_training_options(train)
    add_run_options(train)
    train.add_argument(
        "--out", help=f"folder for checkpoints and summary.json (default: {DEFAULT_TRAIN_DIR}/<cell>-l<layers>-h<hidden>-mfcc<n>)"
    )
    train.add_argument(
        "--resume", metavar="CHECKPOINT", help="continue an interrupted run from its checkpoint (its own configuration is used)"
    )
    train.set_defaults(handler=cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "url", "") is None:
        from nas.download import FSDD_URL

        args.url = FSDD_URL
    try:
        return args.handler(args)
    except NasError as error:
        one_line = " ".join(str(error).split())  # a message from a library may hold line breaks
        error_console.print(f"nas: error: {one_line}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        error_console.print("nas: interrupted; finished work is saved (see the paths above)", markup=False, highlight=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())

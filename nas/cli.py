"""The `nas` command line. Each subcommand parses options, calls the library, prints with rich.

Bad input never produces a traceback: option values are range-checked by argparse types, the
library raises NasError, and both end as one `nas: error: ...` line with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
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
console = Console() if Console().is_terminal else Console(width=200)
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
    parser.add_argument(
        "--threads",
        type=int_in(1, 256),
        default=1,
        help="CPU threads for torch (default: %(default)s: as fast as two for these small models, and the same seed "
        "then gives the same result on any machine)",
    )
    parser.add_argument("--cache-dir", help="feature cache folder (default: $NAS_CACHE_DIR or ~/.cache/nas/features)")
    parser.add_argument("--no-cache", action="store_true", help="keep features in memory only")


def feature_cache(args: argparse.Namespace):
    from nas.features import FeatureCache

    if args.no_cache:
        return FeatureCache(directory=None)
    return FeatureCache(directory=Path(args.cache_dir)) if args.cache_dir else FeatureCache()


def cmd_train(args: argparse.Namespace) -> int:
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from nas.data import find_data_dir, load_split
    from nas.features import FeatureConfig, build_feature_set
    from nas.formats import QuantConfig
    from nas.memory import memory_breakdown
    from nas.models import ModelConfig, count_parameters
    from nas.train import TrainConfig, load_checkpoint, resolve_device, save_checkpoint, train_model

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    resume = None
    if args.resume:
        resume = load_checkpoint(Path(args.resume))
        model_config = ModelConfig(**resume["model_config"])
        feature_config = FeatureConfig(**resume["feature_config"])
        quant = QuantConfig(**resume.get("quant_config", QuantConfig().to_dict()))
        base_config = TrainConfig(**resume["train_config"])
        seeds = [base_config.seed]
        split_name = resume.get("split", args.split)
        paths = {base_config.seed: Path(args.resume)}
    else:
        feature_config = FeatureConfig(args.n_mfcc, args.n_mels, args.n_fft, args.hop_length, normalisation=args.normalisation)
        model_config = ModelConfig(args.cell, args.layers, args.hidden, n_input=args.n_mfcc, dropout=args.dropout)
        quant = quant_config_from(args)
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
        scheme = (
            ""
            if not quant.quantized
            else f"-{quant.weights}{quant.weight_bits}" + ("" if quant.state_bits == 16 else f"-s{quant.state_bits}")
        )
        name = f"{model_config.cell}-l{model_config.layers}-h{model_config.hidden}-mfcc{feature_config.n_mfcc}{scheme}"
        out_dir = Path(args.out) if args.out else DEFAULT_TRAIN_DIR / name
        paths = {seed: out_dir / f"seed{seed}.pt" for seed in seeds}

    breakdown = memory_breakdown(model_config, quant)
    data_dir = find_data_dir(args.data_dir)
    started = time.perf_counter()
    split, waveforms = load_split(data_dir, split_name)
    cache = feature_cache(args)
    features = build_feature_set(split, waveforms, feature_config, cache)
    feature_seconds = time.perf_counter() - started
    console.print(
        f"data: {data_dir} | split '{split.name}': {len(split.train)} train, {len(split.val)} val, {len(split.test)} test | "
        f"features {feature_config.n_mfcc} MFCC ({'cached' if cache.misses == 0 else 'computed'}, {feature_seconds:.1f} s) | "
        f"{quant.describe()} | device {device}",
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
            result = train_model(features, model_config, config, device, paths[seed], resume, on_epoch, extra, quant)
        checkpoint = load_checkpoint(paths[seed])
        checkpoint["metrics"] = run_metrics(result) | {"memory": breakdown.to_dict()}
        save_checkpoint(paths[seed], checkpoint)
        results.append((seed, result))

    print_train_results(results, paths, model_config, feature_config, quant, split.name)
    parameters = count_parameters(results[0][1].model)
    console.print(f"parameters: {parameters:,} | float32 size: {kb(4 * parameters)}", highlight=False)
    if quant.quantized:
        print_breakdown(breakdown, title=f"memory: {quant.describe()}")
    summary = {
        "model_config": model_config.to_dict(),
        "feature_config": feature_config.to_dict(),
        "quant_config": quant.to_dict(),
        "train_config": base_config.to_dict(),
        "split": split.name,
        "parameters": parameters,
        "float_bytes": 4 * parameters,
        "memory": breakdown.to_dict(),
        "runs": [{"seed": seed, "checkpoint": str(paths[seed])} | run_metrics(r) for seed, r in results],
    }
    summary_path = paths[seeds[0]].parent / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def run_metrics(result) -> dict:
    metrics = {
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "mean_epoch_seconds": result.mean_epoch_seconds,
        "val_correct": result.val.correct,
        "val_total": result.val.total,
        "test_correct": result.test.correct,
        "test_total": result.test.total,
    }
    if result.post_training_int8 is not None:
        metrics |= {
            "ptq_int8_val_correct": result.post_training_int8.val.correct,
            "ptq_int8_test_correct": result.post_training_int8.test.correct,
        }
    if result.integer is not None:
        metrics |= {
            "int_val_correct": result.integer.val.correct,
            "int_val_total": result.integer.val.total,
            "int_test_correct": result.integer.test.correct,
            "int_test_total": result.integer.test.total,
            "int_float_test_agreement": result.integer.test_agreement,
        }
    return metrics


def print_train_results(results, paths, model_config, feature_config, quant, split_name: str) -> None:
    from nas.stats import Accuracy, mean_interval

    quantized = quant.quantized
    architecture = f"{model_config.cell.upper()} {model_config.layers}x{model_config.hidden}, {feature_config.n_mfcc} MFCC"
    title = f"{architecture}, {quant.describe()}, split '{split_name}'"
    table = Table(title=title)
    columns = ["seed", "best epoch"]
    columns += (
        ["int val accuracy", "int test accuracy", "fake-quant test", "agree"]
        if quantized
        else ["val accuracy", "test accuracy", "PTQ int8 test"]
    )
    for column in [*columns, "epoch time", "checkpoint"]:
        table.add_column(column, justify="left" if column == "checkpoint" else "right")
    for seed, result in results:
        row = [str(seed), f"{result.best_epoch}/{len(result.history)}"]
        if quantized:
            row += [
                str(result.integer.val),
                str(result.integer.test),
                f"{100 * result.test.value:.2f}%",
                f"{100 * result.integer.test_agreement:.1f}%",
            ]
        else:
            row += [str(result.val), str(result.test), f"{100 * result.post_training_int8.test.value:.2f}%"]
        table.add_row(*row, f"{result.mean_epoch_seconds:.2f} s", str(paths[seed]))
    console.print(table)
    if len(results) < 2:
        return
    parts = {"val": lambda r: r.val, "test": lambda r: r.test, "post-training int8 test": lambda r: r.post_training_int8.test}
    if quantized:
        parts = {
            "integer-engine val": lambda r: r.integer.val,
            "integer-engine test": lambda r: r.integer.test,
            "fake-quant test": lambda r: r.test,
        }
    for label, pick in parts.items():
        values = [100 * pick(r).value for _, r in results]
        mean, low, high = mean_interval(values)
        pooled = Accuracy(sum(pick(r).correct for _, r in results), sum(pick(r).total for _, r in results))
        console.print(
            f"{label} accuracy over {len(results)} seeds: mean {mean:.2f}% (95% t-interval {low:.2f}-{high:.2f}; pooled {pooled})",
            highlight=False,
        )


def quant_config_from(args: argparse.Namespace):
    from nas.formats import QuantConfig

    return QuantConfig.make(args.weights, args.weight_bits, args.bias_bits, args.state_bits)


def add_quant_options(parser: argparse.ArgumentParser) -> None:
    from nas.formats import WEIGHT_SCHEMES

    group = parser.add_argument_group("number formats")
    group.add_argument("--weights", choices=WEIGHT_SCHEMES, default="float", help="weight scheme (default: %(default)s)")
    group.add_argument("--weight-bits", type=int_in(1, 32), help="bits per weight: fixed 2-8 (default 8), pow2 3-6 (default 4)")
    group.add_argument("--bias-bits", type=int, choices=(16, 32), default=16, help="bias width (default: %(default)s)")
    group.add_argument("--state-bits", type=int, choices=(8, 16), default=16, help="activation and state width (default: %(default)s)")


def print_breakdown(breakdown, title: str, budget_bytes: int | None = None, scope: str = "total") -> None:
    table = Table(title=title)
    for column in ("part", "item", "values", "bits", "bytes"):
        table.add_column(column, justify="left" if column in ("part", "item") else "right")
    for item in breakdown.items:
        table.add_row(item.category, item.name, f"{item.count:,}", str(item.bits), f"{item.nbytes:,}")
    table.add_section()
    for label, value in [
        ("weight_bytes", breakdown.weight_bytes),
        ("bias_bytes", breakdown.bias_bytes),
        ("meta_bytes", breakdown.meta_bytes),
        ("table_bytes", breakdown.table_bytes),
        ("state_bytes", breakdown.state_bytes),
    ]:
        table.add_row(label, "", "", "", f"{value:,}")
    table.add_row("total_bytes", kb(breakdown.total_bytes), "", "", f"{breakdown.total_bytes:,}", style="bold")
    console.print(table)
    if budget_bytes is not None:
        used = breakdown.scoped_bytes(scope)
        verdict = "[green]fits[/green]" if used <= budget_bytes else "[red]over budget[/red]"
        console.print(f"budget ({scope}): {kb(budget_bytes)} | uses {kb(used)} | {verdict}", highlight=False)


def cmd_memory(args: argparse.Namespace) -> int:
    from nas.memory import largest_hidden, memory_breakdown
    from nas.models import ModelConfig

    quant = quant_config_from(args)
    model_config = ModelConfig(args.cell, args.layers, args.hidden, n_input=args.n_mfcc)
    model_config.validate()
    budget_bytes = None if args.budget_kb is None else math.floor(args.budget_kb * 1024)  # "at most": round down
    if args.solve == "hidden":
        if budget_bytes is None:
            raise NasError("--solve hidden: needs --budget-kb")
        hidden = largest_hidden(budget_bytes, model_config, quant, args.budget_scope)
        if hidden == 0:
            raise NasError(
                f"--budget-kb {args.budget_kb}: no hidden size fits ({args.budget_scope} bytes at hidden 1 exceed {budget_bytes:,} B)"
            )
        model_config = ModelConfig(**(model_config.to_dict() | {"hidden": hidden}))
        console.print(f"largest hidden size within {kb(budget_bytes)} ({args.budget_scope}): [bold]{hidden}[/bold]", highlight=False)
    breakdown = memory_breakdown(model_config, quant)
    title = f"{model_config.cell.upper()} {model_config.layers}x{model_config.hidden}, {model_config.n_input} inputs, {quant.describe()}"
    print_breakdown(breakdown, title, budget_bytes, args.budget_scope)
    return 0


# -------------------------------------------------------------------------------------- search


def _search_options(args: argparse.Namespace, budget_bytes: int):
    from nas.search import SearchOptions

    name = args.study or f"{args.weights}-{args.budget_kb:g}kb"
    return SearchOptions(
        budget_bytes=budget_bytes,
        budget_scope=args.budget_scope,
        trials=args.trials,
        timeout_s=args.timeout,
        seed=args.seed,
        study_name=name,
        storage=args.storage,
        results_dir=Path(args.results_dir),
        split=args.split,
    )


def _worker_main(setup, errors) -> None:
    from nas.search import run_worker

    try:
        run_worker(setup)
    except NasError as error:
        errors.put(str(error))
        raise SystemExit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def cmd_search(args: argparse.Namespace) -> int:
    import multiprocessing

    from nas.data import find_data_dir, load_split
    from nas.search import WorkerSetup, finished_count, make_sampler, mark_stale_trials_failed, open_study
    from nas.space import load_space

    space = load_space(Path(args.space) if args.space else None).restricted_to(args.weights)
    budget_bytes = math.floor(args.budget_kb * 1024)
    options = _search_options(args, budget_bytes)
    data_dir = find_data_dir(args.data_dir)
    load_split(data_dir, options.split)  # bad data stops here, before any worker starts
    study = open_study(options, make_sampler(options.seed))
    stale = mark_stale_trials_failed(study)
    done_before = finished_count(study)
    console.print(
        f"study '{options.study_name}' in {options.study_dir} | storage {options.storage_url} | "
        f"budget {kb(budget_bytes)} ({options.budget_scope}) | "
        f"space {space.source} | weights {', '.join(space.weights)} | {done_before} of {options.trials} trials already finished"
        + (f" | {stale} interrupted trial(s) marked failed" if stale else ""),
        highlight=False,
    )
    started = time.perf_counter()
    if done_before < options.trials:
        context = multiprocessing.get_context("spawn")
        errors = context.Queue()
        workers = [
            context.Process(
                target=_worker_main,
                args=(WorkerSetup(options, space, str(data_dir), args.cache_dir, index, args.sampler), errors),
            )
            for index in range(args.workers)
        ]
        try:
            for worker in workers:
                worker.start()
            _watch(workers, lambda: _progress_text(study, options, done_before, started))
        except KeyboardInterrupt:
            for worker in workers:
                worker.join(timeout=30)
            finished = finished_count(study)
            error_console.print(
                f"nas: interrupted; {finished} finished trial(s) are saved in {options.storage_url}. Run the same command again to resume.",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            return 130
        if not errors.empty():
            raise NasError(errors.get())
        failed = [w.exitcode for w in workers if w.exitcode not in (0, None)]
        if failed:
            raise NasError(f"search worker(s) exited with code(s) {failed}; finished trials are saved in {options.storage_url}")
    return _report_study(study, options, budget_bytes, time.perf_counter() - started)


def _watch(workers, progress: Callable[[], str]) -> None:
    """Show progress until every worker has exited: a live line in a terminal; in a log or pipe,
    one line each time a trial finishes."""
    from rich.live import Live

    if console.is_terminal:
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            while any(w.is_alive() for w in workers):
                live.update(progress())
                time.sleep(1.0)
            live.update(progress())
        return
    last = ""
    while any(w.is_alive() for w in workers):
        text = progress()
        if text.split(" | ")[0] != last:  # "trials k/n" changed
            console.print(text, highlight=False)
            last = text.split(" | ")[0]
        time.sleep(1.0)


def _progress_text(study, options, done_before: int, started: float) -> str:
    import optuna

    from nas.search import front

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    done = len(complete) + len(pruned)
    elapsed = time.perf_counter() - started
    new = done - done_before
    remaining = (elapsed / new) * max(0, options.trials - done) if new > 0 else float("nan")
    best = front(study, options.budget_bytes)
    best_text = "-"
    if best:
        top = max(best, key=lambda t: t.values[0])
        best_text = f"{100 * top.values[0]:.2f}% val at {kb(int(top.values[1]))} (trial {top.number})"
    remaining_text = f"{remaining / 60:.1f} min" if remaining == remaining else "estimating"
    return (
        f"trials {done}/{options.trials} | running {len(running)} | over budget (pruned) {len(pruned)} | "
        f"elapsed {elapsed / 60:.1f} min | remaining ~{remaining_text} | best within budget: {best_text}"
    )


def _report_study(study, options, budget_bytes: int, seconds: float) -> int:
    import optuna

    from nas.report import pareto_table, write_front_files

    rows = write_front_files(study, options.study_dir, budget_bytes)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    over = [t for t in finished if t.user_attrs.get("over_budget")]
    if not rows:
        share = f"{len(over)} of {len(finished)}"
        raise NasError(
            f"--budget-kb {budget_bytes / 1024:.2f} ({budget_bytes:,} B): no configuration of the search space fits "
            f"({share} sampled trials were over budget); "
            "expected a larger budget or a smaller space"
        )
    console.print(pareto_table(rows, f"Pareto front of '{options.study_name}' within {kb(budget_bytes)} ({len(rows)} points)"))
    share = 100 * len(over) / len(finished) if finished else 0.0
    console.print(
        f"{len(finished)} finished trials ({len(over)} over budget = {share:.0f}%, pruned before training) | "
        f"this run {seconds / 60:.1f} min | files: {options.study_dir}/pareto.json, pareto.csv, pareto.html",
        highlight=False,
    )
    console.print(f"dashboard: optuna-dashboard {options.storage_url}", highlight=False)
    return 0


def _load_existing_study(args: argparse.Namespace):
    import optuna

    from nas.search import SearchOptions

    options = SearchOptions(budget_bytes=0, study_name=args.study, storage=args.storage, results_dir=Path(args.results_dir))
    if args.storage is None and not (options.study_dir / "study.db").is_file():
        raise NasError(f"--study {args.study}: no study at {options.study_dir}/study.db; expected the name given to 'nas search --study'")
    try:
        study = optuna.load_study(study_name=args.study, storage=options.storage_url)
    except Exception as error:  # KeyError for an unknown name, SQLAlchemy errors for a bad URL
        raise NasError(f"--study {args.study}: cannot load it from {options.storage_url} ({type(error).__name__})") from None
    budget_bytes = study.user_attrs.get("budget_bytes")
    return study, options, budget_bytes


def cmd_pareto(args: argparse.Namespace) -> int:
    study, options, budget_bytes = _load_existing_study(args)
    return _report_study(study, options, budget_bytes, 0.0)


def cmd_plot(args: argparse.Namespace) -> int:
    from nas.report import write_front_page

    study, options, budget_bytes = _load_existing_study(args)
    path = options.study_dir / "pareto.html"
    write_front_page(study, path, budget_bytes)
    console.print(f"wrote {path}", highlight=False)
    return 0


def add_study_options(parser: argparse.ArgumentParser, default_study: str | None) -> None:
    parser.add_argument(
        "--study",
        default=default_study,
        help="study name; its folder is <results-dir>/<study>" + ("" if default_study else " (default: <weights>-<budget>kb)"),
    )
    parser.add_argument("--storage", help="any Optuna storage URL (default: SQLite in the study folder)")
    parser.add_argument("--results-dir", default=str(DEFAULT_TRAIN_DIR.parent), help="where study folders live (default: %(default)s)")


# ------------------------------------------------------------------------------ export/evaluate


def cmd_export(args: argparse.Namespace) -> int:
    from nas.export import export_trial, select_trial

    if sum(x is not None and x is not False for x in (args.trial, args.best or None, args.max_kb)) != 1:
        raise NasError("nas export: expected exactly one of --trial N, --best or --max-kb K")
    study, options, budget_bytes = _load_existing_study(args)
    trial = select_trial(study, budget_bytes, args.trial, args.best, args.max_kb)
    out_dir = Path(args.out) if args.out else options.study_dir / "exports" / f"trial-{trial.number:04d}"
    description = export_trial(trial, out_dir)
    memory, accuracy = description["memory"], description["accuracy"]
    console.print(
        f"exported trial {trial.number} to {out_dir}: weights.bin {description['weights_bin_bytes']:,} B, "
        f"total {kb(memory['total_bytes'])}, "
        f"test {accuracy['test_correct']}/{accuracy['test_total']} (integer engine); check with: nas evaluate {out_dir}",
        highlight=False,
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from sklearn.metrics import classification_report, confusion_matrix

    from nas.data import find_data_dir, load_split
    from nas.export import load_export
    from nas.features import build_feature_set
    from nas.stats import Accuracy

    loaded = load_export(Path(args.export_dir))
    split_name = args.split or loaded.description.get("split", "official")
    split, waveforms = load_split(find_data_dir(args.data_dir), split_name)
    features = build_feature_set(split, waveforms, loaded.feature_config, feature_cache(args), loaded.normaliser)
    frames, labels = features.part(args.part)
    _, predicted = loaded.engine.predict(frames)
    accuracy = Accuracy(int((predicted == labels).sum()), len(labels))
    console.print(f"{args.export_dir}: integer engine on the {args.part} part of split '{split_name}': {accuracy}", highlight=False)
    stored = loaded.description.get("accuracy", {})
    if split_name == loaded.description.get("split") and stored.get(f"{args.part}_correct") is not None:
        same = stored[f"{args.part}_correct"] == accuracy.correct and stored[f"{args.part}_total"] == accuracy.total
        verdict = "[green]reproduces[/green]" if same else "[red]does not reproduce[/red]"
        console.print(f"{verdict} model.json: {stored[f'{args.part}_correct']}/{stored[f'{args.part}_total']}", highlight=False)
    console.print(
        classification_report(labels, predicted, labels=list(range(10)), digits=4, zero_division=0), markup=False, highlight=False
    )
    matrix = confusion_matrix(labels, predicted, labels=list(range(10)))
    table = Table(title="confusion matrix (rows: true digit, columns: predicted)")
    table.add_column("true")
    for digit in range(10):
        table.add_column(str(digit), justify="right")
    for digit in range(10):
        table.add_row(
            str(digit), *[(f"[bold]{v}[/bold]" if i == digit else (f"[red]{v}[/red]" if v else "·")) for i, v in enumerate(matrix[digit])]
        )
    console.print(table)
    if args.html:
        import plotly.graph_objects as go

        figure = go.Figure(
            go.Heatmap(
                z=matrix,
                x=[str(d) for d in range(10)],
                y=[str(d) for d in range(10)],
                colorscale="Blues",
                text=matrix,
                texttemplate="%{text}",
            )
        )
        figure.update_layout(
            title=f"{args.export_dir}: {args.part} split '{split_name}', {accuracy}",
            xaxis_title="predicted",
            yaxis=dict(title="true", autorange="reversed"),
        )
        figure.write_html(args.html, include_plotlyjs=True)
        console.print(f"wrote {args.html}", highlight=False)
    return 0 if (split_name != loaded.description.get("split") or stored.get(f"{args.part}_correct") in (None, accuracy.correct)) else 1


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

    train = commands.add_parser(
        "train", help="train one configuration (float32, or quantization-aware with --weights fixed|pow2) and report val/test accuracy"
    )
    add_model_options(train)
    add_quant_options(train)
    add_training_options(train)
    add_run_options(train)
    train.add_argument(
        "--out", help=f"folder for checkpoints and summary.json (default: {DEFAULT_TRAIN_DIR}/<cell>-l<layers>-h<hidden>-mfcc<n>)"
    )
    train.add_argument(
        "--resume", metavar="CHECKPOINT", help="continue an interrupted run from its checkpoint (its own configuration is used)"
    )
    train.set_defaults(handler=cmd_train)

    memory = commands.add_parser("memory", help="size breakdown of a configuration; --solve hidden for the largest that fits a budget")
    from nas.models import CELLS, MAX_LAYERS

    group = memory.add_argument_group("architecture")
    group.add_argument("--cell", choices=CELLS, default="gru", help="(default: %(default)s)")
    group.add_argument("--layers", type=int_in(1, MAX_LAYERS), default=1, help="(default: %(default)s)")
    group.add_argument("--hidden", type=int_in(1, 4096), default=64, help="(default: %(default)s)")
    group.add_argument("--n-mfcc", type=int_in(1, 128), default=13, help="inputs per frame (default: %(default)s)")
    add_quant_options(memory)
    memory.add_argument("--budget-kb", type=float_in(0.001, 1e6), help="memory budget in kB (1 kB = 1024 B)")
    memory.add_argument(
        "--budget-scope", choices=("total", "weights"), default="total", help="what the budget covers (default: %(default)s)"
    )
    memory.add_argument("--solve", choices=("hidden",), help="find the largest hidden size within --budget-kb")
    memory.set_defaults(handler=cmd_memory)

    search = commands.add_parser("search", help="search architectures and formats for the Pareto front of accuracy against memory")
    search.add_argument("--budget-kb", type=float_in(0.001, 1e6), required=True, help="memory budget in kB (1 kB = 1024 B)")
    search.add_argument(
        "--budget-scope", choices=("total", "weights"), default="total", help="what the budget covers (default: %(default)s)"
    )
    search.add_argument(
        "--weights", choices=("pow2", "fixed", "float", "any"), default="pow2", help="weight scheme(s) to search (default: %(default)s)"
    )
    search.add_argument("--space", help="search space TOML file (default: search_spaces/default.toml)")
    search.add_argument(
        "--trials", type=int_in(1, 100_000), default=30, help="finished trials the study should hold (default: %(default)s)"
    )
    search.add_argument("--timeout", type=float_in(1, 1e7), help="stop starting new trials after this many seconds")
    search.add_argument(
        "--workers", type=int_in(1, 64), default=2, help="parallel worker processes, one CPU thread each (default: %(default)s)"
    )
    search.add_argument(
        "--seed",
        type=int_in(0, 2**31 - 1),
        default=0,
        help="sampler and training seed; with --workers 1 the same seed gives the same trials",
    )
    search.add_argument("--sampler", choices=("tpe", "random"), default="tpe", help="(default: %(default)s)")
    add_study_options(search, None)
    add_data_dir(search)
    search.add_argument("--split", type=split_type, default="official", help="(default: %(default)s)")
    search.add_argument("--cache-dir", help="feature cache folder (default: $NAS_CACHE_DIR or ~/.cache/nas/features)")
    search.set_defaults(handler=cmd_search)

    pareto = commands.add_parser("pareto", help="print a study's Pareto front and write pareto.json/csv/html")
    add_study_options(pareto, "pow2-36kb")
    pareto.set_defaults(handler=cmd_pareto)
    plot = commands.add_parser("plot", help="regenerate a study's pareto.html from its storage (no training)")
    add_study_options(plot, "pow2-36kb")
    plot.set_defaults(handler=cmd_plot)

    export = commands.add_parser("export", help="write a finished trial's model.pt, model.json, weights.bin and README.md (no retraining)")
    add_study_options(export, "pow2-36kb")
    export.add_argument("--trial", type=int_in(0, 10**9), help="the trial number")
    export.add_argument("--best", action="store_true", help="the front's most accurate trial (validation) within the budget")
    export.add_argument("--max-kb", type=float_in(0.001, 1e6), help="the most accurate trial within this many kB")
    export.add_argument("--out", help="export folder (default: <study folder>/exports/trial-NNNN)")
    export.set_defaults(handler=cmd_export)

    evaluate = commands.add_parser("evaluate", help="score an export folder with the integer engine: accuracy, report, confusion matrix")
    evaluate.add_argument("export_dir", help="a folder written by 'nas export'")
    evaluate.add_argument("--split", type=split_type, help="'official' or 'speaker:NAME' (default: the split the trial was scored on)")
    evaluate.add_argument("--part", choices=("test", "val", "train"), default="test", help="(default: %(default)s)")
    evaluate.add_argument("--html", help="also write the confusion matrix as a plotly heatmap page")
    add_data_dir(evaluate)
    evaluate.add_argument("--cache-dir", help="feature cache folder")
    evaluate.add_argument("--no-cache", action="store_true", help="keep features in memory only")
    evaluate.set_defaults(handler=cmd_evaluate)
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

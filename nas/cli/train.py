"""`nas train` and `nas crossval`: one configuration trained on seeds, or on leave-one-speaker-out folds."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nas.cli.options import (
    add_data_options,
    add_json_option,
    add_model_options,
    add_quant_options,
    add_split_option,
    add_study_options,
    add_training_options,
)
from nas.cli.output import (
    EXIT_INTERRUPTED,
    console,
    data_dir,
    error_console,
    feature_cache,
    json_mode,
    print_json,
    say,
    study_location,
    trial_checkpoint,
)
from nas.core import limits
from nas.core.version import __version__
from nas.device.memory import format_bytes
from nas.features.extract import FeatureConfig
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.study.settings import (
    DEFAULT_STUDY,
    DEFAULT_WORKERS,
)
from nas.training.recipe import TrainConfig


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
    add_json_option(crossval, "the results (as written to --out)")
    crossval.set_defaults(command="crossval")


def configs_from_options(args: argparse.Namespace) -> tuple[ModelConfig, FeatureConfig, QuantConfig, TrainConfig]:
    """The configuration and recipe that `nas train` and `nas crossval` options describe."""
    features = FeatureConfig(
        args.n_mfcc,
        args.n_mels,
        args.n_fft,
        args.hop_length,
        normalisation=args.normalisation,
        frontend=args.frontend,
        floor_bits=args.floor_bits,
    )
    model = ModelConfig(args.cell, args.layers, args.hidden, n_input=args.n_mfcc, dropout=args.dropout)
    quant = QuantConfig.make(args.weights, args.weight_bits, args.bias_bits, args.state_bits)
    recipe = dict(batch_size=args.batch_size, learning_rate=args.lr, weight_decay=args.weight_decay, patience=args.patience)
    recipe |= dict(label_smoothing=args.label_smoothing, augment=not args.no_augment, noise_std=args.noise_std)
    recipe |= dict(time_mask_fraction=args.time_mask, freq_mask_width=args.freq_mask)
    recipe |= dict(wave_copies=args.wave_copies, speed_range=args.speed, vtlp_range=args.vtlp)
    recipe |= dict(gain_db=args.gain_db, noise_snr_db=args.noise_snr_db)
    return model, features, quant, TrainConfig.for_epochs(args.epochs, **recipe)


def train_plan(args: argparse.Namespace):
    from nas.training.seeds import plan_resume, plan_training

    if args.resume:
        return plan_resume(Path(args.resume))
    model, features, quant, train = configs_from_options(args)
    return plan_training(model, features, quant, train, args.seed, args.split, Path(args.out) if args.out else None)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from nas.device.memory import memory_breakdown
    from nas.features.extract import load_features
    from nas.report.tables import breakdown_table, seed_runs_table
    from nas.training.seeds import TrainInterrupted, train_seeds
    from nas.training.train import resolve_device

    torch.set_num_threads(args.threads)
    device, plan, folder, cache = resolve_device(args.device), train_plan(args), data_dir(args), feature_cache(args)
    started = time.perf_counter()
    split, features = load_features(folder, plan.split, plan.feature_config, cache, copies=plan.train_config.wave_copy_recipes())
    source = f"{'cached' if cache.misses == 0 else 'computed'}, {time.perf_counter() - started:.1f} s"
    say(
        f"data: {folder} | split '{split.name}': {len(split.train)} train, {len(split.val)} val, {len(split.test)} test | "
        f"features {plan.feature_config.n_mfcc} MFCC ({source}) | {plan.quant.describe()} | device {device}"
    )
    try:
        with TrainProgress(plan) as progress:
            outcome = train_seeds(plan, features, device, progress.update, {"nas_version": __version__})
    except TrainInterrupted as stop:
        data = f" --data-dir {args.data_dir}" if args.data_dir else ""
        rest = f"; seeds not started: {' '.join(map(str, stop.not_started))}" if stop.not_started else ""
        say(
            f"nas: interrupted; checkpoint {stop.checkpoint} is saved; continue with: nas train --resume {stop.checkpoint}{data}{rest}",
            error_console,
        )
        return EXIT_INTERRUPTED
    console.print(seed_runs_table(outcome))
    if len(outcome.runs) > 1:
        for mean in outcome.means():
            say(
                f"{mean.label} accuracy over {len(outcome.runs)} seeds: mean {mean.mean:.2f}% "
                f"(95% t-interval {mean.low:.2f}-{mean.high:.2f}; pooled {mean.pooled})"
            )
    say(f"parameters: {outcome.parameters:,} | float32 size: {format_bytes(4 * outcome.parameters)} | summary: {plan.summary_path}")
    if plan.quant.quantized:
        console.print(
            breakdown_table(
                memory_breakdown(plan.model_config, plan.quant, plan.feature_config.on_device), f"memory: {plan.quant.describe()}"
            )
        )
    return 0


LOG_EVERY_EPOCHS = 10  # in a log or pipe, training prints a line this often (and at its last epoch)


class TrainProgress:
    """A progress bar per seed while training in a terminal; in a log or pipe, where rich hides
    the bar, a line every LOG_EVERY_EPOCHS epochs and at the last one, so a long run is not silent."""

    def __init__(self, plan) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.plan, self.tasks = plan, {}
        columns = (TextColumn("seed {task.fields[seed]}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"))
        self.progress = Progress(*columns, TimeElapsedColumn(), console=console, transient=True)

    def __enter__(self) -> TrainProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def update(self, seed: int, record, state) -> None:
        if seed not in self.tasks:
            self.tasks[seed] = self.progress.add_task("train", total=self.plan.train_config.epochs, seed=seed, status="")
        status = f"val {100 * record.val_accuracy:.1f}% (best epoch {state.best_epoch})"
        self.progress.update(self.tasks[seed], completed=record.epoch, status=status)
        epochs = self.plan.train_config.epochs
        if not console.is_terminal and (record.epoch % LOG_EVERY_EPOCHS == 0 or record.epoch == epochs):
            say(f"seed {seed}: epoch {record.epoch}/{epochs} | train loss {record.train_loss:.3f} | {status} | {record.seconds:.1f} s")


def cmd_crossval(args: argparse.Namespace) -> int:
    import json

    from nas.report.tables import crossval_table
    from nas.training.crossval import DEFAULT_CROSSVAL_DIR, plan_crossval, run_crossval
    from nas.training.seeds import run_name

    as_json = json_mode(args)  # first: what follows prints to stderr
    if args.from_export:
        from nas.bundle.export import export_configs

        model, features, quant, train = export_configs(Path(args.from_export))
    elif args.trial is not None:
        from nas.bundle.export import checkpoint_configs
        from nas.bundle.selection import select_record
        from nas.study.record import read_records
        from nas.study.storage import load_existing_study

        location = study_location(args)
        study, settings = load_existing_study(location)
        record = select_record(read_records(study), settings.budget, args.trial, None, location.name)
        model, features, quant, train = checkpoint_configs(trial_checkpoint(record, study, location, args))
    else:
        model, features, quant, train = configs_from_options(args)
    folder = data_dir(args)
    plan = plan_crossval(model, features, quant, train, args.seed, args.speakers, folder, args.cache_dir, args.no_cache)
    say(
        f"cross-validation: {model.describe()}, {quant.describe()} | {len(plan.speakers)} folds x {len(plan.seeds)} seeds | "
        f"{args.workers} workers | data {folder}"
    )
    result = run_crossval(
        plan,
        args.workers,
        lambda f: say(f"  {f.speaker} (validation {f.validation_speaker}), seed {f.seed}: test {f.test}, val {f.val} ({f.seconds:.0f} s)"),
    )
    out = Path(args.out) if args.out else DEFAULT_CROSSVAL_DIR / f"{run_name(model, features, quant)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if as_json:
        print_json("crossval", result.to_dict() | {"results_file": str(out)})
        return 0
    console.print(crossval_table(result))
    mean, low, high = result.mean()
    say(
        f"leave-one-speaker-out mean test accuracy ({result.folds[0].scored_by}): {mean:.2f}% "
        f"(95% t-interval over seeds {low:.2f}-{high:.2f}); lowest speaker {min(result.speaker_mean(s) for s in plan.speakers):.2f}%"
    )
    say(f"results: {out}")
    return 0

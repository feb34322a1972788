"""The `nas` commands: each takes the options parsed by `nas.cli.options`, calls the library and
prints with rich. No command computes anything itself.

Bad input never produces a traceback: the library raises NasError, argparse rejects an
out-of-range value, and both end as one `nas: error: ...` line with exit code 2. Nothing here
imports torch until a command needs it, so `nas --help` and `nas memory` start at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from nas import __version__
from nas.core.errors import EXIT_BAD_INPUT, NasError
from nas.device.memory import KB, Budget, format_bytes
from nas.features.extract import FeatureCache, FeatureConfig, compute_frames
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.study.settings import DEFAULT_STUDY, StudyLocation, default_study_name
from nas.training.recipe import TrainConfig

# Logs and pipes get a wide console so tables keep their columns; terminals use their own width.
console = Console() if Console().is_terminal else Console(width=200)
error_console = Console(stderr=True)
EXIT_INTERRUPTED = 130


def say(text: str, to=console) -> None:
    to.print(text, markup=False, highlight=False, soft_wrap=True)


def feature_cache(args: argparse.Namespace) -> FeatureCache:
    return FeatureCache.at(args.cache_dir, args.no_cache)


def data_dir(args: argparse.Namespace) -> Path:
    from nas.data.dataset import find_data_dir

    return find_data_dir(args.data_dir)


# ------------------------------------------------------------------------------------- data
def cmd_data_verify(args: argparse.Namespace) -> int:
    from nas.data.verify import verify_data
    from nas.report.report import recordings_table

    folder = data_dir(args)
    report = verify_data(folder, Path(args.checksums) if args.checksums else None, args.allow_subset)
    console.print(recordings_table([w.recording for w in report.waveforms], {w.recording.name: w.duration_s for w in report.waveforms}))
    say(f"checksums: {report.checksums_matched} of {len(report.waveforms)} files match {report.checksum_file}")
    for problem in report.problems:
        say(problem, error_console)
    if report.problems:
        raise NasError(f"{folder}: verification failed with {len(report.problems)} problem(s), listed above")
    say(f"OK: {len(report.waveforms)} recordings in {folder} verified")
    return 0


def cmd_data_inspect(args: argparse.Namespace) -> int:
    from nas.data.dataset import list_recordings, make_split, read_wav
    from nas.report.report import recording_table, split_table

    folder = data_dir(args)
    if args.html:
        from nas.report.datainspect import inspect_data
        from nas.report.datapage import data_page

        overview = inspect_data(folder, args.split)
        data_page(overview).write(Path(args.html))
        say(
            f"wrote {args.html}: {len(overview.files)} recordings, {len(overview.failed)} failing a check, "
            f"{len(overview.flagged)} flagged (clipped or quiet)"
        )
        for name, what in overview.failed:
            say(f"{name}: {what}", error_console)
        return 0
    recordings = list_recordings(folder)
    if not args.file:
        console.print(split_table(make_split(recordings, args.split), str(folder)))
        return 0

    by_name = {r.name: r for r in recordings}
    for name in args.file:
        if Path(name).name not in by_name:
            raise NasError(f"{name}: no such recording in {folder}")
        wave = read_wav(by_name[Path(name).name])
        console.print(recording_table(wave, compute_frames([wave], FeatureConfig())[0]))
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from nas.data.dataset import PROJECT_DATA_DIR
    from nas.data.download import FSDD_URL, download

    dest = Path(args.dest) if args.dest else PROJECT_DATA_DIR
    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("FSDD v1.0.10", total=None)
        report = download(dest, args.url or FSDD_URL, args.force, lambda done, total: progress.update(task, completed=done, total=total))
    say(f"OK: {len(report.waveforms)} recordings verified in {dest}")
    return 0


# --------------------------------------------------------------------------------------- train
def train_plan(args: argparse.Namespace):
    from nas.training.train import plan_resume, plan_training

    if args.resume:
        return plan_resume(Path(args.resume))
    model, features, quant, train = configs_from_options(args)
    return plan_training(model, features, quant, train, args.seed, args.split, Path(args.out) if args.out else None)


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


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from nas.device.memory import memory_breakdown
    from nas.features.extract import load_features
    from nas.report.report import breakdown_table, seed_runs_table
    from nas.training.train import TrainInterrupted, resolve_device, train_seeds

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


# ------------------------------------------------------------------------------------ crossval
def cmd_crossval(args: argparse.Namespace) -> int:
    import json

    from nas.report.report import crossval_table
    from nas.training.crossval import DEFAULT_CROSSVAL_DIR, plan_crossval, run_crossval
    from nas.training.train import run_name

    if args.from_export:
        from nas.bundle.export import export_configs

        model, features, quant, train = export_configs(Path(args.from_export))
    elif args.trial is not None:
        from nas.bundle.export import checkpoint_configs, select_record
        from nas.study.optimize import load_existing_study
        from nas.study.record import read_records

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
    console.print(crossval_table(result))
    mean, low, high = result.mean()
    say(
        f"leave-one-speaker-out mean test accuracy ({result.folds[0].scored_by}): {mean:.2f}% "
        f"(95% t-interval over seeds {low:.2f}-{high:.2f}); lowest speaker {min(result.speaker_mean(s) for s in plan.speakers):.2f}%"
    )
    out = Path(args.out) if args.out else DEFAULT_CROSSVAL_DIR / f"{run_name(model, features, quant)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    say(f"results: {out}")
    return 0


# -------------------------------------------------------------------------------------- memory
def cmd_memory(args: argparse.Namespace) -> int:
    from nas.device.memory import largest_hidden, memory_breakdown
    from nas.report.report import breakdown_table

    quant = QuantConfig.make(args.weights, args.weight_bits, args.bias_bits, args.state_bits)
    model = ModelConfig(args.cell, args.layers, args.hidden, n_input=args.n_mfcc)
    model.validate()
    budget = None if args.budget_kb is None else Budget.from_kb(args.budget_kb, args.budget_scope, args.flash_kb, args.ram_kb)
    features = (
        None
        if args.no_frontend
        else FeatureConfig(
            n_mfcc=args.n_mfcc, n_mels=args.n_mels, n_fft=args.n_fft, hop_length=args.hop_length, normalisation=args.normalisation
        )
    )
    if features is not None:
        features.validate()
    if args.solve == "hidden":
        if budget is None:
            raise NasError("--solve hidden: needs --budget-kb")
        hidden = largest_hidden(budget, model, quant, features)
        if hidden == 0:
            broken = "; ".join(budget.exceeded(memory_breakdown(model.with_hidden(1), quant, features).to_dict()))
            raise NasError(f"--budget-kb {args.budget_kb}: no hidden size fits (at hidden 1: {broken})")
        model = model.with_hidden(hidden)
        say(f"largest hidden size within {budget.describe()}: {hidden}")
    breakdown = memory_breakdown(model, quant, features)
    console.print(breakdown_table(breakdown, f"{model.describe()}, {quant.describe()}"))
    if budget is not None:
        broken = budget.exceeded(breakdown.to_dict())
        say(
            f"budget: {budget.describe()} | uses {format_bytes(breakdown.scoped_bytes(budget.scope))} | "
            f"{'over budget: ' + '; '.join(broken) if broken else 'fits'}"
        )
    return 0


# -------------------------------------------------------------------------------------- search
def search_options(args: argparse.Namespace):
    from nas.study.optimize import SearchOptions
    from nas.study.space import load_space, resolve_space_path

    name = args.study or default_study_name(args.weights, args.budget_kb, args.quick)
    location = StudyLocation(name, args.storage, Path(args.results_dir))
    space = load_space(resolve_space_path(args.space))  # with --quick still the top fidelity: SearchOptions.training_space
    return SearchOptions(
        budget=Budget.from_kb(args.budget_kb, args.budget_scope, args.flash_kb, args.ram_kb),
        space=space,
        weights=args.weights,
        location=location,
        trials=args.trials,
        timeout_s=args.timeout,
        seed=args.seed,
        sampler=args.sampler,
        workers=args.workers,
        split=args.split,
        speaker_folds=args.speaker_folds,
        heartbeat_s=args.heartbeat,
        artifacts=args.artifacts,
        quick=args.quick,
        confirm=confirm_settings(args),
    )


def cmd_search(args: argparse.Namespace) -> int:
    from nas.study.optimize import SearchInterrupted, run_workers, start_search

    options = search_options(args)
    run = start_search(options, data_dir(args), args.cache_dir, args.no_cache)
    stale = (
        f" | {run.stale_trials} trial(s) of dead workers (process gone, or no heartbeat for {options.grace_s} s) failed and queued again"
        if run.stale_trials
        else ""
    )
    say(
        f"study '{options.location.name}' in {options.location.study_dir} | storage {options.location.storage_url} | "
        f"budget {options.budget.describe()} | space {options.space.source} | weights {', '.join(options.searched_space.weights)} | "
        f"{run.finished_before} of {options.trials} trials already finished{stale}"
    )
    if run.finished_before < options.trials:
        from nas.study.confirm import stored_runs
        from nas.study.estimate import estimate_search
        from nas.study.record import read_records

        records, done = read_records(run.study), len(stored_runs(run.study.user_attrs))
        estimate = estimate_search(options, run.split, records, waveforms=run.waveforms, cache=feature_cache(args), confirm_done=done)
        say(estimate.describe())
    try:
        with SearchDisplay() as display:
            run_workers(run, display.update)
    except SearchInterrupted as stop:
        say(f"nas: interrupted; {stop.finished} finished trial(s) are saved in {options.location.storage_url}. "
            "Run the same command again to resume.", error_console)  # fmt: skip
        return EXIT_INTERRUPTED
    if run.killed_workers:
        say(f"warning: {len(run.killed_workers)} worker(s) were killed (signal {', '.join(map(str, run.killed_workers))}); "
            "the others finished the study, their trials included (run again after the heartbeat)", error_console)  # fmt: skip
    if options.confirms:
        stopped = confirm_study(options.location, options.confirm, options.workers, args)
        if stopped is not None:
            return stopped
    return report_study(options.location, time.perf_counter() - run.started)


class SearchDisplay:
    """A live line in a terminal; in a log or pipe, one line each time a trial finishes."""

    def __enter__(self) -> SearchDisplay:
        from rich.live import Live

        self.live = Live(console=console, refresh_per_second=2) if console.is_terminal else None
        self.last_finished = None
        self.printed: set[int] = set()  # trials already given their line
        if self.live:
            self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self.live.stop()

    def update(self, progress) -> None:
        from nas.report.report import trial_line

        for record in progress.finished_records:  # a line per finished trial (above the live line in a terminal)
            if record.number not in self.printed:
                self.printed.add(record.number)
                say(trial_line(record))
        best = progress.best
        best_text = f"{100 * best.score.value:.2f}% val at {format_bytes(best.total_bytes)} (trial {best.number})" if best else "-"
        remaining = f"{progress.remaining_s / 60:.1f} min" if progress.remaining_s is not None else "estimating"
        text = (
            f"trials {progress.finished}/{progress.target} | running {progress.running} | over budget (pruned) {progress.over_budget} | "
            f"stopped early {progress.stopped} | "
            f"elapsed {progress.elapsed_s / 60:.1f} min | remaining ~{remaining} | best within budget: {best_text}"
        )
        if self.live:
            self.live.update(text)
        elif progress.finished != self.last_finished:
            say(text)
            self.last_finished = progress.finished


def report_study(location, seconds: float | None = None) -> int:
    """The front table and files of a study; after a search, also how long this run took."""
    import shutil

    from nas.report.report import confirmed_table, front_table, read_summary, write_front_files
    from nas.study.optimize import load_existing_study

    study, settings = load_existing_study(location)
    summary = read_summary(study, location.name, settings)
    write_front_files(summary, location.study_dir)
    write_report(summary, settings, location.study_dir / REPORT_PAGE)
    finished, over, stopped = summary.finished, summary.over_budget, summary.stopped
    if not summary.front:
        raise NasError(
            f"--budget-kb {settings.budget_bytes / KB:.2f} ({settings.budget_bytes:,} B): no configuration of the search space fits "
            f"({len(over)} of {len(finished)} sampled trials were over budget); expected a larger budget or a smaller space"
        )
    console.print(front_table(summary))
    if summary.confirmed:
        console.print(confirmed_table(summary))
    took = f" | this run {seconds / 60:.1f} min" if seconds is not None else ""
    say(
        f"{len(finished)} finished trials ({len(over)} over budget = {100 * len(over) / len(finished):.0f}%, pruned before training; "
        f"{len(stopped)} stopped early at a rung) | "
        f"validation hypervolume {summary.hypervolume():.4f}{took} | files: {location.study_dir}/pareto.json, pareto.csv, trials.csv, "
        f"{REPORT_PAGE}"
    )
    if not summary.confirmed:
        say("the front is not confirmed: each point is one training (one draw); confirm it with: nas pareto --confirm"
            + (f" --study {location.name}" if location.name != DEFAULT_STUDY else ""))  # fmt: skip
    install = "" if shutil.which("optuna-dashboard") else " (install it with: .venv/bin/pip install -e '.[dashboard]')"
    say(f"dashboard: optuna-dashboard {location.storage_url}{install}")
    return 0


def confirm_study(location, confirm, workers: int, args: argparse.Namespace) -> int | None:
    """Retrain the front's candidates (nas.study.confirm); None when done, else the exit code."""
    from nas.study.confirm import plan_confirmation, run_confirmation, store_run
    from nas.study.optimize import load_existing_study
    from nas.study.record import read_records

    study, settings = load_existing_study(location)
    records = read_records(study)
    chosen, tasks = plan_confirmation(
        records, study.user_attrs, settings, confirm, data_dir(args), location.study_dir,
        args.cache_dir, args.no_cache,
    )  # fmt: skip
    if not tasks:
        return None
    folds = sorted({t.job.split for t in tasks if t.job.split.startswith("speaker:")})
    say(
        f"confirming {len(chosen)} front point(s) (trials {', '.join(str(r.number) for r in chosen)}): {len(tasks)} run(s) of the "
        f"study's recipe ({tasks[0].recipe.epochs} epochs, patience {tasks[0].recipe.patience}) to go, {workers} at a time "
        f"(seeds 0-{confirm.seeds - 1} on '{settings.split}'"
        + (f"; folds {', '.join(f.removeprefix('speaker:') for f in folds)} held out" if folds else "")
        + ")"
    )

    def on_run(run) -> None:
        store_run(study, run)
        say(f"confirmed trial {run.trial}, {run.split}, seed {run.seed}: val {100 * run.val.value:.2f}%, "
            f"test {100 * run.test.value:.2f}% (best epoch {run.best_epoch}) | {run.seconds:.0f} s")  # fmt: skip

    try:
        run_confirmation(tasks, workers, on_run)
    except KeyboardInterrupt:
        say(f"nas: interrupted; the finished confirmation runs are saved in {location.storage_url}. "
            "Run the same command again to resume.", error_console)  # fmt: skip
        return EXIT_INTERRUPTED
    return None


def trial_checkpoint(record, study, location, args: argparse.Namespace) -> Path:
    """A trial's checkpoint on this host (fetched from the study's artifact store when another host trained it)."""
    from nas.study.artifacts import local_checkpoint, study_store

    return local_checkpoint(record, study_store(study, args.artifacts), location)


def study_location(args: argparse.Namespace):
    return StudyLocation(args.study, args.storage, Path(args.results_dir))


def cmd_studies(args: argparse.Namespace) -> int:
    from nas.report.report import list_studies, studies_table

    results_dir = Path(args.results_dir)
    listings = list_studies(results_dir)
    if not listings:
        say(f"no studies under {results_dir} (a study is a folder with the study.db that 'nas search' writes)")
        return 0
    console.print(studies_table(listings, results_dir))
    return 0


def confirm_settings(args: argparse.Namespace):
    from nas.study.confirm import ConfirmSettings

    return ConfirmSettings(args.confirm_seeds, args.confirm_folds, args.confirm_points)


def cmd_pareto(args: argparse.Namespace) -> int:
    location = study_location(args)
    if args.confirm:
        stopped = confirm_study(location, confirm_settings(args), args.workers, args)
        if stopped is not None:
            return stopped
    return report_study(location)


REPORT_PAGE = "report.html"  # in the study folder, written by search, pareto and report


def write_report(summary, settings, path: Path) -> None:
    from nas.report.studypage import study_page

    study_page(summary, settings).write(path)


def cmd_report(args: argparse.Namespace) -> int:
    from nas.report.report import read_summary
    from nas.study.optimize import load_existing_study

    location = study_location(args)
    study, settings = load_existing_study(location)
    summary = read_summary(study, location.name, settings)
    path = Path(args.out) if args.out else location.study_dir / REPORT_PAGE
    write_report(summary, settings, path)
    say(f"wrote {path} ({len(summary.records)} trials, {len(summary.front)} front points; one file, opens offline in a browser)")
    return 0


# ------------------------------------------------------------------------------ export/evaluate
def cmd_export(args: argparse.Namespace) -> int:
    from nas.bundle.export import export_trial, select_export
    from nas.study.confirm import confirmed_points
    from nas.study.optimize import load_existing_study
    from nas.study.record import read_records

    location = study_location(args)
    study, settings = load_existing_study(location)
    records = read_records(study)
    points = confirmed_points(records, study.user_attrs, settings.split)
    record, point = select_export(records, points, settings.budget, args.trial, args.max_kb, location.name)
    if point is None:  # the trial's own checkpoint, from the artifact store when another host trained it
        record = replace(record, checkpoint=str(trial_checkpoint(record, study, location, args)))
        if points and args.trial is None:
            say(f"trial {record.number} is not confirmed (one training, one draw): no confirmed point fits the limit "
                f"(confirmed: {', '.join(format_bytes(p.total_bytes) for p in points)})")  # fmt: skip
    out_dir = Path(args.out) if args.out else location.study_dir / "exports" / f"trial-{record.number:04d}"
    confirmed = point.to_dict() if point is not None else None
    description = export_trial(record, out_dir, optional_data_dir(args), measure=not args.no_measure, confirmed=confirmed)
    if confirmed is not None:
        say(
            f"trial {record.number} is confirmed: mean val {confirmed['val_mean']:.2f}%, mean test {confirmed['test_mean']:.2f}%"
            f" over seeds {', '.join(map(str, confirmed['seeds']))}"
            + (f", held-out speakers {confirmed['held_out_mean']:.2f}%" if confirmed["held_out_mean"] is not None else "")
            + f"; exporting seed {confirmed['exported_seed']} (closest to the mean on validation)"
        )
    accuracy, memory = description["accuracy"], description["memory"]
    say(
        f"exported trial {record.number} to {out_dir}: weights.bin {description['weights_bin_bytes']:,} B, "
        f"total {format_bytes(memory['total_bytes'])} (flash {memory['flash_bytes']:,} B + RAM {memory['ram_bytes']:,} B), "
        f"test {accuracy['test_correct']}/{accuracy['test_total']} (integer engine); check with: nas evaluate {out_dir} --c"
    )
    for compiler, figures in description["compiled"].items():
        if compiler == "qemu":
            say(
                f"qemu ({figures['machine']}): {figures['golden_vectors_matching']}/{figures['golden_vectors']} golden vectors identical, "
                f"about {figures['instructions_per_frame']:,} instructions per frame"
            )
        else:
            say(
                f"{compiler} -Os: .rodata {figures['rodata_bytes']:,} B, .bss {figures['bss_bytes']:,} B, "
                f".data {figures['data_bytes']:,} B, deepest stack {figures['max_stack_bytes']} B, code {figures['text_bytes']:,} B"
            )
    if not description["golden_vectors"] and description["feature_config"]["frontend"] == "integer":
        say("no golden vectors: the recordings were not found (pass --data-dir or set NAS_DATA_DIR)", error_console)
    return 0


def optional_data_dir(args: argparse.Namespace) -> Path | None:
    try:
        return data_dir(args)
    except NasError:
        return None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nas.bundle.export import evaluate, load_export
    from nas.report.figures import confusion_figure
    from nas.report.report import confusion_table

    result = evaluate(load_export(Path(args.export_dir)), data_dir(args), args.split, args.part, feature_cache(args), run_c=args.c)
    say(f"{args.export_dir}: integer engine on the {result.part} part of split '{result.split}': {result.accuracy}")
    if result.c_predicted is not None:
        same = int((result.c_predicted == result.predicted).sum())
        logits = "identical logits" if result.c_logits_identical else "LOGITS DIFFER"
        say(f"exported C (host gcc, fed the PCM): {same}/{len(result.predicted)} classes as the engine's, {logits}")
        if not result.c_logits_identical or same != len(result.predicted):
            return 1
    if result.overlap:
        say(
            f"warning: {result.overlap} of these {result.accuracy.total} files were in the train part of split "
            f"'{result.trained_split}' that the model learned from; this is not a held-out score",
            error_console,
        )
    if result.reproduces is not None:
        say(f"{'reproduces' if result.reproduces else 'does not reproduce'} model.json: {result.stored.correct}/{result.stored.total}")
    say(result.classification_report())
    console.print(confusion_table(result.confusion()))
    if args.html:
        title = f"{args.export_dir}: {result.part} part of split '{result.split}', {result.accuracy}"
        confusion_figure({f"{result.part} part": result.confusion()}, title).write_html(args.html, include_plotlyjs=True)
        say(f"wrote {args.html}")
    return 1 if result.reproduces is False else 0


HANDLERS = {
    "data verify": cmd_data_verify,
    "data inspect": cmd_data_inspect,
    "data download": cmd_data_download,
    "train": cmd_train,
    "crossval": cmd_crossval,
    "memory": cmd_memory,
    "search": cmd_search,
    "studies": cmd_studies,
    "pareto": cmd_pareto,
    "report": cmd_report,
    "export": cmd_export,
    "evaluate": cmd_evaluate,
}


def main(argv: Sequence[str] | None = None) -> int:
    from nas.cli.options import build_parser

    args = build_parser().parse_args(argv)
    try:
        return HANDLERS[args.command](args)
    except NasError as error:
        say(f"nas: error: {' '.join(str(error).split())}", error_console)  # a library message may hold line breaks
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        say("nas: interrupted; finished work is saved (see the paths above)", error_console)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

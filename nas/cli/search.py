"""`nas search`: run (or resume) a study, confirm its front, print it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nas.cli.options import (
    SPLIT_HELP,
    STORED,
    add_budget_options,
    add_compute_budget_option,
    add_confirm_options,
    add_data_options,
    add_json_option,
    add_split_option,
    add_study_options,
    add_target_option,
)
from nas.cli.output import EXIT_INTERRUPTED, console, data_dir, error_console, feature_cache, json_mode, say
from nas.cli.studies import confirm_settings, confirm_study, report_study
from nas.core import limits
from nas.core.urls import mask_passwords
from nas.data.dataset import OFFICIAL
from nas.device.memory import format_bytes
from nas.study.request import SearchRequest
from nas.study.settings import (
    DEFAULT_HEARTBEAT_S,
    DEFAULT_RESULTS,
    DEFAULT_SAMPLER,
    DEFAULT_SEED,
    DEFAULT_TRIALS,
    DEFAULT_WEIGHTS,
    DEFAULT_WORKERS,
    GRACE_HEARTBEATS,
    MAX_RETRIES,
    SAMPLERS,
    SEARCH_WEIGHTS,
    SearchOptions,
    StudyLocation,
)


def add_search_command(commands) -> None:
    """nas search. The study's settings (budget, weights, space, split, folds, seed, sampler,
    --quick) default to None: a resume reads them from the study (nas.study.request)."""
    search = commands.add_parser("search", help="search architectures and formats for the Pareto front of accuracy against memory")
    add_budget_options(search, stored=True)
    add_compute_budget_option(search, stored=True)
    add_target_option(search, stored=True)
    search.add_argument(
        "--weights",
        choices=SEARCH_WEIGHTS,
        help=f"weight scheme(s) to search; 'any' searches all (default: {STORED}; else {DEFAULT_WEIGHTS})",
    )
    search.add_argument(
        "--space",
        help=f"search space: a TOML file, or a bundled space's name (default: {STORED}; else nas/spaces/default.toml)",
    )
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
        help=f"sampler and training seed; with --workers 1 the same seed gives the same trials (default: {STORED}; else {DEFAULT_SEED})",
    )
    search.add_argument(
        "--sampler",
        choices=SAMPLERS,
        help=f"Optuna sampler, measured against each other in docs/search.md (default: {STORED}; else {DEFAULT_SAMPLER})",
    )
    add_split_option(search, default=None, help=f"{SPLIT_HELP} (default: {STORED}; else {OFFICIAL})")
    search.add_argument(
        "--speaker-folds",
        type=limits.SPEAKER_FOLDS.parse,
        help="select for new voices: each trial also trains on this many leave-one-speaker-out folds and is scored on their "
        "validation speakers (each fold costs one more training per trial: K+1 in all; 0: the split's validation part) "
        f"(default: {STORED}; else {SearchOptions.speaker_folds})",
    )
    search.add_argument(
        "--quick",
        action="store_true",
        default=None,
        help="a first look in minutes: trials trained 40 epochs (patience 15, 4 copies) instead of the full recipe, and the front "
        "not confirmed; its own study (<weights>-<budget>kb-quick)",
    )
    add_json_option(search, "the final summary")
    add_confirm_options(search)
    add_study_options(search, None)
    add_data_options(search)
    search.set_defaults(command="search")


def search_request(args: argparse.Namespace) -> SearchRequest:
    """The study settings the options name (None where not given)."""
    return SearchRequest(
        budget_kb=args.budget_kb,
        budget_scope=args.budget_scope,
        flash_kb=args.flash_kb,
        ram_kb=args.ram_kb,
        mcu_mhz=args.mcu_mhz,
        target=args.target,
        weights=args.weights,
        space=args.space,
        split=args.split,
        speaker_folds=args.speaker_folds,
        seed=args.seed,
        sampler=args.sampler,
        quick=args.quick,
    )


def search_options(args: argparse.Namespace):
    from nas.study.storage import search_options as resolve_options

    request = search_request(args)
    location = StudyLocation(args.study or request.study_name(), args.storage, Path(args.results_dir))
    return resolve_options(
        request,
        location,
        trials=args.trials,
        timeout_s=args.timeout,
        workers=args.workers,
        heartbeat_s=args.heartbeat,
        artifacts=args.artifacts,
        confirm=confirm_settings(args),
    )


def cmd_search(args: argparse.Namespace) -> int:
    from nas.study.optimize import SearchInterrupted, run_workers, start_search

    as_json = json_mode(args)
    options = search_options(args)
    run = start_search(options, data_dir(args), args.cache_dir, args.no_cache)
    stale = (
        f" | {run.stale_trials} trial(s) of dead workers (process gone, or no heartbeat for {options.grace_s} s) failed and queued again"
        if run.stale_trials
        else ""
    )
    say(
        f"study '{options.location.name}' in {options.location.study_dir} | storage {options.location.display_url} | "
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
        say(f"nas: interrupted; {stop.finished} finished trial(s) are saved in {options.location.display_url}. "
            f"Run the same command again to resume (or just: {resume_command(args, options.location.name)}).", error_console)  # fmt: skip
        return EXIT_INTERRUPTED
    if run.killed_workers:
        say(f"warning: {len(run.killed_workers)} worker(s) were killed (signal {', '.join(map(str, run.killed_workers))}); "
            "the others finished the study, their trials included (run again after the heartbeat)", error_console)  # fmt: skip
    if options.confirms:
        stopped = confirm_study(options.location, options.confirm, options.workers, args)
        if stopped is not None:
            return stopped
    return report_study(options.location, time.perf_counter() - run.started, as_json="search" if as_json else None)


def resume_command(args: argparse.Namespace, study_name: str) -> str:
    """The shortest command that resumes the study: its settings are stored in it."""
    where = [f"--storage {mask_passwords(args.storage)}"] if args.storage else []
    where += [f"--results-dir {args.results_dir}"] if Path(args.results_dir) != DEFAULT_RESULTS else []
    where += [f"--data-dir {args.data_dir}"] if args.data_dir else []
    return " ".join(["nas search --study", study_name, *where])


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

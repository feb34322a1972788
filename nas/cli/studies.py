"""`nas studies`, `nas pareto` and `nas report`: what a stored study holds."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.options import add_confirm_options, add_data_options, add_json_option, add_study_options
from nas.cli.output import EXIT_INTERRUPTED, console, data_dir, error_console, json_mode, print_json, say, study_location
from nas.core import limits
from nas.core.errors import NasError
from nas.device.memory import KB
from nas.study.confirm import ConfirmSettings
from nas.study.settings import (
    DEFAULT_RESULTS,
    DEFAULT_STUDY,
    DEFAULT_WORKERS,
)


def add_study_commands(commands) -> None:
    """nas studies, pareto, report: commands on a stored study"""
    studies = commands.add_parser("studies", help="list the studies under the results folder: budget, weights, trials, best point")
    studies.add_argument("--results-dir", default=str(DEFAULT_RESULTS), help="where study folders live")
    add_json_option(studies, "the studies")
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
    add_json_option(pareto, "the front, the settings and the counts")
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


REPORT_PAGE = "report.html"  # in the study folder, written by search, pareto and report


def report_study(location, seconds: float | None = None, as_json: str | None = None) -> int:
    """The front table and files of a study; after a search, also how long this run took.
    `as_json`: the command whose --json document to print instead (nas.report.report.study_document)."""
    import shutil

    from nas.report.report import read_summary, study_document, write_front_files
    from nas.report.tables import confirmed_table, front_table
    from nas.study.storage import load_existing_study

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
    if as_json:
        files = {name: str(location.study_dir / name) for name in ("pareto.json", "pareto.csv", "trials.csv", REPORT_PAGE)}
        print_json(as_json, study_document(summary, settings) | {"storage": location.display_url, "files": files, "run_seconds": seconds})
        return 0
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
    say(f"dashboard: optuna-dashboard {location.display_url}{install}")
    return 0


def confirm_settings(args: argparse.Namespace):

    return ConfirmSettings(args.confirm_seeds, args.confirm_folds, args.confirm_points)


def confirm_study(location, confirm, workers: int, args: argparse.Namespace) -> int | None:
    """Retrain the front's candidates (nas.study.confirm); None when done, else the exit code."""
    from nas.study.confirm import plan_confirmation, run_confirmation, store_run
    from nas.study.record import read_records
    from nas.study.storage import load_existing_study

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
        say(f"nas: interrupted; the finished confirmation runs are saved in {location.display_url}. "
            "Run the same command again to resume.", error_console)  # fmt: skip
        return EXIT_INTERRUPTED
    return None


def cmd_studies(args: argparse.Namespace) -> int:
    from nas.report.report import list_studies, listing_document
    from nas.report.tables import studies_table

    results_dir = Path(args.results_dir)
    listings = list_studies(results_dir)
    if json_mode(args):
        print_json("studies", {"results_dir": str(results_dir), "studies": [listing_document(x) for x in listings]})
        return 0
    if not listings:
        say(f"no studies under {results_dir} (a study is a folder with the study.db that 'nas search' writes)")
        return 0
    console.print(studies_table(listings, results_dir))
    return 0


def cmd_pareto(args: argparse.Namespace) -> int:
    location = study_location(args)
    as_json = json_mode(args)
    if args.confirm:
        stopped = confirm_study(location, confirm_settings(args), args.workers, args)
        if stopped is not None:
            return stopped
    return report_study(location, as_json="pareto" if as_json else None)


def write_report(summary, settings, path: Path) -> None:
    from nas.report.studypage import study_page

    study_page(summary, settings).write(path)


def cmd_report(args: argparse.Namespace) -> int:
    from nas.report.report import read_summary
    from nas.study.storage import load_existing_study

    location = study_location(args)
    study, settings = load_existing_study(location)
    summary = read_summary(study, location.name, settings)
    path = Path(args.out) if args.out else location.study_dir / REPORT_PAGE
    write_report(summary, settings, path)
    say(f"wrote {path} ({len(summary.records)} trials, {len(summary.front)} front points; one file, opens offline in a browser)")
    return 0

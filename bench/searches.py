"""Whole default searches, side by side (issue 13): the old default against the new one, and the
samplers against random search. Each run is `nas search --budget-kb 36 --weights pow2` as a user
runs it (2 workers, a subprocess), on a feature cache filled beforehand, so the runs compare
searching, not who paid for the features; nothing else should run on the machine meanwhile.

    .venv/bin/python bench/searches.py compare --seeds 0 1 2    # old default (git ref) vs this tree
    .venv/bin/python bench/searches.py samplers --seeds 0 1 2   # tpe, nsga2, gp at 30 trials; random at 60
    .venv/bin/python bench/searches.py confirmed --seeds 0 1 2  # issue 21: confirmed fronts, old default vs this tree
    .venv/bin/python bench/searches.py recount                  # coverage of confirmed runs recorded without it
    .venv/bin/python bench/searches.py report                   # bench/results/searches.md from the runs

The old default runs from a git worktree of `--old-ref` (default: the last commit before issue 13)
with this tree's virtual environment. Every finished run is appended to
bench/results/searches.jsonl at once (a run takes 5-15 minutes; the set takes hours), and a run
already there is skipped, so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RUNS = BENCH / "results" / "searches.jsonl"
REPORT = BENCH / "results" / "searches.md"
CONFIRM_OLD_REF = "8831d2d"  # the default search issue 21 measured: 40 trials of 40 epochs x 4 copies, no confirmation
SMALL_KB = 8  # issue 21's second done-when point: the best confirmed point within 8 kB
OLD_REF = "71bf18d"  # the default search before issue 13: nn.GRU, every trial trained 40 epochs, TPE
BUDGET_KB = 36
SAMPLER_TRIALS = {"tpe": 30, "nsga2": 30, "gp": 30, "random": 60}
EQUAL_TRIALS = 30  # where random search's 60-trial runs are also read at their first 30 trials
# what each label's runs were (the report's legend; each run's commit is in the jsonl)
LABELS = {
    f"old-{OLD_REF}": "the default search before issue 13: nn.GRU, every trial 40 epochs, 30 trials",
    "new": "issue 13's first rules: the GRU kernel, rungs at epochs 5/10/20 with 1 point at every rung (commits 6cc98f1-f98bf53)",
    "new40": "the same with a default of 40 trials (f98bf53)",
    "new40m": "rungs with a margin per rung, 8/3/1 points, 40 trials (fdc5a65 on)",
    f"confirmed-old-{CONFIRM_OLD_REF}": "issue 21's starting point (8831d2d): its search as it ran, then its front confirmed by this tree "
    "at the full recipe (the same confirmation as the new default's)",
    "confirmed-new": "issue 21's default: size bands, the full recipe as top fidelity, the front confirmed (3 seeds, 2 speaker folds)",
}


def tree_commit(tree: Path) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True, check=True).stdout.strip()
    # only the package decides what a search does: edits elsewhere (docs, tests) do not mark the run
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "nas"], cwd=tree, capture_output=True, text=True).stdout
    return commit + ("+changes" if dirty.strip() else "")


def old_tree(ref: str) -> Path:
    """A worktree of `ref` (made once, kept in the temporary folder)."""
    path = Path(tempfile.gettempdir()) / f"nas-bench-{ref}"
    if not (path / "nas").is_dir():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), ref], cwd=REPO, check=True, capture_output=True)
    return path


def done_runs() -> list[dict]:
    return [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()] if RUNS.exists() else []


def measure(run: dict, tree: Path, data_dir: Path, cache_dir: Path, scratch: Path) -> dict:
    """One `nas search` in `tree`, timed; then its study read with this tree's reports."""
    from nas.device.memory import Budget
    from nas.study.pareto import front_hypervolume, pareto_front
    from nas.study.record import read_records
    from nas.study.settings import StudyLocation
    from nas.study.storage import load_existing_study

    study = f"{run['label']}-{run['sampler']}-{run['trials']}-s{run['seed']}"
    results = scratch / "results"
    shutil.rmtree(results / study, ignore_errors=True)  # a run cut short before: start it again
    argv = [sys.executable, "-m", "nas.cli", "search", "--budget-kb", str(BUDGET_KB), "--weights", "pow2"]
    argv += ["--seed", str(run["seed"]), "--sampler", run["sampler"], "--trials", str(run["trials"])]
    argv += ["--study", study, "--results-dir", str(results), "--data-dir", str(data_dir)]
    env = os.environ | {"PYTHONPATH": str(tree), "NAS_CACHE_DIR": str(cache_dir)}
    started = time.perf_counter()
    process = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}):\n{process.stderr[-2000:]}")
    loaded, _ = load_existing_study(StudyLocation(study, None, results))
    records = read_records(loaded)
    budget = Budget.from_kb(BUDGET_KB)
    out = run | {
        "commit": tree_commit(tree),
        "date": datetime.date.today().isoformat(),
        "cpu_cores": os.cpu_count(),
        "wall_s": wall,
        "finished": sum(r.finished for r in records),
        "trained": sum(r.trained for r in records),
        "stopped": sum(r.stopped for r in records),
        "epochs": sum(r.epochs_run or 0 for r in records),
        "front_points": len(pareto_front(records, budget)),
        "val_hypervolume": front_hypervolume(records, budget, "val"),
        "best_val": max((r.val.value for r in pareto_front(records, budget)), default=None),
    }
    if run["trials"] > EQUAL_TRIALS:
        first = [r for r in records if r.number < EQUAL_TRIALS]
        out[f"val_hypervolume_first_{EQUAL_TRIALS}"] = front_hypervolume(first, budget, "val")
    return out


def confirm_old_study(study: str, results: Path, data_dir: Path, cache_dir: Path) -> float:
    """Confirm an old study's front as this tree confirms its own: the default space's full recipe
    (the old study stores its own 40 epochs), and the size bands of this tree's size axis (the old
    search had none, so its candidates would be chosen by accuracy alone). Returns the wall time."""
    from dataclasses import replace

    from nas.device.memory import Budget
    from nas.study.confirm import ConfirmSettings, plan_confirmation, run_confirmation, store_run
    from nas.study.record import read_records
    from nas.study.settings import StudyLocation
    from nas.study.space import load_space
    from nas.study.storage import load_existing_study
    from nas.study.trials import search_size_range

    loaded, settings = load_existing_study(StudyLocation(study, None, results))
    space = load_space()
    full = {key: value for key, value in space.values().items() if key.startswith("training.")}
    settings = replace(settings, space={**settings.space, **full})
    sizes = search_size_range(space, Budget.from_kb(BUDGET_KB))
    records = [replace(r, size_band=sizes.band(r.total_bytes)) if r.total_bytes else r for r in read_records(loaded)]
    _, tasks = plan_confirmation(records, loaded.user_attrs, settings, ConfirmSettings(), data_dir, results / study, str(cache_dir))
    started = time.perf_counter()
    run_confirmation(tasks, 2, lambda run: store_run(loaded, run))
    return time.perf_counter() - started


def confirmed_figures(point) -> dict | None:
    """A confirmed point as the benchmark keeps it: its configuration and the means over seeds."""
    if point is None:
        return None
    held_out = point.held_out()
    return {
        "trial": point.record.number, "total_bytes": point.total_bytes, "model": point.record.describe(), "config": point.record.params,
        "seeds": list(point.seeds),
        "val": list(point.mean("val")), "test": list(point.mean("test")),
        "held_out": list(held_out) if held_out else None, "held_out_speakers": list(point.held_out_speakers),
    }  # fmt: skip


def study_coverage(study_db: Path) -> dict:
    """bench/coverage.py's figures of a finished study (trials per band, upper-half share of the
    trials that trained, stopped ones included, and the front-above-half-the-budget check)."""
    sys.path.insert(0, str(BENCH))
    from coverage import coverage

    return coverage(study_db)


def recount(studies_dir: Path) -> None:
    """Coverage of the confirmed runs recorded before it was bench/coverage.py's (their first
    figure counted only trials trained to the end), from their studies kept in `studies_dir`."""
    runs = done_runs()
    for run in runs:
        study_db = studies_dir / "results" / f"{run['label']}-s{run['seed']}" / "study.db"
        if run["label"].startswith("confirmed-") and "coverage" not in run and study_db.is_file():
            run.pop("upper_half_share", None)
            run["coverage"] = study_coverage(study_db)
    RUNS.write_text("".join(json.dumps(run) + "\n" for run in runs))


def measure_confirmed(run: dict, tree: Path, data_dir: Path, cache_dir: Path, scratch: Path) -> dict:
    """One default `nas search` as a user runs it (the new default confirms its own front; the old
    one's front is confirmed afterwards by this tree), timed; then its confirmed figures."""
    import re

    from nas.device.memory import Budget
    from nas.study.confirm import confirmed_points, select_confirmed
    from nas.study.record import read_records
    from nas.study.settings import StudyLocation
    from nas.study.storage import load_existing_study

    study = f"{run['label']}-s{run['seed']}"
    results = scratch / "results"
    shutil.rmtree(results / study, ignore_errors=True)
    argv = [sys.executable, "-m", "nas.cli", "search", "--budget-kb", str(BUDGET_KB), "--weights", "pow2", "--seed", str(run["seed"])]
    argv += ["--study", study, "--results-dir", str(results), "--data-dir", str(data_dir)]
    env = os.environ | {"PYTHONPATH": str(tree), "NAS_CACHE_DIR": str(cache_dir)}
    started = time.perf_counter()
    process = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True)
    search_wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}):\n{process.stderr[-2000:]}")
    estimate = re.search(r"estimate: about ([0-9.]+) (s|min)", process.stdout)
    estimate_s = None if estimate is None else float(estimate.group(1)) * (60 if estimate.group(2) == "min" else 1)
    confirm_wall = 0.0 if tree == REPO else confirm_old_study(study, results, data_dir, cache_dir)
    loaded, settings = load_existing_study(StudyLocation(study, None, results))
    records = read_records(loaded)
    points = confirmed_points(records, loaded.user_attrs, settings.split)
    return run | {
        "commit": tree_commit(tree), "confirmed_by": tree_commit(REPO), "date": datetime.date.today().isoformat(),
        "cpu_cores": os.cpu_count(), "search_wall_s": search_wall, "confirm_wall_s": confirm_wall,
        "wall_s": search_wall + confirm_wall, "estimate_s": estimate_s,
        "finished": sum(r.finished for r in records), "trained": sum(r.trained for r in records),
        "stopped": sum(r.stopped for r in records),
        "coverage": study_coverage(results / study / "study.db"),
        "confirmed_points": len(points),
        "best": confirmed_figures(select_confirmed(points, Budget.from_kb(BUDGET_KB))),
        "best_small": confirmed_figures(select_confirmed(points, Budget.from_kb(SMALL_KB))),
    }  # fmt: skip


def warm(data_dir: Path, cache_dir: Path) -> None:
    """Every front-end shape of the default space into the cache (the suite's own filling)."""
    sys.path.insert(0, str(BENCH))
    from suite import warm_cache

    from nas.data.dataset import load_split
    from nas.device.memory import Budget
    from nas.study.settings import SearchOptions, StudyLocation
    from nas.study.space import load_space

    options = SearchOptions(Budget.from_kb(BUDGET_KB), load_space(), "pow2", StudyLocation())
    _, waveforms = load_split(data_dir, "official")
    seconds = warm_cache(options, waveforms, str(cache_dir))
    print(f"feature cache {cache_dir}: filled in {seconds:.0f} s", flush=True)


def planned(mode: str, seeds: list[int], old_ref: str, label: str, samplers: list[str]) -> list[tuple[dict, Path]]:
    """compare: this tree's default search (its sampler and trial count) against the old default
    (TPE, 30 trials); samplers: each at SAMPLER_TRIALS."""
    from nas.study.settings import DEFAULT_SAMPLER, DEFAULT_TRIALS

    if mode == "confirmed":  # the new default (with its confirmation) first: it is the run that must fit 30 minutes
        old, new_run = old_tree(CONFIRM_OLD_REF), dict(label="confirmed-new", sampler=DEFAULT_SAMPLER, trials=DEFAULT_TRIALS)
        old_run = dict(label=f"confirmed-old-{CONFIRM_OLD_REF}", sampler="tpe", trials=40)
        return [pair for seed in seeds for pair in ((new_run | {"seed": seed}, REPO), (old_run | {"seed": seed}, old))]
    if mode == "compare":  # old and new take turns, seed by seed, so machine drift hits both
        old = old_tree(old_ref)
        return [pair for seed in seeds for pair in ((dict(label=label, sampler=DEFAULT_SAMPLER, trials=DEFAULT_TRIALS, seed=seed), REPO),
                                                    (dict(label=f"old-{old_ref}", sampler="tpe", trials=30, seed=seed), old))]  # fmt: skip
    return [(dict(label=label, sampler=sampler, trials=trials, seed=seed), REPO)
            for seed in seeds for sampler, trials in SAMPLER_TRIALS.items() if sampler in samplers]  # fmt: skip


def report() -> str:
    everything = done_runs()
    runs = [r for r in everything if not r["label"].startswith("confirmed-")]
    lines = ["# Whole searches side by side", "", "Written by `python bench/searches.py report` from "
             "[searches.jsonl](searches.jsonl) (one line per run, with its commit, date and machine). "
             f"`nas search --budget-kb {BUDGET_KB} --weights pow2`, 2 workers, warm feature cache; hypervolume: validation, "
             "accuracy x share of the budget unused.", ""]  # fmt: skip
    lines += [f"- **{label}**: {meaning}" for label, meaning in LABELS.items()] + [""]
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["label"], run["sampler"], run["trials"]), []).append(run)
    lines += ["| search | trials | seeds | wall time, min (mean; each) | trained / stopped early | epochs | front points "
              "| val hypervolume (mean; each) | best val accuracy (mean; each) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for (label, sampler, trials), group in sorted(groups.items()):
        group.sort(key=lambda r: r["seed"])
        walls = [r["wall_s"] / 60 for r in group]
        volumes = [r["val_hypervolume"] for r in group]
        bests = [r["best_val"] for r in group]
        lines.append(
            f"| {label} {sampler} | {trials} | {', '.join(str(r['seed']) for r in group)} | {statistics.mean(walls):.1f} "
            f"({', '.join(f'{w:.1f}' for w in walls)}) | {statistics.mean(r['trained'] for r in group):.1f} / "
            f"{statistics.mean(r['stopped'] for r in group):.1f} | {statistics.mean(r['epochs'] for r in group):.0f} | "
            f"{statistics.mean(r['front_points'] for r in group):.1f} | "
            f"{statistics.mean(volumes):.4f} ({', '.join(f'{v:.4f}' for v in volumes)}) | "
            f"{100 * statistics.mean(bests):.2f}% ({', '.join(f'{100 * b:.2f}' for b in bests)}) |"
        )
        key = f"val_hypervolume_first_{EQUAL_TRIALS}"
        if all(key in r for r in group):
            firsts = [r[key] for r in group]
            lines.append(f"| {label} {sampler}, its first {EQUAL_TRIALS} trials | {EQUAL_TRIALS} | | | | | | "
                         f"{statistics.mean(firsts):.4f} ({', '.join(f'{v:.4f}' for v in firsts)}) | |")  # fmt: skip
    lines += paired_lines(runs)
    lines += confirmed_lines([r for r in everything if r["label"].startswith("confirmed-")])
    return "\n".join(lines) + "\n"


def _figure(values: list | None) -> str:
    return "-" if not values else f"{values[0]:.2f}% [{values[1]:.2f}, {values[2]:.2f}]"


def confirmed_lines(runs: list[dict]) -> list[str]:
    """Issue 21's comparison: each search's best confirmed points (within the budget and within
    SMALL_KB), as means over the confirmation's seeds with 95% intervals, and the mean over searches."""
    if not runs:
        return []
    lines = ["", f"## Confirmed fronts (issue 21): `make search` as it ships, against {CONFIRM_OLD_REF}'s, confirmed the same way", "",
             "Each search's front candidates retrained at the full recipe (100 epochs, patience 30, 8 copies) on seeds 0-2 "
             "(validation, official test) and on 2 speaker folds (held-out speakers, seed 0). Figures: mean [95% interval].", "",
             "| search | seed | wall, min (search + confirmation) | estimate, min | trained (stopped included) | upper-half share "
             f"| best within {BUDGET_KB} kB: trial, kB, configuration | val | official test | held-out speakers "
             f"| best within {SMALL_KB} kB: trial, kB | val | official test | held-out speakers |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for run in sorted(runs, key=lambda r: (r["label"], r["seed"])):
        best, small = run["best"] or {}, run["best_small"] or {}
        # runs recorded before bench/coverage.py counted only the trials trained to the end (marked *)
        cover = run.get("coverage") or {"trained_trials": f"{run['trained']}*", "upper_half_share": run["upper_half_share"],
                                         "front_point_in_upper_half": None}  # fmt: skip
        estimate = "-" if run["estimate_s"] is None else f"{run['estimate_s'] / 60:.1f}"
        # the new default confirms inside its own `nas search`; the old one's confirmation ran after it
        parts = f"({run['search_wall_s'] / 60:.1f} + {run['confirm_wall_s'] / 60:.1f})" if run["confirm_wall_s"] else "(one command)"
        lines.append(
            f"| {run['label']} ({run['commit']}) | {run['seed']} | {run['wall_s'] / 60:.1f} {parts} | {estimate} "
            f"| {cover['trained_trials']} | {cover['upper_half_share']:.2f} "
            f"{ {True: '(front above half: yes)', False: '(front above half: no)', None: '*'}[cover['front_point_in_upper_half']] } "
            f"| {best.get('trial', '-')}, {best.get('total_bytes', 0) / 1000:.1f}, {best.get('model', '-')} | {_figure(best.get('val'))} "
            f"| {_figure(best.get('test'))} | {_figure(best.get('held_out'))} "
            f"| {small.get('trial', '-')}, {small.get('total_bytes', 0) / 1000:.1f} | {_figure(small.get('val'))} "
            f"| {_figure(small.get('test'))} | {_figure(small.get('held_out'))} |"
        )
    lines += ["", "| search | seeds | wall, min (mean) | best within budget: official test, held-out (mean of searches) "
              f"| best within {SMALL_KB} kB: official test, held-out (mean of searches) |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for label in sorted({r["label"] for r in runs}):
        group = [r for r in runs if r["label"] == label]

        def mean_of(key: str, part: str, group: list[dict] = group) -> str:
            values = [r[key][part][0] for r in group if r[key] and r[key][part]]
            return f"{statistics.mean(values):.2f}%" if values else "-"

        lines.append(f"| {label} | {', '.join(str(r['seed']) for r in sorted(group, key=lambda r: r['seed']))} "
                     f"| {statistics.mean(r['wall_s'] for r in group) / 60:.1f} | {mean_of('best', 'test')}, {mean_of('best', 'held_out')} "
                     f"| {mean_of('best_small', 'test')}, {mean_of('best_small', 'held_out')} |")  # fmt: skip
    return lines


def paired_lines(runs: list[dict]) -> list[str]:
    """The two done-when comparisons seed by seed: the difference per seed, and its mean over seeds
    with a 95% t-interval, which says whether a gap is larger than the searches' run-to-run noise
    (two runs of one seed differ: with 2 workers, trial order depends on timing)."""
    from nas.core.stats import mean_interval
    from nas.study.settings import DEFAULT_SAMPLER

    old_label = f"old-{OLD_REF}"
    first = f"val_hypervolume_first_{EQUAL_TRIALS}"
    random_trials = SAMPLER_TRIALS["random"]
    old = {r["seed"]: r["val_hypervolume"] for r in runs if r["label"] == old_label}
    lines = ["", "## Seed by seed (the done-when comparisons)", "",
             "| comparison | seeds | difference per seed | mean difference [95% t-interval] |", "| --- | --- | --- | --- |"]  # fmt: skip
    for label in [label for label in LABELS if label != old_label]:
        # each label ran the default sampler at one trial count: the default of its commit
        ours = [r for r in runs if r["label"] == label and r["sampler"] == DEFAULT_SAMPLER]
        ours_all = {r["seed"]: r["val_hypervolume"] for r in ours}
        ours_first = {r["seed"]: r.get(first, r["val_hypervolume"] if r["trials"] == EQUAL_TRIALS else None) for r in ours}
        randoms = {r["seed"]: r["val_hypervolume"] for r in runs
                   if r["label"] == label and r["sampler"] == "random" and r["trials"] == random_trials}  # fmt: skip
        comparisons = [
            (f"{label} {DEFAULT_SAMPLER} against {old_label}, all trials", ours_all, old),
            (f"{label} {DEFAULT_SAMPLER}, first {EQUAL_TRIALS} trials, against {label} random at {random_trials}", ours_first, randoms),
        ]
        for name, mine, theirs in comparisons:
            seeds = sorted(seed for seed, value in mine.items() if value is not None and seed in theirs)
            if len(seeds) < 2:
                continue
            differences = [mine[seed] - theirs[seed] for seed in seeds]
            mean, low, high = mean_interval(differences, lowest=-1.0, highest=1.0)
            lines.append(f"| {name} | {', '.join(map(str, seeds))} | {', '.join(f'{d:+.4f}' for d in differences)} "
                         f"| {mean:+.4f} [{low:+.4f}, {high:+.4f}] |")  # fmt: skip
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("compare", "samplers", "confirmed", "recount", "report"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--old-ref", default=OLD_REF, help="git ref of the old default (compare)")
    parser.add_argument("--samplers", nargs="+", choices=list(SAMPLER_TRIALS), default=list(SAMPLER_TRIALS), help="samplers: which to run")
    parser.add_argument("--label", default="new", help="names this tree's runs in the results (a run already recorded is skipped)")
    parser.add_argument("--data-dir", help="FSDD recordings (default: as nas finds them)")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "nas-bench-cache", help="the shared feature cache")
    parser.add_argument("--studies-dir", type=Path, default=Path(tempfile.gettempdir()) / "nas-bench-studies",
                        help="where the runs' studies stay, for a look afterwards (a study already there is replaced)")  # fmt: skip
    args = parser.parse_args()
    if args.mode == "recount":
        recount(args.studies_dir)
    elif args.mode != "report":
        from nas.data.dataset import find_data_dir

        data_dir = find_data_dir(args.data_dir)
        warm(data_dir, args.cache_dir)
        done = {(r["label"], r["sampler"], r["trials"], r["seed"]) for r in done_runs()}
        for run, tree in planned(args.mode, args.seeds, args.old_ref, args.label, args.samplers):
            if (run["label"], run["sampler"], run["trials"], run["seed"]) in done:
                continue
            measured = measure_confirmed if args.mode == "confirmed" else measure
            result = measured(run, tree, data_dir, args.cache_dir, args.studies_dir)
            RUNS.parent.mkdir(parents=True, exist_ok=True)
            with RUNS.open("a") as out:
                out.write(json.dumps(result) + "\n")
            print(f"{run}: {result['wall_s'] / 60:.1f} min", flush=True)
    REPORT.write_text(report())
    print(f"wrote {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The benchmark suite: one command measures every speed figure of the README side by side on this
machine and writes bench/results.json and bench/RESULTS.md (each figure with its command and the
machine). Nothing else should run meanwhile.

    .venv/bin/python bench/suite.py            # about 45 minutes on 2 cores
    .venv/bin/python bench/suite.py --quick    # a few minutes: small counts, to check the suite (a temporary folder)

Figures:
- the features of all 3,000 recordings: the integer device front-end and torchaudio's MFCC;
- one training epoch, float and QAT (pow2 4-bit), for GRU 1x64 and LSTM 1x64 (median of 3 epochs);
- the cost of a trial pruned over the budget (through a SQLite study, as the search runs it);
- completed trials per hour with 1 and 2 workers on the same fixed list of configurations (drawn
  at random from the default space, enqueued in both runs, so both do the same work);
- the default search (`nas search --budget-kb 36 --weights pow2`): wall time, front size,
  validation hypervolume; and random search at an equal number of trials, same seed.
Features are computed into a fresh cache first (the throughput and search runs then read it), so
the runs compare training, not who paid for the cache.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna

BENCH = Path(__file__).resolve().parent
EPOCH_MODELS = (("gru", 64), ("lstm", 64))


def machine() -> dict:
    import torch

    return {
        "cpu_cores": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "date": datetime.date.today().isoformat(),
    }


def feature_times(waveforms: dict) -> dict:
    from nas.features.extract import FeatureConfig, compute_frames

    ordered = [waveforms[name] for name in sorted(waveforms)]
    times = {}
    for name, config in (("integer", FeatureConfig()), ("torchaudio", FeatureConfig(frontend="torchaudio"))):
        started = time.perf_counter()
        compute_frames(ordered, config)
        times[name] = time.perf_counter() - started
    return {"files": len(ordered), "integer_s": times["integer"], "torchaudio_s": times["torchaudio"]}


def epoch_times(data_dir: Path, cache, rounds: int) -> list[dict]:
    import torch

    from nas.features.extract import FeatureConfig, load_features
    from nas.model.architecture import ModelConfig
    from nas.model.formats import QuantConfig
    from nas.training.recipe import TrainConfig
    from nas.training.train import train_model

    torch.set_num_threads(1)
    _, features = load_features(data_dir, "official", FeatureConfig(), cache)
    rows = []
    for cell, hidden in EPOCH_MODELS:
        model = ModelConfig(cell, 1, hidden, n_input=features.config.n_mfcc)
        row = {"model": f"{cell.upper()} 1x{hidden}"}
        for scheme, quant in (("float", QuantConfig()), ("qat_pow2_4bit", QuantConfig.make("pow2", 4))):
            result = train_model(features, model, TrainConfig.for_epochs(rounds + 1, patience=1000), torch.device("cpu"), quant=quant)
            row[f"{scheme}_epoch_s"] = statistics.median(r.seconds for r in result.history[1:])  # the first warms up
        row["qat_over_float"] = row["qat_pow2_4bit_epoch_s"] / row["float_epoch_s"]
        rows.append(row)
    return rows


def pruned_trial_ms(options, folder: Path, count: int) -> float:
    """Trials over the budget, as the search prunes them (sampling, memory model, SQLite writes)."""
    from dataclasses import replace

    from nas.device.memory import Budget
    from nas.study.storage import open_study
    from nas.study.trials import make_objective, make_sampler

    tiny = replace(options, budget=Budget(64), location=replace(options.location, name="pruned", results_dir=folder))
    study = open_study(tiny)
    study.sampler = make_sampler(0, "random")
    objective = make_objective(tiny.searched_space, tiny.budget, lambda trial, candidate: None)
    started = time.perf_counter()
    study.optimize(objective, n_trials=count)
    return 1000 * (time.perf_counter() - started) / count


def fixed_configurations(options, count: int) -> list[dict]:
    """`count` configurations within the budget, drawn at random from the space (seed 0)."""
    from nas.study.trials import OverBudget, sample_candidate

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    params = []
    while len(params) < count:
        trial = study.ask()
        try:
            sample_candidate(trial, options.searched_space, options.budget)
        except OverBudget:
            continue
        params.append(dict(trial.params))
    return params


def warm_cache(options, waveforms: dict, cache_dir: str) -> float:
    """Compute every front-end shape of the space (and its waveform copies) into the cache."""
    from nas.features.extract import FeatureCache
    from nas.study.estimate import trained_share
    from nas.study.trials import trial_recipe

    cache = FeatureCache.at(cache_dir)
    ordered = [waveforms[name] for name in sorted(waveforms)]
    copies = [None, *trial_recipe(options, 0.0, 0).wave_copy_recipes()]
    shapes = {c.features for c in trained_share(options)[1]}
    started = time.perf_counter()
    for shape in shapes:
        for copy in copies:
            cache.get(ordered, shape, copy)
    return time.perf_counter() - started


def throughput(options, data_dir: Path, cache_dir: str, folder: Path, params: list[dict], workers: int) -> dict:
    """Completed trials per hour: the same enqueued configurations, `workers` worker processes."""
    from dataclasses import replace

    from nas.study.optimize import run_workers, start_search

    run_options = replace(
        options, workers=workers, trials=len(params), location=replace(options.location, name=f"throughput-{workers}", results_dir=folder)
    )
    run = start_search(run_options, data_dir, cache_dir)
    for values in params:
        run.study.enqueue_trial(values)
    started = time.perf_counter()
    run_workers(run)
    wall = time.perf_counter() - started
    complete = len(run.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    return {"workers": workers, "trials": complete, "wall_s": wall, "trials_per_hour": 3600 * complete / wall}


def search_run(options, data_dir: Path, cache_dir: str, folder: Path, sampler: str) -> dict:
    from dataclasses import replace

    from nas.study.optimize import run_workers, start_search
    from nas.study.pareto import front_hypervolume, pareto_front
    from nas.study.record import read_records

    run_options = replace(options, sampler=sampler, location=replace(options.location, name=f"search-{sampler}", results_dir=folder))
    run = start_search(run_options, data_dir, cache_dir)
    started = time.perf_counter()
    run_workers(run)
    wall = time.perf_counter() - started
    records = read_records(run.study)
    front = pareto_front(records, options.budget)
    return {
        "sampler": sampler,
        "trials": sum(r.finished for r in records),
        "wall_s": wall,
        "front_points": len(front),
        "val_hypervolume": front_hypervolume(records, options.budget, "val"),
        "best_val_accuracy": max(r.val.value for r in front) if front else None,
    }


def markdown(report: dict, command: str) -> str:
    m, f = report["machine"], report["figures"]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` on {m['date']}: {m['cpu_cores']} CPU cores ({m['processor']}), Python {m['python']}, "
        f"torch {m['torch']}, Optuna {m['optuna']}; one machine, one run, every figure side by side. Raw numbers: "
        "[results.json](results.json).",
        "",
        "| figure | value | command / how |",
        "| --- | --- | --- |",
    ]
    feats = f["features"]
    for name, key in (("integer device front-end", "integer_s"), ("torchaudio MFCC", "torchaudio_s")):
        lines.append(f"| features of {feats['files']:,} files, {name} | {feats[key]:.1f} s | `compute_frames`, 1 process |")
    for row in f["epochs"]:
        lines.append(
            f"| one epoch of {row['model']}: float / QAT pow2 4-bit | {row['float_epoch_s']:.2f} s / {row['qat_pow2_4bit_epoch_s']:.2f} s "
            f"({row['qat_over_float']:.2f}x) | official train split, 1 thread, median of the epochs after the first |"
        )
    lines.append(f"| a trial pruned over the budget | {f['pruned_trial_ms']:.1f} ms | random sampler, SQLite study, memory model |")
    warm = f["warm_cache_s"] / 60
    lines.append(f"| filling the feature cache (every shape of the default space, 4 copies) | {warm:.1f} min | 1 process |")
    one, two = f["throughput"]
    extra = ""
    if two["trials"] != one["trials"]:
        extra = f" ({two['trials']} trials with 2 workers: each checks the count when its trial ends, so one more started)"
    lines.append(
        f"| completed trials per hour, 1 worker / 2 workers | {one['trials_per_hour']:.0f} / {two['trials_per_hour']:.0f} "
        f"(**{two['trials_per_hour'] / one['trials_per_hour']:.2f}x**) | the same {one['trials']} enqueued configurations of the "
        f"default space; {one['wall_s'] / 60:.1f} / {two['wall_s'] / 60:.1f} min{extra} |"
    )
    for run in f["searches"]:
        lines.append(
            f"| default search, {run['sampler']} sampler: wall time, front, validation hypervolume | {run['wall_s'] / 60:.1f} min, "
            f"{run['front_points']} points, {run['val_hypervolume']:.4f} | `nas search --budget-kb 36 --weights pow2"
            f"{'' if run['sampler'] == 'tpe' else ' --sampler random'}`, {run['trials']} trials, 2 workers, seed 0, warm cache |"
        )
    return "\n".join(lines) + "\n"


def rewrite_markdown() -> None:
    """RESULTS.md again from results.json (after a change to the layout; nothing is measured)."""
    report = json.loads((BENCH / "results.json").read_text())
    (BENCH / "RESULTS.md").write_text(markdown(report, "python bench/suite.py"))


def main() -> int:
    from nas.data.dataset import find_data_dir, load_split
    from nas.device.memory import Budget
    from nas.features.extract import FeatureCache
    from nas.study.settings import SearchOptions, StudyLocation
    from nas.study.space import load_space

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, to check the suite (written to a temporary folder)")
    parser.add_argument("--data-dir", help="FSDD recordings (default: as nas finds them)")
    parser.add_argument("--markdown-only", action="store_true", help="rewrite RESULTS.md from results.json; measure nothing")
    args = parser.parse_args()
    if args.markdown_only:
        rewrite_markdown()
        return 0
    data_dir = find_data_dir(args.data_dir)
    trials = 4 if args.quick else 30
    fixed = 2 if args.quick else 12
    options = SearchOptions(Budget.from_kb(36), load_space(), "pow2", StudyLocation(), trials=trials, seed=0)
    if args.quick:
        from dataclasses import replace

        options = replace(options, space=replace(options.space, epochs=2, patience=2, wave_copies=0))
    _, waveforms = load_split(data_dir, "official")
    report = {"machine": machine(), "quick": args.quick, "figures": {}}
    figures = report["figures"]
    with tempfile.TemporaryDirectory() as scratch:
        folder, cache_dir = Path(scratch), str(Path(scratch) / "cache")
        figures["features"] = feature_times(waveforms)
        print(f"features: {figures['features']}", flush=True)
        figures["epochs"] = epoch_times(data_dir, FeatureCache.at(cache_dir), 1 if args.quick else 3)
        print(f"epochs: {figures['epochs']}", flush=True)
        figures["pruned_trial_ms"] = pruned_trial_ms(options, folder, 20 if args.quick else 200)
        figures["warm_cache_s"] = warm_cache(options, waveforms, cache_dir)
        print(f"pruned trial {figures['pruned_trial_ms']:.1f} ms; cache filled in {figures['warm_cache_s']:.0f} s", flush=True)
        params = fixed_configurations(options, fixed)
        figures["throughput"] = [throughput(options, data_dir, cache_dir, folder, params, workers) for workers in (1, 2)]
        print(f"throughput: {figures['throughput']}", flush=True)
        figures["searches"] = [search_run(options, data_dir, cache_dir, folder, sampler) for sampler in ("tpe", "random")]
        print(f"searches: {figures['searches']}", flush=True)
    out = Path(tempfile.mkdtemp(prefix="nas-bench-quick-")) if args.quick else BENCH
    command = "python bench/suite.py" + (" --quick" if args.quick else "")
    (out / "results.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (out / "RESULTS.md").write_text(markdown(report, command))
    print(f"wrote {out / 'results.json'} and {out / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""TPE against random search: the front's hypervolume for the same space, budget, trial count and seed.

Runs (or resumes: a finished study is not retrained) two studies through the CLI and writes
bench/results/hypervolume.json. The TPE study is the default search itself, so after
`nas search --budget-kb 36 --weights pow2` only the random one needs training:

    .venv/bin/python bench/hypervolume.py                 # ~15 min for the random study
    .venv/bin/python bench/hypervolume.py --trials 12     # a quicker comparison (own study names)

Hypervolume: the area dominated by the front in (validation accuracy) x (share of the budget
left unused), against the reference point (0% accuracy, the whole budget); 1.0 would be 100% at
zero bytes. Test-accuracy hypervolume is reported as well.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import optuna

from nas.cli import main as nas_main
from nas.search import hypervolume
from nas.space import DEFAULT_SPACE


def study_points(storage: str, name: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]], int]:
    study = optuna.load_study(study_name=name, storage=storage)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    val = [(t.values[0], t.values[1]) for t in complete]
    test = [(t.user_attrs["test_correct"] / t.user_attrs["test_total"], t.values[1]) for t in complete]
    return val, test, len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--budget-kb", type=float, default=36)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", default="results")
    args = parser.parse_args()
    suffix = "" if args.trials == 30 else f"-t{args.trials}"
    names = {"tpe": f"pow2-{args.budget_kb:g}kb{suffix}", "random": f"pow2-{args.budget_kb:g}kb-random{suffix}"}
    report = {
        "space": str(DEFAULT_SPACE.relative_to(DEFAULT_SPACE.parent.parent)),
        "budget_kb": args.budget_kb,
        "trials": args.trials,
        "seed": args.seed,
        "samplers": {},
    }
    budget_bytes = int(args.budget_kb * 1024)
    for sampler, name in names.items():
        argv = ["search", "--budget-kb", f"{args.budget_kb:g}", "--weights", "pow2", "--trials", str(args.trials)]
        argv += ["--seed", str(args.seed), "--sampler", sampler, "--study", name, "--results-dir", args.results_dir]
        if nas_main(argv) != 0:
            return 1
        storage = f"sqlite:///{(Path(args.results_dir) / name / 'study.db').resolve()}"
        val, test, finished = study_points(storage, name)
        report["samplers"][sampler] = {
            "study": name,
            "finished_trials": finished,
            "val_hypervolume": hypervolume(val, budget_bytes),
            "test_hypervolume": hypervolume(test, budget_bytes),
            "best_val_accuracy": max(a for a, _ in val),
        }
    out = Path(__file__).parent / "results" / f"hypervolume{suffix}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    for sampler, row in report["samplers"].items():
        print(f"{sampler}: val hypervolume {row['val_hypervolume']:.4f}, test hypervolume {row['test_hypervolume']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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

from nas.cli.main import main as nas_main
from nas.study.pareto import front_hypervolume
from nas.study.record import read_records
from nas.study.settings import StudyLocation
from nas.study.space import DEFAULT_SPACE
from nas.study.storage import load_existing_study


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
        "space": str(DEFAULT_SPACE.relative_to(DEFAULT_SPACE.parents[2])),  # nas/spaces/default.toml
        "budget_kb": args.budget_kb,
        "trials": args.trials,
        "seed": args.seed,
        "samplers": {},
    }
    for sampler, name in names.items():
        argv = ["search", "--budget-kb", f"{args.budget_kb:g}", "--weights", "pow2", "--trials", str(args.trials)]
        argv += ["--seed", str(args.seed), "--sampler", sampler, "--study", name, "--results-dir", args.results_dir]
        if nas_main(argv) != 0:
            return 1
        study, settings = load_existing_study(StudyLocation(name, None, Path(args.results_dir)))
        records = read_records(study)
        report["samplers"][sampler] = {
            "study": name,
            "finished_trials": sum(r.finished for r in records),
            "val_hypervolume": front_hypervolume(records, settings.budget, "val"),
            "test_hypervolume": front_hypervolume(records, settings.budget, "test"),
            "best_val_accuracy": max(r.val.value for r in records if r.trained),
        }
    out = Path(__file__).parent / "results" / f"hypervolume{suffix}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    for sampler, row in report["samplers"].items():
        print(f"{sampler}: val hypervolume {row['val_hypervolume']:.4f}, test hypervolume {row['test_hypervolume']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

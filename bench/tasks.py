"""The README's Tasks A-C with the defaults that ship (issue 21): each task's `nas train` command as
the README types it, no recipe option on the command line, seeds 0, 1, 2 on the official split
(integer engine for the quantized models). A task whose summary is already in the work folder is
read, not trained again (move the folder away after a default changes).

    NAS_DATA_DIR=../shared/fsdd/recordings .venv/bin/python bench/tasks.py [--work DIR]
    # writes bench/results/tasks.json; about 5 min per task on one core
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from recipe_drift import row

from nas.core.stats import mean_interval

TASKS = {  # task: the options of its README command beyond `nas train --seed 0 1 2`
    "A": [],
    "B": ["--hidden", "64", "--weights", "fixed", "--weight-bits", "6"],
    "C": ["--hidden", "64", "--weights", "pow2", "--weight-bits", "5"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("results/tasks"), help="folder of the runs' outputs")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "tasks.json", help="results file")
    args = parser.parse_args()
    rows = []
    for task, options in TASKS.items():
        folder = args.work / task
        if not (folder / "summary.json").is_file():
            command = [sys.executable, "-m", "nas.cli", "train", *options, "--seed", "0", "1", "2", "--out", str(folder)]
            subprocess.run(command, check=True)
        summary = json.loads((folder / "summary.json").read_text())
        result = row(f"task{task}", task, options, summary)
        result["test_interval"] = list(mean_interval(result["test_per_seed"])[1:])
        result["val_interval"] = list(mean_interval(result["val_per_seed"])[1:])
        result["train_config"], result["quant_config"] = summary["train_config"], summary["quant_config"]
        result["total_bytes"] = summary["memory"]["total_bytes"]
        rows.append(result)
        low, high = result["test_interval"]
        print(f"task {task}: val {result['val_mean']:.2f}%  test {result['test_mean']:.2f}% [{low:.2f}, {high:.2f}]  {result['command']}")
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

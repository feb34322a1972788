"""Where the official-split accuracy of Tasks A and C went (issue 21): the same two models under the
recipes that differ from today's defaults by normalisation, waveform copies and length.

Each variant is one `nas train` command (seeds 0, 1, 2; integer engine for the pow2 model); a
variant whose summary is already in the work folder is read, not trained again. Validation decides;
test is written for the record.

    NAS_DATA_DIR=../shared/fsdd/recordings .venv/bin/python bench/recipe_drift.py [--work DIR]
    # writes bench/results/recipe-drift.json; about 5 min per variant on one core
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from statistics import fmean

FULL = ["--wave-copies", "8", "--epochs", "100", "--patience", "30"]  # the README's new-voices recipe, less its options that are defaults
TASK_C = ["--hidden", "64", "--weights", "pow2", "--weight-bits", "5"]
VARIANTS = {  # name: (task, options beyond `nas train --seed 0 1 2`)
    "taskA": ("A", FULL),
    "A-global": ("A", [*FULL, "--normalisation", "global"]),
    "A-ta": ("A", [*FULL, "--frontend", "torchaudio"]),
    "A-running-c0": ("A", ["--wave-copies", "0"]),
    "A-global-c0": ("A", ["--normalisation", "global", "--wave-copies", "0"]),
    "taskC": ("C", [*TASK_C, *FULL]),
    "C-running-c0": ("C", [*TASK_C, "--wave-copies", "0"]),
    "C-global-c0": ("C", [*TASK_C, "--normalisation", "global", "--wave-copies", "0"]),
}


def row(name: str, task: str, options: list[str], summary: dict) -> dict:
    engine = "int_" if summary["quant_config"]["weights"] != "float" else ""
    runs = summary["runs"]
    val = [100 * r[f"{engine}val_correct"] / r[f"{engine}val_total"] for r in runs]
    test = [100 * r[f"{engine}test_correct"] / r[f"{engine}test_total"] for r in runs]
    recipe = summary["train_config"]
    return {
        "variant": name,
        "task": task,
        "command": " ".join(["nas", "train", *options, "--seed", "0", "1", "2"]),
        "normalisation": summary["feature_config"]["normalisation"],
        "frontend": summary["feature_config"]["frontend"],
        "wave_copies": recipe["wave_copies"],
        "epochs": recipe["epochs"],
        "patience": recipe["patience"],
        "best_epochs": [r["best_epoch"] for r in runs],
        "val_per_seed": val,
        "test_per_seed": test,
        "val_mean": fmean(val),
        "test_mean": fmean(test),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("results/recipe-drift"), help="folder of the runs' outputs")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "recipe-drift.json", help="results file")
    args = parser.parse_args()
    rows = []
    for name, (task, options) in VARIANTS.items():
        folder = args.work / name
        if not (folder / "summary.json").is_file():
            command = [sys.executable, "-m", "nas.cli", "train", *options, "--seed", "0", "1", "2", "--out", str(folder)]
            subprocess.run(command, check=True)
        rows.append(row(name, task, options, json.loads((folder / "summary.json").read_text())))
        last = rows[-1]
        print(f"{name:14} val {last['val_mean']:.2f}%  test {last['test_mean']:.2f}%  {last['command']}", flush=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

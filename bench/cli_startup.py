"""How long `nas --help` and `nas memory` take, from process start to exit (target: under a second).

Neither needs torch or Optuna; a test checks that they are not imported, this measures the time.
Each command runs once to warm the file cache, then ROUNDS times; the median is reported, with
`import torch` alone for scale.

    .venv/bin/python bench/cli_startup.py        # writes bench/results/cli_startup.json
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROUNDS = 7
NAS = [sys.executable, "-m", "nas.cli"]
MEMORY = ["memory", "--weights", "pow2", "--budget-kb", "36", "--solve", "hidden"]
COMMANDS = {
    "nas --help": [*NAS, "--help"],
    "nas search --help": [*NAS, "search", "--help"],
    "nas " + " ".join(MEMORY): [*NAS, *MEMORY],
    "python -c 'import torch' (for scale)": [sys.executable, "-c", "import torch"],
}


def seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    rows = []
    for label, command in COMMANDS.items():
        seconds(command)  # warm-up
        times = [seconds(command) for _ in range(ROUNDS)]
        rows.append({"command": label, "median_seconds": statistics.median(times), "seconds": times})
        print(f"{label}: median {statistics.median(times):.2f} s over {ROUNDS} runs")
    report = {"machine": f"{platform.machine()}, {platform.python_version()}", "target_seconds": 1.0, "rows": rows}
    out = Path(__file__).parent / "results" / "cli_startup.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(r["median_seconds"] < 1.0 for r in rows if "torch" not in r["command"]) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Can validation tell a 36 kB model from an 8 kB one? The check behind issue 21's blocked accuracy
targets: the search chooses on validation only, so it can return the README's 36 kB configuration
(99.22% official test, 85.13% leave-one-speaker-out) over a smaller one only where some validation
data says that the larger one is better. This reads runs already committed (no training):

- official-36kb.json / official-8kb.json: the README's hand-typed 36 kB and 8 kB configurations,
  seeds 0-2 on the official split (`nas train ... --seed 0 1 2`, integer engine);
- crossval-36kb.json / crossval-8kb.json: the same configurations, leave-one-speaker-out, 6 folds x
  3 seeds; each fold's validation speaker is a voice that fold never trained on;
- searches.jsonl: the confirmed best points of the default search at seeds 0-2.

For each validation view it gives both configurations' means and the paired difference (same seed,
same fold) with a 95% t-interval, beside the test difference that the done-when asks the search to
find. Writes bench/results/separability.json and prints a table.

    python bench/separability.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nas.core.stats import mean_interval
from nas.data.dataset import fold_speakers
from nas.study.confirm import DEFAULT_CONFIRM_FOLDS

RESULTS = Path(__file__).parent / "results"
CONFIRM_FOLDS = 2  # nas.study.confirm.DEFAULT_CONFIRM_FOLDS: the folds every confirmed point gets


def official(name: str, part: str) -> dict[int, float]:
    runs = json.loads((RESULTS / f"official-{name}.json").read_text())["runs"]
    return {run["seed"]: 100 * run[f"int_{part}_correct"] / run[f"int_{part}_total"] for run in runs}


def folds(name: str, part: str, speakers: set[str] | None = None) -> dict[tuple[str, int], float]:
    runs = json.loads((RESULTS / f"crossval-{name}.json").read_text())["folds"]
    return {
        (run["speaker"], run["seed"]): 100 * run[f"{part}_correct"] / run[f"{part}_total"]
        for run in runs
        if speakers is None or run["speaker"] in speakers
    }


def compare(view: str, large: dict, small: dict) -> dict:
    keys = sorted(set(large) & set(small))
    differences = [large[k] - small[k] for k in keys]
    return {
        "view": view,
        "pairs": len(keys),
        "large_mean": sum(large[k] for k in keys) / len(keys),
        "small_mean": sum(small[k] for k in keys) / len(keys),
        "difference": list(mean_interval(differences, lowest=-100.0)),
    }


def main() -> int:
    all_speakers = sorted({run["speaker"] for run in json.loads((RESULTS / "crossval-36kb.json").read_text())["folds"]})
    confirm_folds = set(fold_speakers(all_speakers, DEFAULT_CONFIRM_FOLDS))
    rows = [
        compare("official validation (300 files), seeds 0-2", official("36kb", "val"), official("8kb", "val")),
        compare("official test (300 files), seeds 0-2", official("36kb", "test"), official("8kb", "test")),
        compare(
            f"validation speakers of the confirmation's folds ({', '.join(sorted(confirm_folds))} held out), seeds 0-2",
            folds("36kb", "val", confirm_folds),
            folds("8kb", "val", confirm_folds),
        ),
        compare("validation speakers of all 6 folds, seeds 0-2", folds("36kb", "val"), folds("8kb", "val")),
        compare("held-out speakers of all 6 folds (test), seeds 0-2", folds("36kb", "test"), folds("8kb", "test")),
    ]
    searches = []
    for line in (RESULTS / "searches.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry.get("label") == "confirmed-new" and entry.get("best"):
            best = entry["best"]
            searches.append({"seed": entry["seed"], "trial": best["trial"], "total_bytes": best["total_bytes"], "model": best["model"],
                             "val": best["val"], "test": best["test"], "held_out": best["held_out"]})  # fmt: skip
    result = {"large": "GRU 1x128, 10 MFCC, pow2 4-bit, 256/40, 32,873 B", "small": "GRU 1x60, 10 MFCC, pow2 3-bit, 128/20, 8,167 B",
              "comparisons": rows, "default_search_best": searches}  # fmt: skip
    (RESULTS / "separability.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"large: {result['large']}; small: {result['small']}")
    print("| view | pairs | 36 kB mean | 8 kB mean | difference [95% t-interval] |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        mean, low, high = row["difference"]
        means = f"{row['large_mean']:.2f}% | {row['small_mean']:.2f}%"
        print(f"| {row['view']} | {row['pairs']} | {means} | {mean:+.2f} [{low:+.2f}, {high:+.2f}] |")
    for search in searches:
        print(f"search seed {search['seed']}: trial {search['trial']}, {search['total_bytes']:,} B, {search['model']}: "
              f"official val {search['val'][0]:.2f}%, test {search['test'][0]:.2f}%")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

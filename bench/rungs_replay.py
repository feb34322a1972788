"""Replay finished searches under a rung rule (nas/rungs.py): how much training it saves and how
much front it loses, without training anything.

Each trained trial's checkpoint holds its validation accuracy after every epoch. Trials are
replayed in trial order; at each rung a trial records its best accuracy so far and stops when the
rule says so against the earlier trials' records at that rung (as with one worker). The study's
front hypervolume (validation, final integer-engine accuracies) is then computed over the trials
that were not stopped, against the full study's. Approximate by design: the sampler would have
chosen differently after a stop, and the saved time would have bought more trials.

    .venv/bin/python bench/rungs_replay.py results/pow2-36kb/study.db [more study.db ...]

Writes bench/results/rungs_replay.json: every rule of the grid below, its mean change of
hypervolume, the worst study's, and the share of epochs it trains.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import optuna
import torch

from nas.memory import Budget
from nas.pareto import hypervolume
from nas.rungs import RungResult, RungRule

BUDGET = Budget.from_kb(36)
RUNG_SETS = ((10,), (10, 20), (10, 20, 30), (5, 10, 20), (6, 12, 24))
MARGINS = (0.0, 0.005, 0.01, 0.015)


def histories(db: Path) -> list[dict]:
    """Every complete trial with a checkpoint: number, values, per-epoch validation accuracy."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    trials = []
    for summary in optuna.get_all_study_summaries(f"sqlite:///{db}"):
        study = optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{db}")
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            path = db.parent / f"trial-{trial.number:04d}" / "model.pt"
            if path.exists():
                history = torch.load(path, map_location="cpu", weights_only=False)["resume"]["history"]
                trials.append({"number": trial.number, "accuracy": trial.values[0], "bytes": int(trial.values[1]),
                               "history": [epoch["val_accuracy"] for epoch in history]})  # fmt: skip
    return sorted(trials, key=lambda t: t["number"])


def replay(trials: list[dict], rule: RungRule) -> tuple[float, int]:
    """(hypervolume of the trials not stopped, epochs trained)."""
    reached: dict[int, list[RungResult]] = {epoch: [] for epoch in rule.epochs}
    kept, epochs = [], 0
    for trial in trials:
        stopped_at = None
        for epoch in rule.epochs:
            if len(trial["history"]) < epoch:
                break
            accuracy = max(trial["history"][:epoch])
            leader = rule.beaten_by(accuracy, trial["bytes"], reached[epoch])
            reached[epoch].append(RungResult(trial["number"], accuracy, trial["bytes"]))
            if leader is not None:
                stopped_at = epoch
                break
        epochs += stopped_at or len(trial["history"])
        if stopped_at is None:
            kept.append((trial["accuracy"], trial["bytes"]))
    return hypervolume(kept, BUDGET.limit_bytes), epochs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="+", type=Path, help="study.db files of finished searches (with their trial folders)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rungs_replay.json")
    args = parser.parse_args()
    studies = {str(db): histories(db) for db in args.studies}
    full = {name: (hypervolume([(t["accuracy"], t["bytes"]) for t in trials], BUDGET.limit_bytes), sum(len(t["history"]) for t in trials))
            for name, trials in studies.items()}  # fmt: skip
    rows = []
    for epochs in RUNG_SETS:
        for margin in MARGINS:
            rule = RungRule(epochs, margin)
            changes, shares = [], []
            for name, trials in studies.items():
                volume, trained = replay(trials, rule)
                changes.append(volume - full[name][0])
                shares.append(trained / full[name][1])
            rows.append({"rungs": list(epochs), "margin": margin, "hypervolume_change_mean": statistics.mean(changes),
                         "hypervolume_change_worst": min(changes), "epoch_share_mean": statistics.mean(shares)})  # fmt: skip
    for row in sorted(rows, key=lambda r: r["epoch_share_mean"]):
        print(f"rungs {row['rungs']!s:14} margin {row['margin']:.3f}: epochs {row['epoch_share_mean']:.0%}, "
              f"hypervolume {row['hypervolume_change_mean']:+.4f} (worst {row['hypervolume_change_worst']:+.4f})")  # fmt: skip
    summary = {name: {"trials": len(trials), "hypervolume": full[name][0], "epochs": full[name][1]} for name, trials in studies.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"studies": summary, "rules": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Replay finished searches under a rung rule (nas/study/rungs.py): how much training it saves and how
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

from nas.device.memory import Budget
from nas.study.pareto import hypervolume
from nas.study.rungs import RungResult, RungRule

BUDGET = Budget.from_kb(36)
RUNG_SETS = ((10,), (10, 20), (10, 20, 30), (5, 10, 20), (6, 12, 24))
MARGINS = (0.0, 0.005, 0.01, 0.015)
# per-rung margins: one margin for every rung (above), and margins that shrink as accuracies settle
SHRINKING = (((5, 10, 20), (0.08, 0.03, 0.01)), ((5, 10, 20), (0.05, 0.02, 0.01)), ((10, 20), (0.03, 0.01)))
REVERSAL_LEADS = (0.01, 0.02, 0.03, 0.05, 0.08, 0.12)


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
            leader = rule.beaten_by(epoch, accuracy, trial["bytes"], reached[epoch])
            reached[epoch].append(RungResult(trial["number"], accuracy, trial["bytes"]))
            if leader is not None:
                stopped_at = epoch
                break
        epochs += stopped_at or len(trial["history"])
        if stopped_at is None:
            kept.append((trial["accuracy"], trial["bytes"]))
    return hypervolume(kept, BUDGET.limit_bytes), epochs


def lead_reversals(studies: dict[str, list[dict]]) -> list[dict]:
    """How often a lead at a rung is overturned by the end: over pairs of trials of one study where
    A is no larger than B and A's best accuracy by the rung leads B's by at least `lead`, the share
    where B ends more accurate than A (a stop that would have lost a better trial). What each
    rung's margin must cover."""
    rows = []
    for epoch in (5, 10, 20):
        for lead in REVERSAL_LEADS:
            pairs = overturned = 0
            for trials in studies.values():
                for a in trials:
                    for b in trials:
                        if a is b or a["bytes"] > b["bytes"] or min(len(a["history"]), len(b["history"])) < epoch:
                            continue
                        if max(a["history"][:epoch]) - max(b["history"][:epoch]) >= lead - 1e-9:
                            pairs += 1
                            overturned += b["accuracy"] > a["accuracy"]
            rows.append({"epoch": epoch, "lead": lead, "pairs": pairs, "overturned": overturned,
                         "overturned_share": overturned / pairs if pairs else None})  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="+", type=Path, help="study.db files of finished searches (with their trial folders)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rungs_replay.json")
    args = parser.parse_args()
    studies = {str(db): histories(db) for db in args.studies}
    full = {name: (hypervolume([(t["accuracy"], t["bytes"]) for t in trials], BUDGET.limit_bytes), sum(len(t["history"]) for t in trials))
            for name, trials in studies.items()}  # fmt: skip
    rows = []
    rules = [RungRule(epochs, (margin,) * len(epochs)) for epochs in RUNG_SETS for margin in MARGINS]
    for rule in [*rules, *(RungRule(epochs, margins) for epochs, margins in SHRINKING)]:
        changes, shares = [], []
        for name, trials in studies.items():
            volume, trained = replay(trials, rule)
            changes.append(volume - full[name][0])
            shares.append(trained / full[name][1])
        rows.append({"rungs": list(rule.epochs), "margins": list(rule.margins), "hypervolume_change_mean": statistics.mean(changes),
                     "hypervolume_change_worst": min(changes), "epoch_share_mean": statistics.mean(shares)})  # fmt: skip
    for row in sorted(rows, key=lambda r: r["epoch_share_mean"]):
        print(f"rungs {row['rungs']!s:14} margins {row['margins']!s:20}: epochs {row['epoch_share_mean']:.0%}, "
              f"hypervolume {row['hypervolume_change_mean']:+.4f} (worst {row['hypervolume_change_worst']:+.4f})")  # fmt: skip
    reversals = lead_reversals(studies)
    for row in (r for r in reversals if r["pairs"]):
        print(f"epoch {row['epoch']:2d}, a no-larger trial ahead by >= {100 * row['lead']:.0f} points: {row['pairs']} pairs, "
              f"{row['overturned']} overturned by the end ({100 * row['overturned_share']:.0f}%)")  # fmt: skip
    summary = {name: {"trials": len(trials), "hypervolume": full[name][0], "epochs": full[name][1]} for name, trials in studies.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"studies": summary, "rules": rows, "reversals": reversals}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Multi-fidelity search: stop a trial's training early when it is already beaten (issue 13).

Successive halving judges each trial at a few rungs (epochs) against the other trials that
reached the same rung. Optuna's pruners (and `trial.report`) do not support two objectives, so the
rule is the search's own and Pareto-aware: a trial is a loser at a rung when a trial that is no
larger was clearly more accurate at the same rung. The rule, in full (docs/search.md):

    At each rung epoch (default 5, 10 and 20 of 40), a trial records its best validation accuracy
    so far. Once at least `RUNG_MIN_TRIALS` other trials have reached that rung, the trial stops
    if one of them has `total_bytes` at most its own and a rung accuracy at least `margin`
    (default 1 point, 3 files of the official split's 300) higher.

Chosen by replaying the per-epoch histories of four finished default searches (129 trained
trials): 55% of the training epochs, validation hypervolume 0.001 below the full searches' on
average, 0.003 at worst (bench/rungs_replay.py, bench/results/rungs_replay.json). A stopped trial ends PRUNED (it counts towards
--trials, as an over-budget trial does) and keeps its rung accuracies and who stopped it.
"""

from __future__ import annotations

from dataclasses import dataclass

RUNG_ATTR = "rung_accuracy"  # trial user attribute: {"5": accuracy, "10": accuracy, ...}
RUNG_MIN_TRIALS = 5  # rung results needed before any trial is stopped there: early on, keep training
# The share of a full search's epochs that the default rule trained in that replay: what the time
# estimate before a search expects of a trial (nas.estimate).
REPLAY_EPOCH_SHARE = 0.55
_TOLERANCE = 1e-9  # accuracies are ratios of file counts: compare them without float noise


@dataclass(frozen=True)
class RungResult:
    """Another trial's standing at a rung."""

    number: int
    accuracy: float
    total_bytes: int


@dataclass(frozen=True)
class RungRule:
    epochs: tuple[int, ...]  # the rungs, in epochs; those at or past the last epoch never apply
    margin: float  # accuracy (a fraction) by which a no-larger trial must lead to stop another

    def beaten_by(self, accuracy: float, total_bytes: int, others: list[RungResult]) -> RungResult | None:
        """The trial that stops this one at the rung (the most accurate of those that qualify), or
        None: it keeps training."""
        if len(others) < RUNG_MIN_TRIALS:
            return None
        leaders = [o for o in others if o.total_bytes <= total_bytes and o.accuracy - accuracy >= self.margin - _TOLERANCE]
        return max(leaders, key=lambda o: (o.accuracy, -o.total_bytes, -o.number), default=None)


class StoppedAtRung(Exception):
    """Raised from a training's epoch callback when the rule stops the trial."""

    def __init__(self, epoch: int, accuracy: float, beaten_by: RungResult):
        super().__init__(epoch)
        self.epoch, self.accuracy, self.beaten_by = epoch, accuracy, beaten_by

    def describe(self) -> str:
        other = self.beaten_by
        return (
            f"stopped at epoch {self.epoch}: {100 * self.accuracy:.2f}% validation, "
            f"trial {other.number} had {100 * other.accuracy:.2f}% at {other.total_bytes:,} B"
        )


def rung_results(trials, epoch: int, exclude: int) -> list[RungResult]:
    """Every other trial's result at `epoch` (running, finished or stopped), from their attributes."""
    results = []
    for trial in trials:
        accuracy = (trial.user_attrs.get(RUNG_ATTR) or {}).get(str(epoch))
        if trial.number != exclude and accuracy is not None and "total_bytes" in trial.user_attrs:
            results.append(RungResult(trial.number, accuracy, trial.user_attrs["total_bytes"]))
    return results

"""Multi-fidelity search: stop a trial's training early when it is already beaten (issue 13).

Successive halving judges each trial at a few rungs (epochs) against the other trials that
reached the same rung. Optuna's pruners (and `trial.report`) do not support two objectives, so the
rule is the search's own and Pareto-aware: a trial is a loser at a rung when a trial that is no
larger was clearly more accurate at the same rung. The rule, in full (docs/search.md):

    At each rung epoch (default 5, 10 and 20 of 40), a trial records its best validation accuracy
    so far. Once at least `RUNG_MIN_TRIALS` other trials have reached that rung, the trial stops
    if one of them has `total_bytes` at most its own and a rung accuracy higher by at least that
    rung's margin (default 8, 3 and 1 points: 24, 9 and 3 files of the official split's 300).

The margins shrink as accuracies settle. Early accuracy is a poor guide: in the per-epoch histories
of four finished default searches (129 trained trials), a no-larger trial's lead of 1 point at
epoch 5 was overturned by the end in 23% of the pairs (a stop that loses the better trial), 8
points in 6%; 3 points at epoch 10 in 3%; 1 point at epoch 20 in 5%. The first rule (1 point at
every rung) stopped small models in the front's region at epoch 5, and the sampler, seeing them
stopped, left that region. Replayed on those searches the rule trains 78% of the epochs and loses
no hypervolume (bench/rungs_replay.py, bench/results/rungs_replay.json). A stopped trial ends
PRUNED (it counts towards --trials, as an over-budget trial does) and keeps its rung accuracies and
who stopped it.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.study.sizes import BAND_ATTR

RUNG_ATTR = "rung_accuracy"  # trial user attribute: {"5": accuracy, "10": accuracy, ...}
RUNG_MIN_TRIALS = 5  # rung results needed before any trial is stopped there: early on, keep training
# The share of a full search's epochs that the default rule trained in that replay: what the time
# estimate before a search expects of a trial (nas.study.estimate).
REPLAY_EPOCH_SHARE = 0.78
_TOLERANCE = 1e-9  # accuracies are ratios of file counts: compare them without float noise


@dataclass(frozen=True)
class RungResult:
    """Another trial's standing at a rung."""

    number: int
    accuracy: float
    total_bytes: int
    band: int | None = None  # its size band (nas.study.sizes); None: written before bands existed


@dataclass(frozen=True)
class RungRule:
    epochs: tuple[int, ...]  # the rungs, in epochs; those at or past the last epoch never apply
    margins: tuple[float, ...]  # per rung: accuracy (a fraction) by which a no-larger trial must lead to stop another

    def margin_at(self, epoch: int) -> float:
        return self.margins[self.epochs.index(epoch)]

    def beaten_by(
        self, epoch: int, accuracy: float, total_bytes: int, others: list[RungResult], band: int | None = None
    ) -> RungResult | None:
        """The trial that stops this one at the rung `epoch` (the most accurate of those that
        qualify), or None: it keeps training. With a size band, only trials of the same band
        judge it: a larger model learns later, and a smaller band's lead at the same epoch says
        little about where it ends (docs/search.md)."""
        if band is not None:
            others = [o for o in others if o.band == band]
        if len(others) < RUNG_MIN_TRIALS:
            return None
        margin = self.margin_at(epoch)
        leaders = [o for o in others if o.total_bytes <= total_bytes and o.accuracy - accuracy >= margin - _TOLERANCE]
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
            results.append(RungResult(trial.number, accuracy, trial.user_attrs["total_bytes"], trial.user_attrs.get(BAND_ATTR)))
    return results

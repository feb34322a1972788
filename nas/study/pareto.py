"""The Pareto front of accuracy against memory, computed apart from any drawing (as Optuna's
visualization separates `_get_pareto_front_info` from its plotly and matplotlib code).

A trained trial's point is (validation accuracy, total_bytes): accuracy is maximised, bytes are
minimised. The accuracy is `TrialRecord.score`: the validation speakers of the trial's
leave-one-speaker-out folds with `--speaker-folds`, else the split's validation part. The front
holds the trials within the budget that no other trial within the budget
dominates (at least as accurate and at most as large, and better in one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.device.memory import KB, Budget
from nas.study.record import TrialRecord

Point = tuple[float, float]  # (accuracy, bytes)


def dominates(a: Point, b: Point) -> bool:
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def _point(record: TrialRecord) -> Point:
    return record.score.value, record.total_bytes


def candidates(records: list[TrialRecord], budget: Budget) -> list[TrialRecord]:
    """Trained trials within the budget."""
    return [r for r in records if r.trained and r.within(budget)]


def pareto_front(records: list[TrialRecord], budget: Budget) -> list[TrialRecord]:
    """The front within the budget, smallest first (then most accurate, then lowest number)."""
    inside = candidates(records, budget)
    front = [r for r in inside if not any(dominates(_point(o), _point(r)) for o in inside)]
    return sorted(front, key=lambda r: (r.total_bytes, -r.score.value, r.number))


def select_best(records: list[TrialRecord], budget: Budget) -> TrialRecord | None:
    """The most accurate trial (validation) within the budget: the largest point of the front. A
    more accurate trial is never smaller than a front point, so the front holds no two trials of
    equal accuracy but different size; of identical points the earliest trial is taken."""
    front = pareto_front(records, budget)
    return max(front, key=lambda r: (r.score.value, -r.number)) if front else None


def hypervolume(points: list[Point], budget_bytes: int) -> float:
    """Area dominated by (accuracy, bytes) points, in accuracy x share-of-budget units, against
    the reference point (accuracy 0, the whole budget): 1.0 would be 100% at zero bytes."""
    inside = sorted((b / budget_bytes, a) for a, b in points if b <= budget_bytes)
    # the front's steps only: a dominated point would split a step in two, and the two floating-point
    # products need not add up to the one (the hypervolume of a history could then fall by 1e-16)
    steps, best = [], 0.0
    for size, accuracy in inside:
        if accuracy > best:
            steps.append((size, accuracy))
            best = accuracy
    if not steps:
        return 0.0
    edges = [size for size, _ in steps[1:]] + [1.0]
    return sum(accuracy * (edge - size) for (size, accuracy), edge in zip(steps, edges, strict=True))


def front_hypervolume(records: list[TrialRecord], budget: Budget, part: str = "val") -> float:
    """Hypervolume of the trained trials within the budget, by validation ("val"), test ("test") or
    the objective ("score": the folds' validation speakers with --speaker-folds, else "val")."""
    return hypervolume([(getattr(r, part).value, r.total_bytes) for r in candidates(records, budget)], budget.limit_bytes)


# --------------------------------------------------------------------------------- plot data
FRONT = "front"
DOMINATED = "dominated"
OVER_TRAINED = "over budget (trained)"
OVER_PRUNED = "over budget, not trained"
STOPPED = "stopped early at a rung"
GROUPS = (STOPPED, DOMINATED, OVER_TRAINED, FRONT, OVER_PRUNED)  # drawing order: the front above the rest


@dataclass(frozen=True)
class FrontPlotData:
    """What a chart of the study draws: every trial in its group, the budget, the x range."""

    budget: Budget
    groups: dict[str, list[TrialRecord]]  # GROUPS -> records, smallest first
    x_range_kb: tuple[float, float]  # a log axis from a little below the smallest point to beyond the budget

    @property
    def budget_kb(self) -> float:
        return self.budget.limit_bytes / KB


def classify(records: list[TrialRecord], budget: Budget) -> dict[str, list[TrialRecord]]:
    on_front = {r.number for r in pareto_front(records, budget)}
    groups: dict[str, list[TrialRecord]] = {name: [] for name in GROUPS}
    for record in records:
        if record.trained:
            name = FRONT if record.number in on_front else (DOMINATED if record.within(budget) else OVER_TRAINED)
        elif record.over_budget and record.total_bytes is not None:
            name = OVER_PRUNED
        elif record.stopped and record.total_bytes is not None and record.stopped_accuracy is not None:
            name = STOPPED
        else:
            continue  # failed, running, or pruned for another reason: nothing to place
        groups[name].append(record)
    return {name: sorted(rows, key=lambda r: (r.total_bytes, r.number)) for name, rows in groups.items()}


def front_plot_data(records: list[TrialRecord], budget: Budget) -> FrontPlotData:
    groups = classify(records, budget)
    sizes_kb = [r.total_bytes / KB for rows in groups.values() for r in rows] or [budget.limit_bytes / KB]
    low = min(sizes_kb) / 1.25
    high = max(max(sizes_kb), budget.limit_bytes / KB) * 1.25
    return FrontPlotData(budget, groups, (low, high))


def log10_range(range_kb: tuple[float, float]) -> list[float]:
    """A log axis's range is given in log10 units (plotly), not in data units."""
    return [math.log10(range_kb[0]), math.log10(range_kb[1])]


@dataclass(frozen=True)
class HistoryPlotData:
    """How the search progressed: after each finished trial (in trial-number order), the most
    accurate trial within the budget so far and the hypervolume of the objective so far."""

    trial_numbers: list[int]
    best_score: list[float | None]  # the objective (TrialRecord.score) of the best so far; None before any
    best_trial: list[int | None]
    hypervolume: list[float]  # front_hypervolume(..., "score") of the trials so far


def history_plot_data(records: list[TrialRecord], budget: Budget) -> HistoryPlotData:
    finished = sorted((r for r in records if r.finished), key=lambda r: r.number)
    numbers, scores, bests, volumes = [], [], [], []
    for index, record in enumerate(finished):
        so_far = finished[: index + 1]
        best = select_best(so_far, budget)
        numbers.append(record.number)
        scores.append(best.score.value if best else None)
        bests.append(best.number if best else None)
        volumes.append(front_hypervolume(so_far, budget, "score"))
    return HistoryPlotData(numbers, scores, bests, volumes)


def log_ticks(range_kb: tuple[float, float]) -> list[float]:
    """Tick values of a log axis in kB: the 1-2-3-5 series inside the range (plotly's own labels of
    a log axis's minor ticks crowd into unreadable digits)."""
    low, high = range_kb
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        ticks += [m * 10.0**exponent for m in (1, 2, 3, 5) if low <= m * 10.0**exponent <= high]
    return ticks


# The accuracy-against-compute chart's groups: trained trials within the budget with a compute prediction
COMPUTE_FRONT = "front of accuracy against MIPS"
COMPUTE_OTHER = "other trained trials within the budget"


@dataclass(frozen=True)
class ComputePlotData:
    """Trained trials within the budget against the MIPS their frame needs in real time (the compute
    model on the study's --target): the accuracy-MIPS front (no other trial as accurate for fewer
    MIPS) and the rest, with the study's --mcu-mhz, if any, as the limit."""

    budget: Budget
    groups: dict[str, list[TrialRecord]]  # COMPUTE_FRONT (fewest MIPS first), COMPUTE_OTHER
    mcu_mhz: float | None


def compute_front(records: list[TrialRecord]) -> list[TrialRecord]:
    """The trials that no other is at least as accurate as with fewer MIPS (or as few and more accurate)."""
    front, best = [], -1.0
    for record in sorted(records, key=lambda r: (r.mips_for_real_time, -r.score.value, r.number)):
        if record.score.value > best:
            front.append(record)
            best = record.score.value
    return front


def compute_plot_data(records: list[TrialRecord], budget: Budget) -> ComputePlotData:
    placed = [r for r in candidates(records, budget) if r.mips_for_real_time is not None]
    front = compute_front(placed)
    numbers = {r.number for r in front}
    other = sorted((r for r in placed if r.number not in numbers), key=lambda r: (r.mips_for_real_time, r.number))
    return ComputePlotData(budget, {COMPUTE_FRONT: front, COMPUTE_OTHER: other}, budget.mcu_mhz)

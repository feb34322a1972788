"""Accuracy with its uncertainty: FSDD's test split has 300 files, so one error is 0.33 points."""

from __future__ import annotations

from dataclasses import dataclass

Z_95 = 1.959963984540054  # two-sided 95% normal quantile (what the intervals in the docs were worked out with)


@dataclass(frozen=True)
class Accuracy:
    correct: int
    total: int

    @property
    def value(self) -> float:
        return self.correct / self.total if self.total else float("nan")

    def interval(self) -> tuple[float, float]:
        """Wilson score 95% interval (scipy's, without continuity correction); unlike the normal
        approximation it stays inside [0, 1] and is sensible at 100% accuracy, which small test
        sets hit often."""
        if self.total == 0:
            return (float("nan"), float("nan"))
        from scipy.stats import binomtest

        interval = binomtest(self.correct, self.total).proportion_ci(confidence_level=0.95, method="wilson")
        return (max(0.0, float(interval.low)), min(1.0, float(interval.high)))

    def __add__(self, other: Accuracy) -> Accuracy:
        """Both counts pooled: the accuracy over the files of both."""
        return Accuracy(self.correct + other.correct, self.total + other.total)

    def __str__(self) -> str:
        low, high = self.interval()
        return f"{100 * self.value:.2f}% [95% CI {100 * low:.1f}-{100 * high:.1f}] ({self.correct}/{self.total})"


def confusion_counts(labels, predicted, n_classes: int) -> list[list[int]]:
    """Files per (spoken class, predicted class), rows spoken: plain lists, so that a trial can
    store it as an Optuna attribute."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(labels, predicted, labels=list(range(n_classes))).tolist()


def mean_interval(values: list[float], lowest: float = 0.0, highest: float = 100.0) -> tuple[float, float, float]:
    """Mean over seeds (accuracies in percent) and a 95% t-interval of that mean, clipped to the
    range an accuracy can take (half-width 0 for a single seed)."""
    from scipy import stats as scipy_stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, mean, mean
    spread = float(scipy_stats.sem(values))
    if spread == 0:  # every seed the same (scipy's interval of a zero scale is undefined)
        return mean, mean, mean
    low, high = scipy_stats.t.interval(0.95, n - 1, loc=mean, scale=spread)
    return mean, max(lowest, float(low)), min(highest, float(high))

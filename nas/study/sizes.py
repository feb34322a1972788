"""The size axis of a search: from the space's smallest configuration up to the budget, on a log
scale, cut into bands (issue 21).

A search that follows its sampler alone trains where the hypervolume pays most on a log-size axis,
the small end, and leaves the rest of the budget untried. So every size band gets a share of the
trials (`deficit_band`, used by nas.study.optimize), and a search's coverage is measured as the share of its
trained trials in the upper half of the range (`upper_half_share`). Sizes are the bytes the budget
limits (`Budget.scope`: total_bytes by default). No torch: this runs before any trial.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

from nas.device.memory import Budget, largest_hidden, memory_breakdown
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig

SIZE_BANDS = 4  # equal bands of log-bytes between the smallest configuration and the budget
BAND_MIN_SHARE = 0.15  # of the trained trials, at least this share in every band (4 x 15% = 60%; TPE places the rest)
SIZE_ATTR = "size_bytes"  # trial user attribute: the bytes the budget limits, set when the trial starts
BAND_ATTR = "size_band"  # the band the trial's size falls in


@dataclass(frozen=True)
class Shape:
    """Every sampled choice of a configuration but its hidden size."""

    cell: str
    layers: int
    n_mfcc: int
    quant: QuantConfig
    features: object  # nas.features.extract.FeatureConfig

    def model(self, hidden: int) -> ModelConfig:
        return ModelConfig(self.cell, self.layers, hidden, n_input=self.n_mfcc)


def shapes(space) -> list[Shape]:
    """Every shape of a search space (a few hundred at most: the memory model takes microseconds)."""
    formats = [
        QuantConfig.make(scheme, bits if scheme != "float" else None, state_bits=state if scheme != "float" else 16)
        for scheme in space.weights
        for bits in space.bits_for(scheme)
        for state in (space.state_bits if scheme != "float" else (16,))
    ]
    features = [space.feature_config(*values) for values in itertools.product(space.n_mfcc, space.n_mels, space.n_fft, space.hop_length)]
    return [
        Shape(cell, layers, feature.n_mfcc, quant, feature)
        for cell, layers, quant, feature in itertools.product(space.cells, space.layers, dict.fromkeys(formats), features)
    ]


def size_bytes(model: ModelConfig, quant: QuantConfig, features, budget: Budget) -> int:
    """The bytes of a configuration that the budget limits."""
    return memory_breakdown(model, quant, features).scoped_bytes(budget.scope)


@dataclass(frozen=True)
class SizeRange:
    """[smallest configuration, budget] in the budget's bytes, cut into equal log bands."""

    smallest_bytes: int
    budget_bytes: int
    bands: int = SIZE_BANDS

    def position(self, nbytes: float) -> float:
        """Where a size lies on the log axis: 0 at the smallest configuration, 1 at the budget."""
        if self.budget_bytes <= self.smallest_bytes:
            return 1.0
        ratio = math.log(max(nbytes, self.smallest_bytes) / self.smallest_bytes) / math.log(self.budget_bytes / self.smallest_bytes)
        return min(1.0, ratio)

    def bytes_at(self, position: float) -> int:
        """The size at a position of the log axis (the inverse of `position`)."""
        return math.floor(self.smallest_bytes * (self.budget_bytes / self.smallest_bytes) ** min(1.0, max(0.0, position)))

    def band(self, nbytes: float) -> int:
        return min(self.bands - 1, int(self.position(nbytes) * self.bands))

    def band_positions(self, band: int) -> tuple[float, float]:
        return band / self.bands, (band + 1) / self.bands


def size_range(space, budget: Budget) -> SizeRange | None:
    """The range of a search, or None when no configuration of the space fits the budget."""
    fitting = [
        size_bytes(shape.model(space.hidden_min), shape.quant, shape.features, budget)
        for shape in shapes(space)
        if largest_hidden(budget, shape.model(space.hidden_min), shape.quant, shape.features) >= space.hidden_min
    ]
    return SizeRange(min(fitting), budget.limit_bytes) if fitting else None


def smallest_configuration_bytes(space, budget: Budget) -> int:
    """The budget's bytes of the space's smallest configuration (fitting or not): what a refusal names."""
    return min(size_bytes(shape.model(space.hidden_min), shape.quant, shape.features, budget) for shape in shapes(space))


def hidden_for_position(shape: Shape, position: float, sizes: SizeRange, budget: Budget, hidden_min: int, hidden_max: int) -> int:
    """The largest hidden size of a shape whose size is at most the one at `position` of the range;
    the shape's smallest when even that is larger (the sampled size is then where the shape starts)."""
    target = replace(budget, limit_bytes=sizes.bytes_at(position))
    fits = min(hidden_max, largest_hidden(target, shape.model(hidden_min), shape.quant, shape.features))
    return max(hidden_min, fits)


def deficit_band(assigned_bands: list[int], bands: int = SIZE_BANDS, min_share: float = BAND_MIN_SHARE) -> int | None:
    """The band the next trial must be drawn in, or None (the sampler chooses freely): the band
    furthest below its share of the trials assigned so far, the next trial counted. A share is
    rounded up, so a band is served before it falls behind (the first trials visit every band
    once), and at any count every band holds at least its share rounded down. Ties go to the
    larger band (where trials cost most, so they are least often drawn on their own)."""
    total = len(assigned_bands) + 1
    counts = [assigned_bands.count(band) for band in range(bands)]
    short = [(min_share * total - counts[band], band) for band in range(bands) if counts[band] < math.ceil(min_share * total)]
    return max(short)[1] if short else None


def upper_half_share(trained_bytes: list[int], sizes: SizeRange) -> float | None:
    """Coverage: the share of trained trials whose size lies in the upper half of the log range."""
    if not trained_bytes:
        return None
    return sum(sizes.position(nbytes) >= 0.5 for nbytes in trained_bytes) / len(trained_bytes)

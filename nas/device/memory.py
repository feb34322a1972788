"""The analytic memory model: every byte the device holds, exactly, split into flash and RAM.

flash_bytes = packed weights + biases + shifts (weights.bin) + the activation table + the
front-end's tables; ram_bytes = the stream struct (state, buffers, scratch, end padding) + the
stack reserve; total_bytes = flash_bytes + ram_bytes (docs/memory-model.md). The lines are those of
`nas.device.regions`, which the C generator declares, so the compiler's `nm -S` and `sizeof` equal them.
This module imports no torch: the search prunes with it in well under a millisecond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.core import limits
from nas.device.regions import FLASH, RAM, Region, flash_regions, pair_table, ram_regions, weight_codes
from nas.device.targets import DEFAULT_TARGET
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig

KB = 1024  # DESIGN.md: 1 kB = 1024 bytes
# 6: every weight row padded to a byte (the kernel reads rows at fixed bit positions); 5: pow2 4-bit
# multiplier pairs from 32,768 codes; 4: pow2 3-bit multiplier pairs; 3: the pow2
# multiplier table of the exact integer engine; 2: flash and RAM of the whole device (front-end,
# stream struct, stack); 1: weights, tables and state
MEMORY_MODEL_VERSION = 6
BUDGET_SCOPES = ("total", "weights")  # what --budget-kb covers: total_bytes, or the packed constants
DEFAULT_BUDGET_SCOPE = BUDGET_SCOPES[0]


# The parts of a breakdown, in the order every table and chart shows them: (key of `to_dict()`,
# region, the category of `nas.device.regions` lines it sums).
MEMORY_PARTS = (
    ("weight_bytes", FLASH, "weights"),
    ("bias_bytes", FLASH, "biases"),
    ("meta_bytes", FLASH, "meta"),
    ("table_bytes", FLASH, "tables"),
    ("frontend_bytes", FLASH, "frontend"),
    ("state_bytes", RAM, "state"),
    ("buffer_bytes", RAM, "buffers"),
    ("scratch_bytes", RAM, "scratch"),
    ("padding_bytes", RAM, "padding"),
    ("stack_bytes", RAM, "stack"),
)


def budget_bytes_from_kb(budget_kb: float) -> int:
    """--budget-kb means "at most": round down to whole bytes."""
    return math.floor(budget_kb * KB)


def scoped_bytes(totals: dict, scope: str) -> int:
    """The bytes a limit of this scope covers, from a breakdown's `to_dict()`: everything, only
    the packed constants (weights.bin), only flash or only RAM."""
    if scope == "weights":
        return totals["weight_bytes"] + totals["bias_bytes"] + totals["meta_bytes"]
    return totals[f"{scope}_bytes"]


@dataclass(frozen=True)
class Budget:
    limit_bytes: int  # --budget-kb
    scope: str = "total"  # one of BUDGET_SCOPES
    flash_bytes: int | None = None  # --flash-kb: also at most this much flash
    ram_bytes: int | None = None  # --ram-kb: also at most this much RAM
    # --mcu-mhz: also a frame within one hop at this clock on `target`, by the compute model
    # (nas.device.compute); it limits integer models with the device front-end
    mcu_mhz: float | None = None
    target: str = DEFAULT_TARGET  # --target

    @classmethod
    def from_kb(
        cls,
        budget_kb: float,
        scope: str = "total",
        flash_kb: float | None = None,
        ram_kb: float | None = None,
        mcu_mhz: float | None = None,
        target: str = DEFAULT_TARGET,
    ) -> Budget:
        def optional(kb: float | None) -> int | None:
            return None if kb is None else budget_bytes_from_kb(kb)

        return cls(budget_bytes_from_kb(budget_kb), scope, optional(flash_kb), optional(ram_kb), mcu_mhz, target)

    def limits_compute(self, quant: QuantConfig, features) -> bool:
        """Whether the compute limit applies: a clock, an integer model and the device front-end (its hop)."""
        return self.mcu_mhz is not None and quant.quantized and features is not None

    def compute_exceeded(self, model: ModelConfig, quant: QuantConfig, features) -> list[str]:
        """The compute limit a configuration breaks, as a phrase (or nothing)."""
        from nas.device.compute import TOLERANCE, in_real_time, instruction_limit, predict_instructions

        if not self.limits_compute(quant, features) or in_real_time(model, quant, features, self.mcu_mhz, self.target):
            return []
        predicted, limit = predict_instructions(model, quant, features, self.target).per_frame, instruction_limit(self.mcu_mhz, features)
        return [
            f"compute {predicted:,.0f} instructions per frame > {limit * (1 - TOLERANCE):,.0f} "
            f"({self.mcu_mhz:g} MHz on {self.target}, less the compute model's {TOLERANCE:.0%} tolerance)"
        ]

    def limits(self) -> list[tuple[str, int]]:
        """(scope, bytes) of every limit a configuration must keep."""
        extra = [("flash", self.flash_bytes), ("ram", self.ram_bytes)]
        return [(self.scope, self.limit_bytes)] + [(scope, limit) for scope, limit in extra if limit is not None]

    def admits(self, totals: dict) -> bool:
        return all(scoped_bytes(totals, scope) <= limit for scope, limit in self.limits())

    def exceeded(self, totals: dict) -> list[str]:
        """What a configuration breaks, one phrase per limit: "ram 5,120 B > 4,096 B"."""
        return [
            f"{scope} {scoped_bytes(totals, scope):,} B > {limit:,} B"
            for scope, limit in self.limits()
            if scoped_bytes(totals, scope) > limit
        ]

    def describe(self) -> str:
        parts = [f"{format_bytes(self.limit_bytes)} ({self.scope})"]
        parts += [f"{scope} {format_bytes(limit)}" for scope, limit in self.limits()[1:]]
        if self.mcu_mhz is not None:
            parts.append(f"real time at {self.mcu_mhz:g} MHz on {self.target}")
        return ", ".join(parts)


def format_bytes(nbytes: int | float) -> str:
    """Every size the tool prints: kB (1 kB = 1024 B) and the exact bytes."""
    return f"{nbytes / KB:,.2f} kB ({int(nbytes):,} B)"


@dataclass(frozen=True)
class MemoryBreakdown:
    items: tuple[Region, ...]

    def _sum(self, category: str) -> int:
        return sum(i.nbytes for i in self.items if i.category == category)

    @property
    def weight_bytes(self) -> int:
        return self._sum("weights")

    @property
    def bias_bytes(self) -> int:
        return self._sum("biases")

    @property
    def meta_bytes(self) -> int:
        return self._sum("meta")

    @property
    def table_bytes(self) -> int:
        return self._sum("tables")

    @property
    def frontend_bytes(self) -> int:
        """The front-end's flash tables (window, twiddles, filterbank, log table, DCT, normalisation)."""
        return self._sum("frontend")

    @property
    def state_bytes(self) -> int:
        return self._sum("state")

    @property
    def buffer_bytes(self) -> int:
        return self._sum("buffers")

    @property
    def scratch_bytes(self) -> int:
        return self._sum("scratch")

    @property
    def padding_bytes(self) -> int:
        return self._sum("padding")

    @property
    def stack_bytes(self) -> int:
        return self._sum("stack")

    @property
    def packed_bytes(self) -> int:
        """What weights.bin and the C array `nas_packed` hold."""
        return self.weight_bytes + self.bias_bytes + self.meta_bytes

    @property
    def flash_bytes(self) -> int:
        return sum(i.nbytes for i in self.items if i.region == FLASH)

    @property
    def ram_bytes(self) -> int:
        return sum(i.nbytes for i in self.items if i.region == RAM)

    @property
    def struct_bytes(self) -> int:
        """sizeof(nas_stream_t): RAM but the stack."""
        return self.ram_bytes - self.stack_bytes

    @property
    def total_bytes(self) -> int:
        return self.flash_bytes + self.ram_bytes

    def scoped_bytes(self, scope: str) -> int:
        return scoped_bytes(self.to_dict(), scope)

    def to_dict(self) -> dict:
        """Each part's bytes (MEMORY_PARTS), the flash part first, then flash_bytes, the RAM
        part, ram_bytes and total_bytes."""
        totals: dict[str, int] = {}
        for region, total in ((FLASH, self.flash_bytes), (RAM, self.ram_bytes)):
            totals |= {key: self._sum(category) for key, where, category in MEMORY_PARTS if where == region}
            totals[f"{region}_bytes"] = total
        return totals | {"total_bytes": self.total_bytes}


def memory_breakdown(model: ModelConfig, quant: QuantConfig, features, _continuous: bool = False) -> MemoryBreakdown:
    """Itemised bytes of a configuration. `features` (a FeatureConfig) adds the integer
    front-end's tables and buffers: the device then takes PCM samples; None counts a model fed
    with feature frames by the caller. `_continuous` drops the byte padding of packed tensors
    and of the struct, which makes the total an exact quadratic in the hidden size (while the
    front-end's scratch is the larger side of its union; used by the closed-form solver)."""
    return MemoryBreakdown(tuple(flash_regions(model, quant, features, _continuous) + ram_regions(model, quant, features, _continuous)))


def largest_hidden(budget: Budget, model: ModelConfig, quant: QuantConfig, features, max_hidden: int = limits.HIDDEN.high) -> int:
    """The largest hidden size within every limit of the budget; 0 if none.

    Closed form per limit: without byte padding the bytes are exactly a*H^2 + b*H + c (RAM alone
    is linear, a = 0); the three coefficients come from the model itself at H = 0, 1, 2, and the
    positive root bounds the answer from above (padding, and a gate scratch that outgrows the
    front-end's side of their union, only add bytes). A step or two down with the exact model
    ends it. The answer is the smallest over the limits, and with --mcu-mhz the largest whose frame
    the compute model puts within one hop (nas.device.compute.largest_hidden_in_real_time).
    """
    hidden = max_hidden
    for scope, limit in budget.limits():
        hidden = min(hidden, _largest_within(scope, limit, model, quant, features, max_hidden))
    if budget.limits_compute(quant, features) and hidden > 0:
        from nas.device.compute import largest_hidden_in_real_time

        hidden = largest_hidden_in_real_time(model, quant, features, budget.mcu_mhz, budget.target, hidden)
    return hidden


def _largest_within(scope: str, limit: int, model: ModelConfig, quant: QuantConfig, features, max_hidden: int) -> int:
    def continuous(hidden: int) -> float:
        return memory_breakdown(model.with_hidden(hidden), quant, features, _continuous=True).scoped_bytes(scope)

    def exact(hidden: int) -> int:
        return memory_breakdown(model.with_hidden(hidden), quant, features).scoped_bytes(scope)

    s0, s1, s2 = continuous(0), continuous(1), continuous(2)
    a = (s2 - 2 * s1 + s0) / 2
    b = s1 - s0 - a

    def largest(extra: float) -> int:
        c = s0 + extra - limit
        if a > 1e-12:  # the positive root of a*H^2 + b*H + c
            root = (-b + math.sqrt(max(0.0, b * b - 4 * a * c))) / (2 * a)
        elif b > 1e-12:
            root = -c / b
        else:  # these bytes do not grow with H
            root = max_hidden if c <= 0 else -1
        return min(max_hidden, max(0, math.floor(root + 1e-9)))

    def step(hidden: int) -> float:
        """A table that only larger models hold (the pow2 multiplier pairs): a step in flash."""
        if scope not in ("total", "flash") or not quant.quantized:  # the tables are flash, not weights.bin
            return 0.0
        held = pair_table(quant, weight_codes(model.with_hidden(hidden))) and not pair_table(quant, weight_codes(model.with_hidden(2)))
        # the pairs' table less the single multipliers' it replaces: what the quadratic does not hold
        return continuous(hidden) - (a * hidden * hidden + b * hidden + s0) if held else 0.0

    hidden = largest(0.0)
    extra = step(hidden)
    if extra > 1e-6:  # past the table's threshold: solve again with its bytes
        below, hidden = hidden, largest(extra)
        if step(hidden) <= 1e-6:  # the threshold lies between: the largest model without the table
            while below > hidden + 1:  # bisect (unpadded, cheap) for the last hidden size before the step
                middle = (below + hidden) // 2
                below, hidden = (middle, hidden) if step(middle) > 1e-6 else (below, middle)
    while hidden > 0 and exact(hidden) > limit:
        hidden -= 1
    return hidden

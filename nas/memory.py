"""The analytic memory model: what a configuration costs in bytes, exactly.

total_bytes = weight_bytes + bias_bytes + meta_bytes + table_bytes + state_bytes (DESIGN.md).
The tensors are those of `nas.layout`, which `nas.intmodel.pack` writes, so
`len(pack(model)) == weight_bytes + bias_bytes + meta_bytes` by construction (and by test).
This module imports no torch: the search prunes with it in well under a millisecond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas import limits
from nas.architecture import ModelConfig
from nas.formats import ACCUMULATOR_BITS, SIGMOID_TABLE_ENTRIES, TABLE_ENTRY_BYTES, QuantConfig
from nas.layout import SHIFT_BITS, bias_vectors, packed_tensor_bytes, weight_tensors
from nas.limits import FLOAT_BITS

KB = 1024  # DESIGN.md: 1 kB = 1024 bytes
SCRATCH_BITS = 16  # gate pre-activations (Q3.12) and gate outputs (Q0.15)
BUDGET_SCOPES = ("total", "weights")  # what --budget-kb covers: total_bytes, or the packed constants


def budget_bytes_from_kb(budget_kb: float) -> int:
    """--budget-kb means "at most": round down to whole bytes."""
    return math.floor(budget_kb * KB)


def scoped_bytes(totals: dict, scope: str) -> int:
    """The bytes a budget of this scope covers, from a breakdown's `to_dict()`: everything, or
    only the packed constants (weights.bin)."""
    if scope == "weights":
        return totals["weight_bytes"] + totals["bias_bytes"] + totals["meta_bytes"]
    return totals["total_bytes"]


@dataclass(frozen=True)
class Budget:
    limit_bytes: int
    scope: str = "total"  # one of BUDGET_SCOPES

    @classmethod
    def from_kb(cls, budget_kb: float, scope: str = "total") -> Budget:
        return cls(budget_bytes_from_kb(budget_kb), scope)

    def admits(self, totals: dict) -> bool:
        return scoped_bytes(totals, self.scope) <= self.limit_bytes

    def describe(self) -> str:
        return f"{format_bytes(self.limit_bytes)} ({self.scope})"


def format_bytes(nbytes: int | float) -> str:
    """Every size the tool prints: kB (1 kB = 1024 B) and the exact bytes."""
    return f"{nbytes / KB:,.2f} kB ({int(nbytes):,} B)"


@dataclass(frozen=True)
class Item:
    category: str  # weights | biases | meta | tables | state
    name: str
    count: int
    bits: int
    nbytes: int


@dataclass(frozen=True)
class MemoryBreakdown:
    items: tuple[Item, ...]

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
    def state_bytes(self) -> int:
        return self._sum("state")

    @property
    def packed_bytes(self) -> int:
        """What weights.bin and the C weight arrays hold."""
        return self.weight_bytes + self.bias_bytes + self.meta_bytes

    @property
    def total_bytes(self) -> int:
        return self.packed_bytes + self.table_bytes + self.state_bytes

    def scoped_bytes(self, scope: str) -> int:
        return scoped_bytes(self.to_dict(), scope)

    def to_dict(self) -> dict:
        return {
            "weight_bytes": self.weight_bytes,
            "bias_bytes": self.bias_bytes,
            "meta_bytes": self.meta_bytes,
            "table_bytes": self.table_bytes,
            "state_bytes": self.state_bytes,
            "total_bytes": self.total_bytes,
        }


def scratch_values(model: ModelConfig) -> int:
    """Gate values held during one step of one layer (reused by the next layer): GRU r, z and the
    two halves of the candidate (4H); LSTM i, f, g, o (4H); RNN one pre-activation (H)."""
    return {"gru": 4, "lstm": 4, "rnn": 1}[model.cell] * model.hidden


def memory_breakdown(model: ModelConfig, quant: QuantConfig, _continuous: bool = False) -> MemoryBreakdown:
    """Itemised bytes of a configuration. `_continuous` drops the per-tensor byte padding, which
    makes the total an exact quadratic in the hidden size (used by the closed-form solver)."""

    def nbytes(count: int, bits: int) -> int | float:
        return count * bits / 8 if _continuous else packed_tensor_bytes(count, bits)

    weight_bits = quant.weight_bits if quant.quantized else FLOAT_BITS
    bias_bits = quant.bias_bits if quant.quantized else FLOAT_BITS
    state_bits = quant.state_bits if quant.quantized else FLOAT_BITS
    scratch_bits = SCRATCH_BITS if quant.quantized else FLOAT_BITS
    items: list[Item] = []
    for tensor in weight_tensors(model):
        items.append(Item("weights", tensor.name, tensor.count, weight_bits, nbytes(tensor.count, weight_bits)))
    for vector in bias_vectors(model, quant):
        items.append(Item("biases", vector.name, vector.count, bias_bits, nbytes(vector.count, bias_bits)))
    if quant.quantized:
        for tensor in weight_tensors(model):
            items.append(Item("meta", f"{tensor.name}.shift", 1, SHIFT_BITS, nbytes(1, SHIFT_BITS)))
        items.append(
            Item("tables", "sigmoid table", SIGMOID_TABLE_ENTRIES, 8 * TABLE_ENTRY_BYTES, SIGMOID_TABLE_ENTRIES * TABLE_ENTRY_BYTES)
        )
    for layer in range(model.layers):
        items.append(Item("state", f"layer{layer}.h", model.hidden, state_bits, nbytes(model.hidden, state_bits)))
        if model.cell == "lstm":
            items.append(Item("state", f"layer{layer}.c", model.hidden, state_bits, nbytes(model.hidden, state_bits)))
    items.append(Item("state", "input frame", model.n_input, state_bits, nbytes(model.n_input, state_bits)))
    scratch = scratch_values(model)
    items.append(Item("state", "gate scratch", scratch, scratch_bits, nbytes(scratch, scratch_bits)))
    logit_bits = ACCUMULATOR_BITS if quant.quantized else FLOAT_BITS
    items.append(Item("state", "logits", model.n_classes, logit_bits, nbytes(model.n_classes, logit_bits)))
    return MemoryBreakdown(tuple(items))


def largest_hidden(
    budget_bytes: int, model: ModelConfig, quant: QuantConfig, scope: str = "total", max_hidden: int = limits.HIDDEN.high
) -> int:
    """The largest hidden size whose bytes (total, or weights+biases+meta) fit the budget; 0 if none.

    Closed form: without per-tensor padding the size is exactly a*H^2 + b*H + c; its three
    coefficients come from the model itself at H = 0, 1, 2, and the positive root bounds the
    answer from above (padding only adds bytes). A step or two down with the exact model ends it.
    """

    def continuous(hidden: int) -> float:
        return memory_breakdown(model.with_hidden(hidden), quant, _continuous=True).scoped_bytes(scope)

    def exact(hidden: int) -> int:
        return memory_breakdown(model.with_hidden(hidden), quant).scoped_bytes(scope)

    s0, s1, s2 = continuous(0), continuous(1), continuous(2)
    a = (s2 - 2 * s1 + s0) / 2
    b = s1 - s0 - a
    c = s0 - budget_bytes
    # a > 0 always: every cell has a W_hh of G*H x H values. The positive root of a*H^2 + b*H + c:
    root = (-b + math.sqrt(max(0.0, b * b - 4 * a * c))) / (2 * a)
    hidden = min(max_hidden, max(0, math.floor(root + 1e-9)))
    while hidden > 0 and exact(hidden) > budget_bytes:
        hidden -= 1
    return hidden

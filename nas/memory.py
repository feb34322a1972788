"""The analytic memory model: what a configuration costs in bytes, exactly.

total_bytes = weight_bytes + bias_bytes + meta_bytes + table_bytes + state_bytes (DESIGN.md).
The tensor lists here are also the layout that `nas.intmodel.pack` writes, so
`len(pack(model)) == weight_bytes + bias_bytes + meta_bytes` by construction (and by test).
This module imports no torch: the search prunes with it in well under a millisecond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.architecture import ModelConfig
from nas.formats import ACCUMULATOR_BITS, GATES, SIGMOID_TABLE_ENTRIES, TABLE_ENTRY_BYTES, QuantConfig

KB = 1024  # DESIGN.md: 1 kB = 1024 bytes
META_BYTES_PER_TENSOR = 1  # int8: the fixed-point frac bits, or the pow2 e_max, of one weight tensor
SCRATCH_BITS = 16  # gate pre-activations (Q3.12) and gate outputs (Q0.15)
FLOAT_BITS = 32


@dataclass(frozen=True)
class Tensor:
    name: str
    rows: int
    cols: int

    @property
    def count(self) -> int:
        return self.rows * self.cols


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
        return self.packed_bytes if scope == "weights" else self.total_bytes

    def to_dict(self) -> dict:
        return {
            "weight_bytes": self.weight_bytes,
            "bias_bytes": self.bias_bytes,
            "meta_bytes": self.meta_bytes,
            "table_bytes": self.table_bytes,
            "state_bytes": self.state_bytes,
            "total_bytes": self.total_bytes,
        }


def weight_tensors(model: ModelConfig) -> list[Tensor]:
    """Every weight matrix, in storage order. Gate rows follow torch: GRU r,z,n; LSTM i,f,g,o."""
    gates = GATES[model.cell] * model.hidden
    tensors = []
    for layer in range(model.layers):
        inputs = model.n_input if layer == 0 else model.hidden
        tensors += [Tensor(f"layer{layer}.w_ih", gates, inputs), Tensor(f"layer{layer}.w_hh", gates, model.hidden)]
    return [*tensors, Tensor("classifier.w", model.n_classes, model.hidden)]


def bias_vectors(model: ModelConfig, quant: QuantConfig) -> list[Tensor]:
    """Biases in storage order. A float model keeps torch's separate input and hidden biases; the
    integer model adds them where the cell allows (GRU keeps b_hn apart: it sits inside r * (.))."""
    hidden, gates = model.hidden, GATES[model.cell] * model.hidden
    vectors = []
    for layer in range(model.layers):
        if not quant.quantized:
            vectors += [Tensor(f"layer{layer}.b_ih", gates, 1), Tensor(f"layer{layer}.b_hh", gates, 1)]
        elif model.cell == "gru":
            vectors += [Tensor(f"layer{layer}.b_rzn", 3 * hidden, 1), Tensor(f"layer{layer}.b_hn", hidden, 1)]
        else:
            vectors.append(Tensor(f"layer{layer}.b", gates, 1))
    return [*vectors, Tensor("classifier.b", model.n_classes, 1)]


def packed_tensor_bytes(count: int, bits: int) -> int:
    """Bit-packed, padded to a whole byte per tensor."""
    return (count * bits + 7) // 8


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
            items.append(Item("meta", f"{tensor.name}.shift", 1, 8 * META_BYTES_PER_TENSOR, META_BYTES_PER_TENSOR))
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


def _with_hidden(model: ModelConfig, hidden: int) -> ModelConfig:
    return ModelConfig(**(model.to_dict() | {"hidden": hidden}))


def largest_hidden(budget_bytes: int, model: ModelConfig, quant: QuantConfig, scope: str = "total", max_hidden: int = 4096) -> int:
    """The largest hidden size whose bytes (total, or weights+biases+meta) fit the budget; 0 if none.

    Closed form: without per-tensor padding the size is exactly a*H^2 + b*H + c; its three
    coefficients come from the model itself at H = 0, 1, 2, and the positive root bounds the
    answer from above (padding only adds bytes). A step or two down with the exact model ends it.
    """

    def continuous(hidden: int) -> float:
        return memory_breakdown(_with_hidden(model, hidden), quant, _continuous=True).scoped_bytes(scope)

    def exact(hidden: int) -> int:
        return memory_breakdown(_with_hidden(model, hidden), quant).scoped_bytes(scope)

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


def format_bytes(nbytes: int | float) -> str:
    return f"{nbytes / KB:,.2f} kB ({int(nbytes):,} B)"

"""The layout of a model's constants: which tensors exist, in what order, under what names,
and where each one sits in the packed bytes (weights.bin and the C array).

The memory model counts these tensors, `nas.engine.intmodel.pack`/`unpack` write and read them at these
offsets, and `nas.device.cexport` refers to each by its symbol: one list, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.model.architecture import ModelConfig
from nas.model.formats import GATES, QuantConfig

SHIFT_BITS = 8  # one int8 per weight tensor: the fixed-point frac bits, or the pow2 e_max


@dataclass(frozen=True)
class Tensor:
    name: str  # e.g. "layer0.w_ih", "classifier.b"
    rows: int
    cols: int

    @property
    def count(self) -> int:
        return self.rows * self.cols

    @property
    def symbol(self) -> str:
        """A C identifier for the tensor: "layer0.w_ih" -> "LAYER0_W_IH"."""
        return self.name.replace(".", "_").upper()


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


def row_bytes(cols: int, bits: int) -> int:
    """One row's codes, bit-packed, padded to a whole byte: every row starts on a byte, so the C kernel
    reads a row at fixed bit positions (no run-time bit offset, docs/export.md)."""
    return (cols * bits + 7) // 8


def packed_tensor_bytes(rows: int, cols: int, bits: int) -> int:
    """Bit-packed row by row, each row padded to a whole byte (a bias vector is rows x 1)."""
    return rows * row_bytes(cols, bits)


@dataclass(frozen=True)
class Slot:
    """One tensor's place in the packed bytes."""

    tensor: Tensor
    offset: int  # bytes from the start of weights.bin
    nbytes: int

    @property
    def end(self) -> int:
        return self.offset + self.nbytes


@dataclass(frozen=True)
class PackedLayout:
    """weights.bin of a quantized model: weight codes, then biases, then one shift per weight
    tensor (`shifts[i]` belongs to `weights[i]`). docs/export.md describes the bytes."""

    weights: tuple[Slot, ...]
    biases: tuple[Slot, ...]
    shifts: tuple[Slot, ...]

    @property
    def total_bytes(self) -> int:
        return self.shifts[-1].end

    def slots(self) -> tuple[Slot, ...]:
        return self.weights + self.biases + self.shifts

    def shift_of(self, name: str) -> Slot:
        return self.shifts[[slot.tensor.name for slot in self.weights].index(name)]


def packed_layout(model: ModelConfig, quant: QuantConfig) -> PackedLayout:
    offset = 0

    def place(tensors: list[Tensor], bits: int) -> tuple[Slot, ...]:
        nonlocal offset
        slots = []
        for tensor in tensors:
            size = packed_tensor_bytes(tensor.rows, tensor.cols, bits)
            slots.append(Slot(tensor, offset, size))
            offset += size
        return tuple(slots)

    weights = place(weight_tensors(model), quant.weight_bits)
    biases = place(bias_vectors(model, quant), quant.bias_bits)
    shifts = place([Tensor(f"{t.name}.shift", 1, 1) for t in weight_tensors(model)], SHIFT_BITS)
    return PackedLayout(weights, biases, shifts)

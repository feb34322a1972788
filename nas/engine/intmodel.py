"""The integer engine: the specification of inference (numpy, integer dtypes only).

Formats are those of `nas.model.formats`. One step of one layer, for inputs x (frac fx) and state h:
    px = sat16(round_shift(W_ih · x, frac(W_ih) + fx - 12))         gate pre-activations, Q3.12
    ph = sat16(round_shift(W_hh · h, frac(W_hh) + fh - 12))
  GRU (gate rows r, z, n):
    r = sigmoid(sat16(px_r + ph_r + b_r)),  z = sigmoid(sat16(px_z + ph_z + b_z))      Q0.15
    n = tanh(sat16(px_n + b_in + round_shift(r * sat16(ph_n + b_hn), 15)))
    h' = n + round_shift(z * (h15 - n), 15)          (h15: h in Q0.15), then to the state width
  LSTM (i, f, g, o): pre = sat16(px + ph + b); c' = sat(round_shift(f*c, 15) + round_shift(i*g, 30 - fc));
    h' = round_shift(o * tanh(c'), 15)
  RNN: h' = tanh(sat16(px + ph + b))
  classifier: logits = round_shift(W_c · h, frac(W_c) + fh - 12) + b_c      (int32, Q.12)
round_shift(v, s) = (v + 2**(s-1)) >> s for s > 0 (round half up), v << -s otherwise.
Every dot product is exact, and is rounded once per output (the round_shift above): each weight
code stands for an integer multiplier m in the accumulator's scale (frac A bits), and W · x is
the exact sum of m * x. Fixed-point: m is the code, A its frac bits. Power-of-two: m =
sign * 2**(e_max - k + A) with A = -e_min (e_min = e_max - (magnitudes - 1), the tensor's smallest
power), so m = sign * 2**(magnitudes - 1 - k), a table of 2**bits entries that depends on the
width alone (`pow2_multipliers`); the zero code is 0. The accumulator holds any sum: 32 bits where
the tensor's shape and format bound it there (`accumulator_bits`), 64 bits otherwise (the
result is the same; only the C's instructions differ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nas.core.errors import NasError
from nas.engine.layout import packed_layout, row_bytes
from nas.model.architecture import ModelConfig
from nas.model.formats import (
    ACCUMULATOR_BITS,
    GATE_FRAC,
    PREACT_FRAC,
    SIGMOID_TABLE_ENTRIES,
    SIGMOID_TABLE_STEP_SHIFT,
    QuantConfig,
    pow2_magnitudes,
)

INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1
ACC_LIMIT = 2 ** (ACCUMULATOR_BITS - 1) - 1


# ---------------------------------------------------------------------------------- arithmetic
def round_shift(values: np.ndarray, shift: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.int64)
    if shift > 0:
        return (values + (1 << (shift - 1))) >> shift
    return values << (-shift)


def saturate(values: np.ndarray, bits: int) -> np.ndarray:
    return np.clip(values, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def sat16(values: np.ndarray) -> np.ndarray:
    return np.clip(values, INT16_MIN, INT16_MAX)


def sigmoid_table() -> np.ndarray:
    """sigmoid(i/16) for i = 0..128, Q0.15, int16."""
    x = np.arange(SIGMOID_TABLE_ENTRIES) / 2 ** (PREACT_FRAC - SIGMOID_TABLE_STEP_SHIFT)
    return np.minimum(np.floor(32768 / (1 + np.exp(-x)) + 0.5), INT16_MAX).astype(np.int16)


SIGMOID_TABLE = sigmoid_table()


def _sigmoid_positive(magnitude: np.ndarray) -> np.ndarray:
    """sigmoid of a non-negative Q3.12 value (up to 2**15), Q0.15, by table and interpolation."""
    table = SIGMOID_TABLE.astype(np.int64)
    index = magnitude >> SIGMOID_TABLE_STEP_SHIFT
    fraction = magnitude & ((1 << SIGMOID_TABLE_STEP_SHIFT) - 1)
    last = SIGMOID_TABLE_ENTRIES - 1
    inside = index < last
    safe = np.minimum(index, last - 1)
    step = table[safe + 1] - table[safe]
    interpolated = table[safe] + round_shift(step * fraction, SIGMOID_TABLE_STEP_SHIFT)
    return np.where(inside, interpolated, table[last])


def int_sigmoid(pre: np.ndarray) -> np.ndarray:
    """Q3.12 in, Q0.15 out; sigmoid(-x) = 1 - sigmoid(x)."""
    pre = np.asarray(pre, dtype=np.int64)
    positive = _sigmoid_positive(np.abs(pre))
    return np.where(pre < 0, (1 << GATE_FRAC) - positive, positive)


def int_tanh(pre: np.ndarray) -> np.ndarray:
    """Q3.12 in, Q0.15 out; tanh(x) = 2 sigmoid(2x) - 1."""
    pre = np.asarray(pre, dtype=np.int64)
    doubled = np.minimum(2 * np.abs(pre), (SIGMOID_TABLE_ENTRIES - 1) << SIGMOID_TABLE_STEP_SHIFT)
    magnitude = 2 * _sigmoid_positive(doubled) - (1 << GATE_FRAC)
    return np.where(pre < 0, -magnitude, magnitude)


# ------------------------------------------------------------------------------------ weights
@dataclass
class IntWeight:
    """One quantized weight matrix: its codes as stored, and the integer multipliers they stand for."""

    scheme: str  # fixed | pow2
    bits: int
    shift: int  # fixed: frac bits; pow2: e_max
    codes: np.ndarray  # (rows, cols) int64: fixed: signed integers; pow2: sign << (bits-1) | k
    input_bits: int  # width of the values it multiplies (the state width)
    acc_frac: int = field(init=False)  # frac bits of the multipliers (A): the accumulator holds W · x in frac A + x_frac
    exact: np.ndarray = field(init=False)  # (rows, cols) int64: the multiplier of each weight

    def __post_init__(self) -> None:
        self.codes = np.asarray(self.codes, dtype=np.int64)
        if self.scheme == "fixed":
            self.acc_frac, self.exact = self.shift, self.codes
        else:
            self.acc_frac = pow2_magnitudes(self.bits) - 1 - self.shift  # -e_min
            self.exact = pow2_multipliers(self.bits)[self.codes]

    @property
    def accumulator_bits(self) -> int:
        return accumulator_bits(self.scheme, self.bits, self.codes.shape[1], self.input_bits)

    def accumulate(self, inputs: np.ndarray) -> np.ndarray:
        """W · x for a batch of input rows, exactly, in the accumulator's integer scale (int64)."""
        return np.asarray(inputs, np.int64) @ self.exact.T

    def decoded(self) -> np.ndarray:
        """The real values the codes stand for (for tests and reports)."""
        return self.exact * 2.0**-self.acc_frac


def pow2_multipliers(bits: int) -> np.ndarray:
    """(2**bits,) int64: the multiplier of each pow2 code, sign << (bits-1) | k: sign * 2**(L-1-k),
    L = the number of magnitudes; the all-ones k (k = L) is zero."""
    half, levels = 1 << (bits - 1), pow2_magnitudes(bits)
    k = np.arange(1 << bits) % half
    magnitude = np.where(k < levels, np.int64(1) << np.maximum(levels - 1 - k, 0), 0)
    return np.where(np.arange(1 << bits) >= half, -magnitude, magnitude).astype(np.int64)


def largest_multiplier(scheme: str, bits: int) -> int:
    """The largest |m| a code of the format can stand for."""
    return 2 ** (pow2_magnitudes(bits) - 1) if scheme == "pow2" else 2 ** (bits - 1)


def accumulator_bits(scheme: str, bits: int, cols: int, input_bits: int) -> int:
    """32 when every sum of `cols` products fits an int32 for any codes and inputs, else 64."""
    worst = cols * largest_multiplier(scheme, bits) * 2 ** (input_bits - 1)
    return 32 if worst <= ACC_LIMIT else 64


# -------------------------------------------------------------------------------------- model
@dataclass
class IntegerModel:
    model_config: ModelConfig
    quant: QuantConfig
    weights: dict[str, IntWeight]  # names of nas.engine.layout.weight_tensors
    biases: dict[str, np.ndarray]  # names of nas.engine.layout.bias_vectors; Q3.12 integers
    input_frac: int  # frac bits of the quantized input frames

    def quantize_frames(self, frames: np.ndarray) -> np.ndarray:
        """Normalised float features -> the engine's input integers (round half up, saturate)."""
        return saturate(np.floor(np.asarray(frames, np.float64) * 2.0**self.input_frac + 0.5).astype(np.int64), self.quant.state_bits)

    def _preact(self, name: str, inputs: np.ndarray, input_frac: int) -> np.ndarray:
        weight = self.weights[name]
        return sat16(round_shift(weight.accumulate(inputs), weight.acc_frac + input_frac - PREACT_FRAC))

    def _step(self, layer: int, x: np.ndarray, x_frac: int, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        quant, hidden = self.quant, self.model_config.hidden
        hf, cf = quant.hidden_frac, quant.cell_frac
        px = self._preact(f"layer{layer}.w_ih", x, x_frac)
        ph = self._preact(f"layer{layer}.w_hh", h, hf)
        cell = self.model_config.cell
        if cell == "gru":
            b = self.biases[f"layer{layer}.b_rzn"]
            r = int_sigmoid(sat16(px[:, :hidden] + ph[:, :hidden] + b[:hidden]))
            z = int_sigmoid(sat16(px[:, hidden : 2 * hidden] + ph[:, hidden : 2 * hidden] + b[hidden : 2 * hidden]))
            hn = sat16(ph[:, 2 * hidden :] + self.biases[f"layer{layer}.b_hn"])
            n = int_tanh(sat16(px[:, 2 * hidden :] + b[2 * hidden :] + round_shift(r * hn, GATE_FRAC)))
            h15 = h << (GATE_FRAC - hf)
            new15 = n + round_shift(z * (h15 - n), GATE_FRAC)
        elif cell == "lstm":
            pre = sat16(px + ph + self.biases[f"layer{layer}.b"])
            i, f = int_sigmoid(pre[:, :hidden]), int_sigmoid(pre[:, hidden : 2 * hidden])
            g, o = int_tanh(pre[:, 2 * hidden : 3 * hidden]), int_sigmoid(pre[:, 3 * hidden :])
            c = saturate(round_shift(f * c, GATE_FRAC) + round_shift(i * g, 2 * GATE_FRAC - cf), quant.state_bits)
            new15 = round_shift(o * int_tanh(sat16(round_shift(c, cf - PREACT_FRAC))), GATE_FRAC)
        else:
            new15 = int_tanh(sat16(px + ph + self.biases[f"layer{layer}.b"]))
        return saturate(round_shift(new15, GATE_FRAC - hf), quant.state_bits), c

    def logits(self, sequences: list[np.ndarray]) -> np.ndarray:
        """Integer logits (Q.12, int64 holding int32 values) for quantized input sequences."""
        if not sequences:
            return np.zeros((0, self.model_config.n_classes), np.int64)
        lengths = np.array([len(s) for s in sequences])
        steps, batch = int(lengths.max()), len(sequences)
        layer_input = np.zeros((batch, steps, sequences[0].shape[1]), np.int64)
        for row, sequence in enumerate(sequences):
            layer_input[row, : len(sequence)] = sequence
        x_frac = self.input_frac
        hidden = self.model_config.hidden
        for layer in range(self.model_config.layers):
            h = np.zeros((batch, hidden), np.int64)
            c = np.zeros((batch, hidden), np.int64)
            outputs = np.zeros((batch, steps, hidden), np.int64)
            for t in range(steps):
                active = (lengths > t)[:, None]
                new_h, new_c = self._step(layer, layer_input[:, t], x_frac, h, c)
                h, c = np.where(active, new_h, h), np.where(active, new_c, c)
                outputs[:, t] = h
            layer_input, x_frac = outputs, self.quant.hidden_frac
        last = layer_input[np.arange(batch), lengths - 1]
        classifier = self.weights["classifier.w"]
        acc = classifier.accumulate(last)
        return round_shift(acc, classifier.acc_frac + self.quant.hidden_frac - PREACT_FRAC) + self.biases["classifier.b"]

    def predict(self, frames: list[np.ndarray], batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """(logits, classes) for normalised float frames: quantized here, then the integer model.
        Sequences are batched by length so padding costs few steps."""
        order = np.argsort([len(f) for f in frames], kind="stable")
        logits = np.zeros((len(frames), self.model_config.n_classes), np.int64)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            logits[index] = self.logits([self.quantize_frames(frames[i]) for i in index])
        return logits, logits.argmax(axis=1)


# ------------------------------------------------------------------------------ from torch
def from_float_model(model, quant: QuantConfig, input_frac: int | None = None) -> IntegerModel:
    """Quantize a (float or QAT) RecurrentClassifier with the quantizers of `nas.model.quant`."""
    import torch

    from nas.model.quant import float_weight, quantize_tensor

    if not quant.quantized:
        raise NasError("--weights float: the integer engine needs --weights fixed or pow2")
    config: ModelConfig = model.config
    weights, biases = {}, {}
    for layer in range(config.layers):
        for part in ("ih", "hh"):
            tensor = quantize_tensor(float_weight(model.rnn, f"weight_{part}_l{layer}"), quant)
            weights[f"layer{layer}.w_{part}"] = IntWeight(
                quant.weights, quant.weight_bits, tensor.shift, tensor.codes.numpy(), quant.state_bits
            )
        b_ih = getattr(model.rnn, f"bias_ih_l{layer}").detach().double()
        b_hh = getattr(model.rnn, f"bias_hh_l{layer}").detach().double()
        if config.cell == "gru":
            h = config.hidden
            biases[f"layer{layer}.b_rzn"] = torch.cat([b_ih[: 2 * h] + b_hh[: 2 * h], b_ih[2 * h :]])
            biases[f"layer{layer}.b_hn"] = b_hh[2 * h :]
        else:
            biases[f"layer{layer}.b"] = b_ih + b_hh
    tensor = quantize_tensor(float_weight(model.classifier, "weight"), quant)
    weights["classifier.w"] = IntWeight(quant.weights, quant.weight_bits, tensor.shift, tensor.codes.numpy(), quant.state_bits)
    biases["classifier.b"] = model.classifier.bias.detach().double()
    int_biases = {
        name: saturate(np.floor(b.numpy() * 2**PREACT_FRAC + 0.5).astype(np.int64), quant.bias_bits) for name, b in biases.items()
    }
    return IntegerModel(config, quant, weights, int_biases, quant.input_frac if input_frac is None else input_frac)


# ------------------------------------------------------------------------------ pack / unpack
def _pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Unsigned `bits`-bit values (rows, cols), LSB-first into a little-endian bit stream per row, each
    row padded to a byte (nas.engine.layout.row_bytes)."""
    values = np.asarray(values, dtype=np.uint64)
    rows, cols = values.shape
    stream = ((values[:, :, None] >> np.arange(bits, dtype=np.uint64)) & 1).astype(np.uint8).reshape(rows, cols * bits)
    padded = np.zeros((rows, row_bytes(cols, bits) * 8), np.uint8)
    padded[:, : cols * bits] = stream
    return np.packbits(padded, axis=1, bitorder="little").tobytes()


def _unpack_bits(data: bytes, rows: int, cols: int, bits: int) -> np.ndarray:
    stream = np.unpackbits(np.frombuffer(data, np.uint8).reshape(rows, row_bytes(cols, bits)), axis=1, bitorder="little")
    fields = stream[:, : cols * bits].reshape(rows, cols, bits).astype(np.int64)
    return (fields << np.arange(bits, dtype=np.int64)).sum(axis=2)


def pack(model: IntegerModel) -> bytes:
    """weights.bin: the slots of `nas.engine.layout.packed_layout`, in order: every weight tensor's codes
    (bit-packed two's complement for fixed, raw sign|k codes for pow2), each row padded to a byte;
    every bias (little-endian int16/int32); one int8 shift per weight tensor."""
    quant, layout = model.quant, packed_layout(model.model_config, model.quant)
    out = bytearray(layout.total_bytes)
    for slot in layout.weights:
        codes = model.weights[slot.tensor.name].codes.reshape(slot.tensor.rows, slot.tensor.cols)
        out[slot.offset : slot.end] = _pack_bits(codes & ((1 << quant.weight_bits) - 1), quant.weight_bits)
    for slot in layout.biases:
        out[slot.offset : slot.end] = model.biases[slot.tensor.name].astype(_bias_dtype(quant)).tobytes()
    for weight_slot, slot in zip(layout.weights, layout.shifts, strict=True):
        out[slot.offset : slot.end] = np.int8(model.weights[weight_slot.tensor.name].shift).tobytes()
    # a slice assignment of the wrong length would resize the buffer: the layout must hold exactly
    assert len(out) == layout.total_bytes, f"pack wrote {len(out)} bytes, the layout has {layout.total_bytes}"
    return bytes(out)


def _bias_dtype(quant: QuantConfig) -> str:
    return "<i2" if quant.bias_bits == 16 else "<i4"


def unpack(data: bytes, model_config: ModelConfig, quant: QuantConfig, input_frac: int | None = None) -> IntegerModel:
    layout = packed_layout(model_config, quant)
    if len(data) != layout.total_bytes:
        raise NasError(
            f"{len(data)} bytes of packed weights, expected {layout.total_bytes} for this {quant.describe()} {model_config.cell} model"
        )
    biases = {slot.tensor.name: np.frombuffer(data[slot.offset : slot.end], _bias_dtype(quant)).astype(np.int64) for slot in layout.biases}
    weights = {}
    for slot, shift_slot in zip(layout.weights, layout.shifts, strict=True):
        spec = slot.tensor
        codes = _unpack_bits(data[slot.offset : slot.end], spec.rows, spec.cols, quant.weight_bits)
        if quant.weights == "fixed":  # sign-extend two's complement
            codes = np.where(codes >= 1 << (quant.weight_bits - 1), codes - (1 << quant.weight_bits), codes)
        shift = int(np.frombuffer(data[shift_slot.offset : shift_slot.end], np.int8)[0])
        weights[spec.name] = IntWeight(quant.weights, quant.weight_bits, shift, codes, quant.state_bits)
    return IntegerModel(model_config, quant, weights, biases, quant.input_frac if input_frac is None else input_frac)


# ------------------------------------------------------------------------ post-training baseline
PTQ_CONFIG = QuantConfig(weights="fixed", weight_bits=8, bias_bits=16, state_bits=8)


def calibrate_input_frac(frames: list[np.ndarray], bits: int, percentile: float = 99.99) -> int:
    """Frac bits for the input frames: the largest that keeps the calibration frames' magnitude at
    `percentile` inside the signed `bits` range (the rare frames beyond it saturate)."""
    magnitude = float(np.percentile(np.abs(np.concatenate(frames)), percentile)) if frames else 1.0
    return math.floor(math.log2((2 ** (bits - 1) - 1) / max(magnitude, 1e-9)))


def post_training_int8(model, calibration_frames: list[np.ndarray]) -> IntegerModel:
    """The baseline the product is measured against: a float model's weights rounded to 8-bit
    fixed-point after training (no QAT), 8-bit state, input scale calibrated on training frames."""
    frac = calibrate_input_frac(calibration_frames, PTQ_CONFIG.state_bits)
    return from_float_model(model, PTQ_CONFIG, input_frac=frac)

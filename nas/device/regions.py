"""What the device holds: every constant array in flash and every member of the stream struct in
RAM, with its C name, C type and element count.

One list for two readers: the memory model (`nas.device.memory`) sums it, and the C generator
(`nas.device.cexport`) declares exactly these arrays and members, so `sizeof` and `nm -S` of the compiled
code are the model's lines by construction; tests compile the code and compare (docs/memory-model.md).

The stream struct lists its members by decreasing alignment (int32, the scratch union, int16,
int8), so the compiler inserts no padding between them; only the end is padded to the struct's
4-byte alignment, and that padding is a line of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.core.limits import FLOAT_BITS
from nas.engine.layout import SHIFT_BITS, Tensor, bias_vectors, packed_tensor_bytes, row_bytes, weight_tensors
from nas.model.architecture import ModelConfig
from nas.model.formats import ACCUMULATOR_BITS, SIGMOID_TABLE_ENTRIES, TABLE_ENTRY_BYTES, QuantConfig, pow2_magnitudes

FLASH, RAM = "flash", "ram"
STRUCT_ALIGN = 4  # int32 is the widest member type (host x86-64 and Cortex-M alike)
COUNTER_BITS = 32
RUNNING_MEAN_BITS = 32  # the running mean of "running" normalisation: int32, Q8 + 8 fraction bits
GATE_SCRATCH_BITS = 16  # gate outputs (Q0.15) and new states awaiting the second pass
# The deepest call chain's stack, found by -fstack-usage (docs/memory-model.md lists the measured
# figures: host gcc -Os and arm-none-eabi-gcc -Os); the tests fail if either exceeds it.
STACK_RESERVE_BYTES = 256
C_TYPES = {8: "int8_t", 16: "int16_t", 32: "int32_t"}
C_BITS = {ctype: bits for bits, ctype in C_TYPES.items()}


@dataclass(frozen=True)
class Region:
    """One line of the memory model: a C array in flash, a member (or part of one) of the stream
    struct in RAM, the struct's end padding or the stack reserve."""

    region: str  # FLASH | RAM
    category: str  # flash: weights biases meta tables frontend; RAM: state buffers scratch padding stack
    name: str  # what it holds
    symbol: str  # the C array or struct member that holds it ("" for padding and the stack)
    ctype: str
    count: int
    bits: int  # per element
    nbytes: float  # exact bytes (a float only in the solver's continuous mode)


def gate_scratch_values(model: ModelConfig) -> int:
    """int16 values one layer's step keeps between its two passes (the state cannot change until
    every gate row has read it): GRU r (then n) and z, 2H; LSTM i (then the new h) and f, 2H; RNN
    the new h, H."""
    return {"gru": 2, "lstm": 2, "rnn": 1}[model.cell] * model.hidden


def frontend_scratch_values(features) -> int:
    """int32 values of one front-end frame: the half-length FFT's real and imaginary parts (n_fft/2
    each) and the mel logs."""
    return features.n_fft + features.n_mels


def _bytes(count: int, bits: int, continuous: bool) -> float:
    return count * bits / 8 if continuous else row_bytes(count, bits)


def _tensor_bytes(tensor: Tensor, bits: int, continuous: bool) -> float:
    """A packed tensor, each row padded to a byte (nas.engine.layout); the solver's continuous mode
    drops the padding, a lower bound (nas.device.memory's exact evaluations then step down)."""
    return tensor.count * bits / 8 if continuous else packed_tensor_bytes(tensor.rows, tensor.cols, bits)


def flash_regions(model: ModelConfig, quant: QuantConfig, features=None, continuous: bool = False) -> list[Region]:
    """The constants: packed weights, biases and shifts (one array, `nas_packed`), the activation
    table and, with a front-end, its tables and normalisation."""
    weight_bits = quant.weight_bits if quant.quantized else FLOAT_BITS
    bias_bits = quant.bias_bits if quant.quantized else FLOAT_BITS
    regions = []
    for tensor in weight_tensors(model):
        regions.append(
            Region(
                FLASH,
                "weights",
                tensor.name,
                "nas_packed",
                "uint8_t",
                tensor.count,
                weight_bits,
                _tensor_bytes(tensor, weight_bits, continuous),
            )
        )
    for vector in bias_vectors(model, quant):
        regions.append(
            Region(
                FLASH, "biases", vector.name, "nas_packed", "uint8_t", vector.count, bias_bits, _tensor_bytes(vector, bias_bits, continuous)
            )
        )
    if quant.quantized:
        for tensor in weight_tensors(model):
            regions.append(Region(FLASH, "meta", f"{tensor.name}.shift", "nas_packed", "uint8_t", 1, SHIFT_BITS, 1))
        regions.append(
            Region(
                FLASH,
                "tables",
                "sigmoid table",
                "SIGMOID",
                "int16_t",
                SIGMOID_TABLE_ENTRIES,
                8 * TABLE_ENTRY_BYTES,
                SIGMOID_TABLE_ENTRIES * TABLE_ENTRY_BYTES,
            )
        )
        if pair_table(quant, weight_codes(model)):
            entries = 2 ** (2 * quant.weight_bits)
            regions.append(Region(FLASH, "tables", "pow2 multiplier pairs", PAIR_TABLE_NAME, "uint32_t", entries, 32, entries * 4))
        elif quant.weights == "pow2":
            entries, ctype = 2**quant.weight_bits, multiplier_ctype(quant.weight_bits)
            bits = C_BITS[ctype]
            regions.append(Region(FLASH, "tables", "pow2 multipliers", "MULTIPLIER", ctype, entries, bits, entries * bits // 8))
    if features is not None:
        regions += frontend_regions(features)
    return regions


# pow2 codes decode two at a time through a table of one uint32 per pair of codes, 2**(2*bits)
# entries: 256 B at 3 bits, always worth it; 1 kB at 4 bits, worth it once it is a small share of
# the weights it serves (it cuts the kernel by a third, docs/export.md), so that a small budget is
# not spent on it; 4 kB at 5 bits would pay only beyond 64 kB of weights, outside the space
PAIR_TABLE_MAX_BITS = 4
PAIR_TABLE_FREE_BYTES = 256
PAIR_TABLE_SHARE = 16  # the table at most 1/16 of the packed weights' bytes
PAIR_TABLE_NAME = "MULTIPLIER_PAIRS"


def pair_table_bytes(weight_bits: int) -> int:
    return 4 * 2 ** (2 * weight_bits)


def weight_codes(model: ModelConfig) -> int:
    """Every weight code of the model (all tensors, the classifier's included)."""
    return sum(tensor.count for tensor in weight_tensors(model))


def pair_table(quant, codes: int) -> bool:
    """Whether the pow2 multipliers of a model with `codes` weight codes are held in pairs
    (nas.device.ckernel.multiplier_pairs): both multipliers of two codes in one load, the DSP
    path's operand. The choice only grows with the model (more codes never drop the table), so the
    bytes stay monotonic in the hidden size, as nas.device.memory.largest_hidden needs."""
    if quant.weights != "pow2" or quant.weight_bits > PAIR_TABLE_MAX_BITS:
        return False
    table = pair_table_bytes(quant.weight_bits)
    return table <= PAIR_TABLE_FREE_BYTES or table * PAIR_TABLE_SHARE * 8 <= codes * quant.weight_bits


def multiplier_ctype(weight_bits: int) -> str:
    """The C type of the pow2 multiplier table: int16 while the largest, 2**(magnitudes - 1), fits."""
    return "int16_t" if pow2_magnitudes(weight_bits) - 1 < 15 else "int32_t"


def frontend_regions(features) -> list[Region]:
    from nas.features.frontend import frontend_tables

    tables = frontend_tables(features)
    n, mels, coefficients = features.n_fft, features.n_mels, features.n_mfcc
    mel_weights = max(1, sum(len(w) for w in tables.mel_weights))
    arrays = [
        ("window (Hann, Q15; first half, mirrored)", "WINDOW", "int16_t", n // 2 + 1, 16),
        ("FFT twiddles (cos, Q15; sin read from it)", "COS", "int16_t", n // 2, 16),
        ("mel filters: first bin", "MEL_FIRST", "uint16_t", mels, 16),
        ("mel filters: weight offsets", "MEL_OFFSET", "uint16_t", mels + 1, 16),
        ("mel filters: weights (Q15)", "MEL_WEIGHTS", "uint16_t", mel_weights, 16),
        ("log2 table (Q15)", "LOG2_TABLE", "uint16_t", len(tables.log_table), 16),
        ("DCT (Q14)", "DCT", "int16_t", coefficients * mels, 16),
        ("normalisation mean (Q8)", "MEAN_Q8", "int32_t", coefficients, 32),
        ("normalisation scale", "SCALE", "int32_t", coefficients, 32),
    ]
    return [Region(FLASH, "frontend", name, symbol, ctype, count, bits, count * bits // 8) for name, symbol, ctype, count, bits in arrays]


def ram_regions(model: ModelConfig, quant: QuantConfig, features=None, continuous: bool = False) -> list[Region]:
    """The stream struct's members in declaration order, then its end padding, then the stack."""
    state_bits = quant.state_bits if quant.quantized else FLOAT_BITS
    state_type = C_TYPES[state_bits] if quant.quantized else "float"
    logit_bits = ACCUMULATOR_BITS if quant.quantized else FLOAT_BITS
    scratch_bits = GATE_SCRATCH_BITS if quant.quantized else FLOAT_BITS
    h = model.hidden
    members = [
        Region(
            RAM,
            "buffers",
            "logits",
            "logits",
            C_TYPES[32] if quant.quantized else "float",
            model.n_classes,
            logit_bits,
            _bytes(model.n_classes, logit_bits, continuous),
        ),
        Region(RAM, "buffers", "frames so far", "frames", "int32_t", 1, COUNTER_BITS, COUNTER_BITS // 8),
    ]
    gate_bytes = _bytes(gate_scratch_values(model), scratch_bits, continuous)
    if features is not None:
        members.append(Region(RAM, "buffers", "samples in the window", "fill", "int32_t", 1, COUNTER_BITS, COUNTER_BITS // 8))
        if features.normalisation == "running":
            members.append(
                Region(
                    RAM,
                    "state",
                    "running mean of the utterance's MFCC (normalisation 'running')",
                    "running",
                    "int32_t",
                    features.n_mfcc,
                    RUNNING_MEAN_BITS,
                    features.n_mfcc * RUNNING_MEAN_BITS // 8,
                )
            )
        fft_values = frontend_scratch_values(features)
        fft_bytes = fft_values * 4
        # one union: the front-end finishes its frame before the recurrent step starts
        if fft_bytes >= gate_bytes:
            members.append(
                Region(
                    RAM,
                    "scratch",
                    "FFT re/im and mel logs (int32; shares a union with the gate scratch)",
                    "scratch",
                    "int32_t",
                    fft_values,
                    32,
                    fft_bytes,
                )
            )
        else:
            members.append(
                Region(
                    RAM,
                    "scratch",
                    "gate scratch (shares a union with the FFT scratch)",
                    "scratch",
                    "int16_t",
                    gate_scratch_values(model),
                    scratch_bits,
                    _round_up(gate_bytes, STRUCT_ALIGN, continuous),
                )
            )
        members.append(Region(RAM, "buffers", "audio window (int16 PCM)", "audio", "int16_t", features.n_fft, 16, 2 * features.n_fft))
    else:  # frames come from the caller: the gate scratch is a plain int16 array
        members.append(Region(RAM, "scratch", "gate scratch", "scratch", "int16_t", gate_scratch_values(model), scratch_bits, gate_bytes))
    for layer in range(model.layers):
        members.append(Region(RAM, "state", f"layer{layer}.h", "h", state_type, h, state_bits, _bytes(h, state_bits, continuous)))
    if model.cell == "lstm":
        for layer in range(model.layers):
            members.append(Region(RAM, "state", f"layer{layer}.c", "c", state_type, h, state_bits, _bytes(h, state_bits, continuous)))
    members.append(
        Region(RAM, "buffers", "input frame", "x", state_type, model.n_input, state_bits, _bytes(model.n_input, state_bits, continuous))
    )
    size = sum(m.nbytes for m in members)
    padding = 0 if continuous else _round_up(size, STRUCT_ALIGN, False) - size
    if padding:
        members.append(Region(RAM, "padding", "struct end padding (4-byte alignment)", "", "", padding, 8, padding))
    members.append(
        Region(RAM, "stack", "stack reserve (deepest call chain, -fstack-usage)", "", "", STACK_RESERVE_BYTES, 8, STACK_RESERVE_BYTES)
    )
    return members


def _round_up(nbytes: float, align: int, continuous: bool) -> float:
    return nbytes if continuous else -(-int(nbytes) // align) * align

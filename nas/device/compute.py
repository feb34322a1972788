"""What one frame costs the device: counted from the generated C's loops, and predicted in
instructions per target from those counts.

`frame_cost` counts the arithmetic per hop (one feature frame and one recurrent step), plus the
classifier once per utterance: multiply-accumulates and table lookups.

`predict_instructions` turns counts of what the C executes (the kernel's codes in whole windows
and in a row's last window, its rows, the cells' units and layers, the front-end's samples,
butterflies, bins, mel weights, mel bands and DCT terms) into Cortex-M instructions per frame,
with one coefficient per count: a linear model of the loops, calibrated once per target against
QEMU (`bench/compute_calibration.py` writes nas/device/costs/<target>.json from a designed set
of QEMU runs) and checked by the tests against every configuration they run in QEMU (within 5%).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from nas.core.errors import NasError
from nas.device.ckernel import window
from nas.device.regions import pair_table, weight_codes
from nas.device.targets import DEFAULT_TARGET, get_target
from nas.engine.intmodel import accumulator_bits
from nas.engine.layout import weight_tensors
from nas.model.architecture import ModelConfig
from nas.model.formats import GATES, QuantConfig

COSTS = Path(__file__).parent / "costs"  # <target>.json: the calibrated coefficients
TOLERANCE = 0.05  # the tests hold every prediction per frame within 5% of QEMU's count
CLASSIFY_TOLERANCE = 0.15  # nas_classify, once per utterance: short rows whose last-window tests weigh more

# sigmoid/tanh evaluations per hidden unit and step: GRU r, z (sigmoid) and n (tanh); LSTM i, f,
# o (sigmoid), g and tanh(c); RNN tanh
ACTIVATIONS_PER_UNIT = {"gru": 3, "lstm": 5, "rnn": 1}


@dataclass(frozen=True)
class FrameCost:
    frontend_macs: int  # window, FFT butterflies (4 multiplies each), power, mel, DCT, normalisation
    frontend_lookups: int  # log2 table, one per mel band
    model_macs: int  # weight terms of every layer (shift-adds with pow2 weights)
    model_lookups: int  # sigmoid-table evaluations
    classifier_macs: int  # once per utterance, in nas_classify
    samples_moved: int  # the audio window's shift by one hop

    def to_dict(self) -> dict:
        return asdict(self) | {"macs_per_frame": self.frontend_macs + self.model_macs}


def frame_cost(model: ModelConfig, features) -> FrameCost:
    frontend_macs = frontend_lookups = moved = 0
    if features is not None:
        from nas.features.frontend import frontend_tables

        n = features.n_fft
        weights = sum(len(w) for w in frontend_tables(features).mel_weights)
        butterflies = n // 2 * int(math.log2(n))
        # window n; butterflies 4 each; per mel weight the bin's power (2) and the weighted sum (1);
        # DCT n_mfcc x n_mels; normalisation n_mfcc
        frontend_macs = n + 4 * butterflies + 3 * weights + features.n_mfcc * features.n_mels + features.n_mfcc
        frontend_lookups = features.n_mels
        moved = n - features.hop_length
    gates = GATES[model.cell] * model.hidden
    macs = sum(gates * ((model.n_input if layer == 0 else model.hidden) + model.hidden) for layer in range(model.layers))
    lookups = ACTIVATIONS_PER_UNIT[model.cell] * model.hidden * model.layers
    return FrameCost(frontend_macs, frontend_lookups, macs, lookups, model.n_classes * model.hidden, moved)


# ------------------------------------------------------------------------------ the counts
def kernel_key(quant: QuantConfig, accumulator: int, pairs: bool = False) -> str:
    """The kernel's variant: scheme, width (p: pow2 multipliers in pairs, nas.device.regions.pair_table),
    state width and accumulator width (e.g. pow2-4-s16-a32, pow2-4p-s16-a32). 3-bit pow2 always pairs:
    its key has no p."""
    paired = "p" if pairs and quant.weight_bits > 3 else ""
    return f"{quant.weights}-{quant.weight_bits}{paired}-s{quant.state_bits}-a{accumulator}"


def model_accumulator(model: ModelConfig, quant: QuantConfig) -> int:
    """The accumulator width of every dot product: 64 if some tensor's sums need it
    (nas.device.ckernel.wide_accumulator), else 32."""
    return max(accumulator_bits(quant.weights, quant.weight_bits, t.cols, quant.state_bits) for t in weight_tensors(model))


def _pairs(model: ModelConfig, quant: QuantConfig) -> bool:
    return pair_table(quant, weight_codes(model))


def _tensor_counts(tensors, block_rows: int, quant: QuantConfig, accumulator: int, pairs: bool) -> dict[str, float]:
    """Per kernel variant: codes in whole windows and in a row's last window (as read: an odd
    block's last row twice), and the kernel's passes. Rows go through in blocks of `block_rows` (one
    gate's, or the classifier's): two per pass with an int32 accumulator, one per pass with int64,
    where `pairs` counts the calls that take two rows at a time."""
    group = window(quant.weight_bits).codes
    key = kernel_key(quant, accumulator, pairs)
    counts: dict[str, float] = {}
    for tensor in tensors:
        blocks, pairs = tensor.rows // block_rows, (block_rows + 1) // 2
        rows = blocks * 2 * pairs if accumulator == 32 else tensor.rows  # the rows each pass reads
        values = [
            ("window_codes", rows * (tensor.cols // group) * group),
            ("tail_codes", rows * (tensor.cols % group)),
            # a pass's own work, per row it stands for (half a pass per row with two per pass): as a
            # count of passes proper (odd blocks one more) it is all but collinear with the cells'
            # units, and the fit's coefficients run away
            ("passes", tensor.rows / 2 if accumulator == 32 else tensor.rows),
        ]
        if accumulator != 32:
            values.append(("pairs", blocks * pairs))
        for name, value in values:
            counts[f"kernel.{key}.{name}"] = counts.get(f"kernel.{key}.{name}", 0) + value
    return counts


def model_counts(model: ModelConfig, quant: QuantConfig, features=None) -> dict[str, float]:
    """What one recurrent step executes (the classifier apart), and with PCM in, what the stream
    adds per hop (taking the samples, sliding the window)."""
    counts = _tensor_counts(weight_tensors(model)[:-1], model.hidden, quant, model_accumulator(model, quant), _pairs(model, quant))
    counts[f"cell.{model.cell}.units"] = model.hidden * model.layers
    counts["layers"] = model.layers
    counts["bias32_rows"] = GATES[model.cell] * model.hidden * model.layers if quant.bias_bits == 32 else 0
    counts["step"] = 1
    if features is not None:
        counts["hop_samples"] = features.hop_length
        counts["moved_samples"] = features.n_fft - features.hop_length
    return counts


def classify_counts(model: ModelConfig, quant: QuantConfig) -> dict[str, float]:
    """nas_classify, once per utterance: the classifier's codes and rows (counted apart from the
    step's: its rows are few and short, and each ends in a comparison) and the call."""
    counts = _tensor_counts(weight_tensors(model)[-1:], model.n_classes, quant, model_accumulator(model, quant), _pairs(model, quant))
    return {f"classify.{name}": value for name, value in counts.items()} | {"classify.call": 1}


def frontend_counts(features) -> dict[str, float]:
    """What one front-end frame executes: window samples, butterflies and their twiddle groups,
    bin pairs of the power spectrum, mel weights and bands, DCT terms, coefficients."""
    from nas.features.frontend import frontend_tables

    n = features.n_fft
    half = n // 2
    return {
        "frontend.frame": 1,
        "frontend.samples": n,
        "frontend.butterflies": half // 2 * int(math.log2(half)),
        "frontend.twiddle_groups": half - 1,
        "frontend.bin_pairs": n // 4 + 1,
        "frontend.mel_weights": sum(len(w) for w in frontend_tables(features).mel_weights),
        "frontend.mels": features.n_mels,
        "frontend.dct_terms": features.n_mfcc * features.n_mels,
        "frontend.coefficients": features.n_mfcc,
        "frontend.running_coefficients": features.n_mfcc if features.normalisation == "running" else 0,
    }


# ------------------------------------------------------------------------------ the prediction
@dataclass(frozen=True)
class Instructions:
    """Predicted instructions on one target: per frame (front-end and recurrent step, the stream's
    own work included) and per utterance (nas_classify)."""

    target: str
    frontend_per_frame: float
    model_per_frame: float
    classify: float
    calibrated: bool  # False: a kernel variant the calibration did not measure (the dearest measured one stands in)

    @property
    def per_frame(self) -> float:
        return self.frontend_per_frame + self.model_per_frame

    def mips(self, hop_seconds: float) -> float:
        """Millions of instructions per second for real time at one frame per hop."""
        return self.per_frame / hop_seconds / 1e6

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "instructions_per_frame": round(self.per_frame),
            "frontend_instructions_per_frame": round(self.frontend_per_frame),
            "model_instructions_per_frame": round(self.model_per_frame),
            "classify_instructions": round(self.classify),
            "calibrated": self.calibrated,
        }


@lru_cache(maxsize=8)
def target_costs(target: str) -> dict[str, float]:
    get_target(target)
    path = COSTS / f"{target}.json"
    if not path.is_file():
        raise NasError(f"--target {target}: no calibration ({path}); expected bench/compute_calibration.py to have written it")
    return json.loads(path.read_text())["coefficients"]


def _apply(counts: dict[str, float], costs: dict[str, float]) -> tuple[float, bool]:
    total, calibrated = 0.0, True
    for name, value in counts.items():
        if name in costs:
            total += costs[name] * value
            continue
        prefix = name.split("kernel.")[0] + "kernel."
        if "kernel." not in name:
            raise NasError(f"compute model: no coefficient for {name}; expected a calibration that counts it")
        calibrated = False  # the dearest calibrated variant of this count stands in
        suffix = name.rsplit(".", 1)[1]
        total += max(v for k, v in costs.items() if k.startswith(prefix) and k.endswith("." + suffix)) * value
    return total, calibrated


def frame_seconds(features) -> float:
    """The time a frame may take in real time: one hop."""
    from nas.data.dataset import SAMPLE_RATE

    return features.hop_length / SAMPLE_RATE


def instruction_limit(mcu_mhz: float, features) -> float:
    """The instructions one frame may take in real time at `mcu_mhz`, one instruction per cycle
    (QEMU counts instructions; most Cortex-M instructions take one cycle, none fewer)."""
    return mcu_mhz * 1e6 * frame_seconds(features)


def most_instructions(predicted: float) -> float:
    """The most instructions QEMU may count for a prediction: the tests hold every prediction within
    TOLERANCE of QEMU's count, so the count is at most predicted / (1 - TOLERANCE). The compute budget
    keeps this, not the prediction, within the clock: a point predicted just inside it may not be."""
    return predicted / (1 - TOLERANCE)


def in_real_time(model: ModelConfig, quant: QuantConfig, features, mcu_mhz: float, target: str) -> bool:
    predicted = predict_instructions(model, quant, features, target).per_frame
    return most_instructions(predicted) <= instruction_limit(mcu_mhz, features)


def largest_hidden_in_real_time(model: ModelConfig, quant: QuantConfig, features, mcu_mhz: float, target: str, max_hidden: int) -> int:
    """The largest hidden size (0 if none) whose predicted frame fits one hop at `mcu_mhz`: the
    prediction grows with the hidden size, so a bisection finds it."""
    low, high = 0, max_hidden  # in real time at `low` (0 stands for none), not at high + 1
    while low < high:
        middle = (low + high + 1) // 2
        if in_real_time(model.with_hidden(middle), quant, features, mcu_mhz, target):
            low = middle
        else:
            high = middle - 1
    return low


def predict_instructions(model: ModelConfig, quant: QuantConfig, features=None, target: str = DEFAULT_TARGET) -> Instructions:
    """Instructions per frame of the exported C on `target` (nas.device.targets), from the counts."""
    if not quant.quantized:
        raise NasError("--weights float: the device runs the integer engine; expected --weights fixed or pow2")
    costs = target_costs(target)
    front, front_ok = _apply(frontend_counts(features), costs) if features is not None else (0.0, True)
    step, step_ok = _apply(model_counts(model, quant, features), costs)
    classify, classify_ok = _apply(classify_counts(model, quant), costs)
    return Instructions(target, front, step, classify, front_ok and step_ok and classify_ok)

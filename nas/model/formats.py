"""Number formats shared by the memory model, the quantizers, the integer engine and export.

The definitions (DESIGN.md, "Number formats"), in one place:
- weights: `float` (float32), `fixed` (symmetric `weight_bits` integers, per-tensor power-of-two
  scale: value = q * 2**-frac) or `pow2` (1 sign bit + exponent code k; the all-ones k means zero;
  value = sign * 2**(e_max - k));
- input frames and hidden state: `state_bits` (16, or 8) signed fixed-point: frames Q3.(bits-4),
  hidden state Q0.(bits-1), LSTM cell state Q3.(bits-4);
- gate pre-activations and biases: Q3.12 (int16 scratch, saturating; 32-bit biases keep frac 12);
- gate outputs: Q0.15 (int16), from one sigmoid lookup table (tanh(x) = 2*sigmoid(2x) - 1);
- accumulators: int32, never overflowing: the formats below are chosen so that they cannot.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nas.core.errors import NasError
from nas.core.limits import BIAS_BITS, FIXED_BITS, FLOAT_BITS, POW2_BITS, STATE_BITS

WEIGHT_SCHEMES = ("float", "fixed", "pow2")
DEFAULT_WEIGHT_BITS = {"float": FLOAT_BITS, "fixed": 8, "pow2": 4}

PREACT_FRAC = 12  # gate pre-activations and biases: Q3.12
GATE_FRAC = 15  # sigmoid/tanh outputs: Q0.15
# Sigmoid on [0, 8] in steps of 1/16, Q0.15 int16 entries, linear interpolation between them;
# negative inputs by symmetry (sigmoid(-x) = 1 - sigmoid(x)), tanh(x) = 2*sigmoid(2x) - 1.
SIGMOID_TABLE_STEP_SHIFT = 8  # one table step = 2**8 in Q3.12 = 1/16
SIGMOID_TABLE_ENTRIES = 129
TABLE_ENTRY_BYTES = 2
ACCUMULATOR_BITS = 32
GATES = {"gru": 3, "lstm": 4, "rnn": 1}


@dataclass(frozen=True)
class QuantConfig:
    weights: str = "float"  # float | fixed | pow2
    weight_bits: int = FLOAT_BITS  # 32 for float; nas.core.limits.FIXED_BITS / POW2_BITS when quantized
    bias_bits: int = 16
    state_bits: int = 16

    @classmethod
    def make(cls, weights: str, weight_bits: int | None = None, bias_bits: int = 16, state_bits: int = 16) -> QuantConfig:
        """The config for a scheme, with its default width when none is given."""
        if weights not in DEFAULT_WEIGHT_BITS:
            raise NasError(f"--weights {weights}: unknown scheme; expected one of {', '.join(WEIGHT_SCHEMES)}")
        config = cls(weights, DEFAULT_WEIGHT_BITS[weights] if weight_bits is None else weight_bits, bias_bits, state_bits)
        config.validate()
        return config

    @property
    def quantized(self) -> bool:
        return self.weights != "float"

    def validate(self) -> None:
        if self.weights not in WEIGHT_SCHEMES:
            raise NasError(f"--weights {self.weights}: unknown scheme; expected one of {', '.join(WEIGHT_SCHEMES)}")
        for scheme, bound, name in (("fixed", FIXED_BITS, "fixed-point"), ("pow2", POW2_BITS, "power-of-two")):
            if self.weights == scheme and not bound.contains(self.weight_bits):
                raise NasError(f"--weight-bits {self.weight_bits}: out of range for {name} weights; expected {bound.low}..{bound.high}")
        if self.weights == "float" and self.weight_bits != FLOAT_BITS:
            raise NasError(
                f"--weight-bits {self.weight_bits}: float weights are {FLOAT_BITS}-bit; pass --weights fixed or pow2 to quantize"
            )
        if self.bias_bits not in BIAS_BITS:
            raise NasError(f"--bias-bits {self.bias_bits}: expected {' or '.join(map(str, BIAS_BITS))}")
        if self.state_bits not in STATE_BITS:
            raise NasError(f"--state-bits {self.state_bits}: expected {' or '.join(map(str, STATE_BITS))}")

    @property
    def input_frac(self) -> int:
        return self.state_bits - 4  # Q3.12 / Q3.4: normalised features rarely leave +-8

    @property
    def hidden_frac(self) -> int:
        return self.state_bits - 1  # Q0.15 / Q0.7: hidden states of GRU/LSTM/tanh-RNN lie in (-1, 1)

    @property
    def cell_frac(self) -> int:
        return self.state_bits - 4  # LSTM cell state: Q3.12 / Q3.4

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if not self.quantized:
            return "float32"
        return f"{self.weights} {self.weight_bits}-bit weights, {self.bias_bits}-bit biases, {self.state_bits}-bit state"


def pow2_magnitudes(weight_bits: int) -> int:
    """Number of non-zero magnitudes of a pow2 code: 2**(bits-1) exponent codes, one means zero."""
    return 2 ** (weight_bits - 1) - 1


def fixed_qmax(weight_bits: int) -> int:
    return 2 ** (weight_bits - 1) - 1

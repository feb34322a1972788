"""Weight quantizers (fixed-point and power-of-two), defined once and used for quantization-aware
training (fake quantization with a straight-through estimator), for the integer engine's weight
codes and for export.

QAT keeps the fused nn.GRU/nn.LSTM/nn.RNN kernels: the quantizer is a weight parametrization, so
each forward pass hands fake-quantized weights to the same fused computation (no Python loop
over time steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from nas.model.formats import QuantConfig, fixed_qmax, pow2_magnitudes

FRAC_RANGE = (-16, 31)  # fixed-point frac bits a tensor may take (stored as int8 meta)
E_MAX_RANGE = (-31, 15)  # pow2 e_max a tensor may take (stored as int8 meta)


# ------------------------------------------------------------------------------ fixed-point
def fixed_frac_bits(max_abs: float, weight_bits: int) -> int:
    """Largest frac such that max_abs * 2**frac still fits the symmetric integer range: the
    per-tensor power-of-two scale wastes at most one bit and never clips the largest weight."""
    if max_abs <= 0 or not math.isfinite(max_abs):
        return 0
    frac = math.floor(math.log2(fixed_qmax(weight_bits) / max_abs))
    return max(FRAC_RANGE[0], min(FRAC_RANGE[1], frac))


def fixed_codes(weights: torch.Tensor, weight_bits: int, frac: int) -> torch.Tensor:
    """Symmetric integers in [-qmax, qmax], round half away from zero (as C's lround)."""
    qmax = fixed_qmax(weight_bits)
    scaled = weights * 2.0**frac
    return torch.clamp(torch.sign(scaled) * torch.floor(scaled.abs() + 0.5), -qmax, qmax).to(torch.int64)


def fixed_decode(codes: torch.Tensor, frac: int) -> torch.Tensor:
    return codes.to(torch.float32) * 2.0**-frac


# ------------------------------------------------------------------------------ power-of-two
def pow2_e_max(max_abs: float) -> int:
    """The largest exponent: the nearest power of two to the largest weight (in the log domain)."""
    if max_abs <= 0 or not math.isfinite(max_abs):
        return 0
    return max(E_MAX_RANGE[0], min(E_MAX_RANGE[1], round(math.log2(max_abs))))


SQRT2 = math.sqrt(2.0)
FLOAT32_EXPONENT_BIAS = 127
FLOAT32_MANTISSA_BITS = 23


def _rounded_exponent(weights: torch.Tensor) -> torch.Tensor:
    """round(log2|w|) in the log domain (|w| in [2**(e - 1/2), 2**(e + 1/2)) gives e), read from
    the float32 exponent bits of |w| * sqrt(2): the one rounding rule behind codes and values,
    and a handful of cheap elementwise operations on the training hot path. Zero gives -127."""
    scaled = (weights.detach().abs().to(torch.float32) * SQRT2).view(torch.int32)
    return (scaled >> FLOAT32_MANTISSA_BITS) - FLOAT32_EXPONENT_BIAS


def pow2_codes(weights: torch.Tensor, weight_bits: int, e_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sign, k) per weight: sign 1 for negative; k in 0..K-1 means 2**(e_max - k); k = K (the
    all-ones code) means zero. Rounding is to the nearest exponent in the log domain; weights below
    2**(e_min - 1/2) become zero; weights above 2**e_max saturate there."""
    levels = pow2_magnitudes(weight_bits)
    k = (e_max - _rounded_exponent(weights)).clamp(min=0)
    k = torch.where(k > levels - 1, levels, k)
    return (weights < 0).to(torch.int64), k.to(torch.int64)


def pow2_decode(sign: torch.Tensor, k: torch.Tensor, weight_bits: int, e_max: int) -> torch.Tensor:
    magnitude = torch.ldexp(torch.ones(k.shape), (e_max - k).to(torch.int32)) * (k < pow2_magnitudes(weight_bits))
    return torch.where(sign.bool(), -magnitude, magnitude)


def pow2_values(weights: torch.Tensor, weight_bits: int, e_max: int) -> torch.Tensor:
    """decode(codes(weights)) without the detour through codes, for the training hot path."""
    e_min = e_max - (pow2_magnitudes(weight_bits) - 1)
    exponent = _rounded_exponent(weights).clamp(max=e_max)
    power = ((exponent + FLOAT32_EXPONENT_BIAS).clamp(min=1) << FLOAT32_MANTISSA_BITS).view(torch.float32)  # 2**exponent
    magnitude = power * (exponent >= e_min)
    return torch.where(weights < 0, -magnitude, magnitude).to(weights.dtype)


# ------------------------------------------------------------------------------ one tensor
@dataclass(frozen=True)
class QuantizedTensor:
    """The integer form of one weight tensor: what pack() writes and the engine computes with."""

    scheme: str
    weight_bits: int
    shift: int  # fixed: frac bits; pow2: e_max
    codes: torch.Tensor  # fixed: signed integers; pow2: sign * 2**(bits-1) + k (the raw code)

    def decode(self) -> torch.Tensor:
        if self.scheme == "fixed":
            return fixed_decode(self.codes, self.shift)
        sign, k = split_pow2_code(self.codes, self.weight_bits)
        return pow2_decode(sign, k, self.weight_bits, self.shift)


def split_pow2_code(codes: torch.Tensor, weight_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    half = 2 ** (weight_bits - 1)
    return codes // half, codes % half


def quantize_tensor(weights: torch.Tensor, quant: QuantConfig) -> QuantizedTensor:
    max_abs = float(weights.detach().abs().max()) if weights.numel() else 0.0
    if quant.weights == "fixed":
        frac = fixed_frac_bits(max_abs, quant.weight_bits)
        return QuantizedTensor("fixed", quant.weight_bits, frac, fixed_codes(weights.detach(), quant.weight_bits, frac))
    if quant.weights == "pow2":
        e_max = pow2_e_max(max_abs)
        sign, k = pow2_codes(weights.detach(), quant.weight_bits, e_max)
        return QuantizedTensor("pow2", quant.weight_bits, e_max, sign * 2 ** (quant.weight_bits - 1) + k)
    raise ValueError(f"no quantizer for weights '{quant.weights}'")


class _StraightThrough(torch.autograd.Function):
    """Forward: the quantized values. Backward: the gradient unchanged where the format can
    represent the weight, zero where it clips (the straight-through estimator)."""

    @staticmethod
    def forward(ctx, weights: torch.Tensor, quant: QuantConfig) -> torch.Tensor:
        max_abs = float(weights.abs().max())
        if quant.weights == "fixed":
            frac = fixed_frac_bits(max_abs, quant.weight_bits)
            values = fixed_decode(fixed_codes(weights, quant.weight_bits, frac), frac)
            limit = (fixed_qmax(quant.weight_bits) + 0.5) * 2.0**-frac
        else:
            e_max = pow2_e_max(max_abs)
            values = pow2_values(weights, quant.weight_bits, e_max)
            limit = 2.0 ** (e_max + 0.5)
        ctx.save_for_backward(weights.abs() <= limit)
        return values.to(weights.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (inside,) = ctx.saved_tensors
        return grad * inside, None


def fake_quantize(weights: torch.Tensor, quant: QuantConfig) -> torch.Tensor:
    """QAT view of a weight tensor: exactly the values the integer model stores (decoded)."""
    return _StraightThrough.apply(weights, quant)


class FakeQuant(nn.Module):
    def __init__(self, quant: QuantConfig):
        super().__init__()
        self.quant = quant

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        return fake_quantize(weights, self.quant)


def quantized_weight_names(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, parameter name) of every weight matrix the integer model stores quantized."""
    names = [(model.rnn, name) for name, _ in model.rnn.named_parameters() if name.startswith("weight_")]
    return [*names, (model.classifier, "weight")]


def attach_fake_quant(model: nn.Module, quant: QuantConfig) -> nn.Module:
    """Make every weight matrix of a RecurrentClassifier fake-quantized (in place)."""
    if quant.quantized:
        for module, name in quantized_weight_names(model):
            parametrize.register_parametrization(module, name, FakeQuant(quant))
    return model


def float_weight(module: nn.Module, name: str) -> torch.Tensor:
    """The float weight behind a (possibly fake-quantized) parameter."""
    if parametrize.is_parametrized(module, name):
        return module.parametrizations[name].original.detach()
    return getattr(module, name).detach()

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nas.model.formats import QuantConfig, fixed_qmax, pow2_magnitudes
from nas.model.models import ModelConfig, RecurrentClassifier
from nas.model.quant import (
    attach_fake_quant,
    fake_quantize,
    fixed_codes,
    fixed_frac_bits,
    float_weight,
    pow2_codes,
    pow2_decode,
    pow2_e_max,
    quantize_tensor,
)


def weights(seed=0, shape=(64, 40), scale=0.3):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


@pytest.mark.parametrize("bits", range(2, 9))
def test_fixed_point_value_set(bits):
    w = weights(bits)
    q = quantize_tensor(w, QuantConfig.make("fixed", bits))
    qmax = fixed_qmax(bits)
    assert q.codes.abs().max() <= qmax
    assert q.codes.abs().max() > qmax // 2  # the scale uses the range: largest weight lands in the top half
    decoded = q.decode()
    assert torch.equal(decoded, q.codes.float() * 2.0**-q.shift)
    assert (decoded - w).abs().max() <= 2.0**-q.shift / 2 + 1e-7  # rounding, never clipping
    assert len(torch.unique(q.codes)) <= 2 * qmax + 1


def test_fixed_point_clips_to_the_symmetric_range():
    w = torch.tensor([-3.0, -1.0, 0.0, 0.49, 1.0, 3.0])
    assert fixed_codes(w, 4, 2).tolist() == [-7, -4, 0, 2, 4, 7]
    assert fixed_frac_bits(1.0, 8) == 6 and fixed_frac_bits(0.9, 8) == 7


@pytest.mark.parametrize("bits", range(3, 7))
def test_pow2_value_set(bits):
    w = weights(bits, scale=0.2)
    q = quantize_tensor(w, QuantConfig.make("pow2", bits))
    decoded = q.decode()
    nonzero = decoded[decoded != 0].abs()
    exponents = torch.log2(nonzero)
    assert torch.equal(exponents, torch.round(exponents))  # every value is 0 or +-2**e
    levels = pow2_magnitudes(bits)
    assert exponents.max() <= q.shift and exponents.min() >= q.shift - (levels - 1)
    assert q.codes.min() >= 0 and q.codes.max() < 2**bits
    zero_codes = q.codes[decoded == 0] % 2 ** (bits - 1)
    assert (zero_codes == levels).all()  # one code (all ones) means zero


@pytest.mark.parametrize(
    ("largest", "e_max"),
    [(0.75, 0), (1.0, 0), (1.41, 0), (1.42, 1), (0.7, -1), (0.7072, 0), (3.0, 2), (0.011, -7)],  # 2**(e +- 1/2) bounds
)
def test_pow2_scale_is_the_nearest_power_of_two_in_the_log_domain(largest, e_max):
    assert pow2_e_max(largest) == e_max
    q = quantize_tensor(torch.tensor([largest, -largest / 3, 0.0]), QuantConfig.make("pow2", 4))
    assert q.shift == e_max and q.decode().abs().max() == 2.0**e_max  # 0.75 becomes 1.0, not 0.5


def test_pow2_rounds_in_the_log_domain_and_flushes_tiny_values():
    w = torch.tensor([1.0, 0.7, 0.72, -0.5, 0.1, 0.012, 0.0])
    sign, k = pow2_codes(w, 4, 0)  # magnitudes 1, 1/2, ..., 1/64
    assert pow2_decode(sign, k, 4, 0).tolist() == [1.0, 0.5, 1.0, -0.5, 0.125, 0.015625, 0.0]
    sign, k = pow2_codes(torch.tensor([0.011, 0.0112]), 4, 0)  # below 2**-6.5 -> zero
    assert pow2_decode(sign, k, 4, 0).tolist() == [0.0, 0.015625]


@pytest.mark.parametrize("scheme,bits", [("fixed", 4), ("pow2", 4)])
def test_straight_through_gradient(scheme, bits):
    w = weights(1).requires_grad_()
    out = fake_quantize(w, QuantConfig.make(scheme, bits))
    assert not torch.equal(out, w)
    (out * torch.arange(w.numel()).reshape(w.shape)).sum().backward()
    assert torch.equal(w.grad, torch.arange(w.numel()).reshape(w.shape).float())


def test_parametrized_gru_uses_quantized_weights_and_trains_its_float_weights():
    torch.manual_seed(0)
    quant = QuantConfig.make("pow2", 4)
    model = attach_fake_quant(RecurrentClassifier(ModelConfig(hidden=16)), quant)
    reference = nn.GRU(13, 16, batch_first=True)
    with torch.no_grad():
        reference.weight_ih_l0.copy_(quantize_tensor(float_weight(model.rnn, "weight_ih_l0"), quant).decode())
        reference.weight_hh_l0.copy_(quantize_tensor(float_weight(model.rnn, "weight_hh_l0"), quant).decode())
        reference.bias_ih_l0.copy_(model.rnn.bias_ih_l0)
        reference.bias_hh_l0.copy_(model.rnn.bias_hh_l0)
    x = torch.randn(4, 9, 13)
    assert torch.allclose(model.rnn(x)[0], reference(x)[0], atol=1e-6)
    model(x, torch.tensor([9, 5, 3, 1])).sum().backward()
    original = model.rnn.parametrizations.weight_hh_l0.original
    assert original.grad is not None and original.grad.abs().sum() > 0
    assert not math.isclose(float(original.detach().abs().sum()), float(model.rnn.weight_hh_l0.detach().abs().sum()))


@pytest.mark.parametrize(
    ("scheme", "bits", "clipped", "kept"),
    # the scale saturates (fixed frac >= -16, pow2 e_max <= 15): beyond the largest code + 1/2 step, no gradient
    [("fixed", 8, 8_400_000.0, 8_300_000.0), ("pow2", 4, 60_000.0, 45_000.0)],
)
def test_straight_through_gradient_is_zero_only_where_the_format_clips(scheme, bits, clipped, kept):
    w = torch.tensor([clipped, kept, -kept, 0.5], requires_grad=True)
    fake_quantize(w, QuantConfig.make(scheme, bits)).sum().backward()
    assert w.grad.tolist() == [0.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("scheme", ["fixed", "pow2"])
def test_an_all_zero_tensor_quantizes_to_zero_with_shift_zero(scheme):
    q = quantize_tensor(torch.zeros(3, 4), QuantConfig.make(scheme))
    assert q.shift == 0 and torch.equal(q.decode(), torch.zeros(3, 4))

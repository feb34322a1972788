"""The GRU training kernel (nas/model/gru.py, nas/model/csrc/gru.cpp): the same function and gradients as
torch's nn.GRU, through fake quantization too, and the fallback when it cannot be built."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nas.model.gru
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.model.gru import _GRULayer, gru_forward, kernel, uses_kernel
from nas.model.models import RecurrentClassifier
from nas.model.quant import attach_fake_quant


@pytest.fixture(scope="module", autouse=True)
def built():
    if kernel() is None:
        pytest.fail("the GRU kernel did not build (a C++ compiler and ninja are part of the set-up)", pytrace=False)


def test_the_kernels_gradients_match_finite_differences():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 5, dtype=torch.double, requires_grad=True)
    weights = [torch.randn(12, 5), torch.randn(12, 4), torch.randn(12), torch.randn(12)]
    weights = [w.double().requires_grad_() for w in weights]
    assert torch.autograd.gradcheck(_GRULayer.apply, (x, *weights))


@pytest.mark.parametrize("layers", [1, 2])
def test_same_outputs_and_gradients_as_torch_gru_over_the_whole_range_of_the_gates(layers):
    """Inputs scaled so that the gates' pre-activations span about -20..20: the float tanh and
    sigmoid of the kernel (a rational approximation) must agree with torch's everywhere."""
    torch.manual_seed(1)
    rnn = nn.GRU(7, 24, num_layers=layers, batch_first=True, dropout=0.0)
    frames = (6 * torch.randn(5, 30, 7)).requires_grad_()
    expected = rnn(frames)[0]
    got = gru_forward(rnn, frames)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() < 1e-5
    loss_weights = torch.randn_like(expected)
    expected_grads = torch.autograd.grad((expected * loss_weights).sum(), [frames, *rnn.parameters()])
    got_grads = torch.autograd.grad((gru_forward(rnn, frames) * loss_weights).sum(), [frames, *rnn.parameters()])
    for name, a, b in zip(["frames", *(n for n, _ in rnn.named_parameters())], expected_grads, got_grads, strict=True):
        assert (a - b).abs().max() <= 1e-4 * max(1.0, float(a.abs().max())), name


def test_a_quantized_model_trains_through_the_kernel_with_the_same_gradients():
    torch.manual_seed(2)
    config = ModelConfig("gru", 2, 16, n_input=5, dropout=0.0)
    model = attach_fake_quant(RecurrentClassifier(config), QuantConfig.make("pow2", 4))
    frames, lengths = torch.randn(4, 11, 5), torch.tensor([11, 7, 3, 9])
    assert uses_kernel(model.rnn)
    loss = model(frames, lengths).pow(2).sum()
    got = torch.autograd.grad(loss, list(model.parameters()))
    nas.model.gru.KERNEL_ENABLED = False
    try:
        assert not uses_kernel(model.rnn)
        expected = torch.autograd.grad(model(frames, lengths).pow(2).sum(), list(model.parameters()))
    finally:
        nas.model.gru.KERNEL_ENABLED = True
    for a, b in zip(expected, got, strict=True):
        assert (a - b).abs().max() < 1e-4


def test_the_kernel_is_used_for_training_only_and_only_for_grus():
    gru, lstm = nn.GRU(3, 4), nn.LSTM(3, 4)
    assert uses_kernel(gru) and not uses_kernel(lstm)
    with torch.no_grad():
        assert not uses_kernel(gru)  # evaluation: torch's own loop, no autograd to save


def test_without_a_compiler_training_falls_back_to_torch_with_one_warning(monkeypatch, capsys):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("Error building extension 'nas_gru': c++: command not found")

    kernel.cache_clear()
    monkeypatch.setattr("torch.utils.cpp_extension.load", no_compiler)
    try:
        assert kernel() is None and kernel() is None
        assert not uses_kernel(nn.GRU(3, 4))
        model = RecurrentClassifier(ModelConfig("gru", 1, 8, n_input=3))
        model(torch.randn(2, 5, 3), torch.tensor([5, 2])).sum().backward()
        err = capsys.readouterr().err
        assert err.count("warning: the GRU training kernel could not be built") == 1
        assert "command not found" in err and "nn.GRU" in err
    finally:
        monkeypatch.undo()
        kernel.cache_clear()
    assert kernel() is not None


def test_training_a_gru_classifier_goes_through_the_kernel_and_evaluation_does_not(monkeypatch):
    calls = []
    original = _GRULayer.apply
    monkeypatch.setattr(_GRULayer, "apply", lambda *args: calls.append(1) or original(*args))
    model = RecurrentClassifier(ModelConfig("gru", 2, 8, n_input=3))
    frames, lengths = torch.randn(2, 5, 3), torch.tensor([5, 2])
    model(frames, lengths).sum().backward()
    assert len(calls) == 2  # one per layer
    with torch.no_grad():
        model(frames, lengths)
    assert len(calls) == 2

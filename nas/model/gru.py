"""A GRU layer stack for training, with its backward pass written out (issue 13).

Why: on the CPU, torch runs `nn.LSTM` through oneDNN's fused RNN kernel, forward and backward,
but has no such kernel for `nn.GRU`, whose training then records a dozen small autograd nodes per
time step and walks them back one by one: an `nn.GRU` epoch cost twice an `nn.LSTM` epoch of the
same size (bench/gru_speed.py). Here the input projection of all time steps is one matrix
product (autograd as usual); the recurrence over time is one autograd node whose forward keeps the
gates it needs and whose backward is back-propagation through time by hand, ending in one matrix
product for the recurrent weights' gradient.

The parameters stay those of an `nn.GRU` (`weight_ih_l0`, ...), read through any parametrization
(fake quantization), so checkpoints, the quantizers and the integer engine see no difference.
The equations are torch's (gate order r, z, n; the reset gate applied to `W_hn h + b_hn`):

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h
"""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

import torch
from torch import nn

_SOURCE = Path(__file__).parent / "csrc" / "gru.cpp"
# False trains GRUs with torch's nn.GRU again: bench/gru_speed.py times both.
KERNEL_ENABLED = True


@functools.cache
def kernel():
    """The compiled kernel (nas/model/csrc/gru.cpp), built on first use into torch's extension cache
    (about 10 s, once per machine; workers starting together wait for one build), or None where it
    cannot be built (no C++ compiler): training then uses nn.GRU, slower, and says so once."""
    # its import warns that no CUDA runtime is found: irrelevant to a CPU kernel, noise to a user
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import cpp_extension

    try:
        # -fno-trapping-math lets the compiler vectorize the gates' selects on every x86 level
        flags = ["-O3", "-fno-trapping-math"]
        cpp_extension.load(name="nas_gru", sources=[str(_SOURCE)], extra_cflags=flags, is_python_module=False, verbose=False)
        return torch.ops.nas_gru
    except Exception as error:  # any build failure means: train with nn.GRU
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"nas: warning: the GRU training kernel could not be built ({reason}); GRUs train with torch's nn.GRU", file=sys.stderr)
        return None


class _GRULayer(torch.autograd.Function):
    """One GRU layer over time-major `x` (T, B, I) from h_0 = 0: every h_t, as (T, B, H)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
        outputs, gates = kernel().forward(x.contiguous(), w_ih.contiguous(), w_hh.contiguous(), b_ih, b_hh)
        ctx.save_for_backward(x, w_ih, w_hh, outputs, gates)
        return outputs

    @staticmethod
    def backward(ctx, grad_outputs: torch.Tensor):
        x, w_ih, w_hh, outputs, gates = ctx.saved_tensors
        return tuple(kernel().backward(grad_outputs, x.contiguous(), w_ih.contiguous(), w_hh.contiguous(), outputs, gates))


def uses_kernel(rnn: nn.Module) -> bool:
    """Whether a forward pass of `rnn` with gradients goes through the kernel: GRUs on the CPU."""
    return (
        KERNEL_ENABLED
        and isinstance(rnn, nn.GRU)
        and torch.is_grad_enabled()
        and rnn.weight_ih_l0.device.type == "cpu"
        and kernel() is not None
    )


def gru_forward(rnn: nn.GRU, frames: torch.Tensor) -> torch.Tensor:
    """What `rnn(frames)[0]` computes (batch_first, h_0 = 0), trained with the kernel."""
    x = frames.transpose(0, 1)
    for layer in range(rnn.num_layers):
        if layer > 0 and rnn.dropout > 0:
            x = nn.functional.dropout(x, rnn.dropout, rnn.training)
        x = _GRULayer.apply(
            x,
            getattr(rnn, f"weight_ih_l{layer}"),
            getattr(rnn, f"weight_hh_l{layer}"),
            getattr(rnn, f"bias_ih_l{layer}"),
            getattr(rnn, f"bias_hh_l{layer}"),
        )
    return x.transpose(0, 1)

"""Float recurrent classifiers: a stack of GRU, LSTM or plain RNN layers and a linear classifier
on the last valid hidden state of each (variable-length) sequence."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from nas.model.architecture import ModelConfig
from nas.model.gru import gru_forward, uses_kernel

_RNN_CLASSES = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


class RecurrentClassifier(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        # The fused torch kernels (nn.GRU/nn.LSTM/nn.RNN) are several times faster on the CPU than
        # a Python loop over time steps; quantization-aware training keeps them by
        # parametrizing their weights rather than rewriting the cell. A GRU trains through
        # nas/model/gru.py's kernel instead (torch has no fused GRU training on the CPU), with the same
        # parameters.
        self.rnn = _RNN_CLASSES[config.cell](
            input_size=config.n_input,
            hidden_size=config.hidden,
            num_layers=config.layers,
            batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden, config.n_classes)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """frames: (batch, time, n_input), zero-padded after each sequence's end; lengths: (batch,).

        A unidirectional RNN's output at step `length - 1` does not depend on the padding after it,
        so no packing is needed: gather that step's output of the top layer.
        """
        # nn.GRU/LSTM read each weight several times per call; with fake-quantized weights
        # (a parametrization) that would quantize each tensor up to four times. Cache once per pass.
        with parametrize.cached():
            outputs = gru_forward(self.rnn, frames) if uses_kernel(self.rnn) else self.rnn(frames)[0]
            last = outputs[torch.arange(outputs.shape[0], device=outputs.device), lengths.to(outputs.device) - 1]
            return self.classifier(self.dropout(last))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

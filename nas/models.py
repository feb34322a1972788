"""Float recurrent classifiers: a stack of GRU, LSTM or plain RNN layers and a linear classifier
on the last valid hidden state of each (variable-length) sequence."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from nas.errors import NasError

CELLS = ("gru", "lstm", "rnn")
_RNN_CLASSES = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}
MAX_LAYERS = 3
MAX_HIDDEN = 1024


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "gru"
    layers: int = 1
    hidden: int = 64
    n_input: int = 13  # = n_mfcc
    n_classes: int = 10
    dropout: float = 0.1  # before the classifier, and between stacked layers

    def validate(self) -> None:
        if self.cell not in CELLS:
            raise NasError(f"--cell {self.cell}: unknown cell; expected one of {', '.join(CELLS)}")
        if not 1 <= self.layers <= MAX_LAYERS:
            raise NasError(f"--layers {self.layers}: out of range; expected 1..{MAX_LAYERS}")
        if not 1 <= self.hidden <= MAX_HIDDEN:
            raise NasError(f"--hidden {self.hidden}: out of range; expected 1..{MAX_HIDDEN}")
        if not 0.0 <= self.dropout < 1.0:
            raise NasError(f"--dropout {self.dropout}: out of range; expected 0 <= dropout < 1")

    def to_dict(self) -> dict:
        return asdict(self)


class RecurrentClassifier(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        # The fused torch kernels (nn.GRU/nn.LSTM/nn.RNN) are several times faster on the CPU than
        # a Python loop over time steps; quantization-aware training keeps them by
        # parametrizing their weights rather than rewriting the cell.
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
        outputs, _ = self.rnn(frames)
        last = outputs[torch.arange(outputs.shape[0], device=outputs.device), lengths.to(outputs.device) - 1]
        return self.classifier(self.dropout(last))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

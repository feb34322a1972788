"""What a recurrent classifier is, as data: cell, layers, hidden size, inputs, classes.

Kept free of torch so that the memory model (and search pruning) can use it without loading torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from nas.core import limits
from nas.core.errors import NasError

CELLS = ("gru", "lstm", "rnn")
N_CLASSES = 10  # the ten digits


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "gru"
    layers: int = 1
    hidden: int = 64
    n_input: int = 13  # = n_mfcc
    n_classes: int = N_CLASSES
    dropout: float = 0.1  # before the classifier, and between stacked layers

    def validate(self) -> None:
        if self.cell not in CELLS:
            raise NasError(f"--cell {self.cell}: unknown cell; expected one of {', '.join(CELLS)}")
        limits.LAYERS.check("--layers", self.layers)
        limits.HIDDEN.check("--hidden", self.hidden)
        limits.N_MFCC.check("--n-mfcc", self.n_input)
        limits.DROPOUT.check("--dropout", self.dropout)

    def with_hidden(self, hidden: int) -> ModelConfig:
        return replace(self, hidden=hidden)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return f"{self.cell.upper()} {self.layers}x{self.hidden}, {self.n_input} inputs"

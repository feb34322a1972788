"""What a recurrent classifier is, as data: cell, layers, hidden size, inputs, classes.

Kept free of torch so that the memory model (and search pruning) can use it without loading torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nas.errors import NasError

CELLS = ("gru", "lstm", "rnn")
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

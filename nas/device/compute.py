"""What one frame costs the device in arithmetic, counted from the generated C's loops.

Counts are per hop (one feature frame and one recurrent step), plus the classifier once per
utterance. "MACs" are multiply-accumulates; with power-of-two weights the model's are shift-adds
(no multiplier). Table lookups read the sigmoid table (the model) or the log2 table (front-end),
two entries each, interpolated. The measured cost on a Cortex-M4 (instructions per frame in
QEMU) goes beside these in the export's README.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from nas.model.architecture import ModelConfig
from nas.model.formats import GATES

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

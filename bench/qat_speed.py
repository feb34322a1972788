"""QAT epoch time against the float epoch of the same architecture (target: at most 1.2x).

Full official train split (2,400 files), default recipe, one thread (as `nas train` runs). Epoch
times on a shared 2-core machine jitter by 5-10%, so the schemes take turns over several rounds
(one warm-up epoch, then timed epochs each round) and the median epoch of each is compared.
Nothing else should run on the machine meanwhile.

    .venv/bin/python bench/qat_speed.py        # writes bench/results/qat_speed.json
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import torch

from nas.data.dataset import find_data_dir, load_split
from nas.features.extract import FeatureCache, FeatureConfig, build_feature_set
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.training.recipe import TrainConfig
from nas.training.train import train_model

EPOCHS = 4  # per round, the first is a warm-up
ROUNDS = 3
SCHEMES = [QuantConfig(), QuantConfig.make("fixed", 8), QuantConfig.make("pow2", 4)]


def main() -> int:
    torch.set_num_threads(1)
    out = Path(__file__).parent / "results" / "qat_speed.json"
    split, waveforms = load_split(find_data_dir(), "official")
    features = build_feature_set(split, waveforms, FeatureConfig(), FeatureCache())
    rows = []
    for cell in ("gru", "lstm"):
        epochs: dict[str, list[float]] = {quant.describe(): [] for quant in SCHEMES}
        for _ in range(ROUNDS):
            for quant in SCHEMES:
                config = TrainConfig(epochs=EPOCHS, warmup_epochs=1, patience=EPOCHS)
                result = train_model(features, ModelConfig(cell=cell, hidden=64), config, torch.device("cpu"), quant=quant)
                epochs[quant.describe()] += [r.seconds for r in result.history[1:]]
        float_seconds = statistics.median(epochs[QuantConfig().describe()])
        for scheme, values in epochs.items():
            value = statistics.median(values)
            rows.append(
                {
                    "cell": cell,
                    "hidden": 64,
                    "scheme": scheme,
                    "epoch_seconds": value,
                    "ratio_to_float": value / float_seconds,
                    "epochs": values,
                }
            )
            print(f"{cell} {scheme}: {value:.3f} s/epoch (median of {len(values)}), {value / float_seconds:.2f}x float", flush=True)
    out.write_text(json.dumps({"torch": torch.__version__, "threads": 1, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

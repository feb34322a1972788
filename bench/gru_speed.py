"""A GRU training epoch against an LSTM epoch of the same size (issue 13's target: the GRU costs no
more), with nas's GRU kernel (nas/model/gru.py) and with torch's nn.GRU, float and QAT (pow2 4-bit).

Full official train split (2,400 files), the default front-end shape of a search (128-sample
window, 20 mel bands, 13 MFCC), default recipe without waveform copies, one thread (as a search's
worker). Epoch times on a shared 2-core machine jitter by 5-10%, so the variants take turns over
several rounds (one warm-up epoch, then timed epochs each round) and the median epoch of each is
reported. Nothing else should run on the machine meanwhile.

    .venv/bin/python bench/gru_speed.py            # about 10 minutes; writes bench/results/gru_speed.json
    .venv/bin/python bench/gru_speed.py --quick    # one size, one round: checks the script
    .venv/bin/python bench/gru_speed.py --sizes 1x32 --out bench/results/gru_speed_1x32.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

import nas.model.gru
from nas.data.dataset import find_data_dir
from nas.features.extract import FeatureCache, FeatureConfig, load_features
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.training.recipe import TrainConfig
from nas.training.train import train_model

SIZES = ((1, 32), (1, 64), (1, 128), (2, 64))
VARIANTS = (("gru", True, "GRU (nas kernel)"), ("gru", False, "GRU (torch nn.GRU)"), ("lstm", True, "LSTM (torch nn.LSTM)"))
SCHEMES = (("float", QuantConfig()), ("pow2-4", QuantConfig.make("pow2", 4)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one size, one round of 2 epochs")
    parser.add_argument("--sizes", nargs="+", help="LAYERSxHIDDEN, e.g. 1x32 (default: 1x32 1x64 1x128 2x64)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gru_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes, rounds, epochs = (SIZES[1:2], 1, 2) if args.quick else (SIZES, 3, 3)
    if args.sizes:
        sizes = tuple(tuple(int(n) for n in size.split("x")) for size in args.sizes)
    features_config = FeatureConfig(n_mfcc=13, n_mels=20, n_fft=128)
    _, features = load_features(find_data_dir(), "official", features_config, FeatureCache())
    nas.model.gru.kernel()  # built (or found) before any timing
    rows = []
    for layers, hidden in sizes:
        for scheme, quant in SCHEMES:
            times: dict[str, list[float]] = {label: [] for _, _, label in VARIANTS}
            for _ in range(rounds):
                for cell, kernel, label in VARIANTS:
                    nas.model.gru.KERNEL_ENABLED = kernel
                    model = ModelConfig(cell, layers, hidden, n_input=features_config.n_mfcc)
                    config = TrainConfig.for_epochs(epochs, patience=1000, wave_copies=0)
                    result = train_model(features, model, config, torch.device("cpu"), quant=quant)
                    times[label] += [r.seconds for r in result.history[1:]]  # the first warms up
            nas.model.gru.KERNEL_ENABLED = True
            lstm = statistics.median(times[VARIANTS[2][2]])
            for label, values in times.items():
                median = statistics.median(values)
                row = {"layers": layers, "hidden": hidden, "scheme": scheme, "variant": label, "epoch_s": median}
                rows.append(row | {"over_lstm": median / lstm, "epochs_s": values})
                print(f"{layers}x{hidden} {scheme} {label}: {median:.3f} s/epoch, {median / lstm:.2f}x LSTM", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"torch": torch.__version__, "threads": 1, "quick": args.quick, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

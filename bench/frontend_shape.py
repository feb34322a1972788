"""Which integer front-end shape a small-budget model can afford: accuracy by window (n_fft) and
mel bands, chosen on validation, with the device bytes of each shape beside it.

Trains a power-of-two 3-bit GRU 1x32 (13 MFCC; about what fits 6 kB with the small front-end)
with each shape of SHAPES and seeds 0, 1 (official split, default recipe, one thread per run, two
runs at a time) and writes bench/results/frontend_shape.json.

    .venv/bin/python bench/frontend_shape.py        # about 6 minutes on 2 cores
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import sys
from pathlib import Path

SHAPES = ((128, 20), (256, 20), (256, 40))  # (n_fft, n_mels); hop 80 = 10 ms
SEEDS = (0, 1)
MODEL = {"hidden": 32, "n_input": 13}
QUANT = ("pow2", 3)
RESULTS = Path(__file__).parent / "results" / "frontend_shape.json"


def run(job: tuple) -> dict:
    import torch

    from nas.data.dataset import find_data_dir
    from nas.device.memory import memory_breakdown
    from nas.features.extract import FeatureCache, FeatureConfig, load_features
    from nas.model.architecture import ModelConfig
    from nas.model.formats import QuantConfig
    from nas.training.recipe import TrainConfig
    from nas.training.train import train_model

    torch.set_num_threads(1)
    (n_fft, n_mels), seed = job
    features = FeatureConfig(n_mfcc=13, n_mels=n_mels, n_fft=n_fft)
    _, feature_set = load_features(find_data_dir(), "official", features, FeatureCache())
    quant = QuantConfig.make(*QUANT)
    model = ModelConfig(**MODEL)
    result = train_model(feature_set, model, TrainConfig(seed=seed), torch.device("cpu"), quant=quant)
    memory = memory_breakdown(model, quant, features)
    return {
        "n_fft": n_fft,
        "n_mels": n_mels,
        "seed": seed,
        "val": result.integer.val.value,
        "test": result.integer.test.value,
        "total_bytes": memory.total_bytes,
        "frontend_flash_bytes": memory.frontend_bytes,
    }


def main() -> int:
    jobs = [(shape, seed) for shape in SHAPES for seed in SEEDS]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        runs = pool.map(run, jobs)
    means = {}
    for n_fft, n_mels in SHAPES:
        rows = [r for r in runs if (r["n_fft"], r["n_mels"]) == (n_fft, n_mels)]
        means[f"{n_fft}/{n_mels}"] = {
            "val": 100 * statistics.mean(r["val"] for r in rows),
            "test": 100 * statistics.mean(r["test"] for r in rows),
            "total_bytes": rows[0]["total_bytes"],
        }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"model": f"{QUANT[0]} {QUANT[1]}-bit GRU 1x32, 13 MFCC", "runs": runs, "means": means}, indent=2) + "\n")
    for shape, values in means.items():
        mean = f"val {values['val']:.2f}%, test {values['test']:.2f}% (mean of {len(SEEDS)} seeds)"
        print(f"n_fft/n_mels {shape}: {mean}, {values['total_bytes']:,} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())

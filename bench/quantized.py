"""Tasks B and C: quantized models within 36 kB, chosen on the validation split.

For each weight scheme, every candidate below is trained (QAT) with seeds 0, 1, 2 and scored by
the integer engine. The candidate with the best mean integer-engine *validation* accuracy is the
scheme's pick; its test accuracy is reported, never used to choose.

    .venv/bin/python bench/quantized.py fixed    # writes bench/results/quantized-fixed.json (~10 min)
    .venv/bin/python bench/quantized.py pow2     # writes bench/results/quantized-pow2.json
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from nas.data.dataset import find_data_dir, load_split
from nas.device.memory import KB, memory_breakdown
from nas.features.extract import FeatureCache, FeatureConfig, build_feature_set
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.training.recipe import TrainConfig
from nas.training.train import train_model

BUDGET_BYTES = 36 * KB
CANDIDATES = {
    "fixed": [
        (ModelConfig(hidden=64), QuantConfig.make("fixed", 8)),
        (ModelConfig(hidden=64), QuantConfig.make("fixed", 6)),
        (ModelConfig(hidden=32), QuantConfig.make("fixed", 8)),
    ],
    "pow2": [
        (ModelConfig(hidden=32), QuantConfig.make("pow2", 4)),
        (ModelConfig(hidden=64), QuantConfig.make("pow2", 4)),
        (ModelConfig(hidden=64), QuantConfig.make("pow2", 5)),
    ],
}
SEEDS = (0, 1, 2)


def main() -> int:
    torch.set_num_threads(1)  # as `nas train` runs: the same seed gives the same result anywhere
    schemes = sys.argv[1:] or list(CANDIDATES)
    out = Path(__file__).parent / "results" / f"quantized-{'-'.join(schemes)}.json"
    split, waveforms = load_split(find_data_dir(), "official")
    features = build_feature_set(split, waveforms, FeatureConfig(), FeatureCache())
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "budget_bytes": BUDGET_BYTES, "schemes": {}}
    for scheme in schemes:
        candidates = CANDIDATES[scheme]
        rows = []
        for model_config, quant in candidates:
            memory = memory_breakdown(model_config, quant, None)  # the model alone, as when this comparison was measured
            assert memory.total_bytes <= BUDGET_BYTES
            runs = []
            for seed in SEEDS:
                started = time.perf_counter()
                result = train_model(features, model_config, replace(TrainConfig(), seed=seed), torch.device("cpu"), quant=quant)
                runs.append(
                    {
                        "seed": seed,
                        "int_val_accuracy": result.integer.val.value,
                        "int_test_accuracy": result.integer.test.value,
                        "fake_quant_val_accuracy": result.val.value,
                        "fake_quant_test_accuracy": result.test.value,
                        "test_agreement": result.integer.test_agreement,
                        "best_epoch": result.best_epoch,
                        "seconds": time.perf_counter() - started,
                    }
                )
                print(
                    f"{scheme} h{model_config.hidden} {quant.describe()} seed {seed}: int val {100 * result.integer.val.value:.2f}%",
                    flush=True,
                )
            rows.append(
                {
                    "model": model_config.to_dict(),
                    "quant": quant.to_dict(),
                    "memory": memory.to_dict(),
                    "mean_int_val_accuracy": sum(r["int_val_accuracy"] for r in runs) / len(runs),
                    "mean_int_test_accuracy": sum(r["int_test_accuracy"] for r in runs) / len(runs),
                    "runs": runs,
                }
            )
        chosen = max(rows, key=lambda r: r["mean_int_val_accuracy"])
        report["schemes"][scheme] = {"chosen_on_validation": rows.index(chosen), "candidates": rows}
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(
            f"{scheme}: chosen h{chosen['model']['hidden']} {chosen['quant']}: mean int test {100 * chosen['mean_int_test_accuracy']:.2f}%"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

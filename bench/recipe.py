"""Choose the training recipe on the validation split (official split, GRU 1x64, 13 MFCC).

Each candidate recipe is trained with seeds 0, 1, 2; the recipe with the best mean validation
accuracy becomes the default of `TrainConfig`. Test accuracy is written for the record but never used to choose.

    .venv/bin/python bench/recipe.py            # writes bench/results/recipe.json
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from nas.data.dataset import find_data_dir, load_split
from nas.features.extract import FeatureCache, FeatureConfig, build_feature_set
from nas.model.models import ModelConfig
from nas.training.recipe import TrainConfig
from nas.training.train import train_model

RECIPES = {
    "plain (no augmentation, no weight decay, 30 epochs)": TrainConfig(epochs=30, augment=False, weight_decay=0.0),
    "augment + AdamW wd 0.01, 40 epochs": TrainConfig(epochs=40, patience=15),
    "augment + AdamW wd 0.01 + label smoothing 0.1, 40 epochs": TrainConfig(epochs=40, patience=15, label_smoothing=0.1),
    "augment + AdamW wd 0.01, 60 epochs (chosen: the default)": TrainConfig(epochs=60, patience=20),
}
SEEDS = (0, 1, 2)


def main() -> int:
    torch.set_num_threads(1)  # as `nas train` runs: the same seed gives the same result anywhere
    out = Path(__file__).parent / "results" / "recipe.json"
    split, waveforms = load_split(find_data_dir(), "official")
    features = build_feature_set(split, waveforms, FeatureConfig(), FeatureCache())
    model_config = ModelConfig()
    rows = []
    for name, recipe in RECIPES.items():
        runs = []
        for seed in SEEDS:
            started = time.perf_counter()
            result = train_model(features, model_config, replace(recipe, seed=seed), torch.device("cpu"))
            runs.append(
                {
                    "seed": seed,
                    "val_accuracy": result.val.value,
                    "test_accuracy": result.test.value,
                    "best_epoch": result.best_epoch,
                    "seconds": time.perf_counter() - started,
                }
            )
            print(f"{name} seed {seed}: val {100 * result.val.value:.2f}%", flush=True)
        mean_val = sum(r["val_accuracy"] for r in runs) / len(runs)
        rows.append({"recipe": name, "config": recipe.to_dict(), "mean_val_accuracy": mean_val, "runs": runs})
    chosen = max(rows, key=lambda r: r["mean_val_accuracy"])
    out.write_text(
        json.dumps(
            {"chosen_on_validation": chosen["recipe"], "recipes": rows, "torch": torch.__version__, "threads": torch.get_num_threads()},
            indent=2,
        )
        + "\n"
    )
    for row in rows:
        print(f"{row['recipe']}: mean val {100 * row['mean_val_accuracy']:.2f}%")
    print(f"chosen on validation: {chosen['recipe']} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

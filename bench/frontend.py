"""What the integer device front-end costs in accuracy against torchaudio's MFCC, on the same recipe.

Trains each model with both front-ends and seeds 0, 1, 2 (official split, default recipe, one
thread per run, two runs at a time) and writes bench/results/frontend.json: every run's
validation and test accuracy (the integer engine's for quantized models; float and post-training
int8 for float ones), the means, and the time to compute the features of all 3,000 files.

    .venv/bin/python bench/frontend.py              # about 12 minutes on 2 cores
    .venv/bin/python bench/frontend.py --floor-sweep   # the fixed floor, chosen on validation (~6 min)

The sweep trains the small power-of-two model with the integer front-end at each floor of FLOORS
(log2(E + 2^floor_bits)) and records which has the best mean validation accuracy.
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

MODELS = {
    "float GRU 1x64, 13 MFCC": ({"hidden": 64}, {"n_mfcc": 13}, ("float", None)),
    "pow2 4-bit GRU 1x24, 16 MFCC": ({"hidden": 24, "n_input": 16}, {"n_mfcc": 16}, ("pow2", 4)),
}
FRONTENDS = ("torchaudio", "integer")
SEEDS = (0, 1, 2)
FLOORS = (0, 12, 16, 20)
SWEPT = "pow2 4-bit GRU 1x24, 16 MFCC"
RESULTS = Path(__file__).parent / "results" / "frontend.json"


def run(job: tuple) -> dict:
    import torch

    from nas.data.dataset import find_data_dir
    from nas.features.extract import FeatureCache, FeatureConfig, load_features
    from nas.model.architecture import ModelConfig
    from nas.model.formats import QuantConfig
    from nas.training.recipe import TrainConfig
    from nas.training.train import train_model

    torch.set_num_threads(1)
    name, frontend, seed, *floor = job
    model_values, feature_values, (scheme, bits) = MODELS[name]
    features = FeatureConfig(**feature_values, frontend=frontend, floor_bits=floor[0] if floor else FeatureConfig.floor_bits)
    _, feature_set = load_features(find_data_dir(), "official", features, FeatureCache())
    quant = QuantConfig.make(scheme, bits)
    started = time.perf_counter()
    result = train_model(feature_set, ModelConfig(**model_values), TrainConfig(seed=seed), torch.device("cpu"), quant=quant)
    scores = result.integer or result.post_training_int8
    return {
        "model": name,
        "frontend": frontend,
        "seed": seed,
        "floor_bits": features.floor_bits if features.integer else None,
        "scored_by": "integer engine" if result.integer else "float model (post-training int8 beside it)",
        "val": result.val.value if not result.integer else scores.val.value,
        "test": result.test.value if not result.integer else scores.test.value,
        "int8_test": None if result.integer else scores.test.value,
        "best_epoch": result.best_epoch,
        "seconds": time.perf_counter() - started,
    }


def feature_seconds() -> dict:
    from nas.data.dataset import find_data_dir, list_recordings, read_all
    from nas.features.extract import FeatureCache, FeatureConfig

    waves = read_all(list_recordings(find_data_dir()))
    out = {}
    for frontend in FRONTENDS:
        started = time.perf_counter()
        FeatureCache(None).get(waves, FeatureConfig(frontend=frontend))
        out[frontend] = time.perf_counter() - started
    return out


def floor_sweep() -> int:
    jobs = [(SWEPT, "integer", seed, floor) for floor in FLOORS for seed in SEEDS]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        runs = pool.map(run, jobs, chunksize=1)
    rows = []
    for floor in FLOORS:
        mine = [r for r in runs if r["floor_bits"] == floor]
        rows.append(
            {
                "floor_bits": floor,
                "mean_val": statistics.mean(r["val"] for r in mine),
                "mean_test": statistics.mean(r["test"] for r in mine),
            }
        )
        print(f"floor 2^{floor:<2} | val {100 * rows[-1]['mean_val']:.2f}% {[round(100 * r['val'], 2) for r in mine]} "
              f"| test {100 * rows[-1]['mean_test']:.2f}%")  # fmt: skip
    chosen = max(rows, key=lambda row: (row["mean_val"], -row["floor_bits"]))  # on validation; a tie keeps the lower floor
    report = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    report["floor_sweep"] = {"model": SWEPT, "chosen_on": "mean validation accuracy", "chosen_floor_bits": chosen["floor_bits"]}
    report["floor_sweep"] |= {"rows": rows, "runs": runs}
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"chosen on validation: floor_bits {chosen['floor_bits']}")
    return 0


def main() -> int:
    if "--floor-sweep" in sys.argv[1:]:
        return floor_sweep()
    timing = feature_seconds()
    jobs = [(name, frontend, seed) for name in MODELS for frontend in FRONTENDS for seed in SEEDS]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        runs = pool.map(run, jobs, chunksize=1)
    summary = []
    for name in MODELS:
        for frontend in FRONTENDS:
            mine = [r for r in runs if r["model"] == name and r["frontend"] == frontend]
            row = {"model": name, "frontend": frontend, "mean_val": statistics.mean(r["val"] for r in mine)}
            row["mean_test"] = statistics.mean(r["test"] for r in mine)
            summary.append(row)
            print(f"{name} | {frontend:10} | val {100 * row['mean_val']:.2f}% | test {100 * row['mean_test']:.2f}% "
                  f"| seeds {[round(100 * r['test'], 2) for r in mine]}")  # fmt: skip
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    report = {"split": "official", "threads_per_run": 1, "feature_seconds_3000_files": timing, "summary": summary, "runs": runs}
    report |= {key: previous[key] for key in ("floor_sweep",) if key in previous}  # kept from an earlier --floor-sweep
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print("features for 3,000 files:", {k: f"{v:.1f} s" for k, v in timing.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())

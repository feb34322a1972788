"""Issue 10: which recipe generalises to new voices, chosen on speaker-disjoint validation.

Every candidate is trained on the six leave-one-speaker-out folds (`nas.training.crossval.run_fold`: test
= the held-out speaker, validation = the next speaker, train = the other four), pow2 weights, and
scored by the integer engine. The choice reads the mean **validation** accuracy over the folds (a
speaker the model never trained on); the held-out speakers' accuracy is written for the record.
All folds of all candidates go through one process pool, so it is meant for a many-core machine
(it ran on a 16-core machine lent to issue 10, torch 2.11: two rounds of about 5 and 7 minutes).

    NAS_DATA_DIR=../shared/fsdd/recordings WORKERS=16 .venv/bin/python bench/recipe_new_voices.py [LABEL,LABEL...]

Appends one JSON line per fold to bench/results/recipe-new-voices-grid.jsonl (or $OUT/) and
prints the summary table of what the file holds (`--summary` prints it without training).
"""

from __future__ import annotations

import collections
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

from nas.data.dataset import find_data_dir
from nas.features.extract import FeatureCache, FeatureConfig
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.training.crossval import CrossValPlan, run_fold
from nas.training.recipe import TrainConfig

RESULTS = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).parent / "results"
LOG = RESULTS / "recipe-new-voices-grid.jsonl"
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
Q4, Q3 = QuantConfig.make("pow2", 4, 16, 16), QuantConfig.make("pow2", 3, 16, 16)
ALL = dict(wave_copies=4, speed_range=0.15, vtlp_range=0.1, gain_db=6.0, noise_snr_db=15.0)
STRONG = dict(wave_copies=4, speed_range=0.2, vtlp_range=0.15, gain_db=10.0, noise_snr_db=10.0)
NO_COPIES = dict(wave_copies=0, speed_range=0.0, vtlp_range=0.0, gain_db=0.0, noise_snr_db=0.0)

# label: (hidden, mel bands, normalisation, recipe, seeds, extra: n_mfcc, dropout, quant, epochs)
GRID = {
    # round 1: normalisation and which waveform augmentation (S: an 8 kB-class model, L: 36 kB-class)
    "S40-global": (40, 20, "global", NO_COPIES, (0, 1), {}),
    "S40-running": (40, 20, "running", NO_COPIES, (0, 1), {}),
    "S40-global-all": (40, 20, "global", ALL, (0, 1), {}),
    "S40-running-all": (40, 20, "running", ALL, (0, 1), {}),
    "S40-running-speed": (40, 20, "running", dict(NO_COPIES, wave_copies=4, speed_range=0.15), (0, 1), {}),
    "S40-running-speedvtlp": (40, 20, "running", dict(NO_COPIES, wave_copies=4, speed_range=0.15, vtlp_range=0.1), (0, 1), {}),
    "L128-global-all": (128, 40, "global", ALL, (0,), {}),
    "L128-running-all": (128, 40, "running", ALL, (0,), {}),
    # round 2: around the best of round 1 (running + all four augmentations)
    "L128-running-all-s1": (128, 40, "running", ALL, (1,), {}),
    "L128-copies8": (128, 40, "running", dict(ALL, wave_copies=8), (0,), {}),
    "L128-dropout25": (128, 40, "running", ALL, (0,), {"dropout": 0.25}),
    "L128-ls01": (128, 40, "running", dict(ALL, label_smoothing=0.1), (0,), {}),
    "L128-strong": (128, 40, "running", STRONG, (0,), {}),
    "L128-mfcc10": (128, 40, "running", ALL, (0,), {"n_mfcc": 10}),
    "L128-e100": (128, 40, "running", dict(ALL, patience=30), (0,), {"epochs": 100}),
    "L128-wd05": (128, 40, "running", dict(ALL, weight_decay=0.05), (0,), {}),
    "L150-3bit": (150, 40, "running", ALL, (0,), {"quant": Q3}),
    "S40-copies8": (40, 20, "running", dict(ALL, wave_copies=8), (0,), {}),
    "S40-strong": (40, 20, "running", STRONG, (0,), {}),
    "S40-dropout25": (40, 20, "running", ALL, (0,), {"dropout": 0.25}),
    "S40-ls01": (40, 20, "running", dict(ALL, label_smoothing=0.1), (0,), {}),
}


def plan(label: str) -> CrossValPlan:
    hidden, mels, normalisation, recipe, seeds, extra = GRID[label]
    n_mfcc = extra.get("n_mfcc", 13)
    model = ModelConfig("gru", 1, hidden, n_input=n_mfcc, dropout=extra.get("dropout", 0.1))
    features = FeatureConfig(n_mfcc, mels, 256, 80, normalisation=normalisation)
    train = TrainConfig.for_epochs(extra.get("epochs", 60), **recipe)
    return CrossValPlan(model, features, extra.get("quant", Q4), train, seeds, SPEAKERS, find_data_dir(), os.environ.get("NAS_CACHE_DIR"))


def warm(job) -> None:
    """Compute one feature set (or one augmented copy) into the disk cache before the folds start."""
    from nas.data.dataset import load_split

    config, copy = job
    _, waves = load_split(find_data_dir(), "official")
    FeatureCache.at(os.environ.get("NAS_CACHE_DIR")).get([waves[name] for name in sorted(waves)], config, copy)


def fold(job) -> dict:
    label, speaker, seed = job
    return run_fold(plan(label), speaker, seed).to_dict() | {"label": label}


def summary(rows: list[dict]) -> str:
    by_label = collections.defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    lines = ["| recipe | folds | mean val (choice) | mean test | lowest speaker | " + " | ".join(SPEAKERS) + " |"]
    lines.append("| --- " * (5 + len(SPEAKERS)) + "|")
    for label, runs in by_label.items():
        test = {s: [100 * r["test_correct"] / r["test_total"] for r in runs if r["speaker"] == s] for s in SPEAKERS}
        val = [100 * r["val_correct"] / r["val_total"] for r in runs]
        means = {s: sum(v) / len(v) for s, v in test.items() if v}
        lines.append(
            f"| {label} | {len(runs)} | {sum(val) / len(val):.1f} | {sum(means.values()) / len(means):.1f} | {min(means.values()):.1f} | "
            + " | ".join(f"{means[s]:.1f}" if s in means else "-" for s in SPEAKERS)
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--summary"]:
        print(summary([json.loads(line) for line in LOG.read_text().splitlines()]))
        return 0
    labels = argv[0].split(",") if argv else list(GRID)
    started = time.time()
    context = multiprocessing.get_context("spawn")
    warmups = {(plan(label).feature_config, copy) for label in labels for copy in [None, *plan(label).train_config.wave_copy_recipes()]}
    with context.Pool(int(os.environ.get("WORKERS", os.cpu_count() or 1))) as pool:
        pool.map(warm, sorted(warmups, key=str))
        jobs = [(label, speaker, seed) for label in labels for seed in GRID[label][4] for speaker in SPEAKERS]
        RESULTS.mkdir(parents=True, exist_ok=True)
        with LOG.open("a") as log:
            for row in pool.imap_unordered(fold, jobs):
                log.write(json.dumps(row) + "\n")
                log.flush()
                done = f"{row['label']} {row['speaker']} seed {row['seed']}"
                print(f"{time.time() - started:.0f} s {done}: test {row['test_correct']}/{row['test_total']}", flush=True)
    print(summary([json.loads(line) for line in LOG.read_text().splitlines()]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`nas export` and `nas evaluate`: a finished trial becomes a folder that reloads without
retraining and reproduces its integer-engine accuracy.

Export folder (DESIGN.md): model.pt (state dict and configs), model.json (configs, features and
input scaling, number formats, memory breakdown, accuracies, versions), weights.bin (`pack`),
model.h/model.c (C99, `nas.cexport`), README.md.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nas import __version__
from nas.architecture import N_CLASSES, ModelConfig
from nas.cexport import generate
from nas.data import OFFICIAL, Split, make_split
from nas.errors import NasError
from nas.features import FeatureCache, FeatureConfig, Normaliser, load_features
from nas.formats import QuantConfig
from nas.frontend import describe as describe_integer_frontend
from nas.intmodel import IntegerModel, from_float_model, pack, unpack
from nas.memory import Budget, budget_bytes_from_kb, memory_breakdown
from nas.mfcc import describe_frontend
from nas.pareto import select_best
from nas.record import TrialRecord
from nas.stats import Accuracy
from nas.train import load_checkpoint, model_from_checkpoint

EXPORT_FORMAT = "nas-export-v1"


def select_record(records: list[TrialRecord], budget: Budget, trial: int | None, max_kb: float | None, study_name: str) -> TrialRecord:
    """--trial N; --best (the most accurate on validation within the budget; the smaller on a
    tie); --max-kb K (the same within K kB and the budget)."""
    if trial is not None:
        by_number = {r.number: r for r in records}
        if trial not in by_number:
            raise NasError(f"--trial {trial}: no such trial in study '{study_name}' (it has trials 0-{len(records) - 1})")
        chosen = by_number[trial]
        if not chosen.trained:
            raise NasError(f"--trial {trial}: the trial is {chosen.state}, not complete; expected a trained trial")
        return chosen
    limit = budget if max_kb is None else Budget(min(budget.limit_bytes, budget_bytes_from_kb(max_kb)), budget.scope)
    best = select_best(records, limit)
    if best is None:
        if max_kb is not None:
            raise NasError(f"--max-kb {max_kb:g}: no finished trial fits within {limit.describe()}")
        raise NasError(f"study '{study_name}': no finished trial within the budget")
    return best


def export_trial(record: TrialRecord, out_dir: Path) -> dict:
    """Write the export folder for one trial from its saved checkpoint (no retraining)."""
    checkpoint = load_checkpoint(Path(record.checkpoint or ""))
    model = model_from_checkpoint(checkpoint)
    model_config = ModelConfig(**checkpoint["model_config"])
    quant = QuantConfig(**checkpoint["quant_config"])
    feature_config = FeatureConfig(**checkpoint["feature_config"])
    if not quant.quantized:
        raise NasError(f"--trial {record.number}: a float32 trial has no integer model to export; expected a fixed or pow2 trial")
    engine = from_float_model(model, quant)
    data = pack(engine)
    breakdown = memory_breakdown(model_config, quant)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "weights.bin").write_bytes(data)
    header, source = generate(engine)
    (out_dir / "model.h").write_text(header)
    (out_dir / "model.c").write_text(source)
    torch.save(
        {
            k: checkpoint[k]
            for k in ("format", "model_config", "quant_config", "feature_config", "normaliser", "train_config", "state_dict")
        },
        out_dir / "model.pt",
    )
    description = {
        "format": EXPORT_FORMAT,
        "trial": record.number,
        "split": checkpoint.get("split", OFFICIAL),
        "model_config": model_config.to_dict(),
        "quant_config": quant.to_dict(),
        "feature_config": feature_config.to_dict(),
        # What FeatureConfig leaves implicit, read off the transform that computed the features.
        "front_end": describe_integer_frontend(feature_config) if feature_config.integer else describe_frontend(feature_config),
        "normaliser": checkpoint["normaliser"],
        "input": {
            "frac_bits": engine.input_frac,
            "bits": quant.state_bits,
            "formula": "q = clamp(floor(((mfcc - mean) / std) * 2**frac_bits + 0.5), -2**(bits-1), 2**(bits-1) - 1)",
        },
        "weight_shifts": {name: weight.shift for name, weight in engine.weights.items()},
        "memory": breakdown.to_dict(),
        "weights_bin_bytes": len(data),
        "accuracy": {
            "scored_by": record.scored_by,
            "val_correct": record.val.correct,
            "val_total": record.val.total,
            "test_correct": record.test.correct,
            "test_total": record.test.total,
        },
        "versions": {"nas": __version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()},
    }
    (out_dir / "model.json").write_text(json.dumps(description, indent=2) + "\n")
    (out_dir / "README.md").write_text(_folder_readme(description))
    return description


def _folder_readme(description: dict) -> str:
    model, quant, memory = description["model_config"], description["quant_config"], description["memory"]
    accuracy = description["accuracy"]
    return f"""# nas export: trial {description["trial"]}

{model["cell"].upper()} {model["layers"]}x{model["hidden"]}, {model["n_input"]} MFCC, {quant["weights"]} {quant["weight_bits"]}-bit
weights, {quant["state_bits"]}-bit state: {memory["total_bytes"]:,} B in total. Integer-engine accuracy on
split '{description["split"]}': validation {accuracy["val_correct"]}/{accuracy["val_total"]}, test
{accuracy["test_correct"]}/{accuracy["test_total"]}.

| file | what it is |
| --- | --- |
| `model.pt` | torch checkpoint (`torch.load(..., weights_only=True)`): configs, normalisation, state dict |
| `model.json` | configs, the exact MFCC parameters and input scaling, number formats, memory breakdown, accuracy, versions |
| `weights.bin` | packed integer weights, biases and shifts ({description["weights_bin_bytes"]:,} B; layout: docs/export.md) |
| `model.h`, `model.c` | C99, integer arithmetic only, no heap: `int nas_classify(const int16_t *frames, int n_frames, int32_t *logits)` |

Input: MFCC frames computed as `model.json` → `feature_config` states, normalised with
`normaliser` (mean, std per coefficient), then quantized with `input.formula`.
Check it with `nas evaluate <this folder>`. In C: `gcc -std=c99 -c model.c`, then call
`nas_classify(frames, n_frames, logits)` with `n_frames` rows of `NAS_N_INPUT` quantized values; it
returns the digit and fills 10 logits (Q.12), the same as the integer engine's bit for bit.
"""


@dataclass
class LoadedExport:
    description: dict
    engine: IntegerModel
    feature_config: FeatureConfig
    normaliser: Normaliser


def load_export(folder: Path) -> LoadedExport:
    description_path, weights_path = folder / "model.json", folder / "weights.bin"
    for path in (description_path, weights_path):
        if not path.is_file():
            raise NasError(f"{path}: missing; expected an export folder written by 'nas export'")
    try:
        description = json.loads(description_path.read_text())
        model_config = ModelConfig(**description["model_config"])
        quant = QuantConfig(**description["quant_config"])
        feature_config = FeatureConfig(**description["feature_config"])
        normaliser = Normaliser.from_dict(description["normaliser"])
        input_frac = int(description["input"]["frac_bits"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise NasError(f"{description_path}: not a valid export description ({type(error).__name__}: {error})") from None
    if description.get("format") != EXPORT_FORMAT:
        raise NasError(f"{description_path}: format {description.get('format')!r}; expected {EXPORT_FORMAT}")
    try:
        engine = unpack(weights_path.read_bytes(), model_config, quant, input_frac)
    except NasError as error:
        raise NasError(f"{weights_path}: {error}") from None
    return LoadedExport(description, engine, feature_config, normaliser)


@dataclass
class Evaluation:
    """The integer engine's score of an export on one part of a split."""

    split: str
    part: str
    labels: np.ndarray
    predicted: np.ndarray
    stored: Accuracy | None  # what model.json holds for this split and part, if it was scored on it
    trained_split: str  # the split whose train part the model learned from
    overlap: int | None  # files of the evaluated part that were in that train part (None: unknown)

    @property
    def accuracy(self) -> Accuracy:
        return Accuracy(int((self.predicted == self.labels).sum()), len(self.labels))

    @property
    def reproduces(self) -> bool | None:
        return None if self.stored is None else self.stored == self.accuracy

    def confusion(self) -> np.ndarray:
        from sklearn.metrics import confusion_matrix

        return confusion_matrix(self.labels, self.predicted, labels=list(range(N_CLASSES)))

    def classification_report(self) -> str:
        from sklearn.metrics import classification_report

        return classification_report(self.labels, self.predicted, labels=list(range(N_CLASSES)), digits=4, zero_division=0)


def training_overlap(split: Split, trained_split: str, part: str) -> int | None:
    """How many files of `split`'s part the model was trained on: the train part of
    `trained_split` over the same recordings (None if that split cannot be rebuilt from them,
    e.g. its held-out speaker is not among them)."""
    recordings = [r for files in split.parts().values() for r in files]  # the parts hold every recording once
    try:
        trained = {r.name for r in make_split(recordings, trained_split).train}
    except NasError:
        return None
    return len(trained.intersection(r.name for r in split.parts()[part]))


def evaluate(loaded: LoadedExport, data_dir: Path, split_name: str | None, part: str, cache: FeatureCache) -> Evaluation:
    """Features with the export's own config and normalisation, then the integer engine."""
    trained_split = loaded.description.get("split", OFFICIAL)
    split_name = split_name or trained_split
    split, features = load_features(data_dir, split_name, loaded.feature_config, cache, loaded.normaliser)
    frames, labels = features.part(part)
    _, predicted = loaded.engine.predict(frames)
    stored_counts = loaded.description.get("accuracy", {})
    stored = None
    if split_name == trained_split and stored_counts.get(f"{part}_correct") is not None:
        stored = Accuracy(stored_counts[f"{part}_correct"], stored_counts[f"{part}_total"])
    return Evaluation(split_name, part, labels, predicted, stored, trained_split, training_overlap(split, trained_split, part))

"""`nas export` and `nas evaluate`: a finished trial becomes a folder that reloads without
retraining and reproduces its integer-engine accuracy.

Export folder (DESIGN.md): model.pt (state dict and configs), model.json (configs, features and
input scaling, number formats, memory breakdown, accuracies, versions), weights.bin (`pack`),
model.h/model.c (C99, `nas.device.cexport`), README.md.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nas.bundle.readme import folder_readme
from nas.bundle.selection import ExportSource, trial_export_source
from nas.core.errors import NasError
from nas.core.stats import Accuracy, confusion_counts
from nas.core.version import __version__
from nas.data.dataset import OFFICIAL, Split, list_recordings, load_split, make_split, read_all
from nas.device.cexport import generate
from nas.device.compute import frame_cost, predict_instructions
from nas.device.cproject import run_pcm, write_project
from nas.device.firmware import QEMU, build_firmware, run_firmware, write_firmware
from nas.device.memory import memory_breakdown
from nas.device.targets import TARGETS
from nas.device.toolchain import ARM, HOST, available, compile_export
from nas.engine.intmodel import IntegerModel, from_float_model, pack, unpack
from nas.features.extract import FeatureCache, FeatureConfig, Normaliser, build_feature_set, compute_frames
from nas.features.frontend import describe as describe_integer_frontend
from nas.features.mfcc import describe_frontend
from nas.model.architecture import N_CLASSES, ModelConfig
from nas.model.formats import QuantConfig
from nas.study.record import TrialRecord
from nas.training.checkpoint import load_checkpoint, model_from_checkpoint
from nas.training.recipe import TrainConfig

EXPORT_FORMAT = "nas-export-v1"


GOLDEN_PER_DIGIT = 2  # golden vectors: the first recordings of each digit in the split's test part


def golden_vectors(data_dir: Path, split_name: str, engine: IntegerModel, features: FeatureConfig, normaliser: Normaliser):
    """(names, PCM, the engine's logits) of a few test recordings, every digit: what a port must reproduce."""
    recordings = list_recordings(data_dir)
    test = make_split(recordings, split_name).test
    chosen = [r for digit in range(N_CLASSES) for r in [r for r in test if r.digit == digit][:GOLDEN_PER_DIGIT]]
    waves = read_all(chosen)
    raw = compute_frames(waves, features)
    logits = np.concatenate([engine.logits([engine.quantize_frames(normaliser.apply(f))]) for f in raw])
    return [r.name for r in chosen], [w.samples for w in waves], logits


def export_configs(folder: Path) -> tuple[ModelConfig, FeatureConfig, QuantConfig, TrainConfig]:
    """The configuration and recipe an export folder was trained with (its model.pt)."""
    path = folder / "model.pt"
    if not path.is_file():
        raise NasError(f"{path}: missing; expected an export folder written by 'nas export'")
    return checkpoint_configs(path)


def checkpoint_configs(path: Path) -> tuple[ModelConfig, FeatureConfig, QuantConfig, TrainConfig]:
    """The configuration and recipe a checkpoint (an export's, a trial's or `nas train`'s) was trained with."""
    checkpoint = load_checkpoint(path)
    try:
        return (
            ModelConfig(**checkpoint["model_config"]),
            FeatureConfig(**checkpoint["feature_config"]),
            QuantConfig(**checkpoint["quant_config"]),
            TrainConfig.from_stored(checkpoint["train_config"]),
        )
    except (KeyError, TypeError) as error:
        raise NasError(f"{path}: not a complete export checkpoint ({type(error).__name__}: {error})") from None


def export_trial(
    record: TrialRecord, out_dir: Path, data_dir: Path | None = None, measure: bool = True, confirmed: dict | None = None
) -> dict:  # fmt: skip
    """Write the export folder for one trial from its saved checkpoint (no retraining).
    `confirmed` (nas.study.confirm.ConfirmedPoint.to_dict) is a confirmed point's means over seeds, of
    which `record` holds the exported seed's checkpoint and scores."""
    return export_checkpoint(trial_export_source(record), out_dir, data_dir, measure, confirmed)


def export_checkpoint(
    source: ExportSource, out_dir: Path, data_dir: Path | None = None, measure: bool = True, confirmed: dict | None = None
) -> dict:  # fmt: skip
    """Write the export folder from a checkpoint (no retraining). With the integer front-end: the
    streaming C (PCM in), its Makefile, a WAV example and, given the data, golden vectors;
    `measure` compiles it with the compilers that are installed (host gcc, arm-none-eabi-gcc, QEMU)
    and writes what they measure into model.json and the README."""
    checkpoint = load_checkpoint(source.checkpoint)
    model = model_from_checkpoint(checkpoint)
    model_config = ModelConfig(**checkpoint["model_config"])
    quant = QuantConfig(**checkpoint["quant_config"])
    feature_config = FeatureConfig(**checkpoint["feature_config"])
    if not quant.quantized:
        raise NasError(f"{source.named_by}: a float32 model has no integer model to export; expected a fixed or pow2 one")
    engine = from_float_model(model, quant)
    data = pack(engine)
    device_features = feature_config.on_device
    breakdown = memory_breakdown(model_config, quant, device_features)
    normaliser = Normaliser.from_dict(checkpoint["normaliser"])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "weights.bin").write_bytes(data)
    header, c_source = generate(engine, device_features, normaliser.constants() if device_features else None, packed=data)
    (out_dir / "model.h").write_text(header)
    (out_dir / "model.c").write_text(c_source)
    golden = None
    if device_features is not None:
        write_project(out_dir)
        if data_dir is not None:
            names, pcm, logits = golden_vectors(data_dir, checkpoint.get("split", OFFICIAL), engine, feature_config, normaliser)
            write_firmware(out_dir, pcm, logits)
            golden = {"files": names, "classes": logits.argmax(axis=1).tolist()}
    device = measure_export(out_dir, golden is not None) if measure and device_features is not None else {}
    torch.save(
        {
            k: checkpoint[k]
            for k in ("format", "model_config", "quant_config", "feature_config", "normaliser", "train_config", "state_dict")
        },
        out_dir / "model.pt",
    )
    description = {
        "format": EXPORT_FORMAT,
        "trial": source.trial,
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
        "memory_items": [
            {
                "region": i.region,
                "category": i.category,
                "name": i.name,
                "symbol": i.symbol,
                "count": i.count,
                "bits": i.bits,
                "bytes": i.nbytes,
            }
            for i in breakdown.items
        ],
        "compute_per_frame": frame_cost(model_config, device_features).to_dict(),
        # the compute model's instructions on each target (nas.device.compute; QEMU's count in "compiled")
        "instructions_predicted": {t: predict_instructions(model_config, quant, device_features, t).to_dict() for t in TARGETS},
        "compiled": device,
        "golden_vectors": golden,
        "weights_bin_bytes": len(data),
        "accuracy": source.accuracy,
        "confirmed": confirmed,
        "versions": {"nas": __version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()},
    }
    (out_dir / "model.json").write_text(json.dumps(description, indent=2) + "\n")
    (out_dir / "README.md").write_text(folder_readme(description))
    return description


def measure_export(folder: Path, golden: bool) -> dict:
    """What the installed compilers make of the export: sections, stack, and in QEMU the golden
    vectors' logits and instructions per frame. Build products go to folder/build-*."""
    measured: dict = {}
    for compiler in (HOST, ARM):
        if available(compiler):
            measured[compiler] = compile_export(folder, compiler).to_dict()
    if golden and available(ARM) and available(QEMU):
        run = run_firmware(build_firmware(folder))
        measured["qemu"] = {
            "machine": "mps2-an386 (Cortex-M4), -icount shift=0",
            "golden_vectors_matching": int(len(run.classes) - run.mismatches),
            "golden_vectors": len(run.classes),
            "instructions_per_frame": round(run.instructions_per_frame),
            "classify_instructions": int(run.classify_instructions.max()),
        }
    return measured


@dataclass
class LoadedExport:
    description: dict
    engine: IntegerModel
    feature_config: FeatureConfig
    normaliser: Normaliser
    folder: Path


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
    return LoadedExport(description, engine, feature_config, normaliser, folder)


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
    c_predicted: np.ndarray | None = None  # the exported C's classes from the PCM (--c)
    c_logits_identical: bool | None = None

    @property
    def accuracy(self) -> Accuracy:
        return Accuracy(int((self.predicted == self.labels).sum()), len(self.labels))

    @property
    def reproduces(self) -> bool | None:
        return None if self.stored is None else self.stored == self.accuracy

    @property
    def c_matches(self) -> bool | None:
        """The exported C gave the engine's classes and logits on every file (None: not run)."""
        if self.c_predicted is None:
            return None
        return bool(self.c_logits_identical and (self.c_predicted == self.predicted).all())

    def confusion(self) -> list[list[int]]:
        return confusion_counts(self.labels, self.predicted, N_CLASSES)

    def to_dict(self) -> dict:
        """`nas evaluate --json`: the score, its check against model.json and the C, the confusion."""
        accuracy = self.accuracy
        c_check = None
        if self.c_predicted is not None:
            same = int((self.c_predicted == self.predicted).sum())
            c_check = {"same_classes": same, "files": len(self.predicted), "logits_identical": self.c_logits_identical}
        return {
            "split": self.split,
            "part": self.part,
            "correct": accuracy.correct,
            "total": accuracy.total,
            "accuracy": accuracy.value,
            "ci95": list(accuracy.interval()),
            "reproduces_model_json": self.reproduces,
            "trained_split": self.trained_split,
            "files_trained_on": self.overlap,
            "c": c_check,
            "confusion": self.confusion(),
        }

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


def evaluate(
    loaded: LoadedExport, data_dir: Path, split_name: str | None, part: str, cache: FeatureCache, run_c: bool = False
) -> Evaluation:
    """Features with the export's own config and normalisation, then the integer engine; with
    `run_c`, also the export's C (host compiler) fed each file's PCM, compared logit for logit."""
    trained_split = loaded.description.get("split", OFFICIAL)
    split_name = split_name or trained_split
    split, waveforms = load_split(data_dir, split_name)
    features = build_feature_set(split, waveforms, loaded.feature_config, cache, loaded.normaliser)
    frames, labels = features.part(part)
    logits, predicted = loaded.engine.predict(frames)
    stored_counts = loaded.description.get("accuracy", {})
    stored = None
    if split_name == trained_split and stored_counts.get(f"{part}_correct") is not None:
        stored = Accuracy(stored_counts[f"{part}_correct"], stored_counts[f"{part}_total"])
    result = Evaluation(split_name, part, labels, predicted, stored, trained_split, training_overlap(split, trained_split, part))
    if run_c:
        if not loaded.feature_config.integer:
            raise NasError("--c: this export's model was trained on torchaudio features; its C takes feature frames, not PCM")
        import tempfile

        pcm = [waveforms[r.name].samples for r in split.parts()[part]]
        with tempfile.TemporaryDirectory() as work:
            c_classes, c_logits, _ = run_pcm(Path(loaded.folder), pcm, Path(work))
        result.c_predicted, result.c_logits_identical = c_classes, bool(np.array_equal(c_logits, logits))
    return result

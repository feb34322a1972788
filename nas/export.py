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
import optuna
import torch
import torchaudio

from nas import __version__
from nas.architecture import ModelConfig
from nas.cexport import generate
from nas.errors import NasError
from nas.features import FeatureConfig, Normaliser
from nas.formats import QuantConfig
from nas.intmodel import IntegerModel, from_float_model, pack, unpack
from nas.memory import KB, memory_breakdown
from nas.search import front
from nas.train import load_checkpoint, model_from_checkpoint

EXPORT_FORMAT = "nas-export-v1"


def select_trial(study: optuna.Study, budget_bytes: int, trial: int | None, best: bool, max_kb: float | None) -> optuna.trial.FrozenTrial:
    """--trial N, --best (highest validation accuracy on the front within the budget; the smaller
    on a tie), or --max-kb K (the same within K kB)."""
    if trial is not None:
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        if trial not in trials:
            raise NasError(f"--trial {trial}: no such trial in study '{study.study_name}' (it has trials 0-{len(trials) - 1})")
        chosen = trials[trial]
        if chosen.state != optuna.trial.TrialState.COMPLETE:
            raise NasError(f"--trial {trial}: the trial is {chosen.state.name.lower()}, not complete; expected a trained trial")
        return chosen
    limit = budget_bytes if max_kb is None else min(budget_bytes, int(max_kb * KB))
    candidates = front(study, limit)
    if not candidates:
        where = f"within {max_kb:g} kB" if max_kb is not None else "within the budget"
        raise NasError(
            f"--max-kb {max_kb:g}: no finished trial fits"
            if max_kb is not None
            else f"study '{study.study_name}': no finished trial {where}"
        )
    return max(candidates, key=lambda t: (t.values[0], -t.values[1], -t.number))


def export_trial(trial: optuna.trial.FrozenTrial, out_dir: Path) -> dict:
    """Write the export folder for one trial from its saved checkpoint (no retraining)."""
    path = Path(trial.user_attrs.get("checkpoint", ""))
    checkpoint = load_checkpoint(path)
    model = model_from_checkpoint(checkpoint)
    model_config = ModelConfig(**checkpoint["model_config"])
    quant = QuantConfig(**checkpoint["quant_config"])
    if not quant.quantized:
        raise NasError(f"--trial {trial.number}: a float32 trial has no integer model to export; expected a fixed or pow2 trial")
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
    attrs = trial.user_attrs
    description = {
        "format": EXPORT_FORMAT,
        "trial": trial.number,
        "split": checkpoint.get("split", "official"),
        "model_config": model_config.to_dict(),
        "quant_config": quant.to_dict(),
        "feature_config": checkpoint["feature_config"],
        # What FeatureConfig leaves implicit, for a device front-end that must match it.
        "front_end": {
            "library": f"torchaudio {torchaudio.__version__}: transforms.MFCC(log_mels=False)",
            "sample_rate": 8000,
            "audio_scaling": "int16 samples / 32768",
            "window": "hann (periodic), length n_fft, no centre padding; files shorter than n_fft are zero-padded to n_fft",
            "spectrum": "power (|FFT|^2)",
            "mel": "HTK scale, triangular filters without area normalisation, f_min..f_max",
            "log": "10*log10(max(mel, 1e-10)), then clamped to (max over the file - 80 dB)",
            "dct": "type II, orthonormal, first n_mfcc coefficients",
        },
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
            "scored_by": attrs.get("scored_by"),
            "val_correct": attrs.get("val_correct"),
            "val_total": attrs.get("val_total"),
            "test_correct": attrs.get("test_correct"),
            "test_total": attrs.get("test_total"),
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

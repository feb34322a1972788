"""Checkpoints: what a training run saves (its configs, normaliser, recipe and best weights, and
the state a resume needs), written atomically, read back with a clear error for what is not one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nas.core.errors import NasError
from nas.features.extract import FeatureSet
from nas.model.formats import QuantConfig
from nas.model.models import ModelConfig, RecurrentClassifier
from nas.model.quant import attach_fake_quant
from nas.training.recipe import TrainConfig

CHECKPOINT_FORMAT = "nas-checkpoint-v1"


def build_checkpoint(
    features: FeatureSet,
    model_config: ModelConfig,
    config: TrainConfig,
    state_dict: dict,
    extra: dict | None = None,
    quant: QuantConfig | None = None,
) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "model_config": model_config.to_dict(),
        "quant_config": (quant or QuantConfig()).to_dict(),
        "feature_config": features.config.to_dict(),
        "normaliser": features.normaliser.to_dict(),
        "train_config": config.to_dict(),
        "state_dict": state_dict,
    } | (extra or {})


def save_checkpoint(path: Path, checkpoint: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save(checkpoint, partial)
    partial.replace(path)  # atomic: an interrupted save never leaves half a checkpoint


def load_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise NasError(f"{path}: checkpoint not found; expected a file written by 'nas train'")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise NasError(f"{path}: not a readable checkpoint ({type(error).__name__}); expected a file written by 'nas train'") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise NasError(f"{path}: not a nas checkpoint; expected format {CHECKPOINT_FORMAT}")
    return checkpoint


def model_from_checkpoint(checkpoint: dict) -> RecurrentClassifier:
    """The trained model, fake-quantized again if it was trained quantized."""
    quant = QuantConfig(**checkpoint.get("quant_config", QuantConfig().to_dict()))
    model = attach_fake_quant(RecurrentClassifier(ModelConfig(**checkpoint["model_config"])), quant)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()

"""`nas train`: one configuration trained once per seed (or one interrupted seed resumed), each
seed's metrics stored in its checkpoint and the whole run in summary.json, with means over seeds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from nas.core.stats import Accuracy
from nas.data.dataset import OFFICIAL
from nas.features.extract import FeatureConfig, FeatureSet
from nas.model.formats import QuantConfig
from nas.model.models import ModelConfig
from nas.training.checkpoint import load_checkpoint, save_checkpoint
from nas.training.recipe import TrainConfig
from nas.training.train import EpochRecord, TrainResult, TrainState, train_model

DEFAULT_TRAIN_DIR = Path("results") / "train"


@dataclass(frozen=True)
class TrainPlan:
    """One configuration to train with one or more seeds, or one interrupted seed to resume."""

    model_config: ModelConfig
    feature_config: FeatureConfig
    quant: QuantConfig
    train_config: TrainConfig  # its seed is replaced by each of `seeds`
    seeds: tuple[int, ...]
    split: str
    out_dir: Path
    resume: dict | None = None  # a checkpoint's contents (one seed)

    def checkpoint(self, seed: int) -> Path:
        return self.out_dir / f"seed{seed}.pt"

    @property
    def summary_path(self) -> Path:
        return self.out_dir / "summary.json"


def run_name(model: ModelConfig, features: FeatureConfig, quant: QuantConfig) -> str:
    """<cell>-l<layers>-h<hidden>-mfcc<n>[-<scheme><bits>[-s<state bits>]]: the default run folder."""
    scheme = (
        "" if not quant.quantized else f"-{quant.weights}{quant.weight_bits}" + ("" if quant.state_bits == 16 else f"-s{quant.state_bits}")
    )
    return f"{model.cell}-l{model.layers}-h{model.hidden}-mfcc{features.n_mfcc}{scheme}"


def plan_training(
    model: ModelConfig,
    features: FeatureConfig,
    quant: QuantConfig,
    train: TrainConfig,
    seeds: list[int],
    split: str,
    out_dir: Path | None = None,
) -> TrainPlan:
    for config in (features, model, train, quant):
        config.validate()
    out_dir = out_dir or DEFAULT_TRAIN_DIR / run_name(model, features, quant)
    return TrainPlan(model, features, quant, train, tuple(dict.fromkeys(seeds)), split, out_dir)


def plan_resume(path: Path) -> TrainPlan:
    """Continue the run a checkpoint belongs to, with its own configuration, seed and split."""
    checkpoint = load_checkpoint(path)
    train = TrainConfig.from_stored(checkpoint["train_config"])
    return TrainPlan(
        ModelConfig(**checkpoint["model_config"]),
        FeatureConfig(**checkpoint["feature_config"]),
        QuantConfig(**checkpoint.get("quant_config", QuantConfig().to_dict())),
        train,
        (train.seed,),
        checkpoint.get("split", OFFICIAL),
        path.parent,
        resume=checkpoint,
    )


@dataclass
class SeedRun:
    seed: int
    checkpoint: Path
    result: TrainResult

    def metrics(self) -> dict:
        result = self.result
        metrics = {
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "mean_epoch_seconds": result.mean_epoch_seconds,
            "val_correct": result.val.correct,
            "val_total": result.val.total,
            "test_correct": result.test.correct,
            "test_total": result.test.total,
        }
        if result.post_training_int8 is not None:
            metrics |= {
                "ptq_int8_val_correct": result.post_training_int8.val.correct,
                "ptq_int8_test_correct": result.post_training_int8.test.correct,
            }
        if result.integer is not None:
            metrics |= {
                "int_val_correct": result.integer.val.correct,
                "int_val_total": result.integer.val.total,
                "int_test_correct": result.integer.test.correct,
                "int_test_total": result.integer.test.total,
                "int_float_test_agreement": result.integer.test_agreement,
            }
        return metrics


@dataclass(frozen=True)
class SeedMean:
    """One accuracy over several seeds: the mean (percent) with its t-interval, and the pooled count."""

    label: str
    mean: float
    low: float
    high: float
    pooled: Accuracy


@dataclass
class TrainRuns:
    plan: TrainPlan
    runs: list[SeedRun]

    @property
    def parameters(self) -> int:
        from nas.model.models import count_parameters

        return count_parameters(self.runs[0].result.model)

    def accuracies(self) -> dict[str, Callable[[TrainResult], Accuracy]]:
        """What the runs report, by label: the integer engine for a quantized model, else the float
        model and its post-training int8 baseline."""
        if self.plan.quant.quantized:
            return {
                "integer-engine val": lambda r: r.integer.val,
                "integer-engine test": lambda r: r.integer.test,
                "fake-quant test": lambda r: r.test,
            }
        return {"val": lambda r: r.val, "test": lambda r: r.test, "post-training int8 test": lambda r: r.post_training_int8.test}

    def means(self) -> list[SeedMean]:
        from nas.core.stats import mean_interval

        out = []
        for label, pick in self.accuracies().items():
            mean, low, high = mean_interval([100 * pick(run.result).value for run in self.runs])
            pooled = Accuracy(sum(pick(run.result).correct for run in self.runs), sum(pick(run.result).total for run in self.runs))
            out.append(SeedMean(label, mean, low, high, pooled))
        return out

    def to_dict(self) -> dict:
        """summary.json: the configuration and every seed's figures."""
        from nas.device.memory import memory_breakdown

        plan = self.plan
        return {
            "model_config": plan.model_config.to_dict(),
            "feature_config": plan.feature_config.to_dict(),
            "quant_config": plan.quant.to_dict(),
            "train_config": plan.train_config.to_dict(),
            "split": plan.split,
            "parameters": self.parameters,
            "float_bytes": 4 * self.parameters,
            "memory": memory_breakdown(plan.model_config, plan.quant, plan.feature_config.on_device).to_dict(),
            "runs": [{"seed": run.seed, "checkpoint": str(run.checkpoint)} | run.metrics() for run in self.runs],
        }


class TrainInterrupted(Exception):
    """Ctrl-C during `train_seeds`: which checkpoint can be resumed, and which seeds never started."""

    def __init__(self, checkpoint: Path, not_started: tuple[int, ...]):
        super().__init__(str(checkpoint))
        self.checkpoint = checkpoint
        self.not_started = not_started


def train_seeds(
    plan: TrainPlan,
    features: FeatureSet,
    device: torch.device,
    on_epoch: Callable[[int, EpochRecord, TrainState], None] | None = None,
    extra_checkpoint: dict | None = None,
) -> TrainRuns:
    """Train each seed of the plan in turn (or resume its one checkpoint), store each seed's
    metrics in its checkpoint and the whole run in summary.json."""
    from nas.device.memory import memory_breakdown

    breakdown = memory_breakdown(plan.model_config, plan.quant, plan.feature_config.on_device).to_dict()
    runs = []
    for index, seed in enumerate(plan.seeds):
        path = plan.checkpoint(seed)
        callback = None if on_epoch is None else (lambda record, state, seed=seed: on_epoch(seed, record, state))
        extra = {"split": plan.split} | (extra_checkpoint or {})
        try:
            result = train_model(
                features, plan.model_config, plan.train_config.with_seed(seed), device, path, plan.resume, callback, extra, plan.quant
            )
        except KeyboardInterrupt:
            raise TrainInterrupted(path, plan.seeds[index + 1 :]) from None
        run = SeedRun(seed, path, result)
        checkpoint = load_checkpoint(path)
        checkpoint["metrics"] = run.metrics() | {"memory": breakdown}
        save_checkpoint(path, checkpoint)
        runs.append(run)
    outcome = TrainRuns(plan, runs)
    plan.summary_path.write_text(json.dumps(outcome.to_dict(), indent=2) + "\n")
    return outcome

"""The trial record: what the search stores on each trial and what reports and export read.

Stored as Optuna user attributes, one per field (so optuna-dashboard shows them and older
studies, which used the same names, still read), written only by `TrialRecord.user_attrs` and
read only by `TrialRecord.from_trial`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nas.core.stats import Accuracy
from nas.data.dataset import SAMPLE_RATE
from nas.device.memory import Budget
from nas.features.extract import FeatureConfig
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.study.rungs import RUNG_ATTR
from nas.study.sizes import BAND_ATTR

INSTRUCTIONS_ATTR = "instructions_per_frame"  # trial user attribute, set by the search when the trial starts


@dataclass(frozen=True)
class TrialRecord:
    number: int = -1  # set from the Optuna trial when read back
    state: str = "complete"  # complete | pruned | fail | running | waiting
    params: dict = field(default_factory=dict)
    total_bytes: int | None = None
    over_budget: bool = False  # pruned before training: even its smallest hidden size was over budget
    prune_ms: float | None = None
    model_config: ModelConfig | None = None
    quant_config: QuantConfig | None = None
    feature_config: FeatureConfig | None = None
    memory: dict | None = None  # MemoryBreakdown.to_dict()
    val: Accuracy | None = None  # the integer engine on the split's validation part: the objective without folds
    test: Accuracy | None = None  # only reported
    # files per (spoken digit, predicted digit) on the val and test parts, by the same scorer
    val_confusion: list[list[int]] | None = None
    test_confusion: list[list[int]] | None = None
    # with --speaker-folds: pooled over the folds (nas.data.dataset.fold_speakers), validation speakers'
    # files (the objective) and held-out speakers' files (only reported)
    speaker_val: Accuracy | None = None
    speaker_test: Accuracy | None = None
    held_out_speakers: tuple[str, ...] | None = None
    scored_by: str | None = None
    fake_quant_val_accuracy: float | None = None
    int_float_test_agreement: float | None = None
    best_epoch: int | None = None
    epochs_run: int | None = None
    train_seconds: float | None = None
    checkpoint: str | None = None  # the file it was trained into, on the host that trained it
    checkpoint_artifact: str | None = None  # the same file in the study's artifact store (nas.study.artifacts), for any host
    # multi-fidelity (nas.study.rungs): best validation accuracy so far at each rung epoch reached, and
    # for a trial stopped there (state pruned), the epoch and the trial that beat it
    rung_accuracy: dict[str, float] | None = None
    stopped_at_epoch: int | None = None
    stopped_by: int | None = None
    size_band: int | None = None  # its band of the log-size axis (nas.study.sizes), set by the search when it starts
    # the compute model's instructions per frame on the study's --target (nas.device.compute), set when it starts
    instructions_per_frame: float | None = None

    @property
    def mips_for_real_time(self) -> float | None:
        """Millions of instructions per second for one frame per hop."""
        if self.instructions_per_frame is None or self.feature_config is None:
            return None
        return self.instructions_per_frame / (self.feature_config.hop_length / SAMPLE_RATE) / 1e6

    @property
    def finished(self) -> bool:
        """Counts towards --trials: trained, pruned over the budget before training, or stopped at a rung."""
        return self.state in ("complete", "pruned")

    @property
    def trained(self) -> bool:
        return self.state == "complete" and self.val is not None

    @property
    def score(self) -> Accuracy:
        """The accuracy the search selects on: the folds' validation speakers with
        --speaker-folds (new voices), else the split's validation part."""
        return self.speaker_val if self.speaker_val is not None else self.val

    @property
    def stopped(self) -> bool:
        """Stopped at a rung: trained part of the way, beaten there by a no-larger trial (nas.study.rungs)."""
        return self.stopped_at_epoch is not None

    @property
    def stopped_accuracy(self) -> float | None:
        """A stopped trial's validation accuracy (fake-quantized model) at the rung where it stopped."""
        return (self.rung_accuracy or {}).get(str(self.stopped_at_epoch)) if self.stopped else None

    def objectives(self) -> tuple[float, float]:
        """The study's two values: validation accuracy (maximised) and total_bytes (minimised)."""
        return self.score.value, float(self.total_bytes)

    def within(self, budget: Budget) -> bool:
        if self.memory is not None:
            return budget.admits(self.memory)
        return self.total_bytes is not None and self.total_bytes <= budget.limit_bytes

    def user_attrs(self) -> dict:
        """JSON-able attributes for `trial.set_user_attr`; what is unset is left out."""
        attrs = {
            "total_bytes": self.total_bytes,
            "over_budget": self.over_budget or None,
            "prune_ms": self.prune_ms,
            "model_config": self.model_config.to_dict() if self.model_config else None,
            "quant_config": self.quant_config.to_dict() if self.quant_config else None,
            "feature_config": self.feature_config.to_dict() if self.feature_config else None,
            "memory": self.memory,
            "val_confusion": self.val_confusion,
            "test_confusion": self.test_confusion,
            "scored_by": self.scored_by,
            "fake_quant_val_accuracy": self.fake_quant_val_accuracy,
            "int_float_test_agreement": self.int_float_test_agreement,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "train_seconds": self.train_seconds,
            "checkpoint": self.checkpoint,
            "checkpoint_artifact": self.checkpoint_artifact,
            "held_out_speakers": list(self.held_out_speakers) if self.held_out_speakers else None,
            RUNG_ATTR: self.rung_accuracy,
            "stopped_at_epoch": self.stopped_at_epoch,
            "stopped_by": self.stopped_by,
        }
        for part in ("val", "test", "speaker_val", "speaker_test"):
            accuracy = getattr(self, part)
            if accuracy is not None:
                attrs |= {f"{part}_correct": accuracy.correct, f"{part}_total": accuracy.total}
        return {key: value for key, value in attrs.items() if value is not None}

    @classmethod
    def from_trial(cls, trial) -> TrialRecord:
        """Read an `optuna.trial.FrozenTrial` written by the search."""
        attrs = trial.user_attrs

        def config(kind, key):
            return kind(**attrs[key]) if key in attrs else None

        def accuracy(part):
            # a running trial's attributes are written one at a time: half an accuracy is none yet
            keys = (f"{part}_correct", f"{part}_total")
            return Accuracy(attrs[keys[0]], attrs[keys[1]]) if all(key in attrs for key in keys) else None

        return cls(
            number=trial.number,
            state=trial.state.name.lower(),
            params=dict(trial.params),
            total_bytes=attrs.get("total_bytes"),
            over_budget=bool(attrs.get("over_budget", False)),
            prune_ms=attrs.get("prune_ms"),
            model_config=config(ModelConfig, "model_config"),
            quant_config=config(QuantConfig, "quant_config"),
            feature_config=config(FeatureConfig, "feature_config"),
            memory=attrs.get("memory"),
            val=accuracy("val"),
            test=accuracy("test"),
            val_confusion=attrs.get("val_confusion"),
            test_confusion=attrs.get("test_confusion"),
            scored_by=attrs.get("scored_by"),
            fake_quant_val_accuracy=attrs.get("fake_quant_val_accuracy"),
            int_float_test_agreement=attrs.get("int_float_test_agreement"),
            best_epoch=attrs.get("best_epoch"),
            epochs_run=attrs.get("epochs_run"),
            train_seconds=attrs.get("train_seconds"),
            checkpoint=attrs.get("checkpoint"),
            checkpoint_artifact=attrs.get("checkpoint_artifact"),
            speaker_val=accuracy("speaker_val"),
            speaker_test=accuracy("speaker_test"),
            held_out_speakers=tuple(attrs["held_out_speakers"]) if "held_out_speakers" in attrs else None,
            rung_accuracy=attrs.get(RUNG_ATTR),
            stopped_at_epoch=attrs.get("stopped_at_epoch"),
            stopped_by=attrs.get("stopped_by"),
            size_band=attrs.get(BAND_ATTR),
            instructions_per_frame=attrs.get(INSTRUCTIONS_ATTR),
        )

    def describe(self) -> str:
        """One line: the configuration."""
        if self.model_config is None or self.quant_config is None:
            return ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        model, quant = self.model_config, self.quant_config
        return f"{model.cell.upper()} {model.layers}x{model.hidden}, {model.n_input} MFCC, {quant.describe()}"


def read_records(study) -> list[TrialRecord]:
    """Every trial of an Optuna study, as records, in trial order."""
    return [TrialRecord.from_trial(trial) for trial in study.get_trials(deepcopy=False)]

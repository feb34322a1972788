"""Training: seeded, reproducible, augmented, early-stopped on validation accuracy, resumable.

The recipe (augmentation, AdamW with weight decay, warm-up then cosine decay) matters more than
the architecture on FSDD; docs/training.md records how it was chosen on the validation split.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nas.core.errors import NasError
from nas.core.stats import Accuracy, confusion_counts
from nas.data.dataset import OFFICIAL
from nas.features.extract import FeatureConfig, FeatureSet
from nas.model.formats import QuantConfig
from nas.model.models import ModelConfig, RecurrentClassifier
from nas.model.quant import attach_fake_quant
from nas.training.recipe import TrainConfig

CHECKPOINT_FORMAT = "nas-checkpoint-v1"


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclass
class IntegerScores:
    """What the integer engine scores, and how often it agrees with the fake-quant float model."""

    val: Accuracy
    test: Accuracy
    test_agreement: float  # share of test files where both predict the same class
    confusion: dict[str, list[list[int]]]  # "val", "test" -> files per (spoken, predicted digit)


@dataclass
class TrainResult:
    model: RecurrentClassifier  # holds the best validation weights (fake-quantized if quantized)
    history: list[EpochRecord]
    best_epoch: int
    val: Accuracy  # float forward pass (fake-quantized weights for a quantized model)
    test: Accuracy
    stopped_early: bool
    confusion: dict[str, list[list[int]]]  # of the float forward pass: "val", "test" -> files per (spoken, predicted)
    integer: IntegerScores | None = None  # the integer engine's scores, for a quantized model
    post_training_int8: IntegerScores | None = None  # baseline for a float model: PTQ to int8, integer engine

    @property
    def mean_epoch_seconds(self) -> float:
        return float(np.mean([r.seconds for r in self.history])) if self.history else float("nan")


@dataclass
class _State:
    """Everything a resumed run needs to continue exactly where the interrupted one stopped."""

    epoch: int = 0
    best_score: tuple[float, float] = (-1.0, -math.inf)
    best_epoch: int = 0
    best_state: dict = field(default_factory=dict)
    history: list[EpochRecord] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise NasError("--device cuda: no CUDA device is available; expected --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise NasError(f"--device {name}: expected auto, cpu or cuda")
    return torch.device(name)


def pad_batch(frames: list[np.ndarray], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in frames], dtype=torch.long)
    padded = nn.utils.rnn.pad_sequence([torch.from_numpy(f) for f in frames], batch_first=True)
    return padded.to(device), lengths.to(device)


def length_bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar-length sequences: padding costs recurrent steps, and FSDD
    lengths vary tenfold. Shuffle, sort within pools of 8 batches, cut, shuffle the batches."""
    order = rng.permutation(len(lengths))
    pool = batch_size * 8
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def augment(frames: torch.Tensor, lengths: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """SpecAugment-style masking and noise on normalised MFCC frames (0 = the train mean)."""
    batch, steps, width = frames.shape
    cpu = dict(generator=generator)
    out = frames.clone()
    if config.noise_std > 0:
        out = out + config.noise_std * torch.randn(frames.shape, **cpu).to(frames.device)
    if config.time_mask_fraction > 0:
        lens = lengths.cpu().float()
        widths = (torch.rand(batch, **cpu) * config.time_mask_fraction * lens).long()
        starts = (torch.rand(batch, **cpu) * (lens - widths + 1).clamp(min=1)).long()
        t = torch.arange(steps)
        mask = (t[None, :] >= starts[:, None]) & (t[None, :] < (starts + widths)[:, None])
        out = out.masked_fill(mask[:, :, None].to(frames.device), 0.0)
    if config.freq_mask_width > 0:
        widths = torch.randint(0, config.freq_mask_width + 1, (batch,), **cpu)
        starts = (torch.rand(batch, **cpu) * (width - widths + 1)).long()
        f = torch.arange(width)
        mask = (f[None, :] >= starts[:, None]) & (f[None, :] < (starts + widths)[:, None])
        out = out.masked_fill(mask[:, None, :].to(frames.device), 0.0)
    # keep padding at zero so the padded steps stay what evaluation sees
    valid = torch.arange(steps, device=frames.device)[None, :] < lengths[:, None]
    return out * valid[:, :, None]


def predict_logits(model: nn.Module, frames: list[np.ndarray], device: torch.device, batch_size: int = 256) -> np.ndarray:
    """Logits for each sequence, in input order. Batches by length to save padded steps."""
    model.eval()
    order = np.argsort([len(f) for f in frames], kind="stable")
    logits = np.zeros((len(frames), model.config.n_classes), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            padded, lengths = pad_batch([frames[i] for i in index], device)
            logits[index] = model(padded, lengths).float().cpu().numpy()
    return logits


def evaluate(model: nn.Module, frames: list[np.ndarray], labels: np.ndarray, device: torch.device) -> tuple[Accuracy, float, np.ndarray]:
    """Accuracy, mean cross-entropy and the predicted classes."""
    logits = predict_logits(model, frames, device)
    loss = nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    predicted = logits.argmax(axis=1)
    return Accuracy(int((predicted == labels).sum()), len(labels)), loss, predicted


def _lr_lambda(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    warmup = config.warmup_epochs * steps_per_epoch
    total = config.epochs * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train_model(
    features: FeatureSet,
    model_config: ModelConfig,
    config: TrainConfig,
    device: torch.device,
    checkpoint_path: Path | None = None,
    resume: dict | None = None,
    on_epoch: Callable[[EpochRecord, _State], None] | None = None,
    extra_checkpoint: dict | None = None,
    quant: QuantConfig | None = None,
) -> TrainResult:
    """Train, keeping the weights of the best validation epoch (accuracy, then lower loss).

    With `checkpoint_path`, a resumable checkpoint is written after every epoch; `resume` is such
    a checkpoint's contents and continues that run to the same result as an uninterrupted one.
    With a quantized `quant`, weights are fake-quantized during training (QAT) and the result also
    holds the integer engine's scores.
    """
    quant = quant or QuantConfig()
    quant.validate()
    config.validate()
    model_config.validate()
    train_frames, train_labels = features.part("train")
    val_frames, val_labels = features.part("val")
    if not train_frames or not val_frames:
        raise NasError("split: the train and validation parts must each hold at least one recording")

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = attach_fake_quant(RecurrentClassifier(model_config), quant).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    train_lengths = np.array([len(f) for f in train_frames])
    steps_per_epoch = len(length_bucketed_batches(train_lengths, config.batch_size, np.random.default_rng(0)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config, steps_per_epoch))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    state = _State()

    if resume is not None:
        run = resume["resume"]
        model.load_state_dict(run["model"])
        optimizer.load_state_dict(run["optimizer"])
        scheduler.load_state_dict(run["scheduler"])
        torch.set_rng_state(run["torch_rng"])
        generator.set_state(run["generator"])
        rng.bit_generator.state = run["numpy_rng"]
        state = _State(
            epoch=run["epoch"],
            best_score=tuple(run["best_score"]),
            best_epoch=run["best_epoch"],
            best_state=resume["state_dict"],
            history=[EpochRecord(**r) for r in run["history"]],
        )

    stopped_early = False
    while state.epoch < config.epochs:
        if state.epoch - state.best_epoch >= config.patience and state.best_epoch > 0:
            stopped_early = True
            break
        started = time.perf_counter()
        model.train()
        total_loss, seen = 0.0, 0
        epoch_frames, epoch_lengths = train_frames, train_lengths
        if features.train_copies:
            # one version of each recording this epoch: the original (0) or one of its copies
            versions = [train_frames, *features.train_copies]
            chosen = rng.integers(0, len(versions), size=len(train_frames))
            epoch_frames = [versions[v][i] for i, v in enumerate(chosen)]
            epoch_lengths = np.array([len(f) for f in epoch_frames])
        for index in length_bucketed_batches(epoch_lengths, config.batch_size, rng):
            padded, lengths = pad_batch([epoch_frames[i] for i in index], device)
            if config.augment:
                padded = augment(padded, lengths, config, generator)
            targets = torch.from_numpy(train_labels[index]).to(device)
            loss = loss_fn(model(padded, lengths), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(index)
            seen += len(index)
        val_accuracy, val_loss, _ = evaluate(model, val_frames, val_labels, device)
        state.epoch += 1
        record = EpochRecord(state.epoch, total_loss / seen, val_loss, val_accuracy.value, time.perf_counter() - started)
        state.history.append(record)
        score = (val_accuracy.value, -val_loss)
        if score > state.best_score:
            state.best_score, state.best_epoch = score, state.epoch
            state.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                build_checkpoint(features, model_config, config, state.best_state, extra_checkpoint, quant)
                | {"resume": _resume_block(model, optimizer, scheduler, generator, rng, state)},
            )
        if on_epoch is not None:
            on_epoch(record, state)

    model.load_state_dict(state.best_state)
    val, _, val_predicted = evaluate(model, val_frames, val_labels, device)
    test_frames, test_labels = features.part("test")
    test, _, test_predicted = evaluate(model, test_frames, test_labels, device)
    n_classes = model_config.n_classes
    confusion = {
        "val": confusion_counts(val_labels, val_predicted, n_classes),
        "test": confusion_counts(test_labels, test_predicted, n_classes),
    }
    model = model.cpu()
    result = TrainResult(model, state.history, state.best_epoch, val, test, stopped_early, confusion)
    if quant.quantized:
        return replace(result, integer=integer_scores(model, features, quant))
    return replace(result, post_training_int8=integer_scores(model, features))


def integer_scores(model: RecurrentClassifier, features: FeatureSet, quant: QuantConfig | None = None) -> IntegerScores:
    """The integer engine's accuracy for a QAT model (`quant`), or for post-training int8
    quantization of a float model (no `quant`)."""
    from nas.engine.intmodel import from_float_model, post_training_int8

    engine = from_float_model(model, quant) if quant else post_training_int8(model, features.part("train")[0])
    scores, confusion = {}, {}
    for part in ("val", "test"):
        frames, labels = features.part(part)
        _, classes = engine.predict(frames)
        scores[part] = (Accuracy(int((classes == labels).sum()), len(labels)), classes)
        confusion[part] = confusion_counts(labels, classes, model.config.n_classes)
    float_classes = predict_logits(model, features.part("test")[0], torch.device("cpu")).argmax(axis=1)
    agreement = float((float_classes == scores["test"][1]).mean()) if len(float_classes) else float("nan")
    return IntegerScores(scores["val"][0], scores["test"][0], agreement, confusion)


def _resume_block(model, optimizer, scheduler, generator, rng, state: _State) -> dict:
    return {
        "epoch": state.epoch,
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "generator": generator.get_state(),
        "numpy_rng": rng.bit_generator.state,
        "best_score": list(state.best_score),
        "best_epoch": state.best_epoch,
        "history": [asdict(r) for r in state.history],
    }


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


# ------------------------------------------------------------------------------ several seeds
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
    on_epoch: Callable[[int, EpochRecord, _State], None] | None = None,
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

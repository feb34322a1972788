"""Training: seeded, reproducible, augmented, early-stopped on validation accuracy, resumable.

The recipe (augmentation, AdamW with weight decay, warm-up then cosine decay) matters more than
the architecture on FSDD; docs/training.md records how it was chosen on the validation split.
"""

from __future__ import annotations

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
from nas.features.extract import FeatureSet
from nas.model.formats import QuantConfig
from nas.model.models import ModelConfig, RecurrentClassifier
from nas.model.quant import attach_fake_quant
from nas.training.checkpoint import build_checkpoint, save_checkpoint
from nas.training.recipe import TrainConfig


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
class TrainState:
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
    on_epoch: Callable[[EpochRecord, TrainState], None] | None = None,
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
    train_frames = features.part("train")[0]
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
    state = TrainState()

    if resume is not None:
        state = _restore(resume, model, optimizer, scheduler, generator, rng)

    stopped_early = False
    while state.epoch < config.epochs:
        if state.epoch - state.best_epoch >= config.patience and state.best_epoch > 0:
            stopped_early = True
            break
        started = time.perf_counter()
        train_loss = _train_epoch(model, optimizer, scheduler, loss_fn, features, config, rng, generator, device)
        val_accuracy, val_loss, _ = evaluate(model, val_frames, val_labels, device)
        state.epoch += 1
        record = EpochRecord(state.epoch, train_loss, val_loss, val_accuracy.value, time.perf_counter() - started)
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
    return _result(model, features, state, stopped_early, quant, device)


def _restore(resume: dict, model, optimizer, scheduler, generator: torch.Generator, rng: np.random.Generator) -> TrainState:
    """An interrupted run's model, optimiser, schedule and random states, as its checkpoint holds them."""
    run = resume["resume"]
    model.load_state_dict(run["model"])
    optimizer.load_state_dict(run["optimizer"])
    scheduler.load_state_dict(run["scheduler"])
    torch.set_rng_state(run["torch_rng"])
    generator.set_state(run["generator"])
    rng.bit_generator.state = run["numpy_rng"]
    return TrainState(
        epoch=run["epoch"],
        best_score=tuple(run["best_score"]),
        best_epoch=run["best_epoch"],
        best_state=resume["state_dict"],
        history=[EpochRecord(**r) for r in run["history"]],
    )


def _train_epoch(model, optimizer, scheduler, loss_fn, features: FeatureSet, config: TrainConfig, rng, generator, device) -> float:
    """One pass over the training part (one version of each recording); the mean training loss."""
    train_frames, train_labels = features.part("train")
    model.train()
    total_loss, seen = 0.0, 0
    epoch_frames = train_frames
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
    return total_loss / seen


def _result(model, features: FeatureSet, state: TrainState, stopped_early: bool, quant: QuantConfig, device) -> TrainResult:
    """The best epoch's model scored on validation and test, and by the integer engine."""
    val_frames, val_labels = features.part("val")
    val, _, val_predicted = evaluate(model, val_frames, val_labels, device)
    test_frames, test_labels = features.part("test")
    test, _, test_predicted = evaluate(model, test_frames, test_labels, device)
    n_classes = model.config.n_classes
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


def _resume_block(model, optimizer, scheduler, generator, rng, state: TrainState) -> dict:
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

"""Leave-one-speaker-out cross-validation: one configuration retrained on each `speaker:NAME`
fold (test = NAME, validation = the next speaker, train = the other four), for each seed, in
parallel worker processes (one CPU thread each, like the search's).

The library returns data (`CrossValResult`); `nas crossval` prints it and writes its JSON. A
quantized model is scored by the integer engine, a float one by its float forward pass.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nas.core.errors import NasError
from nas.core.stats import Accuracy, mean_interval
from nas.data.dataset import list_recordings, speakers
from nas.features.extract import FeatureConfig
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.training.recipe import TrainConfig, with_train_threads
from nas.training.scoring import SCORED_BY_ENGINE, SCORED_BY_FLOAT

DEFAULT_CROSSVAL_DIR = Path("results") / "crossval"


@dataclass(frozen=True)
class CrossValPlan:
    model_config: ModelConfig
    feature_config: FeatureConfig
    quant: QuantConfig
    train_config: TrainConfig
    seeds: tuple[int, ...]
    speakers: tuple[str, ...]  # the held-out speakers (folds) to run
    data_dir: Path
    cache_dir: str | None = None
    no_cache: bool = False

    def jobs(self) -> list[tuple[str, int]]:
        return [(speaker, seed) for speaker in self.speakers for seed in self.seeds]


def plan_crossval(
    model: ModelConfig, features: FeatureConfig, quant: QuantConfig, train: TrainConfig, seeds: list[int], chosen: list[str] | None,
    data_dir: Path, cache_dir: str | None = None, no_cache: bool = False,
) -> CrossValPlan:  # fmt: skip
    """Validate the configuration and the speakers against the data (every speaker by default)."""
    for config in (features, model, train, quant):
        config.validate()
    known = speakers(list_recordings(data_dir))
    for speaker in chosen or []:
        if speaker not in known:
            raise NasError(f"--speakers {speaker}: unknown speaker; expected some of {', '.join(known)}")
    folds = tuple(dict.fromkeys(chosen)) if chosen else tuple(known)
    return CrossValPlan(model, features, quant, train, tuple(dict.fromkeys(seeds)), folds, data_dir, cache_dir, no_cache)


@dataclass(frozen=True)
class FoldResult:
    speaker: str  # held out: the test part
    validation_speaker: str
    seed: int
    val: Accuracy
    test: Accuracy
    scored_by: str
    best_epoch: int
    seconds: float

    def to_dict(self) -> dict:
        return {
            "speaker": self.speaker,
            "validation_speaker": self.validation_speaker,
            "seed": self.seed,
            "val_correct": self.val.correct,
            "val_total": self.val.total,
            "test_correct": self.test.correct,
            "test_total": self.test.total,
            "scored_by": self.scored_by,
            "best_epoch": self.best_epoch,
            "seconds": self.seconds,
        }


@with_train_threads
def run_fold(plan: CrossValPlan, speaker: str, seed: int) -> FoldResult:
    """Train and score one fold and seed (in the calling process)."""
    import torch

    from nas.features.extract import FeatureCache, load_features
    from nas.training.train import train_model

    started = time.perf_counter()
    split, features = load_features(
        plan.data_dir,
        f"speaker:{speaker}",
        plan.feature_config,
        FeatureCache.at(plan.cache_dir, plan.no_cache),
        copies=plan.train_config.wave_copy_recipes(),
    )
    quant = plan.quant if plan.quant.quantized else None
    result = train_model(features, plan.model_config, plan.train_config.with_seed(seed), torch.device("cpu"), quant=quant)
    scores = result.integer
    return FoldResult(
        speaker=speaker,
        validation_speaker=split.val[0].speaker,
        seed=seed,
        val=scores.val if scores is not None else result.val,
        test=scores.test if scores is not None else result.test,
        scored_by=SCORED_BY_ENGINE if scores is not None else SCORED_BY_FLOAT,
        best_epoch=result.best_epoch,
        seconds=time.perf_counter() - started,
    )


def _run_job(job: tuple[CrossValPlan, str, int]) -> FoldResult:
    return run_fold(*job)


@dataclass
class CrossValResult:
    plan: CrossValPlan
    folds: list[FoldResult] = field(default_factory=list)

    def fold(self, speaker: str, seed: int) -> FoldResult:
        return next(f for f in self.folds if f.speaker == speaker and f.seed == seed)

    def speaker_mean(self, speaker: str, part: str = "test") -> float:
        """A speaker's accuracy (percent), averaged over seeds."""
        values = [100 * getattr(f, part).value for f in self.folds if f.speaker == speaker]
        return sum(values) / len(values)

    def seed_means(self, part: str = "test") -> list[float]:
        """Per seed, the mean accuracy over the held-out speakers (percent): the cross-validation score of that seed."""
        return [
            sum(100 * getattr(self.fold(s, seed), part).value for s in self.plan.speakers) / len(self.plan.speakers)
            for seed in self.plan.seeds
        ]

    def mean(self, part: str = "test") -> tuple[float, float, float]:
        """The mean over speakers and seeds, with a 95% t-interval over the seeds' means."""
        return mean_interval(self.seed_means(part))

    def to_dict(self) -> dict:
        mean, low, high = self.mean()
        val_mean, val_low, val_high = self.mean("val")
        plan = self.plan
        return {
            "model_config": plan.model_config.to_dict(),
            "feature_config": plan.feature_config.to_dict(),
            "quant_config": plan.quant.to_dict(),
            "train_config": plan.train_config.to_dict(),
            "seeds": list(plan.seeds),
            "speakers": list(plan.speakers),
            "test_mean": mean,
            "test_ci95": [low, high],
            "val_mean": val_mean,
            "val_ci95": [val_low, val_high],
            "per_speaker": {s: {"test_mean": self.speaker_mean(s), "val_mean": self.speaker_mean(s, "val")} for s in plan.speakers},
            "folds": [f.to_dict() for f in sorted(self.folds, key=lambda f: (f.speaker, f.seed))],
        }


def run_crossval(plan: CrossValPlan, workers: int, on_result: Callable[[FoldResult], None] | None = None) -> CrossValResult:
    """Every fold and seed, `workers` at a time (spawned processes; one thread each)."""
    result = CrossValResult(plan)
    jobs = [(plan, speaker, seed) for speaker, seed in plan.jobs()]
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(jobs) > 1:
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))))
            outcomes = pool.imap_unordered(_run_job, jobs)
        else:  # in this process
            outcomes = map(_run_job, jobs)
        for fold in outcomes:
            result.folds.append(fold)
            if on_result:
                on_result(fold)
    return result

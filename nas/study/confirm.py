"""Confirming a search's front (issue 21): one training per trial is one draw, and the most
accurate of 40 draws is a lucky one. So after the trials, the front's candidates are retrained with
the study's top fidelity (the full recipe, `nas.training.recipe.TrainConfig`'s defaults, in the default space;
the trial's learning rate) on seeds 0..N-1 of
the study's split and on a few leave-one-speaker-out folds; the confirmed front is computed on the
seed means, and export takes the seed closest to the mean on validation.

A confirmed point's figures are exactly what `nas train <its configuration> --lr <its rate> --seed
0 1 2` gives (and `nas crossval ... --speakers <the folds' speakers>`), so anyone can reproduce them.

Every finished run is stored at once as a study user attribute (`confirm:<trial>:<split>:<seed>`),
so an interrupted confirmation keeps what it finished and resumes with the rest; runs go to
`workers` spawned processes, one CPU thread each, like the search's trials.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from nas.core.errors import NasError
from nas.core.limits import MIN_CONFIRM_SEEDS
from nas.core.stats import Accuracy, mean_interval
from nas.device.memory import Budget
from nas.study.pareto import dominates, pareto_front
from nas.study.record import TrialRecord
from nas.training.recipe import with_train_threads
from nas.training.scoring import SCORED_BY_ENGINE, SCORED_BY_FLOAT

CONFIRM_ATTR = "confirm"  # study user attributes "confirm:<trial>:<split>:<seed>": one finished run each
DEFAULT_CONFIRM_SEEDS = 3  # seeds 0..2 of the study's split, like `nas train --seed 0 1 2`
DEFAULT_CONFIRM_FOLDS = 2  # leave-one-speaker-out folds per point (nas.data.dataset.fold_speakers: george, nicolas)
DEFAULT_CONFIRM_POINTS = 4  # front points confirmed: the most accurate of each size band first (nas.study.sizes: 4 bands)
# The folds train on the first seed only: every fold run costs a full training, and 2 folds x 3
# seeds for 4 points would alone take the search's whole time target (docs/search.md). Their
# figure is pooled over the folds' files, with a Wilson interval over those files.
FOLD_SEEDS = 1


def confirm_seeds_problem(seeds: int) -> str | None:
    """What is wrong with a number of confirmation seeds (None: nothing), for ConfirmSettings and argparse alike."""
    if 0 < seeds < MIN_CONFIRM_SEEDS or seeds < 0:
        return f"expected 0 (no confirmation) or at least {MIN_CONFIRM_SEEDS} seeds, got {seeds} (one retraining is one more draw)"
    return None


@dataclass(frozen=True)
class ConfirmSettings:
    seeds: int = DEFAULT_CONFIRM_SEEDS  # 0: no confirmation
    folds: int = DEFAULT_CONFIRM_FOLDS
    points: int = DEFAULT_CONFIRM_POINTS

    def __post_init__(self) -> None:
        problem = confirm_seeds_problem(self.seeds)
        if problem:
            raise NasError(f"--confirm-seeds {self.seeds}: {problem}")

    @property
    def enabled(self) -> bool:
        return self.seeds > 0 and self.points > 0


@dataclass(frozen=True)
class ConfirmJob:
    trial: int
    split: str  # the study's split, or "speaker:NAME" (a fold: NAME held out)
    seed: int

    @property
    def key(self) -> str:
        return f"{CONFIRM_ATTR}:{self.trial}:{self.split}:{self.seed}"


@dataclass(frozen=True)
class ConfirmRun:
    trial: int
    split: str
    seed: int
    val: Accuracy
    test: Accuracy
    scored_by: str
    best_epoch: int
    seconds: float
    checkpoint: str | None = None  # the study split's runs keep theirs: export takes one of them

    @property
    def job(self) -> ConfirmJob:
        return ConfirmJob(self.trial, self.split, self.seed)

    def to_dict(self) -> dict:
        return {
            "trial": self.trial,
            "split": self.split,
            "seed": self.seed,
            "val_correct": self.val.correct,
            "val_total": self.val.total,
            "test_correct": self.test.correct,
            "test_total": self.test.total,
            "scored_by": self.scored_by,
            "best_epoch": self.best_epoch,
            "seconds": self.seconds,
            "checkpoint": self.checkpoint,
        }

    @classmethod
    def from_dict(cls, values: dict) -> ConfirmRun:
        return cls(
            trial=values["trial"],
            split=values["split"],
            seed=values["seed"],
            val=Accuracy(values["val_correct"], values["val_total"]),
            test=Accuracy(values["test_correct"], values["test_total"]),
            scored_by=values["scored_by"],
            best_epoch=values["best_epoch"],
            seconds=values["seconds"],
            checkpoint=values.get("checkpoint"),
        )


def stored_runs(study_attrs: dict) -> list[ConfirmRun]:
    """Every confirmation run a study holds (its user attributes)."""
    return [ConfirmRun.from_dict(value) for key, value in study_attrs.items() if key.startswith(f"{CONFIRM_ATTR}:")]


@dataclass(frozen=True)
class ConfirmedPoint:
    """A trial retrained on seeds (`runs`, the study's split) and folds (`fold_runs`): accuracies
    are percent means over the seeds with 95% t-intervals."""

    record: TrialRecord
    runs: tuple[ConfirmRun, ...]
    fold_runs: tuple[ConfirmRun, ...] = ()

    @property
    def total_bytes(self) -> int:
        return self.record.total_bytes

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(r.seed for r in self.runs)

    def mean(self, part: str) -> tuple[float, float, float]:
        """'val' or 'test' of the study's split: mean and 95% t-interval over the seeds (percent)."""
        return mean_interval([100 * getattr(r, part).value for r in self.runs])

    @property
    def val_mean(self) -> float:
        return self.mean("val")[0]

    def held_out(self) -> tuple[float, float, float] | None:
        """The folds' held-out speakers (new voices): per seed the files of all folds pooled; the mean
        over seeds with a t-interval, or with one seed the pooled files' Wilson interval."""
        if not self.fold_runs:
            return None
        by_seed: dict[int, Accuracy] = {}
        for run in self.fold_runs:
            by_seed[run.seed] = by_seed[run.seed] + run.test if run.seed in by_seed else run.test
        if len(by_seed) == 1:
            pooled = next(iter(by_seed.values()))
            low, high = pooled.interval()
            return 100 * pooled.value, 100 * low, 100 * high
        return mean_interval([100 * a.value for a in by_seed.values()])

    @property
    def held_out_speakers(self) -> tuple[str, ...]:
        return tuple(sorted({r.split.removeprefix("speaker:") for r in self.fold_runs}))

    def export_run(self) -> ConfirmRun:
        """The seed whose validation accuracy is closest to the mean (never chosen on test); the lower seed on a tie."""
        mean = self.val_mean
        return min(self.runs, key=lambda r: (abs(100 * r.val.value - mean), r.seed))

    def to_dict(self) -> dict:
        val, test, held = self.mean("val"), self.mean("test"), self.held_out()
        export = self.export_run()
        return {
            "trial": self.record.number,
            "seeds": list(self.seeds),
            "val_mean": val[0],
            "val_mean_ci95": [val[1], val[2]],
            "test_mean": test[0],
            "test_mean_ci95": [test[1], test[2]],
            "held_out_mean": held[0] if held else None,
            "held_out_mean_ci95": [held[1], held[2]] if held else None,
            "held_out_speakers": list(self.held_out_speakers) or None,
            "val_per_seed": [100 * r.val.value for r in self.runs],
            "test_per_seed": [100 * r.test.value for r in self.runs],
            "exported_seed": export.seed,
        }


def confirmed_points(records: list[TrialRecord], study_attrs: dict, study_split: str) -> list[ConfirmedPoint]:
    """The trials with at least MIN_CONFIRM_SEEDS confirmation runs on the study's split (one run is
    one more draw: a point with fewer, e.g. an interrupted confirmation, is not confirmed yet), in
    trial order. Folds are the runs on another split than the study's: a study on a speaker split
    ("speaker:NAME") has its own runs on that split, and they are not new voices."""
    runs = stored_runs(study_attrs)
    points = []
    for record in records:
        mine = sorted((r for r in runs if r.trial == record.number), key=lambda r: (r.split, r.seed))
        own = tuple(r for r in mine if r.split == study_split)
        if len(own) >= MIN_CONFIRM_SEEDS:
            points.append(ConfirmedPoint(record, own, tuple(r for r in mine if r.split != study_split)))
    return points


def confirmed_front(points: list[ConfirmedPoint], budget: Budget) -> list[ConfirmedPoint]:
    """The non-dominated confirmed points within the budget on (mean validation accuracy, bytes), by size."""
    within = [p for p in points if p.record.within(budget)]
    coordinates = {p.record.number: (p.val_mean, p.total_bytes) for p in within}
    front = [p for p in within if not any(dominates(coordinates[q.record.number], coordinates[p.record.number]) for q in within)]
    return sorted(front, key=lambda p: (p.total_bytes, -p.val_mean))


def select_confirmed(points: list[ConfirmedPoint], budget: Budget) -> ConfirmedPoint | None:
    """The most accurate confirmed point (mean validation) within the budget; the smaller on a tie."""
    within = [p for p in points if p.record.within(budget)]
    return min(within, key=lambda p: (-p.val_mean, p.total_bytes), default=None)


def candidates(records: list[TrialRecord], budget: Budget, points: int) -> list[TrialRecord]:
    """The front points to confirm: the most accurate of each size band first (so that a small
    point is confirmed as well as the best), then the most accurate of the rest, up to `points`."""
    front = pareto_front(records, budget)
    ranked = sorted(front, key=lambda r: (-r.score.value, r.total_bytes))
    chosen: list[TrialRecord] = []
    for band in sorted({r.size_band for r in front if r.size_band is not None}, reverse=True):
        chosen.append(next(r for r in ranked if r.size_band == band))
    chosen = sorted(chosen, key=lambda r: (-r.score.value, r.total_bytes))[:points]
    chosen += [r for r in ranked if r not in chosen][: max(0, points - len(chosen))]
    return sorted(chosen, key=lambda r: r.total_bytes)


def confirm_jobs(chosen: list[TrialRecord], settings: ConfirmSettings, study_split: str, fold_speakers: list[str]) -> list[ConfirmJob]:
    """Every run the chosen points need: seeds 0..N-1 on the study's split, and the first seed on each fold."""
    jobs = []
    for record in chosen:
        jobs += [ConfirmJob(record.number, study_split, seed) for seed in range(settings.seeds)]
        jobs += [ConfirmJob(record.number, f"speaker:{s}", seed) for s in fold_speakers for seed in range(min(FOLD_SEEDS, settings.seeds))]
    return jobs


def remaining_jobs(jobs: list[ConfirmJob], study_attrs: dict) -> list[ConfirmJob]:
    return [job for job in jobs if job.key not in study_attrs]


def fold_speakers_for(split: str, data_dir: Path, folds: int) -> list[str]:
    """The held-out speakers of the confirmation's folds. Only a study on the official split gets
    folds: on a speaker split, a fold's training part would hold the split's test speaker."""
    from nas.data.dataset import OFFICIAL, fold_speakers, list_recordings, speakers

    if not folds or split != OFFICIAL:
        return []
    return fold_speakers(speakers(list_recordings(data_dir)), folds)


def plan_confirmation(
    records: list[TrialRecord], study_attrs: dict, study_settings, settings: ConfirmSettings, data_dir: Path,
    study_dir: Path, cache_dir: str | None = None, no_cache: bool = False,
) -> tuple[list[TrialRecord], list[ConfirmTask]]:  # fmt: skip
    """The candidates, and the runs of theirs not stored yet (`study_settings`: nas.study.settings.StudySettings)."""
    split = study_settings.split
    chosen = candidates(records, study_settings.budget, settings.points)
    jobs = remaining_jobs(confirm_jobs(chosen, settings, split, fold_speakers_for(split, data_dir, settings.folds)), study_attrs)
    by_number = {r.number: r for r in chosen}
    base, folder = study_recipe(study_settings.space), str(study_dir / "confirm")
    tasks = []
    for job in jobs:
        record = by_number[job.trial]
        tasks.append(ConfirmTask(job, record, run_recipe(base, record, job.seed), str(data_dir), folder, split, cache_dir, no_cache))
    return chosen, tasks


# ---------------------------------------------------------------------------------- running
@dataclass(frozen=True)
class ConfirmTask:
    """One run, as plain data for a worker process."""

    job: ConfirmJob
    record: TrialRecord
    recipe: object  # nas.training.recipe.TrainConfig: study_recipe with the trial's rate and the job's seed
    data_dir: str
    checkpoint_dir: str  # the study folder's confirm/ folder
    study_split: str  # its runs keep a checkpoint (export takes one); a fold's do not
    cache_dir: str | None = None
    no_cache: bool = False


def study_recipe(space_values: dict):
    """The recipe a study's confirmation trains with: the study's space's epochs, patience and
    copies (its top fidelity, which a --quick study's trials do not reach) with the default
    recipe's other values, as nas.study.trials.trial_recipe. For the default space that is the full
    recipe, `nas train`'s defaults."""
    from nas.training.recipe import TrainConfig

    # a study stored before issue 10 has no training.wave_copies (load_space fills every key of newer ones)
    defaults = TrainConfig()
    return TrainConfig.for_epochs(
        space_values.get("training.epochs", defaults.epochs),
        patience=space_values.get("training.patience", defaults.patience),
        wave_copies=space_values.get("training.wave_copies", defaults.wave_copies),
    )


def run_recipe(base, record: TrialRecord, seed: int):
    """`base` (study_recipe) with the trial's learning rate, a part of its configuration chosen on validation, and `seed`."""
    rate = record.params.get("learning_rate")
    return replace(base, seed=seed) if rate is None else replace(base, learning_rate=rate, seed=seed)


def checkpoint_path(task: ConfirmTask) -> Path | None:
    """Where a run on the study's own split keeps its checkpoint (export takes one; on a speaker-split
    study that split is "speaker:NAME" too); a fold's run keeps none."""
    if task.job.split != task.study_split:
        return None
    return Path(task.checkpoint_dir) / f"trial-{task.job.trial:04d}-seed-{task.job.seed}" / "model.pt"


@with_train_threads
def run_task(task: ConfirmTask) -> ConfirmRun:
    """Train and score one run in this process (integer engine for a quantized model)."""
    import torch

    from nas.features.extract import FeatureCache, load_features
    from nas.training.train import train_model

    started = time.perf_counter()
    job, record = task.job, task.record
    config = task.recipe
    cache = FeatureCache.at(task.cache_dir, task.no_cache)
    _, features = load_features(Path(task.data_dir), job.split, record.feature_config, cache, copies=config.wave_copy_recipes())
    path = checkpoint_path(task)
    extra = {"split": job.split, "trial": job.trial, "confirm_seed": job.seed}
    quant = record.quant_config if record.quant_config.quantized else None
    result = train_model(
        features, record.model_config, config, torch.device("cpu"), checkpoint_path=path, extra_checkpoint=extra, quant=quant
    )
    scores = result.integer
    return ConfirmRun(
        trial=job.trial,
        split=job.split,
        seed=job.seed,
        val=scores.val if scores is not None else result.val,
        test=scores.test if scores is not None else result.test,
        scored_by=SCORED_BY_ENGINE if scores is not None else SCORED_BY_FLOAT,
        best_epoch=result.best_epoch,
        seconds=time.perf_counter() - started,
        checkpoint=str(path) if path is not None else None,
    )


def order_for_workers(tasks: list[ConfirmTask]) -> list[ConfirmTask]:
    """Largest models first: the longest runs start early, so the workers finish together."""
    return sorted(tasks, key=lambda t: (-t.record.total_bytes, t.job.trial, t.job.split, t.job.seed))


def run_confirmation(
    tasks: list[ConfirmTask], workers: int, on_run: Callable[[ConfirmRun], None]
) -> list[ConfirmRun]:  # fmt: skip
    """Every task, `workers` at a time (spawned processes; one thread each); `on_run` stores each
    run as it finishes, so an interruption loses only the runs in progress."""
    finished = []
    ordered = order_for_workers(tasks)
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(ordered) > 1:
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(min(workers, len(ordered))))
            outcomes = pool.imap_unordered(run_task, ordered)
        else:
            outcomes = map(run_task, ordered)
        for run in outcomes:
            on_run(run)
            finished.append(run)
    return finished


def store_run(study, run: ConfirmRun) -> None:
    study.set_user_attr(run.job.key, run.to_dict())


def confirmed_record(point: ConfirmedPoint) -> TrialRecord:
    """The trial's record with the exported seed's checkpoint and scores (what `nas export` writes)."""
    run = point.export_run()
    return replace(point.record, checkpoint=run.checkpoint, val=run.val, test=run.test, checkpoint_artifact=None)

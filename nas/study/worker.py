"""A search worker process: its share of the study's trials, until the study holds enough."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna

from nas.core.errors import EXIT_BAD_INPUT, NasError
from nas.features.extract import FeatureConfig
from nas.study.artifacts import study_store
from nas.study.interrupts import STOP
from nas.study.record import TrialRecord
from nas.study.settings import SearchOptions
from nas.study.storage import open_study
from nas.study.trials import (
    Candidate,
    make_objective,
    make_sampler,
    run_trials,
    sampler_seed,
    search_size_range,
    train_candidate,
    trial_recipe,
)
from nas.training.recipe import TRAIN_THREADS


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker process needs to run trials (plain data: it crosses a process boundary)."""

    options: SearchOptions
    data_dir: str
    cache_dir: str | None
    no_cache: bool = False
    worker_index: int = 0


def run_worker(setup: WorkerSetup) -> None:
    """One process's share of the study: trials until the study has enough finished ones."""

    from nas.data.dataset import fold_speakers, load_split, make_split, speakers
    from nas.features.extract import FeatureCache, build_feature_set

    options = setup.options
    split, waveforms = load_split(Path(setup.data_dir), options.split)
    cache = FeatureCache.at(setup.cache_dir, setup.no_cache)
    splits = {options.split: split}
    copies = trial_recipe(options, 0.0, 0).wave_copy_recipes()  # augmentation depends on no sampled value
    feature_sets: dict[tuple[FeatureConfig, str], object] = {}

    def features_for(config: FeatureConfig, split_name: str):
        if split_name not in splits:  # a fold of --speaker-folds, from the same recordings
            splits[split_name] = make_split(recordings, split_name)
        if (config, split_name) not in feature_sets:  # computed once per process; from the disk cache after that
            feature_sets[config, split_name] = build_feature_set(splits[split_name], waveforms, config, cache, copies=copies)
        return feature_sets[config, split_name]

    recordings = [w.recording for w in waveforms.values()]
    held_out = tuple(fold_speakers(speakers(recordings), options.speaker_folds)) if options.speaker_folds else ()

    study = open_study(options)
    study.sampler = make_sampler(sampler_seed(options.seed, setup.worker_index, len(study.trials)), options.sampler)
    artifacts = study_store(study, options.artifacts)

    def train(trial: optuna.Trial, candidate: Candidate) -> TrialRecord:
        with STOP.allowed():  # training may be cut short: Optuna fails the trial
            return train_candidate(trial, candidate, options, features_for, held_out, artifacts)

    # Optuna's bookkeeping (asking for a trial, sampling, telling a result, writing attributes)
    # is never cut short: a trial interrupted there would stay "running" (nas.study.interrupts).
    with STOP.deferred():
        objective = make_objective(options.searched_space, options.budget, train)
        run_trials(study, objective, options.trials, search_size_range(options.searched_space, options.budget), options.timeout_s)


def _caused_by_ctrl_c(error: BaseException | None) -> bool:
    """Whether Ctrl-C is the error or what it happened while handling (a KeyboardInterrupt inside
    Optuna's storage write can surface as the storage's own error, raised while handling it)."""
    seen = 0
    while error is not None and seen < 16:
        if isinstance(error, KeyboardInterrupt):
            return True
        error, seen = error.__context__, seen + 1
    return False


def _worker_process(setup: WorkerSetup, errors) -> None:
    """A worker process's entry point."""
    STOP.install()
    _worker_main(setup, errors)


def _worker_main(setup: WorkerSetup, errors) -> None:
    """A worker process's entry (spawned: its global state is its own)."""
    import torch

    torch.set_num_threads(TRAIN_THREADS)  # one core per worker: as fast for these models, and repeatable
    # Optuna logs a trial cut short by Ctrl-C as a warning with a traceback; the main process
    # says what happened in one line instead. Real errors still propagate (catch=()).
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # the storage's heartbeat, TPE's options
    try:
        run_worker(setup)
    except NasError as error:
        errors.put(str(error))
        raise SystemExit(EXIT_BAD_INPUT) from None
    except BaseException as error:
        if _caused_by_ctrl_c(error):  # a trial left "running" mid-write is failed and retried by the heartbeat
            raise SystemExit(130) from None
        raise

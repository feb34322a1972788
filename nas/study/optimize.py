"""`nas search`: an Optuna study over the search space, with the memory budget applied before any
training, each trial trained with quantized weights and scored by the integer engine.

Objectives: maximise the integer engine's validation accuracy, minimise total_bytes. The test
accuracy of every finished trial is stored on its record and only reported.

A study remembers what it was created with (`StudySettings`: budget, scope, weights, split,
seed, sampler and the space's values); a run that disagrees is refused, so a resume continues the
same search. Its samplers are seeded with the number of trials the study already holds, so a
resumed run draws new configurations instead of replaying the first run's.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import multiprocessing
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import optuna

from nas.core.errors import EXIT_BAD_INPUT, NasError
from nas.device.memory import KB, Budget, largest_hidden, memory_breakdown
from nas.features.extract import FeatureConfig
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.study.artifacts import ARTIFACTS_ATTR, default_store, study_store, upload_checkpoint
from nas.study.interrupts import STOP
from nas.study.liveness import WORKER_ATTR, is_gone, this_worker
from nas.study.pareto import select_best
from nas.study.record import TrialRecord
from nas.study.rungs import RUNG_ATTR, StoppedAtRung, rung_results
from nas.study.settings import MAX_RETRIES, SearchOptions, StudyLocation, StudySettings
from nas.study.sizes import (
    BAND_ATTR,
    SIZE_ATTR,
    Shape,
    SizeRange,
    deficit_band,
    hidden_for_position,
    size_bytes,
    size_range,
    smallest_configuration_bytes,
)
from nas.study.space import SearchSpace
from nas.training.recipe import TRAIN_THREADS
from nas.training.scoring import SCORED_BY_ENGINE, SCORED_BY_FLOAT

# set_metric_names and TPE's `group` are marked experimental; the project pins Optuna 5.x and
# its tests cover both, so the warnings would only be noise in the user's terminal.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)

OBJECTIVE_NAMES = ["val_accuracy", "total_bytes"]
DIRECTIONS = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
SETTINGS_ATTR = "settings"
SIZE_PARAM = "size_fraction"  # the sampled position on the log-size axis (nas.study.sizes)


@dataclass(frozen=True)
class Candidate:
    """One sampled configuration, before training."""

    model: ModelConfig
    quant: QuantConfig
    learning_rate: float
    total_bytes: int
    features: FeatureConfig


class OverBudget(Exception):
    def __init__(self, total_bytes: int):
        super().__init__(total_bytes)
        self.total_bytes = total_bytes


def sampler_seed(seed: int, worker_index: int, trials_before: int) -> int:
    """Each worker of each run gets its own stream: a resumed run (more trials before it) does not
    replay the random start-up draws of the first run, and one run stays reproducible."""
    return int(np.random.SeedSequence([seed, worker_index, trials_before]).generate_state(1)[0] >> 1)


STARTUP_TRIALS = 10  # random configurations before a model-based sampler takes over
NSGA2_POPULATION = 10  # NSGA-II's generation: its default of 50 would leave a 30-trial search random


def make_sampler(seed: int, kind: str = "tpe") -> optuna.samplers.BaseSampler:
    """Named and seeded explicitly (Optuna 5 changed its defaults); the choice between them is
    measured by bench/searches.py and bench/sampler_surrogate.py (docs/search.md). TPE:
    multivariate, so the cell, depth, width and bit width are modelled together; constant liar for
    parallel workers."""
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=NSGA2_POPULATION)
    if kind == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=STARTUP_TRIALS)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP_TRIALS, multivariate=True, group=True, constant_liar=True)


def sample_candidate(trial: optuna.Trial, space: SearchSpace, budget: Budget) -> Candidate:
    """Sample a configuration; raise OverBudget (before any feature or training work) when even
    the smallest hidden size of the sampled cell, depth and format is over the budget.

    The size is sampled as a position on the search's log-size axis, from the space's smallest
    configuration (0) to the budget (1) (nas.study.sizes): the hidden size is the largest of the sampled
    shape within the size at that position (closed-form solver), so the sampler does not waste
    trials over budget, and one position means one size whatever the cell, depth or format.
    """
    cell = trial.suggest_categorical("cell", list(space.cells))
    layers = trial.suggest_categorical("layers", list(space.layers))
    n_mfcc = trial.suggest_categorical("n_mfcc", list(space.n_mfcc))
    scheme = trial.suggest_categorical("weights", list(space.weights))
    bits = trial.suggest_categorical(f"{scheme}_bits", list(space.bits_for(scheme))) if scheme != "float" else None
    state_bits = trial.suggest_categorical("state_bits", list(space.state_bits)) if scheme != "float" else 16
    quant = QuantConfig.make(scheme, bits, state_bits=state_bits)
    position = trial.suggest_float(SIZE_PARAM, 0.0, 1.0)
    learning_rate = trial.suggest_float("learning_rate", space.learning_rate.low, space.learning_rate.high, log=space.learning_rate.log)
    features = space.feature_config(
        n_mfcc,
        trial.suggest_categorical("n_mels", list(space.n_mels)),
        trial.suggest_categorical("n_fft", list(space.n_fft)),
        trial.suggest_categorical("hop_length", list(space.hop_length)),
    )
    shape = Shape(cell, layers, n_mfcc, quant, features)
    smallest = shape.model(space.hidden_min)
    fits = min(space.hidden_max, largest_hidden(budget, smallest, quant, features))
    if fits < space.hidden_min:
        raise OverBudget(memory_breakdown(smallest, quant, features).total_bytes)
    sizes = search_size_range(space, budget)
    hidden = min(fits, hidden_for_position(shape, position, sizes, budget, space.hidden_min, space.hidden_max))
    model = smallest.with_hidden(hidden)
    breakdown = memory_breakdown(model, quant, features)
    if not budget.admits(breakdown.to_dict()):  # the solver guarantees this never happens
        raise OverBudget(breakdown.total_bytes)
    return Candidate(model, quant, learning_rate, breakdown.total_bytes, features)


@functools.lru_cache(maxsize=16)
def search_size_range(space: SearchSpace, budget: Budget) -> SizeRange:
    """The size axis of a search (computed once per process: a few hundred memory models)."""
    sizes = size_range(space, budget)
    if sizes is None:
        raise NasError(refusal(space, budget))
    return sizes


def refusal(space: SearchSpace, budget: Budget) -> str:
    """The one line that refuses a budget no configuration of the space fits."""
    smallest = smallest_configuration_bytes(space, budget)
    return (
        f"--budget-kb {budget.limit_bytes / KB:.2f} ({budget.limit_bytes:,} B): no configuration of the search space fits "
        f"(the smallest needs {smallest:,} B {budget.scope}, {space.source}); expected a larger budget or a smaller space"
    )


# ------------------------------------------------------------------------------------ studies
def heartbeat_storage(options: SearchOptions) -> optuna.storages.RDBStorage:
    """The study's storage as a process that runs trials opens it: each running trial beats every
    `heartbeat_s`; one silent for the grace period (a killed worker, on any host) is failed when a
    worker next starts a trial, and queued again with the same parameters (Optuna's
    RetryHeartbeatStaleTrialCallback), never by failing every running trial."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    return optuna.storages.RDBStorage(
        options.location.storage_url,
        heartbeat_interval=options.heartbeat_s,
        grace_period=options.grace_s,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES),
    )


def _create_or_load(location: StudyLocation, create: bool, options: SearchOptions | None = None) -> optuna.Study:
    for attempt in range(3):
        try:
            if create:
                location.study_dir.mkdir(parents=True, exist_ok=True)
                storage = heartbeat_storage(options) if options is not None else location.storage_url
                return optuna.create_study(storage=storage, study_name=location.name, directions=DIRECTIONS, load_if_exists=True)
            return optuna.load_study(study_name=location.name, storage=location.storage_url)
        except KeyError:  # load_study of an unknown name
            raise NasError(f"--study {location.name}: no such study in {location.storage_url}") from None
        except (ValueError, ImportError, optuna.exceptions.OptunaError) as error:
            raise NasError(f"--storage {location.storage_url}: cannot open the study ({error})") from None
        except Exception as error:  # SQLAlchemy raises many types for a bad URL or an unwritable file
            # Two processes creating the same new database race on its schema; the loser retries.
            if attempt == 2 or "IntegrityError" not in type(error).__name__ + str(error):
                raise NasError(f"--storage {location.storage_url}: cannot open the study ({type(error).__name__}: {error})") from None
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def stored_settings(study: optuna.Study) -> StudySettings | None:
    values = study.user_attrs.get(SETTINGS_ATTR)
    return StudySettings(**values) if values else None


def open_study(options: SearchOptions) -> optuna.Study:
    """Create the study, or load it and check that this run searches what it was created with."""
    location, settings = options.location, options.settings()
    study = _create_or_load(location, create=True, options=options)
    if list(study.directions) != DIRECTIONS:
        raise NasError(f"--study {location.name}: is not a nas study (its directions are not maximise accuracy, minimise bytes)")
    stored = stored_settings(study)
    if stored is None and "budget_bytes" in study.user_attrs:  # written before settings were stored: only the budget is known
        stored = replace(settings, budget_bytes=study.user_attrs["budget_bytes"])
    difference = stored.difference(settings) if stored is not None else None
    if difference:
        raise NasError(
            f"--study {location.name}: was created with {difference}; "
            "pass the same options to resume it, or another --study for a different search"
        )
    if SETTINGS_ATTR not in study.user_attrs:
        study.set_metric_names(OBJECTIVE_NAMES)  # optuna-dashboard shows these names
        study.set_user_attr(SETTINGS_ATTR, asdict(settings))
    if ARTIFACTS_ATTR not in study.user_attrs:  # a new study, or one from before checkpoints were uploaded
        study.set_user_attr(ARTIFACTS_ATTR, options.artifacts or default_store(location))
    return study


def load_existing_study(location: StudyLocation) -> tuple[optuna.Study, StudySettings]:
    """A study written by `nas search`, for reports and export (nothing is created)."""
    if location.storage is None and not (location.study_dir / "study.db").is_file():
        raise NasError(
            f"--study {location.name}: no study at {location.study_dir}/study.db; expected the name given to 'nas search --study'"
        )
    study = _create_or_load(location, create=False)
    settings = stored_settings(study)
    if settings is None:  # a study written before the settings were stored: its budget is all there is
        budget = study.user_attrs.get("budget_bytes")
        if budget is None:
            raise NasError(f"--study {location.name}: has no stored settings; expected a study written by 'nas search'")
        settings = StudySettings(budget, study.user_attrs.get("budget_scope", "total"), "", "", 0, "", {})
    return study, settings


def fail_trials_of_gone_processes(study: optuna.Study) -> int:
    """Running trials of this host whose process is gone (nas.study.liveness), failed and queued again
    with their parameters at once, as Optuna's heartbeat does it (optuna.storages.fail_stale_trials)
    for one trial. Returns how many there were."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    storage, retry, failed = study._storage, RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES), 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if is_gone(trial.user_attrs.get(WORKER_ATTR)):
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                if storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL):
                    retry(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
                    failed += 1
    return failed


def fail_stale_trials(study: optuna.Study) -> int:
    """Trials whose worker is dead, failed and queued again with their parameters now, rather than
    when a worker next starts a trial: on this host, those whose process is gone; on any host, those
    whose heartbeat stopped. Live trials of other hosts are left alone. Returns how many there were."""
    running = (optuna.trial.TrialState.RUNNING,)
    before = len(study.get_trials(deepcopy=False, states=running))
    fail_trials_of_gone_processes(study)
    optuna.storages.fail_stale_trials(study)
    return before - len(study.get_trials(deepcopy=False, states=running))


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def trials_to_start(study: optuna.Study, target: int) -> int:
    """How many more trials may start: those running count as finished already, so that two
    workers end a search of `--trials N` at N finished trials, not N + 1."""
    states = (*FINISHED, optuna.trial.TrialState.RUNNING)
    return target - len(study.get_trials(deepcopy=False, states=states))


def queue_band_quota(study: optuna.Study, sizes: SizeRange) -> int | None:
    """When a size band has fewer than its share of the trials (nas.study.sizes), queue the next trial
    at a size drawn uniformly within that band; the sampler chooses everything else. Returns the
    band, or None when the sampler chooses the size too."""
    trials = study.get_trials(deepcopy=False, states=(*FINISHED, optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING))
    if any(t.state == optuna.trial.TrialState.WAITING for t in trials):
        # a queued trial (a dead worker's, or a band's) runs next: queueing one more per trial
        # started would leave as many queued trials as there were at the start, never run
        return None
    band = deficit_band([t.user_attrs[BAND_ATTR] for t in trials if BAND_ATTR in t.user_attrs], sizes.bands)
    if band is None:
        return None
    low, high = sizes.band_positions(band)
    position = float(np.random.default_rng([len(study.trials), band]).uniform(low, high))
    # the band travels with the queued trial, so that a worker beside this one counts it already
    study.enqueue_trial({SIZE_PARAM: position}, user_attrs={BAND_ATTR: band})
    return band


def run_trials(study: optuna.Study, objective, target: int, sizes: SizeRange | None, timeout_s: float | None = None) -> None:
    """One worker's trials: before each, trials of gone processes on this host are queued again
    (Optuna's optimize applies the heartbeat rule itself), the count is checked (running trials
    included) and a size band short of its share gets the next trial."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while deadline is None or time.monotonic() < deadline:
        fail_trials_of_gone_processes(study)
        if trials_to_start(study, target) <= 0:
            return
        if sizes is not None:
            queue_band_quota(study, sizes)
        study.optimize(objective, n_trials=1, catch=())


# ------------------------------------------------------------------------------------ trials
def make_objective(
    space: SearchSpace,
    budget: Budget,
    train_trial: Callable[[optuna.Trial, Candidate], TrialRecord],
) -> Callable[[optuna.Trial], tuple[float, float]]:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        started = time.perf_counter()
        trial.set_user_attr(WORKER_ATTR, this_worker())  # on this host, its death is seen at once (nas.study.liveness)
        try:
            candidate = sample_candidate(trial, space, budget)
        except OverBudget as over:
            record = TrialRecord(total_bytes=over.total_bytes, over_budget=True, prune_ms=1000 * (time.perf_counter() - started))
            for key, value in record.user_attrs().items():
                trial.set_user_attr(key, value)
            raise optuna.TrialPruned(f"{over.total_bytes} B over the budget of {budget.limit_bytes} B") from None
        trial.set_user_attr("total_bytes", candidate.total_bytes)  # visible while the trial trains (and to nas.study.rungs)
        nbytes = size_bytes(candidate.model, candidate.quant, candidate.features, budget)
        trial.set_user_attr(SIZE_ATTR, nbytes)  # its band, seen by the band quota of every worker (nas.study.sizes)
        trial.set_user_attr(BAND_ATTR, search_size_range(space, budget).band(nbytes))
        record = train_trial(trial, candidate)
        for key, value in record.user_attrs().items():
            trial.set_user_attr(key, value)
        if record.stopped:
            raise optuna.TrialPruned(f"stopped at epoch {record.stopped_at_epoch}, beaten by trial {record.stopped_by}")
        return record.objectives()

    return objective


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker process needs to run trials (plain data: it crosses a process boundary)."""

    options: SearchOptions
    data_dir: str
    cache_dir: str | None
    no_cache: bool = False
    worker_index: int = 0


def trial_recipe(options: SearchOptions, learning_rate: float, trial_number: int):
    """The training recipe of a trial: the default recipe with the space's epochs, patience and
    number of augmented copies, the sampled learning rate, and a seed per trial."""
    from nas.training.recipe import TrainConfig

    space = options.training_space
    return TrainConfig.for_epochs(
        space.epochs, patience=space.patience, wave_copies=space.wave_copies, learning_rate=learning_rate, seed=options.seed + trial_number
    )


def train_candidate(
    trial: optuna.Trial,
    candidate: Candidate,
    options: SearchOptions,
    features_for,
    held_out: tuple[str, ...] = (),
    artifacts: str | None = None,
) -> TrialRecord:
    """Train one sampled configuration (QAT unless float) and score it with the integer engine;
    then on the fold `speaker:NAME` of each held-out speaker (--speaker-folds), whose validation
    speakers give the objective. `features_for(feature_config, split_name)` gives a split's FeatureSet."""
    import torch

    from nas.training.train import train_model

    config = trial_recipe(options, candidate.learning_rate, trial.number)
    features = features_for(candidate.features, options.split)
    path = options.location.study_dir / f"trial-{trial.number:04d}" / "model.pt"
    started = time.perf_counter()
    extra = {"split": options.split, "study": options.location.name, "trial": trial.number}
    # Rungs judge the split's validation accuracy: with --speaker-folds the objective is another
    # one (the folds' validation speakers), so there every trial trains to the end.
    rule = options.training_space.rung_rule() if not held_out else None
    reached: dict[str, float] = {}

    def at_rung(record, state) -> None:
        if record.epoch not in rule.epochs:
            return
        accuracy = state.best_score[0]  # the best epoch so far: what the trial would keep
        reached[str(record.epoch)] = accuracy
        with STOP.deferred():  # a storage write and read: Ctrl-C waits until they are done
            trial.set_user_attr(RUNG_ATTR, dict(reached))  # before comparing: trials running beside it see it too
            others = rung_results(trial.study.get_trials(deepcopy=False), record.epoch, trial.number)
        leader = rule.beaten_by(record.epoch, accuracy, candidate.total_bytes, others, trial.user_attrs.get(BAND_ATTR))
        if leader is not None:
            raise StoppedAtRung(record.epoch, accuracy, leader)

    try:
        result = train_model(
            features,
            candidate.model,
            config,
            torch.device("cpu"),
            checkpoint_path=path,
            extra_checkpoint=extra,
            quant=candidate.quant,
            on_epoch=at_rung if rule is not None and rule.epochs else None,
        )
    except StoppedAtRung as stop:
        return TrialRecord(
            total_bytes=candidate.total_bytes,
            model_config=candidate.model,
            quant_config=candidate.quant,
            feature_config=features.config,
            memory=memory_breakdown(candidate.model, candidate.quant, candidate.features.on_device).to_dict(),
            epochs_run=stop.epoch,
            train_seconds=time.perf_counter() - started,
            checkpoint=str(path),
            rung_accuracy=dict(reached),
            stopped_at_epoch=stop.epoch,
            stopped_by=stop.beaten_by.number,
        )
    scores = result.integer
    with STOP.deferred():
        artifact = upload_checkpoint(trial, path, artifacts) if artifacts else None  # for any host: nas.study.artifacts
    speaker_val = speaker_test = None
    for speaker in held_out:  # the same recipe and seed on each leave-one-speaker-out fold
        fold_features = features_for(candidate.features, f"speaker:{speaker}")
        fold = train_model(fold_features, candidate.model, config, torch.device("cpu"), quant=candidate.quant)
        fold_val, fold_test = (fold.integer.val, fold.integer.test) if fold.integer is not None else (fold.val, fold.test)
        speaker_val = fold_val if speaker_val is None else speaker_val + fold_val
        speaker_test = fold_test if speaker_test is None else speaker_test + fold_test
    return TrialRecord(
        speaker_val=speaker_val,
        speaker_test=speaker_test,
        held_out_speakers=held_out or None,
        total_bytes=candidate.total_bytes,
        model_config=candidate.model,
        quant_config=candidate.quant,
        feature_config=features.config,
        memory=memory_breakdown(candidate.model, candidate.quant, candidate.features.on_device).to_dict(),
        val=scores.val if scores is not None else result.val,
        test=scores.test if scores is not None else result.test,
        val_confusion=(scores or result).confusion["val"],
        test_confusion=(scores or result).confusion["test"],
        scored_by=SCORED_BY_ENGINE if scores is not None else SCORED_BY_FLOAT,
        fake_quant_val_accuracy=result.val.value,
        int_float_test_agreement=scores.test_agreement if scores is not None else None,
        best_epoch=result.best_epoch,
        epochs_run=len(result.history),
        train_seconds=time.perf_counter() - started,
        checkpoint=str(path),
        checkpoint_artifact=artifact,
        rung_accuracy=dict(reached) or None,
    )


def run_worker(setup: WorkerSetup) -> None:
    """One process's share of the study: trials until the study has enough finished ones."""
    import torch

    from nas.data.dataset import fold_speakers, load_split, make_split, speakers
    from nas.features.extract import FeatureCache, build_feature_set

    torch.set_num_threads(TRAIN_THREADS)  # one core per worker: as fast for these models, and repeatable
    # Optuna logs a trial cut short by Ctrl-C as a warning with a traceback; the main process
    # says what happened in one line instead. Real errors still propagate (catch=()).
    optuna.logging.set_verbosity(optuna.logging.ERROR)
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
    try:
        run_worker(setup)
    except NasError as error:
        errors.put(str(error))
        raise SystemExit(EXIT_BAD_INPUT) from None
    except BaseException as error:
        if _caused_by_ctrl_c(error):  # a trial left "running" mid-write is failed and retried by the heartbeat
            raise SystemExit(130) from None
        raise


# --------------------------------------------------------------------------------- a whole run
@dataclass(frozen=True)
class SearchProgress:
    """A snapshot of a running search, for a progress display."""

    finished: int  # complete and pruned trials in the study
    target: int
    running: int
    over_budget: int
    finished_this_run: int
    elapsed_s: float
    remaining_s: float | None  # None until a trial of this run has finished
    best: TrialRecord | None  # the most accurate trial within the budget so far
    finished_records: tuple[TrialRecord, ...] = ()  # this run's finished trials, in trial order
    stopped: int = 0  # stopped at a rung (nas.study.rungs)


class SearchInterrupted(Exception):
    """Ctrl-C (or SIGINT) stopped the workers; every finished trial is in the storage."""

    def __init__(self, finished: int):
        super().__init__(finished)
        self.finished = finished


@dataclass
class SearchRun:
    options: SearchOptions
    study: optuna.Study
    data_dir: Path
    cache_dir: str | None
    no_cache: bool
    stale_trials: int  # left running by a dead worker (no heartbeat), now failed and queued again
    finished_before: int
    started: float = field(default_factory=time.perf_counter)
    numbers_before: frozenset[int] = frozenset()  # the trials that had finished before this run
    split: object = None  # the data's split (nas.data.dataset.Split) and recordings, read when the search started
    waveforms: dict = field(default_factory=dict)
    killed_workers: list[int] = field(default_factory=list)  # the signals that killed workers of this run

    def progress(self) -> SearchProgress:
        trials = self.study.get_trials(deepcopy=False)
        records = [TrialRecord.from_trial(t) for t in trials]
        finished = [r for r in records if r.finished]
        elapsed = time.perf_counter() - self.started
        new = len(finished) - self.finished_before
        remaining = (elapsed / new) * max(0, self.options.trials - len(finished)) if new > 0 else None
        return SearchProgress(
            finished=len(finished),
            target=self.options.trials,
            running=sum(r.state == "running" for r in records),
            over_budget=sum(r.over_budget for r in records),
            stopped=sum(r.stopped for r in records),
            finished_this_run=new,
            elapsed_s=elapsed,
            remaining_s=remaining,
            best=select_best(records, self.options.budget),
            finished_records=tuple(r for r in finished if r.number not in self.numbers_before),
        )


def start_search(options: SearchOptions, data_dir: Path, cache_dir: str | None = None, no_cache: bool = False) -> SearchRun:
    """Check the data and the study (bad input stops here, before any worker starts)."""
    from nas.data.dataset import OFFICIAL, load_split

    split, waveforms = load_split(data_dir, options.split)
    if options.speaker_folds and options.split != OFFICIAL:
        # a fold's training set would hold the split's test speaker, and the folds choose the model
        raise NasError(f"--speaker-folds {options.speaker_folds}: needs --split {OFFICIAL} (the folds hold out speakers themselves)")
    search_size_range(options.searched_space, options.budget)  # a budget nothing fits: refused before the study exists
    study = open_study(options)
    stale = fail_stale_trials(study)
    before = frozenset(t.number for t in study.get_trials(deepcopy=False) if TrialRecord.from_trial(t).finished)
    return SearchRun(
        options, study, data_dir, cache_dir, no_cache, stale, len(before), numbers_before=before, split=split, waveforms=waveforms
    )


STOP_WAIT_S = 30  # how long stopped workers may take to fail their trials before they are killed


def _stop_workers(workers) -> None:
    """SIGINT to each live worker (one that already had Ctrl-C ignores it); a worker still alive
    after STOP_WAIT_S is killed, and its trial is recovered by the heartbeat."""
    for worker in workers:
        if worker.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_WAIT_S
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
            worker.join()


def run_workers(run: SearchRun, on_progress: Callable[[SearchProgress], None] | None = None, poll_s: float = 1.0) -> None:
    """Run the worker processes until the study holds enough finished trials (or the timeout).
    Raises SearchInterrupted on Ctrl-C, NasError when a worker stopped on bad input."""
    options = run.options
    if run.finished_before >= options.trials:
        return
    context = multiprocessing.get_context("spawn")
    errors = context.Queue()
    workers = [
        context.Process(target=_worker_process, args=(WorkerSetup(options, str(run.data_dir), run.cache_dir, run.no_cache, index), errors))
        for index in range(options.workers)
    ]
    # Ctrl-C (SIGINT to the whole process group) or a scheduler's SIGTERM (often to this process
    # alone): here it only sets a flag (a KeyboardInterrupt raised inside the storage's database
    # driver while the progress line reads the study would print the driver's traceback); the loop
    # then passes SIGINT on to every worker, which fails its running trial and exits.
    interrupted = False

    def on_interrupt(signum, frame) -> None:  # only a flag: safe whatever the main thread is doing
        nonlocal interrupted
        interrupted = True

    handler_installed = threading.current_thread() is threading.main_thread()
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, on_interrupt) for s in stop_signals} if handler_installed else {}
    try:
        for worker in workers:
            worker.start()
        while any(worker.is_alive() for worker in workers) and not interrupted:
            if on_progress is not None:
                on_progress(run.progress())
            time.sleep(poll_s)
        if interrupted:
            _stop_workers(workers)
            raise SearchInterrupted(finished_count(run.study))
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if on_progress is not None:
        on_progress(run.progress())
    if not errors.empty():
        raise NasError(errors.get())
    failed = [worker.exitcode for worker in workers if worker.exitcode not in (0, None)]
    killed = [-code for code in failed if code < 0]
    if killed and len(killed) == len(failed) and finished_count(run.study) >= options.trials:
        run.killed_workers = killed  # the others ran the study to its end, the dead ones' trials again too
    elif failed:
        raise NasError(
            f"search worker(s) exited with code(s) {failed}; finished trials are saved in {options.location.storage_url}; "
            f"a trial left running is run again once its heartbeat is {options.grace_s} s old"
        )

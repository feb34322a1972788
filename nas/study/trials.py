"""One trial of a search: sample a configuration within the budget (the memory model rejects
what does not fit before any training), train it with the trial recipe, score it with the
integer engine, and stop it at a rung when a no-larger trial leads.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import optuna

from nas.core.errors import NasError
from nas.device.compute import predict_instructions
from nas.device.memory import KB, Budget, largest_hidden, memory_breakdown
from nas.features.extract import FeatureConfig
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.study.artifacts import upload_checkpoint
from nas.study.interrupts import STOP
from nas.study.liveness import WORKER_ATTR, this_worker
from nas.study.record import INSTRUCTIONS_ATTR, TrialRecord
from nas.study.rungs import RUNG_ATTR, StoppedAtRung, rung_results
from nas.study.settings import SearchOptions
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
from nas.study.storage import FINISHED, fail_trials_of_gone_processes, optuna_experimental
from nas.training.scoring import SCORED_BY_ENGINE, SCORED_BY_FLOAT

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
    with optuna_experimental():
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
    # the solver guarantees that neither happens
    if not budget.admits(breakdown.to_dict()) or budget.compute_exceeded(model, quant, features):
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
    if budget.mcu_mhz is not None and smallest <= budget.limit_bytes:  # the bytes fit: the clock is what refuses
        return (
            f"--mcu-mhz {budget.mcu_mhz:g}: no configuration of the search space within {budget.limit_bytes:,} B runs in real time "
            f"on {budget.target} ({space.source}); expected a faster clock, a larger hop or a smaller space"
        )
    return (
        f"--budget-kb {budget.limit_bytes / KB:.2f} ({budget.limit_bytes:,} B): no configuration of the search space fits "
        f"(the smallest needs {smallest:,} B {budget.scope}, {space.source}); expected a larger budget or a smaller space"
    )


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


DUPLICATE_TELL = "Cannot tell a "  # how Optuna's tell refuses a trial that is already finished


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
        try:
            study.optimize(objective, n_trials=1, catch=())
        except ValueError as error:
            # "Cannot tell a COMPLETE trial": another worker ran this queued trial too and told it first
            # (SQLite has no row locks, so Optuna's pop of a queued trial is not atomic there); its
            # result stands, and this worker goes on with the next trial rather than ending the search
            if not str(error).startswith(DUPLICATE_TELL):
                raise


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
            raise optuna.TrialPruned(f"over the budget ({budget.describe()}) at its smallest hidden size ({over.total_bytes} B)") from None
        trial.set_user_attr("total_bytes", candidate.total_bytes)  # visible while the trial trains (and to nas.study.rungs)
        if candidate.quant.quantized and candidate.features.on_device is not None:
            predicted = predict_instructions(candidate.model, candidate.quant, candidate.features.on_device, budget.target)
            trial.set_user_attr(INSTRUCTIONS_ATTR, predicted.per_frame)
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

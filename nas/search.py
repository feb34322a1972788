"""`nas search`: an Optuna study over the search space, with the memory budget applied before any
training, each trial trained with quantized weights and scored by the integer engine.

Objectives: maximise the integer engine's validation accuracy, minimise total_bytes. The test
accuracy of every finished trial is stored on it (user attribute) and only reported.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna

from nas.architecture import ModelConfig
from nas.errors import NasError
from nas.formats import QuantConfig
from nas.memory import largest_hidden, memory_breakdown
from nas.space import SearchSpace

# set_metric_names and TPE's `group` are marked experimental; the project pins Optuna 5.x and
# its tests cover both, so the warnings would only be noise in the user's terminal.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)

OBJECTIVE_NAMES = ["val_accuracy", "total_bytes"]
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
DEFAULT_RESULTS = Path("results")


@dataclass(frozen=True)
class SearchOptions:
    budget_bytes: int
    budget_scope: str = "total"
    trials: int = 30
    timeout_s: float | None = None
    seed: int = 0
    study_name: str = "pow2-36kb"
    storage: str | None = None  # any Optuna storage URL; default: SQLite in the study folder
    results_dir: Path = DEFAULT_RESULTS
    split: str = "official"

    @property
    def study_dir(self) -> Path:
        return self.results_dir / self.study_name

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.study_dir / 'study.db').resolve()}"


@dataclass(frozen=True)
class Candidate:
    """One sampled configuration, before training."""

    model: ModelConfig
    quant: QuantConfig
    learning_rate: float
    total_bytes: int


class OverBudget(Exception):
    def __init__(self, total_bytes: int):
        super().__init__(total_bytes)
        self.total_bytes = total_bytes


def make_sampler(seed: int, kind: str = "tpe") -> optuna.samplers.BaseSampler:
    """Named and seeded explicitly (Optuna 5 changed its defaults). TPE: multivariate, so the
    cell, depth, width and bit width are modelled together; constant liar for parallel workers."""
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=10, multivariate=True, group=True, constant_liar=True)


def sample_candidate(trial: optuna.Trial, space: SearchSpace, budget_bytes: int, scope: str) -> Candidate:
    """Sample a configuration; raise OverBudget (before any feature or training work) when even
    the smallest hidden size of the sampled cell, depth and format is over the budget.

    The hidden size is a fraction of the way, on a log scale, from the space's minimum to the
    largest size that fits (closed-form solver), so the sampler does not waste trials over budget.
    """
    cell = trial.suggest_categorical("cell", list(space.cells))
    layers = trial.suggest_categorical("layers", list(space.layers))
    n_mfcc = trial.suggest_categorical("n_mfcc", list(space.n_mfcc))
    scheme = trial.suggest_categorical("weights", list(space.weights))
    bits = trial.suggest_categorical(f"{scheme}_bits", list(space.bits_for(scheme))) if scheme != "float" else None
    state_bits = trial.suggest_categorical("state_bits", list(space.state_bits)) if scheme != "float" else 16
    quant = QuantConfig.make(scheme, bits, state_bits=state_bits)
    fraction = trial.suggest_float("hidden_fraction", 0.0, 1.0)
    learning_rate = trial.suggest_float("learning_rate", space.learning_rate.low, space.learning_rate.high, log=space.learning_rate.log)
    smallest = ModelConfig(cell, layers, space.hidden_min, n_input=n_mfcc)
    fits = min(space.hidden_max, largest_hidden(budget_bytes, smallest, quant, scope))
    if fits < space.hidden_min:
        raise OverBudget(memory_breakdown(smallest, quant).total_bytes)
    hidden = round(space.hidden_min * (fits / space.hidden_min) ** fraction)
    model = ModelConfig(cell, layers, hidden, n_input=n_mfcc)
    breakdown = memory_breakdown(model, quant)
    if breakdown.scoped_bytes(scope) > budget_bytes:  # the solver guarantees this never happens
        raise OverBudget(breakdown.total_bytes)
    return Candidate(model, quant, learning_rate, breakdown.total_bytes)


def open_study(options: SearchOptions, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    options.study_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        try:
            study = optuna.create_study(
                storage=options.storage_url,
                study_name=options.study_name,
                sampler=sampler,
                directions=["maximize", "minimize"],
                load_if_exists=True,
            )
            break
        except (ValueError, ImportError, optuna.exceptions.OptunaError) as error:
            raise NasError(f"--storage {options.storage_url}: cannot open the study ({error})") from None
        except Exception as error:  # SQLAlchemy raises many types for a bad URL or an unwritable file
            # Two processes creating the same new database race on its schema; the loser retries.
            if attempt == 2 or "IntegrityError" not in type(error).__name__ + str(error):
                raise NasError(f"--storage {options.storage_url}: cannot open the study ({type(error).__name__}: {error})") from None
            time.sleep(0.5 * (attempt + 1))
    study.set_metric_names(OBJECTIVE_NAMES)  # optuna-dashboard shows these names
    stored = study.user_attrs.get("budget_bytes")
    if stored is not None and stored != options.budget_bytes:
        raise NasError(
            f"--study {options.study_name}: was created with a budget of {stored:,} B, not {options.budget_bytes:,} B; "
            "pass another --study to search a different budget"
        )
    study.set_user_attr("budget_bytes", options.budget_bytes)
    study.set_user_attr("budget_scope", options.budget_scope)
    return study


def mark_stale_trials_failed(study: optuna.Study) -> int:
    """Trials left RUNNING by a process that was killed: marked FAIL so the study can go on."""
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    return len(stale)


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def make_objective(
    space: SearchSpace,
    options: SearchOptions,
    train_trial: Callable[[optuna.Trial, Candidate], tuple[float, dict]],
) -> Callable[[optuna.Trial], tuple[float, float]]:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        started = time.perf_counter()
        try:
            candidate = sample_candidate(trial, space, options.budget_bytes, options.budget_scope)
        except OverBudget as over:
            trial.set_user_attr("total_bytes", over.total_bytes)
            trial.set_user_attr("over_budget", True)
            trial.set_user_attr("prune_ms", 1000 * (time.perf_counter() - started))
            raise optuna.TrialPruned(f"{over.total_bytes} B over the budget of {options.budget_bytes} B") from None
        trial.set_user_attr("total_bytes", candidate.total_bytes)
        trial.set_user_attr("hidden", candidate.model.hidden)
        val_accuracy, attrs = train_trial(trial, candidate)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return val_accuracy, float(candidate.total_bytes)

    return objective


def front(study: optuna.Study, budget_bytes: int | None = None) -> list[optuna.trial.FrozenTrial]:
    """Pareto-optimal finished trials (highest validation accuracy for their size), within the budget."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    if budget_bytes is not None:
        complete = [t for t in complete if t.values[1] <= budget_bytes]
    pareto = [
        t
        for t in complete
        if not any(
            o.values[0] >= t.values[0] and o.values[1] <= t.values[1] and (o.values[0] > t.values[0] or o.values[1] < t.values[1])
            for o in complete
        )
    ]
    return sorted(pareto, key=lambda t: (t.values[1], -t.values[0], t.number))


def hypervolume(points: list[tuple[float, float]], budget_bytes: int) -> float:
    """Area dominated by (accuracy, bytes) points, in accuracy x share-of-budget units, against
    the reference point (accuracy 0, the whole budget): 1.0 would be 100% at zero bytes."""
    inside = sorted((b / budget_bytes, a) for a, b in points if b <= budget_bytes)
    area, best = 0.0, 0.0
    edges = [b for b, _ in inside] + [1.0]
    for index, (size, accuracy) in enumerate(inside):
        best = max(best, accuracy)
        area += best * (edges[index + 1] - size)
    return area


# ------------------------------------------------------------------------------------ workers
@dataclass(frozen=True)
class WorkerSetup:
    """What a worker process needs to run trials (plain data: it crosses a process boundary)."""

    options: SearchOptions
    space: SearchSpace
    data_dir: str
    cache_dir: str | None
    worker_index: int = 0
    sampler: str = "tpe"


def train_candidate(trial: optuna.Trial, candidate: Candidate, setup: WorkerSetup, features) -> tuple[float, dict]:
    """Train one sampled configuration (QAT unless float) and score it with the integer engine."""
    import torch

    from nas.train import TrainConfig, train_model

    options, space = setup.options, setup.space
    config = TrainConfig(
        epochs=space.epochs, patience=space.patience, learning_rate=candidate.learning_rate, seed=options.seed + trial.number
    )
    config = TrainConfig(**(config.to_dict() | {"warmup_epochs": min(config.warmup_epochs, config.epochs - 1)}))
    path = options.study_dir / f"trial-{trial.number:04d}" / "model.pt"
    started = time.perf_counter()
    extra = {"split": options.split, "study": options.study_name, "trial": trial.number}
    result = train_model(
        features, candidate.model, config, torch.device("cpu"), checkpoint_path=path, extra_checkpoint=extra, quant=candidate.quant
    )
    scores = result.integer
    val, test = (scores.val, scores.test) if scores is not None else (result.val, result.test)
    attrs = {
        "model_config": candidate.model.to_dict(),
        "quant_config": candidate.quant.to_dict(),
        "feature_config": features.config.to_dict(),
        "memory": memory_breakdown(candidate.model, candidate.quant).to_dict(),
        "val_correct": val.correct,
        "val_total": val.total,
        "test_correct": test.correct,
        "test_total": test.total,
        "test_accuracy": test.value,
        "scored_by": "integer engine" if scores is not None else "float model",
        "fake_quant_val_accuracy": result.val.value,
        "int_float_test_agreement": scores.test_agreement if scores is not None else None,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "train_seconds": time.perf_counter() - started,
        "checkpoint": str(path),
    }
    return val.value, attrs


def run_worker(setup: WorkerSetup) -> None:
    """One process's share of the study: trials until the study has enough finished ones."""
    import torch

    from nas.data import load_split
    from nas.features import FeatureCache, FeatureConfig, build_feature_set

    torch.set_num_threads(1)  # one core per worker: as fast for these models, and reproducible
    # Optuna logs a trial cut short by Ctrl-C as a warning with a traceback; the main process
    # says what happened in one line instead. Real errors still propagate (catch=()).
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    options = setup.options
    split, waveforms = load_split(Path(setup.data_dir), options.split)
    cache = FeatureCache(Path(setup.cache_dir)) if setup.cache_dir else FeatureCache()
    feature_sets: dict[int, object] = {}

    def features_for(n_mfcc: int):
        if n_mfcc not in feature_sets:  # computed once per process; from the disk cache after that
            feature_sets[n_mfcc] = build_feature_set(split, waveforms, FeatureConfig(n_mfcc=n_mfcc), cache)
        return feature_sets[n_mfcc]

    study = open_study(options, make_sampler(options.seed + 1000 * setup.worker_index, setup.sampler))
    objective = make_objective(setup.space, options, lambda trial, c: train_candidate(trial, c, setup, features_for(c.model.n_input)))
    if finished_count(study) >= options.trials:
        return
    study.optimize(
        objective,
        timeout=options.timeout_s,
        callbacks=[optuna.study.MaxTrialsCallback(options.trials, states=FINISHED)],
        catch=(),
    )

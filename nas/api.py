"""The Python front door, in the spirit of `optuna.create_study` / `study.optimize`: plain data in,
dataclasses out, nothing printed, no global state changed (logging levels, warning filters and
torch threads are the caller's; worker processes set their own).

    import nas
    result = nas.search(budget_kb=36, weights="pow2", space="search_spaces/smoke.toml", n_trials=4)
    best = result.best(max_kb=8)          # a TrialRecord: best.total_bytes, best.val, best.model_config
    folder = nas.export(result, out="export").folder

The command line (nas.cli) runs the same library functions; docs/api.md is the guide.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nas.core.errors import NasError
from nas.device.memory import MemoryBreakdown
from nas.features.extract import FeatureConfig
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.study.confirm import DEFAULT_CONFIRM_FOLDS, DEFAULT_CONFIRM_POINTS, DEFAULT_CONFIRM_SEEDS, ConfirmedPoint, ConfirmSettings
from nas.study.record import TrialRecord
from nas.study.request import SearchRequest
from nas.study.settings import DEFAULT_RESULTS, DEFAULT_TRIALS, DEFAULT_WORKERS, StudyLocation, StudySettings
from nas.training.recipe import TrainConfig

PathLike = str | os.PathLike


@dataclass(frozen=True)
class SearchResult:
    """A study as `nas.search` or `nas.load_study` read it: its settings, every trial, the
    single-draw front and the points confirmed over seeds."""

    study_name: str
    settings: StudySettings
    trials: list[TrialRecord]
    front: list[TrialRecord]  # on each trial's own validation accuracy (one training each)
    confirmed: tuple[ConfirmedPoint, ...]  # retrained over seeds and folds (empty when not confirmed)
    location: StudyLocation

    def best(self, max_kb: float | None = None) -> TrialRecord:
        """What `nas export --best` (or `--max-kb K`) exports: once the study has confirmed points,
        the one with the best mean validation accuracy within the limit (as its exported seed's
        record); before that, the most accurate trial on validation (the smaller on a tie)."""
        from nas.bundle.selection import select_export

        record, _ = select_export(self.trials, list(self.confirmed), self.settings.budget, None, max_kb, self.study_name)
        return record


def search(
    budget_kb: float | None = None,
    weights: str | None = None,
    space: PathLike | None = None,
    n_trials: int = DEFAULT_TRIALS,
    *,
    study: str | None = None,
    storage: str | None = None,
    results_dir: PathLike = DEFAULT_RESULTS,
    data_dir: PathLike | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    split: str | None = None,
    speaker_folds: int | None = None,
    quick: bool | None = None,
    budget_scope: str | None = None,
    flash_kb: float | None = None,
    ram_kb: float | None = None,
    workers: int = DEFAULT_WORKERS,
    timeout_s: float | None = None,
    confirm_seeds: int = DEFAULT_CONFIRM_SEEDS,
    confirm_folds: int = DEFAULT_CONFIRM_FOLDS,
    confirm_points: int = DEFAULT_CONFIRM_POINTS,
    cache_dir: PathLike | None = None,
) -> SearchResult:
    """`nas search`: run the study until it holds `n_trials` finished trials, confirm its front
    (`confirm_seeds=0`: not), and return it. The study's settings left as None are read back from
    an existing study (a resume) or take the defaults; one that differs from the stored value is
    refused (NasError listing every difference). Data: `data_dir`, else $NAS_DATA_DIR, else
    data/fsdd/recordings. Ctrl-C raises nas.study.optimize.SearchInterrupted; every finished trial
    is kept."""
    from nas.data.dataset import find_data_dir
    from nas.study.optimize import run_workers, start_search
    from nas.study.storage import search_options

    request = SearchRequest(
        budget_kb=budget_kb,
        budget_scope=budget_scope,
        flash_kb=flash_kb,
        ram_kb=ram_kb,
        weights=weights,
        space=None if space is None else str(space),
        split=split,
        speaker_folds=speaker_folds,
        seed=seed,
        sampler=sampler,
        quick=quick,
    )
    location = StudyLocation(study or request.study_name(), storage, Path(results_dir))
    confirm = ConfirmSettings(confirm_seeds, confirm_folds, confirm_points)
    options = search_options(request, location, trials=n_trials, timeout_s=timeout_s, workers=workers, confirm=confirm)
    folder = find_data_dir(data_dir)
    cache = None if cache_dir is None else str(cache_dir)
    run_workers(start_search(options, folder, cache))
    if options.confirms:
        _confirm(location, confirm, workers, folder, cache)
    return load_study(location.name, storage=storage, results_dir=results_dir)


def _confirm(location: StudyLocation, confirm: ConfirmSettings, workers: int, data_dir: Path, cache_dir: str | None) -> None:
    """Retrain the front's candidates not yet confirmed, storing each run as it finishes."""
    from nas.study.confirm import plan_confirmation, run_confirmation, store_run
    from nas.study.record import read_records
    from nas.study.storage import load_existing_study

    study, settings = load_existing_study(location)
    _, tasks = plan_confirmation(read_records(study), study.user_attrs, settings, confirm, data_dir, location.study_dir, cache_dir)
    run_confirmation(tasks, workers, lambda run: store_run(study, run))


def load_study(study: str, *, storage: str | None = None, results_dir: PathLike = DEFAULT_RESULTS) -> SearchResult:
    """A study that `nas search` (or `nas.search`) wrote, read without running anything."""
    from nas.report.report import read_summary
    from nas.study.storage import load_existing_study

    location = StudyLocation(study, storage, Path(results_dir))
    stored, settings = load_existing_study(location)
    summary = read_summary(stored, location.name, settings)
    return SearchResult(location.name, settings, summary.records, summary.front, summary.confirmed, location)


def memory(
    model: ModelConfig, quant: QuantConfig | None = None, features: FeatureConfig | None = None, frontend: bool = True
) -> MemoryBreakdown:  # fmt: skip
    """`nas memory`: the device bytes of a configuration, line by line. `features`: the front-end's
    shape (default: FeatureConfig with the model's MFCC count); `frontend=False`: without the
    integer front-end, for a model fed feature frames (`nas memory --no-frontend`)."""
    from nas.device.memory import memory_breakdown

    features = (features or FeatureConfig(n_mfcc=model.n_input)) if frontend else None
    for config in (model, features):
        if config is not None:
            config.validate()
    return memory_breakdown(model, quant or QuantConfig(), features)


def train(
    model: ModelConfig,
    quant: QuantConfig | None = None,
    features: FeatureConfig | None = None,
    recipe: TrainConfig | None = None,
    *,
    seeds: tuple[int, ...] = (0,),
    split: str | None = None,
    out_dir: PathLike | None = None,
    data_dir: PathLike | None = None,
    cache_dir: PathLike | None = None,
    device: str = "auto",
):
    """`nas train`: train the configuration once per seed, with the shipped recipe unless `recipe`
    says otherwise; each seed's checkpoint (seedN.pt) and summary.json go to `out_dir`. Returns
    nas.training.seeds.TrainRuns (per-seed results, `means()` with t-intervals over seeds)."""
    from nas.data.dataset import OFFICIAL, find_data_dir
    from nas.features.extract import FeatureCache, load_features
    from nas.training.recipe import train_threads
    from nas.training.seeds import plan_training, train_seeds
    from nas.training.train import resolve_device

    features = features or FeatureConfig(n_mfcc=model.n_input)
    recipe = recipe or TrainConfig()
    plan = plan_training(
        model, features, quant or QuantConfig(), recipe, list(seeds), split or OFFICIAL, None if out_dir is None else Path(out_dir)
    )
    cache = FeatureCache.at(None if cache_dir is None else str(cache_dir), False)
    _, feature_set = load_features(find_data_dir(data_dir), plan.split, plan.feature_config, cache, copies=recipe.wave_copy_recipes())
    with train_threads():
        return train_seeds(plan, feature_set, resolve_device(device))


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    description: dict  # model.json's contents


def export(
    source: SearchResult | PathLike,
    out: PathLike,
    *,
    trial: int | None = None,
    max_kb: float | None = None,
    data_dir: PathLike | None = None,
    measure: bool = True,
) -> ExportResult:
    """`nas export`: the model as checkpoint, packed weights, streaming C and README in `out`.
    `source`: a study (a SearchResult; `trial`, else `best(max_kb)`), or the path of a
    checkpoint that `nas train` wrote. `measure` compiles the C with the installed compilers."""
    from nas.bundle.export import export_checkpoint
    from nas.bundle.selection import checkpoint_source, select_study_export
    from nas.data.dataset import find_data_dir

    if isinstance(source, SearchResult):
        chosen = select_study_export(source.location, trial, max_kb)
        export_source, confirmed = chosen.source, chosen.confirmed
    else:
        export_source, confirmed = checkpoint_source(Path(source)), None
    try:
        folder = find_data_dir(data_dir)
    except NasError:
        folder = None  # no golden vectors without the recordings
    description = export_checkpoint(export_source, Path(out), folder, measure, confirmed)
    return ExportResult(Path(out), description)


def evaluate(export_dir: PathLike, *, split: str | None = None, part: str = "test", data_dir: PathLike | None = None, run_c: bool = False):
    """`nas evaluate`: the integer engine's score of an export folder on a part of a split (the
    split it was trained on unless `split` says); `run_c` also runs the exported C (host gcc) on
    every file's PCM. Returns nas.bundle.export.Evaluation (`accuracy`, `confusion()`, `to_dict()`)."""
    from nas.bundle.export import evaluate as evaluate_export
    from nas.bundle.export import load_export
    from nas.data.dataset import find_data_dir
    from nas.features.extract import FeatureCache

    cache = FeatureCache.at(None, False)
    return evaluate_export(load_export(Path(export_dir)), find_data_dir(data_dir), split, part, cache, run_c=run_c)

"""Studies in their storage: create, load and check a study against what it was created with, and
fail the trials of dead workers. A resume reads the stored settings back (nas.study.request).
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, replace

import optuna

from nas.core.errors import NasError
from nas.core.urls import mask_passwords
from nas.study.artifacts import ARTIFACTS_ATTR, default_store
from nas.study.liveness import WORKER_ATTR, is_gone
from nas.study.request import SearchRequest
from nas.study.settings import MAX_RETRIES, SearchOptions, StudyLocation, StudySettings

OBJECTIVE_NAMES = ["val_accuracy", "total_bytes"]


DIRECTIONS = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]


FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


SETTINGS_ATTR = "settings"


@contextlib.contextmanager
def optuna_experimental() -> Iterator[None]:
    """Optuna features marked experimental (the heartbeat and its retry callback, metric names,
    TPE's group and constant liar), without their warnings: the project pins Optuna 5.x and its
    tests cover them. Caught here, around each use, never process-wide."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def heartbeat_storage(options: SearchOptions) -> optuna.storages.RDBStorage:
    """The study's storage as a process that runs trials opens it: each running trial beats every
    `heartbeat_s`; one silent for the grace period (a killed worker, on any host) is failed when a
    worker next starts a trial, and queued again with the same parameters (Optuna's
    RetryHeartbeatStaleTrialCallback), never by failing every running trial."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with optuna_experimental():
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
            raise NoSuchStudy(f"--study {location.name}: no such study in {location.display_url}") from None
        except (ValueError, ImportError, optuna.exceptions.OptunaError) as error:
            raise NasError(f"--storage {location.display_url}: cannot open the study ({mask_passwords(str(error))})") from None
        except OSError as error:  # the study folder cannot be made (a bad path, no permission)
            raise NasError(f"--results-dir {location.results_dir}: cannot create {location.study_dir} ({error.strerror})") from None
        except Exception as error:  # SQLAlchemy raises many types for a bad URL or an unwritable file
            # Two processes creating the same new database race on its schema; the loser retries.
            if attempt == 2 or "IntegrityError" not in type(error).__name__ + str(error):
                reason = mask_passwords(f"{type(error).__name__}: {error}")
                raise NasError(f"--storage {location.display_url}: cannot open the study ({reason})") from None
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


class NoSuchStudy(NasError):
    """The storage holds no study of that name."""


def peek_settings(location: StudyLocation) -> StudySettings | None:
    """The stored settings of the study at `location`, or None when there is no such study yet
    (nothing is created)."""
    if location.storage is None and not (location.study_dir / "study.db").is_file():
        return None
    try:
        return stored_settings(_create_or_load(location, create=False))
    except NoSuchStudy:
        return None


def search_options(request: SearchRequest, location: StudyLocation, **run) -> SearchOptions:
    """The options of a search run: the study's settings from `request` and the stored study
    (nas.study.request), and how to run it (`run`: trials, workers, timeout_s, ...)."""
    return SearchOptions(**request.resolve(peek_settings(location), location.name), location=location, **run)


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
    differences = stored.differences(settings) if stored is not None else []
    if differences:
        raise NasError(
            f"--study {location.name}: was created with {'; '.join(differences)}; "
            "leave these options out (or pass the same values) to resume it, or name another --study for a different search"
        )
    if SETTINGS_ATTR not in study.user_attrs:
        with optuna_experimental():
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

    with optuna_experimental():
        retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
    storage, failed = study._storage, 0
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
    with optuna_experimental():
        optuna.storages.fail_stale_trials(study)
    return before - len(study.get_trials(deepcopy=False, states=running))


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))

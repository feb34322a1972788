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
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from nas.core.errors import NasError
from nas.study.pareto import select_best
from nas.study.record import TrialRecord
from nas.study.settings import SearchOptions
from nas.study.storage import fail_stale_trials, finished_count, open_study
from nas.study.trials import search_size_range
from nas.study.worker import WorkerSetup, _worker_process


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
            f"search worker(s) exited with code(s) {failed}; finished trials are saved in {options.location.display_url}; "
            f"a trial left running is run again once its heartbeat is {options.grace_s} s old"
        )

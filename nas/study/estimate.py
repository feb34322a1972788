"""How long a search will take, said before it starts.

A resumed study already knows: the mean training time of its finished trials. A new one is timed
here, in a few seconds (after a short warm-up: a worker's first trial pays one-time set-up that
later trials do not): the space is sampled (a random sampler, the memory model only) for the
share of configurations within the budget and a typical model of each cell (the median hidden
size that fits); each typical model trains two epochs on random frames shaped like the split's
recordings (their lengths from the WAV files' sizes, a fifth of the files), the same training
code a trial runs, on one thread as a worker does. A trial is then `epochs` epochs (early stopping
ends some sooner: the estimate is an upper bound on training) plus its fixed cost (the integer
engine's scoring), times 1 + the speaker folds; the trials are shared by the workers, at most one
per core. Features on a cold cache are added: each front-end shape the sampled configurations use,
times the original and each waveform copy, that the cache does not hold yet, at the speed
measured on a sample of the recordings (computed once, then cached for every later search).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import optuna

from nas.data.dataset import N_DIGITS, SAMPLE_BYTES, Split
from nas.study.record import TrialRecord
from nas.study.rungs import REPLAY_EPOCH_SHARE
from nas.study.settings import SearchOptions

SPACE_SAMPLES = 200  # configurations drawn to measure the share within the budget
FEATURE_SAMPLE_FILES = 30  # recordings timed to measure the front-end's speed
TIMING_SHARE = 5  # the timing trains on 1/TIMING_SHARE of the split's files
WAV_HEADER_BYTES = 44


@dataclass(frozen=True)
class SearchEstimate:
    seconds: float  # wall time of the trials still to run
    trials_to_run: int
    parallel: int  # trials at a time: the workers, at most one per core
    trained_share: float  # of sampled configurations within the budget (the rest is pruned in a millisecond)
    trial_seconds: float  # one trained trial, on one core, folds included
    basis: str  # where trial_seconds comes from, in words
    feature_seconds: float = 0.0  # computing the features the cache does not hold, shared by the workers
    feature_passes: int = 0  # (front-end shape, copy) pairs not cached yet
    # if every trial were of the slowest cell and trained to the end (the sampler may favour one
    # cell: TPE did, 27 GRU trials of 31 in a measured default search)
    seconds_high: float | None = None
    confirm_runs: int = 0  # trainings of the front's candidates after the trials (nas.study.confirm), included in `seconds`
    confirm_seconds: float = 0.0  # their wall time

    def describe(self) -> str:
        high = ""
        if self.seconds_high is not None and self.seconds_high > 1.05 * self.seconds:
            high = f", up to {_duration(self.seconds_high)} if every trial is of the slowest cell and trains to the end"
        features = (
            f"; features first: {self.feature_passes} front-end passes not cached yet, ~{self.feature_seconds / 60:.1f} min"
            if self.feature_passes
            else ""
        )
        confirm = (
            f"; then {self.confirm_runs} confirmation runs of the front's candidates (the study's recipe to the end), "
            f"~{_duration(self.confirm_seconds)}"
            if self.confirm_runs
            else ""
        )
        return (
            f"estimate: about {_duration(self.seconds)} for {self.trials_to_run} trials{confirm}{high} ({self.parallel} at a time; "
            f"{100 * self.trained_share:.0f}% of the space's configurations within the budget; a trial ~{self.trial_seconds:.0f} s: "
            f"{self.basis}{features})"
        )


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} s" if seconds < 90 else (f"{minutes:.1f} min" if minutes < 10 else f"{minutes:.0f} min")


def _wall_seconds(trials: int, share: float, trial_seconds: float, parallel: int) -> float:
    return trials * share * trial_seconds / parallel


def trained_share(options: SearchOptions, samples: int = SPACE_SAMPLES) -> tuple[float, list]:
    """The share of randomly sampled configurations within the budget, and those configurations."""
    from nas.study.trials import OverBudget, sample_candidate

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=options.seed))
    fitting = []
    for _ in range(samples):
        trial = study.ask()
        with contextlib.suppress(OverBudget):  # pruned: counted by its absence
            fitting.append(sample_candidate(trial, options.searched_space, options.budget))
    return len(fitting) / samples, fitting


def _typical(candidates: list, cell: str):
    """The median-sized configuration of a cell (by hidden size x layers)."""
    mine = sorted((c for c in candidates if c.model.cell == cell), key=lambda c: c.model.hidden * c.model.layers)
    return mine[len(mine) // 2] if mine else None


def frame_counts(split: Split, hop_length: int) -> dict[str, list[int]]:
    """Frames per recording of each part, from the WAV files' sizes (nothing is decoded)."""
    counts = {}
    for name, recordings in split.parts().items():
        counts[name] = [max(1, (r.path.stat().st_size - WAV_HEADER_BYTES) // SAMPLE_BYTES // hop_length) for r in recordings]
    return counts


def time_candidate(candidate, options: SearchOptions, counts: dict[str, list[int]], share: int = TIMING_SHARE) -> tuple[float, float]:
    """(seconds per epoch, fixed seconds per trial) of one configuration at the split's size,
    from two epochs on 1/share of the files (random frames of the same lengths)."""
    import torch

    from nas.features.extract import FeatureSet, Normaliser
    from nas.study.trials import trial_recipe
    from nas.training.recipe import train_threads
    from nas.training.train import train_model

    rng = np.random.default_rng(0)
    n_mfcc = candidate.model.n_input
    raw = {name: [rng.normal(0, 1280, (n, n_mfcc)).round().astype(np.float32) for n in lengths[::share]]
           for name, lengths in counts.items()}  # fmt: skip
    normaliser = Normaliser.fit(raw["train"], candidate.features.normalisation, candidate.features.integer)
    parts = {name: (normaliser.apply_all(frames), np.arange(len(frames)) % N_DIGITS) for name, frames in raw.items()}
    features = FeatureSet(candidate.features, normaliser, parts)
    config = replace(trial_recipe(options, candidate.learning_rate, 0), epochs=2, warmup_epochs=1, wave_copies=0)
    with train_threads(), tempfile.TemporaryDirectory() as folder:  # a trial writes its checkpoint every epoch: so does this
        started = time.perf_counter()
        result = train_model(
            features, candidate.model, config, torch.device("cpu"), checkpoint_path=Path(folder) / "model.pt", quant=candidate.quant
        )
        total = time.perf_counter() - started
    epoch = result.history[-1].seconds  # the second epoch: past the first call's warm-up
    fixed = max(0.0, total - sum(r.seconds for r in result.history))
    return share * epoch, share * fixed


def feature_work(options: SearchOptions, fitting: list, waveforms: dict, cache) -> tuple[float, int]:
    """(seconds on one core, passes) to compute the features of the sampled front-end shapes that
    the cache (a `FeatureCache`) does not hold: the recordings and each waveform copy."""
    from nas.features.extract import compute_frames, copy_frames
    from nas.study.trials import trial_recipe

    if not waveforms or not fitting:
        return 0.0, 0
    ordered = [waveforms[name] for name in sorted(waveforms)]
    copies = [None, *trial_recipe(options, 0.0, 0).wave_copy_recipes()]
    shapes = sorted({c.features for c in fitting}, key=lambda f: str(f.to_dict()))
    missing = [(shape, copy) for shape in shapes for copy in copies if not cache.has(ordered, shape, copy)]
    if not missing:
        return 0.0, 0
    sample = ordered[:: max(1, len(ordered) // FEATURE_SAMPLE_FILES)]
    scale = len(ordered) / len(sample)
    seconds = {}  # a pass of the originals (False) and of a copy (True), over all recordings
    for copied in {copy is not None for _, copy in missing}:
        started = time.perf_counter()
        if copied:
            copy_frames(sample, missing[0][0], copies[1])
        else:
            compute_frames(sample, missing[0][0])
        seconds[copied] = scale * (time.perf_counter() - started)
    return sum(seconds[copy is not None] for _, copy in missing), len(missing)


def estimate_search(
    options: SearchOptions, split: Split, records: list[TrialRecord], cores: int | None = None, waveforms: dict | None = None, cache=None,
    confirm_done: int = 0,
) -> SearchEstimate:  # fmt: skip
    finished = [r for r in records if r.finished]
    to_run = max(0, options.trials - len(finished))
    parallel = max(1, min(options.workers, cores or os.cpu_count() or 1))
    share, fitting = trained_share(options)
    timed = [r.train_seconds for r in finished if (r.trained or r.stopped) and r.train_seconds is not None]
    full_trial_seconds = 0.0  # a typical trial trained to its last epoch (when timed here)
    if timed:
        trial_seconds = slowest = statistics.mean(timed)
        basis = f"the mean of this study's {len(timed)} trained trials (those stopped early included)"
    elif not fitting:
        return SearchEstimate(0.0, to_run, parallel, 0.0, 0.0, "no configuration of the space fits the budget")
    else:
        epochs = options.training_space.epochs
        # rungs stop beaten trials early: the expected share of the epochs (the replay's); the
        # high end still trains every trial to the end. Not with --speaker-folds (no rungs there).
        rule = options.training_space.rung_rule()
        share_trained = REPLAY_EPOCH_SHARE if rule.epochs and not options.speaker_folds else 1.0
        counts = frame_counts(split, options.space.hop_length[0])
        per_cell, full_cell, words = [], [], []
        # the process's first training pays one-time set-up (seconds) that a worker pays once, not per trial
        time_candidate(fitting[0], options, counts, share=50)
        for cell in options.space.cells:
            candidate = _typical(fitting, cell)
            if candidate is None:
                continue
            epoch, fixed = time_candidate(candidate, options, counts)
            per_cell.append((epochs * share_trained * epoch + fixed) * (1 + options.speaker_folds))
            full_cell.append((epochs * epoch + fixed) * (1 + options.speaker_folds))
            words.append(f"{candidate.model.cell.upper()} {candidate.model.layers}x{candidate.model.hidden} {epoch:.2f} s")
        # (the low end weighs the cells equally, the high end as if every trial were of the slowest)
        trial_seconds, slowest, full_trial_seconds = statistics.mean(per_cell), max(full_cell), statistics.mean(full_cell)
        folds = f", x{1 + options.speaker_folds} for the speaker folds" if options.speaker_folds else ""
        rungs = f" ({100 * share_trained:.0f}% expected: rungs at epochs {', '.join(map(str, rule.epochs))})" if share_trained < 1 else ""
        basis = f"an epoch measured here: {', '.join(words)}; {epochs} epochs at most{rungs}{folds}"
    feature_seconds, passes = feature_work(options, fitting, waveforms or {}, cache) if cache is not None else (0.0, 0)
    feature_wall = feature_seconds / parallel
    runs, run_seconds = confirmation_work(options, records, full_trial_seconds, confirm_done)
    confirm_wall = runs * run_seconds / parallel
    wall = _wall_seconds(to_run, share, trial_seconds, parallel) + feature_wall + confirm_wall
    high = _wall_seconds(to_run, share, slowest, parallel) + feature_wall + confirm_wall
    return SearchEstimate(wall, to_run, parallel, share, trial_seconds, basis, feature_wall, passes, high, runs, confirm_wall)


def confirmation_work(options: SearchOptions, records: list[TrialRecord], full_trial_seconds: float, done: int) -> tuple[int, float]:
    """(runs still to do, seconds of one on one core) of the confirmation that follows the trials.
    A run trains a front candidate with the full recipe to its end: timed by this study's trials
    that trained to the end once it has some (a candidate is one of them), else by the typical
    model measured here trained for every epoch."""
    from nas.data.dataset import OFFICIAL
    from nas.study.confirm import FOLD_SEEDS

    if not options.confirms:
        return 0, 0.0
    settings = options.confirm
    folds = settings.folds if options.split == OFFICIAL else 0
    runs = max(0, settings.points * (settings.seeds + folds * min(FOLD_SEEDS, settings.seeds)) - done)
    complete = [r.train_seconds / (1 + len(r.held_out_speakers or ())) for r in records if r.trained and r.train_seconds is not None]
    return runs, statistics.mean(complete) if complete else full_trial_seconds

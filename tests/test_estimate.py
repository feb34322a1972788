"""The time estimate a search prints before it starts: the share of the space within the budget,
the trial time (a resumed study's own mean, or an epoch measured here), the workers per core."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from nas.core.stats import Accuracy
from nas.data.dataset import list_recordings, make_split, read_wav
from nas.device.memory import Budget
from nas.study.confirm import ConfirmSettings
from nas.study.estimate import estimate_search, frame_counts, trained_share
from nas.study.record import TrialRecord
from nas.study.rungs import REPLAY_EPOCH_SHARE
from nas.study.settings import SearchOptions, StudyLocation
from nas.study.space import load_space, resolve_space_path


def options(budget_bytes: int = 4096, **values) -> SearchOptions:
    """The smoke space with two window sizes: at 3,000 B only the 128-sample window fits. No
    confirmation unless asked (test_the_estimate_includes_the_confirmation)."""
    space = replace(load_space(resolve_space_path("smoke")), n_fft=(128, 256))
    values = {"confirm": ConfirmSettings(seeds=0)} | values
    return SearchOptions(Budget(budget_bytes), space, "pow2", StudyLocation("e", None, Path("unused")), **values)


def test_share_within_the_budget_is_what_the_memory_model_admits():
    assert trained_share(options(1 << 20))[0] == 1.0
    assert trained_share(options(512)) == (0.0, [])
    share, fitting = trained_share(options(3000))
    assert 0.3 < share < 0.7 and len(fitting) == round(200 * share)
    assert all(c.total_bytes <= 3000 and c.features.n_fft == 128 for c in fitting)


def trained(number: int, seconds: float) -> TrialRecord:
    return TrialRecord(number=number, total_bytes=1000, val=Accuracy(9, 10), test=Accuracy(9, 10), train_seconds=seconds)


def test_a_resumed_study_is_estimated_from_its_own_trials(subset):
    split = make_split(list_recordings(subset), "official")
    records = [trained(0, 30.0), trained(1, 50.0), TrialRecord(number=2, state="pruned", total_bytes=9000, over_budget=True)]
    estimate = estimate_search(options(1 << 20, trials=11, workers=2), split, records, cores=2)
    assert estimate.trials_to_run == 8 and estimate.trial_seconds == 40.0 and estimate.parallel == 2
    assert estimate.seconds == 8 * 1.0 * 40.0 / 2
    assert "this study's 2 trained trials" in estimate.describe() and "about 2.7 min for 8 trials" in estimate.describe()
    # more workers than cores share the cores: no faster
    assert estimate_search(options(1 << 20, trials=11, workers=8), split, records, cores=2).seconds == estimate.seconds
    # a space half over the budget trains half the trials
    half = estimate_search(options(3000, trials=11, workers=2), split, records, cores=2)
    assert half.seconds == pytest.approx(estimate.seconds * half.trained_share)
    done = estimate_search(options(1 << 20, trials=2, workers=2), split, records, cores=2)
    assert done.trials_to_run == 0 and done.seconds == 0


def test_the_estimate_includes_the_confirmation(subset):
    split = make_split(list_recordings(subset), "official")
    records = [trained(0, 30.0), trained(1, 50.0)]
    without = estimate_search(options(1 << 20, trials=11, workers=2), split, records, cores=2)
    confirm = ConfirmSettings(seeds=3, folds=2, points=4)
    confirmed = estimate_search(options(1 << 20, trials=11, workers=2, confirm=confirm), split, records, cores=2)
    # 4 points x (3 seeds + 2 folds on one seed), each timed as the study's trials trained to the end (40 s)
    assert confirmed.confirm_runs == 20 and confirmed.seconds == pytest.approx(without.seconds + 20 * 40.0 / 2)
    assert "then 20 confirmation runs of the front's candidates" in confirmed.describe()
    resumed = estimate_search(options(1 << 20, trials=11, workers=2, confirm=confirm), split, records, cores=2, confirm_done=5)
    assert resumed.confirm_runs == 15
    quick = estimate_search(options(1 << 20, trials=11, workers=2, confirm=confirm, quick=True), split, records, cores=2)
    assert quick.confirm_runs == 0 and quick.seconds == without.seconds


def test_a_new_study_times_an_epoch_of_each_cell_and_counts_the_folds(subset):
    split = make_split(list_recordings(subset), "official")
    two_cells = options(1 << 20, trials=4, workers=1)
    two_cells = replace(two_cells, space=replace(two_cells.space, cells=("gru", "lstm")))
    estimate = estimate_search(two_cells, split, [], cores=1)
    assert "GRU 1x" in estimate.basis and "LSTM 1x" in estimate.basis and f"{two_cells.space.epochs} epochs at most" in estimate.basis
    assert estimate.seconds == pytest.approx(4 * estimate.trial_seconds) and estimate.trial_seconds > 0
    assert estimate.seconds_high >= estimate.seconds  # as if every trial were of the slower cell
    folds = estimate_search(replace(two_cells, speaker_folds=2), split, [], cores=1)
    assert "x3 for the speaker folds" in folds.basis
    assert "expected" not in estimate.basis and "expected" not in folds.basis  # the space's rungs are all past its epochs


def test_rungs_shorten_the_expected_trial_but_not_the_high_end(subset):
    split = make_split(list_recordings(subset), "official")
    base = options(1 << 20, trials=4, workers=1)
    rungs = replace(base, space=replace(base.space, epochs=40, rungs=(5, 10, 20)))
    estimate = estimate_search(rungs, split, [], cores=1)
    assert f"{100 * REPLAY_EPOCH_SHARE:.0f}% expected: rungs at epochs 5, 10, 20" in estimate.basis
    # every trial to the end, against 78% of the epochs (less the time both spend outside training)
    assert estimate.seconds_high > 1.15 * estimate.seconds
    folds = estimate_search(replace(rungs, speaker_folds=1), split, [], cores=1)
    assert "expected" not in folds.basis  # no rungs with --speaker-folds


def test_frame_counts_come_from_the_file_sizes(subset):
    split = make_split(list_recordings(subset), "official")
    counts = frame_counts(split, 80)
    for name, recordings in split.parts().items():
        assert counts[name] == [max(1, len(read_wav(r).samples) // 80) for r in recordings]


def test_features_the_cache_lacks_are_counted_once_cached_not(subset):
    from nas.data.dataset import load_split
    from nas.features.extract import FeatureCache
    from nas.study.estimate import feature_work

    split, waveforms = load_split(subset, "official")
    one_copy = options(1 << 20)
    one_copy = replace(one_copy, space=replace(one_copy.space, wave_copies=1))
    _, fitting = trained_share(one_copy)
    shapes = {c.features for c in fitting}
    assert len(shapes) == 2  # the two window sizes
    cache = FeatureCache(None)
    seconds, passes = feature_work(one_copy, fitting, waveforms, cache)
    assert passes == 2 * 2 and seconds > 0  # each shape: the recordings and their one copy
    ordered = [waveforms[name] for name in sorted(waveforms)]
    cache.get(ordered, sorted(shapes, key=lambda f: f.n_fft)[0])
    assert feature_work(one_copy, fitting, waveforms, cache)[1] == 3
    estimate = estimate_search(replace(one_copy, trials=4), split, [trained(0, 10.0)], cores=1, waveforms=waveforms, cache=cache)
    assert "3 front-end passes not cached yet" in estimate.describe()
    assert estimate.seconds == pytest.approx(3 * 10.0 + estimate.feature_seconds)

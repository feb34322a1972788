"""The size axis of a search (nas/study/sizes.py): every size band up to the budget gets its share of the
trials even when the sampler wants only the smallest models, and a size position means one size
whatever the shape."""

from __future__ import annotations

import math

import optuna

from nas.core.stats import Accuracy
from nas.device.memory import Budget
from nas.study.record import TrialRecord
from nas.study.sizes import BAND_ATTR, BAND_MIN_SHARE, SIZE_ATTR, SIZE_BANDS, SizeRange, deficit_band, upper_half_share
from nas.study.space import load_space
from nas.study.trials import SIZE_PARAM, make_objective, run_trials, sample_candidate, search_size_range

BUDGET = Budget.from_kb(36)


def test_positions_and_bands_are_log_bytes_from_the_smallest_configuration_to_the_budget():
    sizes = SizeRange(1000, 16000)
    assert sizes.position(1000) == 0 and sizes.position(16000) == 1 and sizes.position(500) == 0
    assert math.isclose(sizes.position(4000), 0.5)
    assert sizes.bytes_at(0.5) == 4000 and sizes.bytes_at(1.0) == 16000
    assert [sizes.band(n) for n in (1000, 1999, 2001, 3999, 4001, 16000)] == [0, 0, 1, 1, 2, 3]
    assert upper_half_share([1000, 3000, 4000, 9000], sizes) == 0.5


def test_the_band_furthest_below_its_share_gets_the_next_trial():
    assert deficit_band([]) == 3  # the first trials visit every band, the largest first
    assert deficit_band([3]) == 2 and deficit_band([3, 2, 1]) == 0
    assert deficit_band([3, 2, 1, 0]) is None  # 5 trials: every band holds its share
    assert deficit_band([0, 1, 2, 3, 0]) is None  # 6 trials: 15% is 0.9
    assert deficit_band([0, 1, 2, 3, 0, 0]) == 3  # 7 trials: 15% is 1.05, so each band owes a second
    assert deficit_band([0, 1, 2, 3, 3, 2] + [0] * 8) == 1


def test_one_size_position_is_one_size_whatever_the_shape():
    """At a position, every shape of the default space lands at most at that size (and at its own
    smallest when it cannot be that small); at 1 each lands near the budget."""
    space = load_space().restricted_to("pow2")
    sizes = search_size_range(space, BUDGET)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for position in (0.25, 0.5, 1.0):
        for _ in range(30):
            study.enqueue_trial({SIZE_PARAM: position})
            trial = study.ask()
            candidate = sample_candidate(trial, space, BUDGET)
            smallest = sample_candidate_at(study, trial.params, 0.0, space)
            assert candidate.total_bytes <= max(sizes.bytes_at(position), smallest)
            if position == 1.0:
                assert candidate.total_bytes > 0.9 * BUDGET.limit_bytes or candidate.model.hidden == space.hidden_max


def sample_candidate_at(study, params, position, space) -> int:
    study.enqueue_trial(params | {SIZE_PARAM: position})
    return sample_candidate(study.ask(), space, BUDGET).total_bytes


def test_every_band_gets_its_share_even_when_the_sampler_wants_the_smallest(tmp_path):
    """A sampler that always draws the smallest size (as a hypervolume on a log axis pulls TPE
    there): the band quota still trains at least its share of the trials in every band, so the
    upper half of the range holds at least a quarter of them."""
    space = load_space().restricted_to("pow2")
    sizes = search_size_range(space, BUDGET)
    sampler = optuna.samplers.PartialFixedSampler({SIZE_PARAM: 0.0}, optuna.samplers.RandomSampler(seed=0))
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'q.db'}", directions=["maximize", "minimize"], sampler=sampler)

    def train(trial, candidate) -> TrialRecord:
        return TrialRecord(total_bytes=candidate.total_bytes, val=Accuracy(290, 300), test=Accuracy(290, 300))

    for position in (0.9, 0.95):  # queued before the run, as a dead worker's trials are on a resume
        study.enqueue_trial({SIZE_PARAM: position}, user_attrs={BAND_ATTR: 3})
    trials = 20
    run_trials(study, make_objective(space, BUDGET, train), trials, sizes)
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == trials
    assert not study.get_trials(states=(optuna.trial.TrialState.WAITING,))  # every queued trial ran, none is left over
    bands = [t.user_attrs[BAND_ATTR] for t in done]
    assert all(bands.count(band) >= math.floor(BAND_MIN_SHARE * trials) for band in range(SIZE_BANDS)), bands
    assert all(sizes.band(t.user_attrs[SIZE_ATTR]) == t.user_attrs[BAND_ATTR] for t in done)
    assert upper_half_share([t.user_attrs[SIZE_ATTR] for t in done], sizes) >= 0.25


def test_no_band_trial_is_queued_while_a_trial_waits():
    """A waiting trial (a dead worker's, queued again) runs next: a band trial queued beside it each
    time would keep as many trials waiting as there were when the run began, left over at its end
    (seen after kill -9 and a resume: two trials left waiting)."""
    from nas.study.trials import queue_band_quota

    sizes = SizeRange(1000, 16000)
    study = optuna.create_study(directions=["maximize", "minimize"])
    assert queue_band_quota(study, sizes) == 3  # an empty study: the first trial visits the largest band
    assert queue_band_quota(study, sizes) is None and len(study.trials) == 1  # it waits: nothing more is queued
    study.tell(study.ask(), [0.5, 1000.0])  # the queued trial runs
    assert queue_band_quota(study, sizes) == 2

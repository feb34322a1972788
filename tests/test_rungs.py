"""Multi-fidelity search (nas/study/rungs.py): a trial stops at a rung when a no-larger trial was at least
the margin more accurate there, once enough trials have reached it; stopped trials never reach the
front."""

from __future__ import annotations

import optuna
import pytest

from nas.cli.main import main
from nas.core.errors import NasError
from nas.study.record import read_records
from nas.study.rungs import RUNG_MIN_TRIALS, RungResult, RungRule
from nas.study.space import SPACES_DIR, load_space
from tests.conftest import search_argv

RULE = RungRule((5, 10, 20), (0.03, 0.02, 0.01))


def others(*points: tuple[float, int]) -> list[RungResult]:
    return [RungResult(number, accuracy, size) for number, (accuracy, size) in enumerate(points)]


def test_a_no_larger_trial_leading_by_the_margin_stops_it():
    field = others((0.90, 5000), (0.91, 5000), (0.92, 6000), (0.93, 7000), (0.96, 4000))
    assert RULE.beaten_by(20, 0.95, 4000, field).number == 4  # 0.96 at the same size: a point ahead
    assert RULE.beaten_by(20, 0.95, 3999, field) is None  # every leader is larger
    assert RULE.beaten_by(20, 0.951, 4000, field) is None  # 0.9 points ahead is not enough
    assert RULE.beaten_by(20, 0.80, 10_000, field).number == 4  # the most accurate of those that qualify


def test_a_larger_model_is_judged_only_by_trials_of_its_own_size_band():
    """Big models learn later: at epoch 5 a 4 kB model leads a 30 kB one by far, which says little
    about where the 30 kB one ends. With size bands, only no-larger trials of the same band stop it."""
    small = [RungResult(n, 0.95, 4000, band=0) for n in range(RUNG_MIN_TRIALS)]
    assert RULE.beaten_by(5, 0.60, 30_000, small, band=3) is None  # five leaders, all of another band
    assert RULE.beaten_by(5, 0.60, 30_000, small) is not None  # without bands they would stop it
    same = [RungResult(10 + n, 0.90, 25_000 + n, band=3) for n in range(RUNG_MIN_TRIALS)]
    assert RULE.beaten_by(5, 0.60, 30_000, small + same, band=3).number == 10  # its own band's leader stops it
    assert RULE.beaten_by(5, 0.60, 30_000, small + same[:-1], band=3) is None  # not before 5 of its band reached the rung


def test_each_rung_has_its_own_margin():
    field = others((0.90, 5000), (0.91, 5000), (0.92, 6000), (0.93, 7000), (0.96, 4000))
    assert RULE.beaten_by(10, 0.94, 4000, field).number == 4  # 2 points ahead: epoch 10's margin
    assert RULE.beaten_by(5, 0.94, 4000, field) is None  # epoch 5 asks for 3
    assert RULE.beaten_by(5, 0.93, 4000, field).number == 4
    assert RULE.beaten_by(10, 0.941, 4000, field) is None


def test_nobody_stops_before_enough_trials_reached_the_rung():
    field = others(*[(0.99, 100)] * (RUNG_MIN_TRIALS - 1))
    assert RULE.beaten_by(5, 0.5, 10_000, field) is None
    assert RULE.beaten_by(5, 0.5, 10_000, [*field, RungResult(99, 0.99, 100)]) is not None


def test_the_default_space_stops_at_epochs_5_10_and_20_by_margins_that_shrink():
    space = load_space()
    assert space.rung_rule() == RungRule((5, 10, 20), (0.08, 0.03, 0.01))
    from dataclasses import replace

    assert replace(space, epochs=10).rung_rule() == RungRule((5,), (0.08,))  # rungs at or past the last epoch never apply


def test_a_space_needs_one_margin_per_rung(tmp_path):
    path = tmp_path / "rungs.toml"
    path.write_text("[training]\nrungs = [10, 20]\n")
    expected = r"rungs.toml: training.rung_margins has 3 value\(s\), training.rungs 2; expected one margin per rung"
    with pytest.raises(NasError, match=expected):
        load_space(path)
    path.write_text("[training]\nrungs = [10, 20]\nrung_margins = [3, -1]\n")
    with pytest.raises(NasError, match=r"training.rung_margins"):
        load_space(path)
    path.write_text("[training]\nrungs = [10, 20]\nrung_margins = [3, 1]\n")
    assert load_space(path).rung_rule() == RungRule((10, 20), (0.03, 0.01))


@pytest.fixture(scope="module")
def rung_study(subset, tmp_path_factory):
    """Nine trials of one size (hidden fixed), two epochs, rungs at epoch 1, margin 0: every trial
    is 'no larger' than every other, so from the sixth on, one that is not the best so far at
    epoch 1 stops there."""
    folder = tmp_path_factory.mktemp("rungs")
    space = folder / "rungs.toml"
    smoke = (SPACES_DIR / "smoke.toml").read_text()
    smoke = smoke.replace("hidden = { min = 4, max = 12 }", "hidden = { min = 8, max = 8 }")
    space.write_text(smoke.replace("[training]\n", "[training]\nrungs = [1]\nrung_margins = [0]\n"))
    argv = search_argv(subset, folder, "--study", "r", "--workers", "1", "--trials", "9")
    argv[argv.index("smoke")] = str(space)
    assert main(argv) == 0
    study = optuna.load_study(study_name="r", storage=f"sqlite:///{folder / 'r' / 'study.db'}")
    return study, read_records(study)


def test_every_stop_and_every_continuation_follows_the_rule(rung_study):
    _, records = rung_study
    stopped = [r for r in records if r.stopped]
    assert stopped, "some trial of nine should be beaten at epoch 1"
    rule = RungRule((1,), (0.0,))
    for record in records:
        earlier = [RungResult(o.number, o.rung_accuracy["1"], o.total_bytes) for o in records if o.number < record.number]
        leader = rule.beaten_by(1, record.rung_accuracy["1"], record.total_bytes, earlier)
        if record.stopped:
            assert record.state == "pruned" and not record.over_budget
            assert record.stopped_at_epoch == 1 and record.epochs_run == 1 and record.val is None
            assert leader is not None and record.stopped_by == leader.number
            assert record.number >= RUNG_MIN_TRIALS
        else:
            assert leader is None, f"trial {record.number} should have stopped"
            assert record.state == "complete" and record.epochs_run == 2


def test_stopped_trials_count_towards_trials_and_stay_off_the_front(rung_study, capsys):
    study, records = rung_study
    assert sum(r.finished for r in records) == 9
    front = {t.number for t in study.best_trials}
    assert front and not front & {r.number for r in records if r.stopped}


def test_stopped_trials_are_shown_as_stopped_with_their_configuration(rung_study, tmp_path):
    import csv

    from nas.device.memory import Budget
    from nas.report.report import summarize_study, trial_line, write_front_files
    from nas.study.pareto import STOPPED, front_plot_data

    _, records = rung_study
    stopped = [r for r in records if r.stopped]
    budget = Budget.from_kb(4)
    placed = front_plot_data(records, budget).groups[STOPPED]
    assert {r.number for r in placed} == {r.number for r in stopped}
    assert all(r.stopped_accuracy == r.rung_accuracy["1"] for r in placed)
    summary = summarize_study("r", budget, "pow2", records)
    assert len(summary.stopped) == len(stopped)
    write_front_files(summary, tmp_path)
    rows = {int(row["trial"]): row for row in csv.DictReader((tmp_path / "trials.csv").open())}
    for record in stopped:
        row = rows[record.number]
        assert row["state"] == "pruned" and row["on_front"] == "False" and row["val_accuracy"] == ""
        assert row["cell"] == "gru" and int(row["hidden"]) == 8 and int(row["stopped_by"]) == record.stopped_by
        assert float(row["stopped_val_accuracy"]) == record.rung_accuracy["1"]
        expected = f"stopped at epoch 1 at {100 * record.rung_accuracy['1']:.2f}% val (fake-quantized model): trial {record.stopped_by}"
        assert expected in trial_line(record)

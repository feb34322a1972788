"""The Pareto front, selection, hypervolume and the chart's data and axis, on hand-made records."""

from __future__ import annotations

import json
import math
import re

import optuna
import pytest

from nas.core.stats import Accuracy
from nas.device.memory import KB, Budget, memory_breakdown
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.report.figures import front_figure
from nas.report.report import summarize_study, write_front_files
from nas.report.studypage import study_page
from nas.study.pareto import (
    DOMINATED,
    FRONT,
    OVER_PRUNED,
    OVER_TRAINED,
    STOPPED,
    classify,
    front_hypervolume,
    front_plot_data,
    history_plot_data,
    hypervolume,
    log_ticks,
    pareto_front,
    select_best,
)
from nas.study.record import TrialRecord
from nas.study.settings import SearchOptions, StudyLocation, StudySettings
from nas.study.space import load_space
from nas.study.storage import DIRECTIONS, open_study


def trained(number: int, correct: int, hidden: int, test_correct: int | None = None) -> TrialRecord:
    """A trained GRU trial of a given size whose validation accuracy is correct/300."""
    model, quant = ModelConfig(hidden=hidden), QuantConfig.make("pow2", 4)
    memory = memory_breakdown(model, quant, None).to_dict()
    return TrialRecord(
        number=number,
        total_bytes=memory["total_bytes"],
        model_config=model,
        quant_config=quant,
        memory=memory,
        val=Accuracy(correct, 300),
        test=Accuracy(correct if test_correct is None else test_correct, 300),
    )


def pruned(number: int, total_bytes: int) -> TrialRecord:
    return TrialRecord(number=number, state="pruned", total_bytes=total_bytes, over_budget=True)


RECORDS = [
    trained(0, 290, 16),  # front: the smallest
    trained(1, 280, 24),  # dominated by 0: larger and less accurate
    trained(2, 295, 32),  # front
    trained(3, 295, 48),  # dominated by 2: as accurate, larger
    trained(4, 299, 64),  # front: the most accurate within 9,400 B
    TrialRecord(number=9, state="fail", total_bytes=2_000),  # killed while training: sized, never scored
    trained(5, 300, 128),  # over the budget below
    pruned(6, 50_000),
    TrialRecord(number=7, state="fail"),
    trained(8, 292, 32),  # as large as 2 and less accurate: dominated
]
BUDGET = Budget(9_400)


def test_front_keeps_only_undominated_trials_within_the_budget():
    assert memory_breakdown(ModelConfig(hidden=64), QuantConfig.make("pow2", 4), None).total_bytes <= BUDGET.limit_bytes
    assert [r.number for r in pareto_front(RECORDS, BUDGET)] == [0, 2, 4]
    assert [r.number for r in pareto_front(RECORDS, Budget(10**6))] == [0, 2, 4, 5]
    assert pareto_front([r for r in RECORDS if r.number in (1, 3)], BUDGET)[0].number == 1  # no 0 and 2: 1 is undominated


def test_best_is_the_most_accurate_within_the_limit():
    assert select_best(RECORDS, BUDGET).number == 4
    assert select_best(RECORDS, Budget(trained(3, 0, 48).total_bytes)).number == 2  # 3 ties 2 on accuracy but is larger
    assert select_best([*RECORDS, trained(10, 299, 64)], BUDGET).number == 4  # an identical later trial: the earlier
    assert select_best(RECORDS, Budget(100)) is None


def test_budget_scope_weights_counts_only_the_packed_constants():
    record = trained(0, 290, 64)
    packed = record.memory["weight_bytes"] + record.memory["bias_bytes"] + record.memory["meta_bytes"]
    assert packed < record.total_bytes
    assert pareto_front([record], Budget(packed, "weights")) == [record]
    assert pareto_front([record], Budget(packed, "total")) == []


def test_front_agrees_with_optunas_best_trials_on_a_study_opened_by_the_search(tmp_path):
    """open_study's directions are (maximise accuracy, minimise bytes): Optuna's own Pareto front of
    the study is then the front that nas computes."""
    options = SearchOptions(budget=Budget(10**6), space=load_space(), location=StudyLocation("d", None, tmp_path))
    study = open_study(options)
    assert study.directions == DIRECTIONS == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    records = [r for r in RECORDS if r.trained]
    for record in records:
        study.add_trial(
            optuna.trial.create_trial(values=list(record.objectives()), params={}, distributions={}, user_attrs=record.user_attrs())
        )
    read_back = [TrialRecord.from_trial(t) for t in study.trials]
    assert {t.number for t in study.best_trials} == {r.number for r in pareto_front(read_back, Budget(10**6))} == {0, 2, 4, 5}


def test_record_round_trips_through_user_attributes():
    record = trained(3, 287, 40, test_correct=291)
    trial = optuna.trial.create_trial(
        values=list(record.objectives()),
        params={"learning_rate": 0.003},
        distributions={"learning_rate": optuna.distributions.FloatDistribution(0.001, 0.01)},
        user_attrs=record.user_attrs(),
    )
    again = TrialRecord.from_trial(trial)
    assert again.val == Accuracy(287, 300) and again.test == Accuracy(291, 300)
    assert again.model_config == record.model_config and again.quant_config == record.quant_config
    assert again.objectives() == (287 / 300, float(record.total_bytes))
    assert again.params == {"learning_rate": 0.003} and again.memory == record.memory


def test_hypervolume():
    assert hypervolume([], 100) == 0
    assert hypervolume([(1.0, 0)], 100) == pytest.approx(1.0)
    assert hypervolume([(0.5, 50), (1.0, 200)], 100) == pytest.approx(0.25)  # the second is over budget
    assert hypervolume([(0.5, 0), (0.9, 50)], 100) == pytest.approx(0.5 * 0.5 + 0.9 * 0.5)
    assert hypervolume([(0.9, 50), (0.5, 60)], 100) == pytest.approx(0.9 * 0.5)  # a dominated point adds nothing
    # not even a rounding: split in two, the front's step summed to 0.3419872340425532, not 0.34198723404255316
    assert hypervolume([(0.86, 5662), (0.85, 9134)], 9400) == hypervolume([(0.86, 5662)], 9400)


def test_plot_groups():
    groups = classify(RECORDS, BUDGET)
    assert {name: [r.number for r in rows] for name, rows in groups.items()} == {
        DOMINATED: [1, 8, 3],
        OVER_TRAINED: [5],
        FRONT: [0, 2, 4],
        OVER_PRUNED: [6],
        STOPPED: [],  # stopped trials: tests/test_rungs.py
    }


def test_chart_puts_the_budget_label_at_the_budget_on_its_log_axis(tmp_path):
    """plotly reads an annotation's x on a log axis in log10 units (a shape's in data units)."""
    data = front_plot_data(RECORDS, BUDGET)
    figure = front_figure(data, "t")
    budget_kb = BUDGET.limit_bytes / KB
    assert figure.layout.xaxis.type == "log"
    (label,) = [a for a in figure.layout.annotations if a.xref == "x"]
    assert 10**label.x == pytest.approx(budget_kb)
    (line,) = figure.layout.shapes
    assert line.x0 == pytest.approx(budget_kb)
    low, high = (10**v for v in figure.layout.xaxis.range)
    sizes = [r.total_bytes / KB for rows in data.groups.values() for r in rows]
    largest = max([*sizes, budget_kb])
    assert low < min(sizes) and largest < high < 2 * largest
    assert "budget" in label.text and "kB" in figure.layout.xaxis.title.text
    # the page that `nas search` writes carries the same layout
    summary = summarize_study("t", BUDGET, "pow2", RECORDS)
    write_front_files(summary, tmp_path)
    settings = StudySettings(BUDGET.limit_bytes, BUDGET.scope, "pow2", "official", 0, "tpe", {})
    page = study_page(summary, settings).html()
    front_div = page[page.index('id="figure-front"') :]
    layout = json.loads(re.search(r'"annotations":(\[.*?\])', front_div).group(1))
    assert math.isclose(10 ** layout[0]["x"], budget_kb)
    front = json.loads((tmp_path / "pareto.json").read_text())["front"]
    assert [row["trial"] for row in front] == [0, 2, 4]


def test_an_empty_study_still_has_a_chart_range_around_its_budget():
    data = front_plot_data([], BUDGET)
    assert all(rows == [] for rows in data.groups.values())
    low, high = data.x_range_kb
    assert low < BUDGET.limit_bytes / KB < high < 2 * BUDGET.limit_bytes / KB
    assert low > BUDGET.limit_bytes / KB / 1.5  # the axis hugs the points, not the origin


def test_front_hypervolume_uses_the_trained_trials_within_the_budget():
    inside = [r for r in RECORDS if r.trained and r.total_bytes <= BUDGET.limit_bytes]
    assert front_hypervolume(RECORDS, BUDGET) == hypervolume([(r.val.value, r.total_bytes) for r in inside], BUDGET.limit_bytes)
    with_test = [trained(0, 290, 16, test_correct=240)]
    assert front_hypervolume(with_test, BUDGET, "test") == pytest.approx(0.8 * (1 - with_test[0].total_bytes / BUDGET.limit_bytes))
    assert front_hypervolume([], BUDGET) == 0.0


def test_a_trial_still_being_written_reads_as_unscored():
    """The progress line reads trials while a worker writes a record's attributes one by one."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    for key, value in [("total_bytes", 2000), ("val_correct", 290), ("test_correct", 288)]:  # val_total, test_total not yet
        trial.set_user_attr(key, value)
    record = TrialRecord.from_trial(study.trials[0])
    assert record.state == "running" and record.val is None and record.test is None and not record.trained
    assert pareto_front([record], BUDGET) == [] and classify([record], BUDGET)[OVER_PRUNED] == []


def test_history_follows_the_best_within_the_budget_trial_by_trial():
    history = history_plot_data(RECORDS, BUDGET)
    finished = sorted((r for r in RECORDS if r.finished), key=lambda r: r.number)
    assert history.trial_numbers == [r.number for r in finished]
    for index, number in enumerate(history.trial_numbers):
        so_far = [r for r in finished if r.number <= number]
        best = select_best(so_far, BUDGET)
        assert history.best_trial[index] == (best.number if best else None)
        assert history.best_score[index] == (best.val.value if best else None)
        assert history.hypervolume[index] == front_hypervolume(so_far, BUDGET)
    assert history.hypervolume == sorted(history.hypervolume)  # never falls
    over = [r.number for r in RECORDS if r.trained and not r.within(BUDGET)]
    assert over and all(b not in over for b in history.best_trial)


def test_log_axis_ticks_are_round_values_inside_the_range():
    assert log_ticks((2.4, 45.0)) == [3, 5, 10, 20, 30]
    assert log_ticks((0.8, 2.5)) == pytest.approx([1, 2])
    low, high = front_plot_data(RECORDS, BUDGET).x_range_kb
    figure = front_figure(front_plot_data(RECORDS, BUDGET), "t")
    assert list(figure.layout.xaxis.tickvals) == log_ticks((low, high))
    assert all(text.endswith(" kB") for text in figure.layout.xaxis.ticktext)


def test_compute_chart_keeps_the_accuracy_mips_front_and_the_page_shows_mips(tmp_path):
    """The accuracy-against-MIPS chart's data: trained trials within the budget with a prediction,
    the front the ones no other beats for fewer MIPS; the table's MIPS column and the hover line."""
    from dataclasses import replace

    from nas.features.extract import FeatureConfig
    from nas.report.figures import compute_figure, hover_text
    from nas.study.pareto import COMPUTE_FRONT, COMPUTE_OTHER, compute_plot_data

    features = FeatureConfig()  # a 10 ms hop: 100,000 instructions per frame are 10 MIPS
    instructions = {0: 300_000, 1: 100_000, 2: 200_000, 3: 400_000, 4: 500_000, 5: 50_000, 8: 150_000}
    records = [
        replace(r, instructions_per_frame=instructions.get(r.number), feature_config=features) if r.number in instructions else r
        for r in RECORDS
    ]
    data = compute_plot_data(records, Budget(9_400, mcu_mhz=48))
    # 1 (10 MIPS, 280 of 300) is the cheapest, 8 (15 MIPS, 292), 2 (20, 295) and 4 (50, 299) each more accurate;
    # 0 (30, 290) and 3 (40, 295) are beaten for fewer MIPS; 5 (5 MIPS) is over the budget
    assert [r.number for r in data.groups[COMPUTE_FRONT]] == [1, 8, 2, 4]
    assert [r.number for r in data.groups[COMPUTE_OTHER]] == [0, 3]
    assert data.mcu_mhz == 48
    figure = compute_figure(data, "t")
    assert list(figure.data[1].x) == [10.0, 15.0, 20.0, 50.0]
    assert "20.0 MIPS for real time" in hover_text(records[2]) and "200,000 instructions per frame" in hover_text(records[2])
    settings = StudySettings(9_400, "total", "pow2", "official", 0, "tpe", {})
    text = study_page(summarize_study("s", BUDGET, "pow2", records), settings).html()
    assert 'id="figure-compute"' in text and "<th>MIPS</th>" in text.replace(' class="num"', "")
    # a study from before the compute model: no chart, a note
    text = study_page(summarize_study("s", BUDGET, "pow2", RECORDS), settings).html()
    assert 'id="figure-compute"' not in text and "has a compute prediction" in text

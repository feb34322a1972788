"""Confirming the front (nas.study.confirm): seed means, the confirmed front, the export seed, the
candidates, resuming; and a confirmed smoke search end to end (reports, export)."""

from __future__ import annotations

import argparse
import json
import tomllib
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from nas.bundle.selection import select_export
from nas.cli.options import parse_confirm_seeds
from nas.core.errors import NasError
from nas.core.stats import Accuracy
from nas.device.memory import Budget
from nas.features.extract import FeatureConfig
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.study.confirm import (
    ConfirmJob,
    ConfirmRun,
    ConfirmSettings,
    candidates,
    checkpoint_path,
    confirm_jobs,
    confirmed_front,
    confirmed_points,
    plan_confirmation,
    remaining_jobs,
    select_confirmed,
)
from nas.study.record import TrialRecord
from nas.training.recipe import TrainConfig
from tests.conftest import REPO, search_argv

BUDGET = Budget(40_000)


def record(number: int, val_correct: int, total_bytes: int, band: int | None = None) -> TrialRecord:
    return TrialRecord(
        number=number,
        params={"learning_rate": 0.003},
        total_bytes=total_bytes,
        model_config=ModelConfig(hidden=16 + number),
        quant_config=QuantConfig("pow2", 4),
        feature_config=FeatureConfig(),
        val=Accuracy(val_correct, 300),
        test=Accuracy(val_correct, 300),
        scored_by="integer engine",
        size_band=band,
    )


def run(trial: int, seed: int, val_correct: int, test_correct: int = 280, split: str = "official") -> ConfirmRun:
    val, test = Accuracy(val_correct, 300), Accuracy(test_correct, 300)
    return ConfirmRun(trial, split, seed, val, test, "integer engine", 10, 1.0, f"c{trial}-{seed}")


def attrs(*runs: ConfirmRun) -> dict:
    return {r.job.key: r.to_dict() for r in runs} | {"settings": {"unrelated": 1}}


def test_confirmed_front_is_computed_on_the_seed_means():
    # trial 1 is the lucky draw: its own validation (297) beats trial 0's (290) at the same size
    # class, but its seeds average 285, below trial 0's 290 and larger: confirmed, it is dominated.
    records = [record(0, 290, 10_000), record(1, 297, 20_000)]
    stored = attrs(run(0, 0, 290), run(0, 1, 291), run(0, 2, 289), run(1, 0, 280), run(1, 1, 285), run(1, 2, 290))
    points = confirmed_points(records, stored, "official")
    assert [p.record.number for p in points] == [0, 1]
    assert points[1].mean("val")[0] == pytest.approx(100 * 285 / 300)
    low, high = points[1].mean("val")[1:]
    assert low < 100 * 285 / 300 < high
    assert [p.record.number for p in confirmed_front(points, BUDGET)] == [0]
    assert select_confirmed(points, BUDGET).record.number == 0


def test_export_takes_the_seed_closest_to_the_mean_on_validation_not_test():
    # seeds' validation 270 / 285 / 300 (mean 285): seed 1. Seed 2 has the best test, seed 0 the one nearest the test mean.
    points = confirmed_points([record(0, 290, 10_000)], attrs(run(0, 0, 270, 260), run(0, 1, 285, 250), run(0, 2, 300, 299)), "official")
    assert points[0].export_run().seed == 1
    chosen, point = select_export([record(0, 290, 10_000)], points, BUDGET, None, None, "s")
    assert point is points[0] and chosen.checkpoint == "c0-1" and chosen.val == Accuracy(285, 300)


def test_export_best_is_the_best_confirmed_point_not_the_best_draw():
    records = [record(0, 290, 10_000), record(1, 297, 20_000)]
    stored = attrs(run(0, 0, 290), run(0, 1, 292), run(1, 0, 280), run(1, 1, 282))
    points = confirmed_points(records, stored, "official")
    chosen, point = select_export(records, points, BUDGET, None, None, "s")
    assert chosen.number == 0 and point.record.number == 0
    # by number, a confirmed trial is still exported as its mean seed; an unconfirmed one as itself
    chosen, point = select_export(records, points, BUDGET, 1, None, "s")
    assert chosen.checkpoint in ("c1-0", "c1-1") and point.record.number == 1
    chosen, point = select_export([*records, record(2, 250, 5_000)], points, BUDGET, 2, None, "s")
    assert point is None and chosen.number == 2


def test_candidates_take_the_best_of_each_size_band_first():
    # a front of 5 points over 3 bands; 3 points to confirm: the best of each band, not the 3 most accurate
    front = [record(0, 270, 4_000, 0), record(1, 280, 6_000, 0), record(2, 285, 12_000, 1), record(3, 290, 25_000, 2),
             record(4, 295, 30_000, 2)]  # fmt: skip
    chosen = candidates(front, BUDGET, 3)
    assert [r.number for r in chosen] == [1, 2, 4]
    assert [r.number for r in candidates(front, BUDGET, 4)] == [1, 2, 3, 4]
    assert [r.number for r in candidates(front, BUDGET, 2)] == [2, 4]


def test_an_interrupted_confirmation_resumes_with_the_runs_it_lacks():
    chosen = [record(0, 290, 10_000), record(1, 295, 20_000)]
    jobs = confirm_jobs(chosen, ConfirmSettings(seeds=3, folds=2), "official", ["george", "nicolas"])
    assert len(jobs) == 2 * (3 + 2)
    assert ConfirmJob(0, "speaker:nicolas", 0) in jobs and ConfirmJob(0, "speaker:nicolas", 1) not in jobs
    done = attrs(run(0, 0, 290), run(0, 1, 291), run(1, 0, 280, split="speaker:george"))
    left = remaining_jobs(jobs, done)
    assert len(left) == len(jobs) - 3 and ConfirmJob(0, "official", 2) in left and ConfirmJob(0, "official", 0) not in left


def test_held_out_figure_pools_the_folds_files():
    runs = [run(0, 0, 290), run(0, 1, 291), run(0, 0, 0, 400, "speaker:george"), run(0, 0, 0, 200, "speaker:nicolas")]
    runs = [replace(r, test=Accuracy(r.test.correct, 500)) if r.split != "official" else r for r in runs]
    point = confirmed_points([record(0, 290, 10_000)], attrs(*runs), "official")[0]
    assert point.held_out()[0] == pytest.approx(60.0) and point.held_out_speakers == ("george", "nicolas")


def test_one_run_is_not_a_confirmation():
    # an interrupted confirmation with one seed done: the point is not confirmed yet, and 1 is refused
    assert confirmed_points([record(0, 290, 10_000)], attrs(run(0, 0, 290)), "official") == []
    assert len(confirmed_points([record(0, 290, 10_000)], attrs(run(0, 0, 290), run(0, 1, 280)), "official")) == 1
    with pytest.raises(NasError, match="--confirm-seeds 1"):
        ConfirmSettings(seeds=1)
    with pytest.raises(argparse.ArgumentTypeError, match="got 1"):
        parse_confirm_seeds("1")
    assert parse_confirm_seeds("0") == 0 and parse_confirm_seeds("2") == 2


def test_a_speaker_split_study_keeps_its_own_runs_as_seeds_with_checkpoints_not_as_folds():
    split = "speaker:george"
    points = confirmed_points([record(0, 290, 10_000)], attrs(run(0, 0, 290, split=split), run(0, 1, 280, split=split)), split)
    assert len(points) == 1 and len(points[0].runs) == 2 and points[0].held_out() is None
    settings = SimpleNamespace(split=split, budget=BUDGET, space={})
    _, tasks = plan_confirmation([record(0, 290, 10_000)], {}, settings, ConfirmSettings(seeds=2, folds=2, points=1), Path("d"), Path("s"))
    assert [t.job.split for t in tasks] == [split, split]  # no folds on a speaker split
    assert all(checkpoint_path(t) is not None for t in tasks)
    fold = replace(tasks[0], job=ConfirmJob(0, "speaker:nicolas", 0), study_split="official")
    assert checkpoint_path(fold) is None and checkpoint_path(replace(fold, study_split="speaker:nicolas")) is not None


def test_export_max_kb_below_every_confirmed_point_takes_the_best_unconfirmed_trial():
    records = [record(0, 290, 10_000), record(1, 297, 20_000), record(2, 250, 3_000)]
    points = confirmed_points(records, attrs(run(0, 0, 290), run(0, 1, 292), run(1, 0, 280), run(1, 1, 282)), "official")
    chosen, point = select_export(records, points, BUDGET, None, 5, "s")
    assert point is None and chosen.number == 2


def test_the_default_space_trains_the_full_recipe_of_nas_train():
    """A confirmed point's figures are what `nas train` of its configuration gives: the default space's
    top fidelity is TrainConfig's defaults."""
    training = tomllib.loads((REPO / "nas" / "spaces" / "default.toml").read_text())["training"]
    recipe = TrainConfig()
    assert (training["epochs"], training["patience"], training["wave_copies"]) == (recipe.epochs, recipe.patience, recipe.wave_copies)


def test_a_confirmed_search_reports_and_exports_the_means(subset, tmp_path):
    from nas.cli.main import main

    results = tmp_path / "results"
    argv = search_argv(subset, results, "--study", "c", "--workers", "2", "--trials", "2")
    assert main([*argv, "--confirm-seeds", "2", "--confirm-folds", "1", "--confirm-points", "1"]) == 0
    document = json.loads((results / "c" / "pareto.json").read_text())
    (point,) = document["confirmed"]
    assert point["seeds"] == [0, 1] and point["held_out_speakers"] == ["george"] and point["on_confirmed_front"]
    assert point["val_mean"] == pytest.approx(sum(point["val_per_seed"]) / 2)
    assert "on_confirmed_front" in (results / "c" / "pareto.csv").read_text().splitlines()[0]
    assert "Confirmed points" in (results / "c" / "report.html").read_text()
    assert main(["export", "--best", "--study", "c", "--results-dir", str(results), "--no-measure", "--data-dir", str(subset)]) == 0
    folder = results / "c" / "exports" / f"trial-{point['trial']:04d}"
    model = json.loads((folder / "model.json").read_text())
    assert model["confirmed"]["exported_seed"] == point["exported_seed"]
    assert "**Confirmed** over seeds 0, 1" in (folder / "README.md").read_text()
    # nothing left to run: a second confirmation trains nothing and changes nothing
    assert main(["pareto", "--confirm", "--study", "c", "--results-dir", str(results), "--confirm-seeds", "2", "--confirm-folds", "1",
                 "--confirm-points", "1", "--data-dir", str(subset)]) == 0  # fmt: skip
    assert json.loads((results / "c" / "pareto.json").read_text())["confirmed"] == document["confirmed"]

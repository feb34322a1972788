"""The search: space files, budget pruning, a short real search whose objective is recomputed,
resume (new trials, same settings), determinism, Ctrl-C."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from nas.cli.main import main
from nas.core import limits
from nas.core.errors import NasError
from nas.core.stats import Accuracy
from nas.data.dataset import load_split
from nas.device.compute import TOLERANCE, largest_hidden_in_real_time, predict_instructions
from nas.device.memory import MEMORY_MODEL_VERSION, Budget, memory_breakdown
from nas.engine.intmodel import from_float_model
from nas.features.extract import FeatureCache, FeatureConfig, Normaliser, build_feature_set
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.study.record import TrialRecord
from nas.study.settings import SearchOptions, StudyLocation
from nas.study.space import DEFAULT_SPACE, SPACES_DIR, load_space, resolve_space_path
from nas.study.storage import open_study
from nas.study.trials import OverBudget, make_sampler, sample_candidate
from nas.training.checkpoint import load_checkpoint, model_from_checkpoint
from tests.conftest import REPO, search_argv


def load(results: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{results / name / 'study.db'}")


def test_default_space_file_loads():
    space = load_space()
    assert space.cells == ("gru", "lstm") and space.weights == ("pow2", "fixed") and space.hidden_min == 16
    assert space.restricted_to("pow2").weights == ("pow2",)
    assert space.restricted_to("any").weights == ("float", "fixed", "pow2")
    assert load_space(DEFAULT_SPACE) == space


def test_default_space_sets_every_key_and_ships_with_the_package():
    """The one definition of the default: a file inside the package (so a wheel carries it, by
    the package data of pyproject.toml), setting every key; the project's search_spaces/ links it."""
    document = tomllib.loads(DEFAULT_SPACE.read_text())
    assert {f"{table}.{key}" for table, keys in document.items() for key in keys} == set(load_space().values())
    assert DEFAULT_SPACE.parent.parent == Path(__import__("nas").__file__).parent
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "nas" in setuptools["packages"]["find"]["include"]
    assert any(DEFAULT_SPACE.match(f"nas/{p}") for p in setuptools["package-data"]["nas"])
    assert (REPO / "search_spaces" / "default.toml").resolve() == DEFAULT_SPACE.resolve()


def test_a_space_file_overrides_only_the_keys_it_sets(tmp_path):
    path = tmp_path / "narrow.toml"
    path.write_text("[architecture]\ncells = ['lstm']\n")
    narrow, default = load_space(path), load_space()
    assert narrow.cells == ("lstm",) and replace(narrow, cells=default.cells, source=default.source) == default
    assert resolve_space_path("smoke") == SPACES_DIR / "smoke.toml" and load_space(resolve_space_path("smoke")).epochs == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[architecture\ncells = [", "not valid TOML"),
        ("[architecture]\ncolour = 3\n", "unknown key 'architecture.colour'"),
        ("[model]\ncells = ['gru']\n", "unknown table [model]"),
        ("[architecture]\ncells = []\n", "key 'architecture.cells' = []; expected a non-empty list"),
        ("[architecture]\ncells = ['transformer']\n", "key 'architecture.cells'"),
        ("[architecture]\nhidden = { min = 64, max = 8 }\n", "key 'architecture.hidden'"),
        ("[formats]\npow2_bits = [2]\n", "key 'formats.pow2_bits'"),
        ("[training]\nepochs = 0\n", f"key 'training.epochs' = 0; expected {limits.EPOCHS.expected()}"),
        ("[training]\nlearning_rate = { min = 0.01 }\n", "key 'training.learning_rate'"),
    ],
)
def test_bad_space_files_name_file_and_key(tmp_path, capsys, content, expected):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(NasError, match=r"bad\.toml") as caught:
        load_space(path)
    assert expected in str(caught.value)
    assert main(["search", "--budget-kb", "36", "--space", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err


def test_over_budget_is_pruned_before_anything_else():
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(0))
    trial = study.ask()
    started = time.perf_counter()
    with pytest.raises(OverBudget) as caught:
        sample_candidate(trial, load_space(), Budget(300))
    assert time.perf_counter() - started < 0.05
    assert caught.value.total_bytes > 300


def test_the_largest_draw_is_the_largest_that_fits_with_the_front_end():
    """size_fraction 1 draws the solver's answer for the sampled front-end: the device's bytes,
    front-end and buffers included, are within the budget and one unit more is not."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    params = {"cell": "gru", "layers": 1, "n_mfcc": 13, "n_mels": 40, "n_fft": 256, "hop_length": 80, "weights": "pow2"}
    study.enqueue_trial(params | {"pow2_bits": 4, "state_bits": 16, "size_fraction": 1.0, "learning_rate": 0.004})
    candidate = sample_candidate(study.ask(), load_space(DEFAULT_SPACE), Budget(12 * 1024))
    quant, features = candidate.quant, candidate.features
    assert features == FeatureConfig(n_mfcc=13, n_mels=40, n_fft=256, hop_length=80, frontend="integer")
    assert candidate.total_bytes == memory_breakdown(candidate.model, quant, features).total_bytes <= 12 * 1024
    assert memory_breakdown(candidate.model.with_hidden(candidate.model.hidden + 1), quant, features).total_bytes > 12 * 1024


def test_default_space_rarely_samples_over_budget():
    """The hidden size is drawn within what fits, so (almost) no trial is wasted at 36 kB."""
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(0, "random"))
    space, over, sizes = load_space(DEFAULT_SPACE), 0, []
    for _ in range(300):
        trial = study.ask()
        try:
            candidate = sample_candidate(trial, space, Budget(36 * 1024))
            sizes.append(candidate.total_bytes)
            study.tell(trial, [0.5, candidate.total_bytes])
        except OverBudget:
            over += 1
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    assert over / 300 <= 0.2
    assert max(sizes) <= 36 * 1024 and min(sizes) < 6 * 1024  # the whole range is explored (a device front-end is ~4 kB)


def test_search_writes_the_front_files(searched, capsys):
    folder = searched / "s"
    front = json.loads((folder / "pareto.json").read_text())["front"]
    assert front and all(row["total_bytes"] <= 4096 for row in front)
    assert (folder / "pareto.csv").read_text().startswith("trial,")
    with (folder / "pareto.csv").open() as handle:
        assert [int(row["trial"]) for row in csv.DictReader(handle)] == [row["trial"] for row in front]
    # every trial, front or not, trained or not, with where it stands
    with (folder / "trials.csv").open() as handle:
        trials = list(csv.DictReader(handle))
    study = load(searched, "s")
    assert [int(row["trial"]) for row in trials] == [t.number for t in study.trials]
    assert {int(row["trial"]) for row in trials if row["on_front"] == "True"} == {row["trial"] for row in front}
    for row, trial in zip(trials, study.trials, strict=True):
        assert row["state"] == trial.state.name.lower()
        if row["state"] == "complete":
            assert float(row["val_accuracy"]) == trial.values[0] and float(row["val_ci95_low"]) <= float(row["val_accuracy"])
    assert "All trials (3)" in (folder / "report.html").read_text()
    assert all(Path(row["checkpoint"]).is_file() for row in front)
    assert main(["pareto", "--study", "s", "--results-dir", str(searched)]) == 0
    out = capsys.readouterr().out
    assert "Pareto front of 's'" in out and "trials.csv, report.html" in out
    assert "this run" not in out  # a report of a stored study does not time a search that did not run


def test_studies_lists_each_study_with_its_best_point(searched, tmp_path, capsys):
    assert main(["studies", "--results-dir", str(searched)]) == 0
    out = capsys.readouterr().out
    study = load(searched, "s")
    best = max((t for t in study.best_trials), key=lambda t: (t.values[0], -t.number))
    assert "Studies under" in out and "│ s " in out and "4.00 kB (4,096 B)" in out
    assert f"trial {best.number}: {100 * best.values[0]:.2f}% val" in out
    assert main(["studies", "--results-dir", str(tmp_path)]) == 0
    assert f"no studies under {tmp_path}" in capsys.readouterr().out


def test_objective_is_the_integer_engines_validation_accuracy(searched, subset):
    """Each trial's first value, recomputed from its checkpoint: the integer engine on the
    validation part; the test part is stored apart and is not the objective."""
    study = load(searched, "s")
    split, waveforms = load_split(subset, "official")
    differ = 0
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        record = TrialRecord.from_trial(trial)
        checkpoint = load_checkpoint(Path(record.checkpoint))
        engine = from_float_model(model_from_checkpoint(checkpoint), record.quant_config)
        features = build_feature_set(
            split,
            waveforms,
            FeatureConfig(**checkpoint["feature_config"]),
            FeatureCache(None),
            Normaliser.from_dict(checkpoint["normaliser"]),
        )
        scores, confusion = {}, {}
        for part in ("val", "test"):
            frames, labels = features.part(part)
            predicted = engine.predict(frames)[1]
            scores[part] = Accuracy(int((predicted == labels).sum()), len(labels))
            confusion[part] = [[int(((labels == s) & (predicted == p)).sum()) for p in range(10)] for s in range(10)]
        # the stored matrices, by the same engine: rows the spoken digit (the report draws them)
        assert record.val_confusion == confusion["val"] and record.test_confusion == confusion["test"]
        assert trial.values[0] == scores["val"].value and record.val == scores["val"]
        assert record.test == scores["test"] and record.scored_by == "integer engine"
        assert trial.values[1] == record.total_bytes == record.memory["total_bytes"]
        differ += scores["val"] != scores["test"]
    assert differ, "every trial scored the same on val and test: the check above could not tell them apart"


def test_speaker_folds_select_on_new_voices(subset, tmp_path, capsys):
    """With --speaker-folds 2 a trial also trains on the folds speaker:george and speaker:nicolas;
    its objective is their validation speakers' files pooled (jackson and theo), the held-out
    speakers' files are stored apart, and the front table shows both beside the official test."""
    argv = search_argv(subset, tmp_path, "--study", "f", "--workers", "1", "--trials", "1", "--speaker-folds", "2")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "new voices: held-out test" in out
    (trial,) = load(tmp_path, "f").get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    record = TrialRecord.from_trial(trial)
    per_speaker = len(list(subset.glob("*_jackson_*.wav")))
    assert record.held_out_speakers == ("george", "nicolas")
    assert record.speaker_val.total == record.speaker_test.total == 2 * per_speaker
    assert trial.values[0] == record.score.value == record.speaker_val.value
    assert record.val.total == len(load_split(subset, "official")[0].val)  # the official validation part is still scored
    assert record.speaker_val != record.val  # otherwise the objective check above could not tell them apart


def test_speaker_folds_need_the_official_split(subset, tmp_path, capsys):
    argv = search_argv(subset, tmp_path, "--trials", "1", "--speaker-folds", "2", "--split", "speaker:theo")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == "nas: error: --speaker-folds 2: needs --split official (the folds hold out speakers themselves)"


def test_resume_continues_with_new_trials(subset, tmp_path, capsys):
    """A second run of the same command adds trials (the first run's stay as they were), and
    their sampled parameters are new, not a replay of the first run's. Each run prints a line
    for each trial it finished, and only for those."""
    argv = search_argv(subset, tmp_path, "--study", "r", "--workers", "1")
    assert main([*argv, "--trials", "2"]) == 0
    first = {t.number: (t.params, t.values) for t in load(tmp_path, "r").trials}
    out = capsys.readouterr().out
    record = TrialRecord.from_trial(load(tmp_path, "r").trials[1])
    assert f"trial 1: {record.describe()}" in out and f"val {100 * record.val.value:.2f}%, test {100 * record.test.value:.2f}%" in out
    assert "estimate: about" in out and "an epoch measured here: GRU 1x" in out  # a new study is timed before it starts
    assert main([*argv, "--trials", "4", "--timeout", "600"]) == 0  # --trials and --timeout may change
    out = capsys.readouterr().out
    assert "2 of 4 trials already finished" in out
    assert "estimate: about" in out and "this study's 2 trained trials" in out  # a resumed one from its own trials
    assert main([*argv, "--trials", "2"]) == 0
    assert "estimate:" not in capsys.readouterr().out  # nothing left to run
    assert "trial 2: " in out and "trial 3: " in out and "trial 0: " not in out and "trial 1: " not in out
    trials = load(tmp_path, "r").trials
    assert len(trials) == 4 and {t.number: (t.params, t.values) for t in trials if t.number in first} == first
    for new in trials[2:]:
        assert all(new.params != old for old, _ in first.values()), new.params


def test_a_resumed_run_seeds_its_samplers_anew():
    """The sampler of a run is seeded with the trials the study already holds (and the worker's
    index): a resumed run draws other start-up configurations than the first run did, and the
    same run again draws the same ones. (The end-to-end resume above also gets new parameters
    from the size quota's queued trials, so it cannot see a replay of the sampler by itself.)"""
    from nas.study.trials import sampler_seed

    space, budget = load_space(DEFAULT_SPACE), Budget(36 * 1024)

    def draws(trials_before: int, worker: int = 0) -> list[dict]:
        sampler = make_sampler(sampler_seed(0, worker, trials_before))
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        trials = [study.ask() for _ in range(3)]
        for trial in trials:
            sample_candidate(trial, space, budget)
        return [t.params for t in trials]

    first = draws(0)
    assert draws(0) == first  # one run is reproducible
    for other in (draws(2), draws(0, worker=1)):  # a resumed run, another worker
        assert all(new != old for new in other for old in first)


STORED = {
    "--weights": ["--weights", "fixed"],
    "--split": ["--split", "speaker:theo"],
    "--budget-scope": ["--budget-scope", "weights"],
    "--seed": ["--seed", "1"],
    "--sampler": ["--sampler", "random"],
    "--budget-kb": ["--budget-kb", "5"],
    "--flash-kb": ["--flash-kb", "30"],
    "--ram-kb": ["--ram-kb", "3"],
    "--speaker-folds": ["--speaker-folds", "1"],
    "--mcu-mhz": ["--mcu-mhz", "48"],
    "--target": ["--target", "cortex-m3"],
}


@pytest.mark.parametrize("option", [*STORED, "--space"])
def test_resume_with_other_settings_is_refused(option, subset, tmp_path, capsys):
    """A study stores what it searches; a run that differs is refused with one line naming the
    difference, before any worker starts, and the study is left as it was."""
    base = search_argv(subset, tmp_path, "--study", "x", "--trials", "1", "--workers", "1")
    options = SearchOptions(budget=Budget(4096), space=load_space(resolve_space_path("smoke")), location=StudyLocation("x", None, tmp_path))
    open_study(options)  # created as the base command would create it
    if option == "--space":
        changed = tmp_path / "other.toml"
        changed.write_text((SPACES_DIR / "smoke.toml").read_text().replace("pow2_bits = [4]", "pow2_bits = [5]"))
        argv = [*base, "--space", str(changed)]
    else:
        argv = [*base, *STORED[option]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--study x: was created with" in err and option in err, err
    assert len(load(tmp_path, "x").trials) == 0


def test_a_compute_budget_caps_the_hidden_size_before_training(subset, tmp_path, capsys):
    """--mcu-mhz: the hidden size is drawn within what both budgets allow, so every trained trial's
    predicted frame fits one hop at that clock (none over it trains); the clock is stored with the
    study, and each trial's instructions are in trials.csv. A clock that nothing fits is refused."""
    features, quant = FeatureConfig(n_mels=20, n_fft=128), QuantConfig.make("pow2", 4)  # the smoke space's
    # hidden 8 just fits, with the compute model's tolerance kept free
    mhz = math.ceil(predict_instructions(ModelConfig(hidden=8), quant, features).per_frame / (1 - TOLERANCE) / 1e4 * 100) / 100
    limit = mhz * 1e6 * features.hop_length / 8000 * (1 - TOLERANCE)
    allowed = largest_hidden_in_real_time(ModelConfig(hidden=4), quant, features, mhz, "cortex-m4", 12)
    assert 4 <= allowed < 12  # the memory budget alone allows 12, the space's largest
    assert main(search_argv(subset, tmp_path, "--study", "c", "--trials", "4", "--workers", "1", "--mcu-mhz", str(mhz))) == 0
    study = load(tmp_path, "c")
    trained = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert trained and study.user_attrs["settings"]["mcu_mhz"] == mhz and study.user_attrs["settings"]["target"] == "cortex-m4"
    for trial in trained:
        assert trial.user_attrs["model_config"]["hidden"] <= allowed
        assert trial.user_attrs["instructions_per_frame"] <= limit
    with (tmp_path / "c" / "trials.csv").open() as handle:
        rows = {int(row["trial"]): row for row in csv.DictReader(handle)}
    for trial in trained:
        assert int(rows[trial.number]["instructions_per_frame"]) == round(trial.user_attrs["instructions_per_frame"])
        assert float(rows[trial.number]["mips_for_real_time"]) == round(trial.user_attrs["instructions_per_frame"] / 0.01 / 1e6, 2)
    slowest = predict_instructions(ModelConfig(hidden=4), quant, features).per_frame / 1e4
    capsys.readouterr()
    assert main(search_argv(subset, tmp_path, "--study", "d", "--trials", "1", "--mcu-mhz", f"{slowest * 0.9:.2f}")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--mcu-mhz" in err and "runs in real time" in err, err


def test_a_study_sized_by_the_old_memory_model_is_not_resumed(tmp_path):
    """Version 1 counted weights, tables and the model's state only; its trials' bytes are not
    comparable with the device's, so continuing it would mix two scales on one front."""
    options = SearchOptions(budget=Budget(4096), space=load_space(resolve_space_path("smoke")), location=StudyLocation("v", None, tmp_path))
    study = open_study(options)
    legacy = {k: v for k, v in study.user_attrs["settings"].items() if k not in ("flash_bytes", "ram_bytes", "memory_model")}
    study.set_user_attr("settings", legacy)  # as a study written before version 2 stored it
    with pytest.raises(NasError, match=rf"memory model version 1, not {MEMORY_MODEL_VERSION} \(start a new --study\)"):
        open_study(options)
    stored = study.user_attrs["settings"] | {"memory_model": 2}  # before the exact engine's multiplier table
    study.set_user_attr("settings", stored)
    with pytest.raises(NasError, match=rf"memory model version 2, not {MEMORY_MODEL_VERSION} \(start a new --study\)"):
        open_study(options)


def test_settings_differences_name_the_space_key(tmp_path):
    space = load_space(resolve_space_path("smoke"))
    options = SearchOptions(budget=Budget(4096), space=space, location=StudyLocation("k", None, tmp_path))
    open_study(options)
    with pytest.raises(NasError, match=r"architecture\.layers = \[1\], not \[1, 2\]"):
        open_study(replace(options, space=replace(space, layers=(1, 2))))


def test_a_space_key_that_this_version_dropped_says_so():
    """A study stores its space's values; one stored by an older nas with a key since replaced
    (issue 13's `training.rung_margin`) is refused with that key named, not compared with None."""
    space = load_space(resolve_space_path("smoke"))
    settings = SearchOptions(budget=Budget(4096), space=space, location=StudyLocation()).settings()
    stored = replace(settings, space={**settings.space, "training.rung_margin": 1.0})
    assert stored.difference(settings) == (
        "a --space with training.rung_margin = 1.0, a key this version no longer has (start a new --study)"
    )
    assert settings.difference(settings) is None


def test_budget_too_small_for_anything(subset, tmp_path, capsys):
    code = main(
        [
            "search",
            "--budget-kb",
            "0.2",
            "--space",
            "smoke",
            "--data-dir",
            str(subset),
            "--results-dir",
            str(tmp_path),
            "--trials",
            "3",
            "--workers",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "--budget-kb 0.20 (204 B): no configuration of the search space fits (the smallest needs " in err
    assert "expected a larger budget or a smaller space" in err
    assert not (tmp_path / "study.db").exists() and not any(tmp_path.iterdir())  # refused before any study or trial exists


def test_a_budget_only_some_shapes_fit_is_searched_within_them():
    """Between nothing and everything: the size axis starts at the smallest configuration that fits."""
    from nas.study.sizes import smallest_configuration_bytes
    from nas.study.trials import search_size_range

    space = load_space(DEFAULT_SPACE)
    smallest = smallest_configuration_bytes(space, Budget(36 * 1024))
    sizes = search_size_range(space, Budget(smallest))
    assert sizes.smallest_bytes == sizes.budget_bytes == smallest
    with pytest.raises(NasError, match=f"the smallest needs {smallest:,} B total"):
        search_size_range(space, Budget(smallest - 1))


def test_same_seed_same_trials_with_one_worker(subset, tmp_path):
    params = []
    for name in ("a", "b"):
        assert main([*search_argv(subset, tmp_path, "--study", name, "--workers", "1", "--trials", "2", "--seed", "7")]) == 0
        params.append([(t.params, t.values) for t in load(tmp_path, name).trials])
    assert params[0] == params[1]


def test_checkpoints_reach_the_artifact_store_and_another_host_exports_them(subset, tmp_path, capsys):
    """Each trial's checkpoint is uploaded to the study's artifact store (fixed at creation); a host
    without the file (another results folder) fetches it from there to export the trial."""
    store = tmp_path / "shared-artifacts"
    assert main([*search_argv(subset, tmp_path / "a", "--study", "art", "--workers", "1", "--trials", "1", "--artifacts", str(store))]) == 0
    study = load(tmp_path / "a", "art")
    assert study.user_attrs["artifact_store"] == str(store)
    record = TrialRecord.from_trial(study.trials[0])
    original = Path(record.checkpoint).read_bytes()
    assert record.checkpoint_artifact and (store / record.checkpoint_artifact).read_bytes() == original
    Path(record.checkpoint).unlink()  # as on another host
    storage = f"sqlite:///{tmp_path / 'a' / 'art' / 'study.db'}"
    argv = ["export", "--storage", storage, "--study", "art", "--results-dir", str(tmp_path / "b"), "--trial", "0"]
    assert main([*argv, "--out", str(tmp_path / "export"), "--no-measure", "--data-dir", str(subset)]) == 0
    assert (tmp_path / "b" / "art" / "trial-0000" / "model.pt").read_bytes() == original
    # a trial without an artifact (trained before uploads) and without its file: one line naming it
    study.set_user_attr("artifact_store", str(tmp_path / "nowhere"))
    (tmp_path / "b" / "art" / "trial-0000" / "model.pt").unlink()
    assert main([*argv, "--out", str(tmp_path / "export2"), "--no-measure", "--data-dir", str(subset)]) == 2
    assert "cannot fetch trial 0's checkpoint" in capsys.readouterr().err


def test_unknown_study_for_pareto(tmp_path, capsys):
    assert main(["pareto", "--study", "nope", "--results-dir", str(tmp_path)]) == 2
    assert "--study nope: no study at" in capsys.readouterr().err


def test_a_dead_workers_trial_is_failed_and_queued_again_and_a_live_one_is_left(subset, tmp_path, capsys):
    """At start, a trial whose heartbeat stopped (its worker was killed, on any host) is failed and
    queued again with its parameters; a trial another host is running (a recent heartbeat) is left
    alone: the search no longer fails every running trial."""
    from nas.study.optimize import start_search
    from nas.study.storage import open_study

    options = SearchOptions(
        budget=Budget(4096), space=load_space(resolve_space_path("smoke")), location=StudyLocation("h", None, tmp_path), heartbeat_s=1
    )
    study = open_study(options)
    dead, live = study.ask(), study.ask()  # (trials asked outside optimize: Optuna warns, harmlessly)
    dead.suggest_categorical("cell", ["gru"])
    dead.suggest_float("size_fraction", 0.0, 1.0)
    study._storage.record_heartbeat(dead._trial_id)
    time.sleep(options.grace_s + 1.5)  # SQLite's CURRENT_TIMESTAMP counts whole seconds: 3.5 s can read as 3
    study._storage.record_heartbeat(live._trial_id)
    run = start_search(options, subset)
    assert run.stale_trials == 1
    trials = {t.number: t for t in load(tmp_path, "h").trials}
    assert trials[dead.number].state == optuna.trial.TrialState.FAIL
    assert trials[live.number].state == optuna.trial.TrialState.RUNNING
    (again,) = [t for t in trials.values() if t.state == optuna.trial.TrialState.WAITING]
    assert again.params == trials[dead.number].params
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(again) == dead.number


def test_a_dead_process_on_this_host_has_its_trial_queued_again_at_once(subset, tmp_path):
    """After kill -9 and an immediate resume: a trial whose worker process on this host is gone is
    failed and queued again at once, though its heartbeat is fresh; a trial of a live process
    here, and one of another host (whose processes cannot be seen), keep running."""
    import socket

    from nas.study.liveness import WORKER_ATTR, this_worker
    from nas.study.optimize import start_search
    from nas.study.storage import open_study

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process
    options = SearchOptions(
        budget=Budget(4096), space=load_space(resolve_space_path("smoke")), location=StudyLocation("p", None, tmp_path), heartbeat_s=60
    )
    study = open_study(options)
    workers = {
        "dead here": {"host": socket.gethostname(), "pid": gone.pid, "started": None},
        "alive here": this_worker(),
        "dead elsewhere": {"host": socket.gethostname() + "-other", "pid": gone.pid, "started": None},
    }
    numbers = {}
    for name, worker in workers.items():
        trial = study.ask()
        trial.suggest_float("size_fraction", 0.0, 1.0)
        trial.set_user_attr(WORKER_ATTR, worker)
        study._storage.record_heartbeat(trial._trial_id)  # fresh: the heartbeat rule would wait 120 s
        numbers[name] = trial.number
    run = start_search(options, subset)
    assert run.stale_trials == 1
    trials = {t.number: t for t in load(tmp_path, "p").trials}
    assert trials[numbers["dead here"]].state == optuna.trial.TrialState.FAIL
    assert trials[numbers["alive here"]].state == trials[numbers["dead elsewhere"]].state == optuna.trial.TrialState.RUNNING
    (again,) = [t for t in trials.values() if t.state == optuna.trial.TrialState.WAITING]
    assert again.params == trials[numbers["dead here"]].params
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(again) == numbers["dead here"]


def test_a_reused_pid_is_a_dead_worker():
    """The pid alone could name a new process: the start time recorded with it tells them apart."""
    from nas.study.liveness import is_gone, this_worker

    me = this_worker()
    assert not is_gone(me)
    if me["started"] is not None:  # Linux: /proc gives the start time
        assert is_gone(me | {"started": me["started"] + 1})


def test_two_workers_finish_exactly_the_trials_asked(tmp_path):
    """Each worker checks the count, running trials included, before it starts one: two workers of
    --trials 5 finish 5 trials, not 6 (the last worker to finish used to start one more)."""
    import threading

    from nas.study.trials import run_trials

    storage = f"sqlite:///{tmp_path / 'count.db'}"
    optuna.create_study(storage=storage, study_name="c", directions=["maximize", "minimize"])

    def worker(seconds: float) -> None:
        study = optuna.load_study(study_name="c", storage=storage, sampler=optuna.samplers.RandomSampler(seed=int(10 * seconds)))

        def objective(trial):
            trial.suggest_float("x", 0, 1)
            time.sleep(seconds)
            return 0.5, 1.0

        run_trials(study, objective, 5, None)

    # one slow trial beside many quick ones: the quick worker reaches 4 finished while the slow
    # one still runs, and must not start a fifth
    threads = [threading.Thread(target=worker, args=(seconds,)) for seconds in (0.05, 2.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(load_study_trials(storage, "c")) == 5


def load_study_trials(storage: str, name: str) -> list:
    return optuna.load_study(study_name=name, storage=storage).get_trials(states=(optuna.trial.TrialState.COMPLETE,))


@pytest.mark.parametrize("stop", ["ctrl-c to the process group", "sigterm to the main process alone"])
def test_interrupted_search_keeps_finished_trials(subset, tmp_path, stop):
    """Ctrl-C reaches every process; a job scheduler's SIGTERM often only the main one, which then
    stops its workers: either way the search exits 130 within seconds, keeps every finished trial,
    leaves no trial running, and the same command resumes it."""
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "nas.cli", *search_argv(subset, tmp_path, "--study", "i", "--workers", "1")]
    process = subprocess.Popen(
        [*argv, "--trials", "200"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    database = tmp_path / "i" / "study.db"
    storage = f"sqlite:///{database}"
    deadline = time.time() + 240
    complete = 0
    while time.time() < deadline and complete < 2 and process.poll() is None:
        time.sleep(1)
        # Read-only: optuna.load_study would create the schema if the search had not yet, racing it.
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
                complete = connection.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
        except sqlite3.Error:
            complete = 0
    if complete < 2:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"no trial finished in time: {process.communicate()[1][-2000:]}")
    if stop.startswith("ctrl-c"):
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group, workers too
    else:
        os.kill(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Run the same command again to resume" in err and "Traceback" not in err
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        assert connection.execute("SELECT COUNT(*) FROM trials WHERE state = 'RUNNING'").fetchone()[0] == 0
    saved = {
        t.number: t.values
        for t in optuna.load_study(study_name="i", storage=storage).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    }
    assert len(saved) >= 2
    total = len(
        optuna.load_study(study_name="i", storage=storage).get_trials(
            states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        )
    )
    resumed = subprocess.run([*argv, "--trials", str(total + 1)], env=env, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    after = optuna.load_study(study_name="i", storage=storage).trials
    assert {t.number: t.values for t in after if t.number in saved} == saved
    assert len([t for t in after if t.state == optuna.trial.TrialState.COMPLETE]) == total + 1


def test_a_worker_stopped_by_ctrl_c_inside_a_storage_write_exits_quietly(monkeypatch):
    """Ctrl-C in the middle of Optuna's write can surface as the storage's own error, raised while
    handling the KeyboardInterrupt: the worker still exits with 130 and no traceback; any other
    error still propagates."""
    import nas.study.worker

    def interrupted_write(setup):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("this session is in an inactive transaction") from None  # the context stays

    monkeypatch.setattr(nas.study.worker, "run_worker", interrupted_write)
    with pytest.raises(SystemExit) as stopped:
        nas.study.worker._worker_main(None, None)
    assert stopped.value.code == 130

    def broken(setup):
        raise RuntimeError("a real bug")

    monkeypatch.setattr(nas.study.worker, "run_worker", broken)
    with pytest.raises(RuntimeError, match="a real bug"):
        nas.study.worker._worker_main(None, None)


def test_ctrl_c_never_lands_inside_a_storage_read(subset, tmp_path):
    """SIGINT arriving while the main process reads the study (for the progress line) only marks
    the run interrupted: the read completes (no driver traceback), and the run stops as interrupted."""
    from nas.study.optimize import SearchInterrupted, run_workers, start_search

    options = SearchOptions(
        budget=Budget(4096),
        space=load_space(resolve_space_path("smoke")),
        location=StudyLocation("c", None, tmp_path),
        trials=1,
        workers=1,
    )
    run = start_search(options, subset)
    reads = []

    def ctrl_c_during_a_read(progress):
        os.kill(os.getpid(), signal.SIGINT)
        reads.append(len(run.study.get_trials(deepcopy=False)))  # the storage read the signal must not break

    with pytest.raises(SearchInterrupted):
        run_workers(run, ctrl_c_during_a_read, poll_s=0.2)
    assert reads  # the read after the signal completed
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is given back


def test_ctrl_c_while_optuna_asks_for_a_trial_leaves_no_trial_running(subset, tmp_path, monkeypatch):
    """A stop signal that arrives while Optuna creates the next trial and runs the sampler (outside
    the objective, where Optuna would not fail the trial) waits until the trial may be cut short:
    the worker exits with 130, the trial is failed, and none is left "running"."""
    import nas.study.trials
    import nas.study.worker
    from nas.study.interrupts import StopSignal
    from nas.study.optimize import start_search
    from nas.study.worker import WorkerSetup

    options = SearchOptions(
        budget=Budget(1 << 20),  # every smoke configuration fits: trial 1 reaches the training
        space=load_space(resolve_space_path("smoke")),
        location=StudyLocation("a", None, tmp_path),
        trials=3,
        workers=1,
    )
    start_search(options, subset)

    class SignalWhileAsking(optuna.samplers.RandomSampler):
        def before_trial(self, study, trial):  # inside study.ask(), after the trial's row is written
            if trial.number == 1:
                os.kill(os.getpid(), signal.SIGINT)
            super().before_trial(study, trial)

    monkeypatch.setattr(nas.study.worker, "make_sampler", lambda seed, kind="tpe": SignalWhileAsking(seed=seed))
    fresh = StopSignal()  # a fresh one: the handler keeps state
    monkeypatch.setattr(nas.study.worker, "STOP", fresh)
    monkeypatch.setattr(nas.study.trials, "STOP", fresh)
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        fresh.install()
        with pytest.raises(SystemExit) as stopped:
            nas.study.worker._worker_main(WorkerSetup(options, str(subset), str(tmp_path / "cache")), None)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    assert stopped.value.code == 130
    states = {t.number: t.state for t in optuna.load_study(study_name="a", storage=options.location.storage_url).trials}
    assert states == {0: optuna.trial.TrialState.COMPLETE, 1: optuna.trial.TrialState.FAIL}


def test_quick_is_its_own_study_trained_shorter_and_never_confirmed():
    from nas.cli.main import build_parser
    from nas.cli.search import search_options

    args = build_parser().parse_args(["search", "--budget-kb", "36", "--quick"])
    quick = search_options(args)
    assert quick.location.name == "pow2-36kb-quick" and not quick.confirms
    trained = quick.training_space
    assert (trained.epochs, trained.patience, trained.wave_copies) == (40, 15, 4) and quick.space.epochs == 100
    full = search_options(build_parser().parse_args(["search", "--budget-kb", "36"]))
    assert full.location.name == "pow2-36kb" and full.confirms and full.space.epochs == 100
    # a resume must agree: the stored study's kind is named first
    assert quick.settings().difference(full.settings()) == "a --quick study, not a full study (without --quick)"
    assert full.settings().difference(quick.settings()) == "a full study (without --quick), not a --quick study"


def test_a_worker_goes_on_when_another_told_its_queued_trial_first(tmp_path):
    """Two workers can pop one queued trial on SQLite (no row locks: Optuna's pop is not atomic there);
    the one that tells second is refused ("Cannot tell a COMPLETE trial"). Its search goes on: the
    trial keeps the first result, and the worker runs its next trials to the target."""
    from nas.study.trials import run_trials

    study = optuna.create_study(directions=["maximize", "minimize"], storage=f"sqlite:///{tmp_path / 'q.db'}")
    study.enqueue_trial({"x": 0.5})
    calls = []

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        calls.append(trial.number)
        if len(calls) == 1:  # as the other worker would: it ran the same trial and told it first
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.COMPLETE, [0.9, 100.0])
        return x, 10.0

    run_trials(study, objective, 3, None)
    finished = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(calls) == 3 and len(finished) == 3
    assert finished[0].values == [0.9, 100.0]  # the first tell stands

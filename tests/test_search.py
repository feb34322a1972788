"""The search: space files, budget pruning, a short real search, resume, determinism."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from nas import limits
from nas.cli import main
from nas.errors import NasError
from nas.memory import Budget
from nas.pareto import hypervolume
from nas.search import OverBudget, make_sampler, sample_candidate
from nas.space import DEFAULT_SPACE, load_space
from tests.conftest import TINY_SPACE, index_of, link_subset


@pytest.fixture(scope="module")
def subset(fsdd_dir, tmp_path_factory):
    return link_subset(fsdd_dir, tmp_path_factory.mktemp("subset") / "data", lambda name: index_of(name) < 14)


@pytest.fixture
def tiny_space(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SPACE)
    return path


def search_argv(subset, space, results, *extra):
    return ["search", "--budget-kb", "4", "--space", str(space), "--data-dir", str(subset), "--results-dir", str(results), *extra]


def test_default_space_file_loads():
    space = load_space(DEFAULT_SPACE)
    assert space.cells == ("gru", "lstm") and space.weights == ("pow2", "fixed") and space.hidden_min == 16
    assert space.restricted_to("pow2").weights == ("pow2",)
    assert space.restricted_to("any").weights == ("float", "fixed", "pow2")


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
    assert max(sizes) <= 36 * 1024 and min(sizes) < 4 * 1024  # the whole range is explored


def test_hypervolume():
    assert hypervolume([], 100) == 0
    assert hypervolume([(1.0, 0)], 100) == pytest.approx(1.0)
    assert hypervolume([(0.5, 50), (1.0, 200)], 100) == pytest.approx(0.25)  # the second is over budget
    assert hypervolume([(0.5, 0), (0.9, 50)], 100) == pytest.approx(0.5 * 0.5 + 0.9 * 0.5)


def test_short_search_writes_front_files_and_resumes(subset, tiny_space, tmp_path, capsys):
    results = tmp_path / "results"
    argv = search_argv(subset, tiny_space, results, "--study", "s", "--workers", "1")
    assert main([*argv, "--trials", "2"]) == 0
    out = capsys.readouterr().out
    assert "Pareto front of 's'" in out and "pareto.html" in out
    folder = results / "s"
    front = json.loads((folder / "pareto.json").read_text())["front"]
    assert front and all(row["total_bytes"] <= 4096 for row in front)
    assert (folder / "pareto.csv").read_text().startswith("trial,")
    assert "plotly" in (folder / "pareto.html").read_text()
    assert all(Path(row["checkpoint"]).is_file() for row in front)
    storage = f"sqlite:///{folder / 'study.db'}"
    first = {t.number: t.values for t in optuna.load_study(study_name="s", storage=storage).trials}
    assert main([*argv, "--trials", "3"]) == 0  # continues to 3 finished trials in total
    assert "2 of 3 trials already finished" in capsys.readouterr().out
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert len(trials) == 3 and {t.number: t.values for t in trials if t.number in first} == first
    assert main(["pareto", "--study", "s", "--results-dir", str(results)]) == 0
    assert main(["plot", "--study", "s", "--results-dir", str(results)]) == 0
    (folder / "pareto.html").unlink()
    assert main(["plot", "--study", "s", "--results-dir", str(results)]) == 0 and (folder / "pareto.html").is_file()


def test_budget_too_small_for_anything(subset, tiny_space, tmp_path, capsys):
    code = main(
        [
            "search",
            "--budget-kb",
            "0.2",
            "--space",
            str(tiny_space),
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
    assert "--budget-kb 0.20 (204 B): no configuration of the search space fits (3 of 3 sampled trials were over budget)" in err


def test_same_seed_same_trials_with_one_worker(subset, tiny_space, tmp_path):
    params = []
    for name in ("a", "b"):
        assert main([*search_argv(subset, tiny_space, tmp_path, "--study", name, "--workers", "1", "--trials", "2", "--seed", "7")]) == 0
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / name / 'study.db'}")
        params.append([(t.params, t.values) for t in study.trials])
    assert params[0] == params[1]


def test_unknown_study_for_pareto(tmp_path, capsys):
    assert main(["pareto", "--study", "nope", "--results-dir", str(tmp_path)]) == 2
    assert "--study nope: no study at" in capsys.readouterr().err


def test_interrupted_search_keeps_finished_trials(subset, tiny_space, tmp_path):
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "nas.cli", *search_argv(subset, tiny_space, tmp_path, "--study", "i", "--workers", "1")]
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
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group, workers too
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Run the same command again to resume" in err and "Traceback" not in err
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

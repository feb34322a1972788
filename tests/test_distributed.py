"""One study shared by several hosts on a real PostgreSQL server: two `nas search` processes with
their own results folders and feature caches stand in for two hosts. `.ci/run` starts Debian's
PostgreSQL on loopback (`.ci/postgres`) and sets NAS_TEST_POSTGRES_URL; elsewhere these tests are
skipped, except where NAS_REQUIRE_TOOLCHAINS is set (CI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

from nas.device.memory import Budget
from nas.study.pareto import pareto_front
from nas.study.record import TrialRecord, read_records
from nas.study.settings import GRACE_HEARTBEATS
from tests.conftest import search_argv

COMPLETE, FAIL, RUNNING = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING


@pytest.fixture(scope="module")
def postgres_url() -> str:
    url = os.environ.get("NAS_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("NAS_REQUIRE_TOOLCHAINS"):
            pytest.fail("NAS_TEST_POSTGRES_URL is not set: .ci/run starts PostgreSQL with .ci/postgres", pytrace=False)
        pytest.skip("no PostgreSQL: run `bash .ci/postgres` (as root) and set NAS_TEST_POSTGRES_URL to the URL it prints")
    return url


HEARTBEAT_S = 1  # each host's --heartbeat: a killed worker's trial is stale after GRACE_HEARTBEATS of them


def host(subset: Path, tmp_path: Path, name: str, url: str, study: str, *extra: str) -> subprocess.Popen:
    """`nas search` as one host: its own results folder and feature cache, one worker, a 1 s heartbeat."""
    env = os.environ | {"PYTHONUNBUFFERED": "1", "NAS_CACHE_DIR": str(tmp_path / f"{name}-cache")}
    argv = search_argv(subset, tmp_path / name, "--storage", url, "--study", study, "--workers", "1")
    argv += ["--heartbeat", str(HEARTBEAT_S), *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "nas.cli", *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"a host did not finish: {process.communicate()[1][-2000:]}")
    return process.returncode, err


def test_two_hosts_share_one_study(subset, tmp_path, postgres_url, capsys):
    study_name = f"shared-{uuid.uuid4().hex[:8]}"
    hosts = [host(subset, tmp_path, name, postgres_url, study_name, "--trials", "6") for name in ("host-a", "host-b")]
    for process in hosts:
        code, err = finish(process)
        assert code == 0, err
    study = optuna.load_study(study_name=study_name, storage=postgres_url)
    records = read_records(study)
    complete = [r for r in records if r.state == "complete"]
    assert 6 <= len(complete) <= 7  # both hosts may start a trial when the sixth is still missing
    assert not [r for r in records if r.state in ("running", "fail")]
    # each trial trained on one host: its checkpoint is in that host's results folder
    where = {r.number: Path(r.checkpoint).parts[len(tmp_path.parts)] for r in complete}
    assert set(where.values()) == {"host-a", "host-b"} and all(Path(r.checkpoint).is_file() for r in complete)
    # the front, as either host reports it, from the shared storage
    front = pareto_front(records, Budget(4096))
    from nas.cli.main import main

    for name in ("host-a", "host-b"):
        assert main(["pareto", "--storage", postgres_url, "--study", study_name, "--results-dir", str(tmp_path / name)]) == 0
        out = capsys.readouterr().out
        assert f"({len(front)} points;" in out and f"{len(records)} finished trials" in out
    # host A exports a trial that host B trained, whose file host A cannot see: from the artifact store
    theirs = next(r for r in complete if where[r.number] == "host-b")
    original = Path(theirs.checkpoint).read_bytes()
    Path(theirs.checkpoint).unlink()
    out_dir = tmp_path / "export"
    argv = ["export", "--storage", postgres_url, "--study", study_name, "--results-dir", str(tmp_path / "host-a")]
    assert main([*argv, "--trial", str(theirs.number), "--out", str(out_dir), "--no-measure", "--data-dir", str(subset)]) == 0
    assert (tmp_path / "host-a" / study_name / f"trial-{theirs.number:04d}" / "model.pt").read_bytes() == original
    assert (out_dir / "model.json").is_file()


def worker_of(process: subprocess.Popen) -> int:
    """The pid of a `nas search` process's worker (a multiprocessing spawn child, not its resource tracker)."""
    for _ in range(600):
        children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        for pid in children:
            if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                return int(pid)
        time.sleep(0.1)
    pytest.fail("the search started no worker")


def test_a_killed_workers_trial_is_retried_on_another_host(subset, tmp_path, postgres_url):
    """Host A's worker is killed (SIGKILL) in the middle of a trial; host B fails that trial once its
    heartbeat is 3 s old and runs it again with the same parameters, to the end."""
    study_name = f"killed-{uuid.uuid4().hex[:8]}"
    first = host(subset, tmp_path, "host-a", postgres_url, study_name, "--trials", "3")
    worker = worker_of(first)
    study = None
    for _ in range(1200):  # until host A's worker is inside a trial
        try:
            study = optuna.load_study(study_name=study_name, storage=postgres_url)
            if study.get_trials(deepcopy=False, states=(RUNNING,)):
                break
        except KeyError:  # not created yet
            pass
        time.sleep(0.1)
    else:
        os.killpg(first.pid, signal.SIGKILL)
        pytest.fail(f"host A never started a trial: {first.communicate()[1][-2000:]}")
    (killed,) = study.get_trials(deepcopy=False, states=(RUNNING,))
    os.kill(worker, signal.SIGKILL)
    code, err = finish(first)
    assert code == 2 and "a trial left running is run again once its heartbeat is 3 s old" in err
    # Optuna looks for stale trials only when a worker starts a trial, so host B must not finish its
    # 3 trials before the heartbeat is 3 s old (it once did, when features came to load in 0.3 s);
    # + 1.5 s: the storage's timestamps may count whole seconds
    time.sleep(GRACE_HEARTBEATS * HEARTBEAT_S + 1.5)
    second = host(subset, tmp_path, "host-b", postgres_url, study_name, "--trials", "3")
    code, err = finish(second)
    assert code == 0, err
    trials = optuna.load_study(study_name=study_name, storage=postgres_url).trials
    assert trials[killed.number].state == FAIL
    retried = [t for t in trials if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == killed.number]
    # the parameters the killed trial had drawn are kept (a kill right after the trial started may
    # come before it drew them all: the rest are drawn anew)
    assert len(retried) == 1 and retried[0].state == COMPLETE and trials[killed.number].params.items() <= retried[0].params.items()
    record = TrialRecord.from_trial(retried[0])
    assert "host-b" in record.checkpoint and Path(record.checkpoint).is_file()

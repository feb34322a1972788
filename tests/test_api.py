"""The Python API (nas.api, docs/api.md): the guide's example runs as written, and importing nas
changes no global state."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

GLOBAL_STATE = """
import logging, pkgutil, warnings
import optuna, torch
optuna.logging.set_verbosity(optuna.logging.DEBUG)
torch.set_num_threads(3)
filters = list(warnings.filters)
root_level = logging.getLogger().level
import nas
nas.search, nas.ModelConfig  # the lazy API
for module in pkgutil.walk_packages(nas.__path__, "nas."):
    if not module.name.endswith("__main__"):
        __import__(module.name)
changed = []
if optuna.logging.get_verbosity() != optuna.logging.DEBUG:
    changed.append("optuna verbosity")
if torch.get_num_threads() != 3:
    changed.append("torch threads")
if list(warnings.filters) != filters:
    changed.append("warning filters")
if logging.getLogger().level != root_level:
    changed.append("root logging level")
print("changed:", ", ".join(changed) or "nothing")
"""


def test_importing_nas_changes_no_global_state():
    """Every module of nas imported (the CLI's included): Optuna's verbosity, torch's threads, the
    warning filters and the root logger are as the caller left them."""
    done = subprocess.run([sys.executable, "-c", GLOBAL_STATE], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "changed: nothing"


def example_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(), re.S)
    assert len(blocks) == 1, "docs/api.md holds one runnable example"
    return blocks[0]


def test_the_docs_api_example_runs(subset, tmp_path):
    """The example of docs/api.md, as it stands, in a folder with the repository's search spaces."""
    shutil.copytree(REPO / "search_spaces", tmp_path / "search_spaces")  # the links' targets, copied
    script = tmp_path / "example.py"
    script.write_text(example_code())
    env = os.environ | {"NAS_DATA_DIR": str(subset), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"trial \d+: \d+ B, validation", done.stdout) and "integer engine, test part:" in done.stdout
    assert (tmp_path / "results" / "export" / "model.c").is_file()


def test_best_honours_max_kb_and_the_budget(searched):
    import nas

    result = nas.load_study("s", results_dir=searched)
    best = result.best()
    assert best.total_bytes <= result.settings.budget_bytes and best in result.front
    assert best.val.value == max(r.val.value for r in result.front)
    smallest = min(r.total_bytes for r in result.front)
    limited = result.best(max_kb=smallest / 1024)
    assert limited.total_bytes == smallest
    from nas.core.errors import NasError

    with pytest.raises(NasError, match="--max-kb"):
        result.best(max_kb=(smallest - 1) / 1024)


def test_memory_is_the_memory_model():
    import nas
    from nas.device.memory import memory_breakdown

    model = nas.ModelConfig(cell="gru", layers=1, hidden=64, n_input=13)
    quant = nas.QuantConfig.make("pow2", 4)
    assert nas.memory(model, quant).total_bytes == memory_breakdown(model, quant, nas.FeatureConfig()).total_bytes == 13_221
    assert nas.memory(model, quant, frontend=False).total_bytes < 13_221


def test_unknown_names_are_not_api():
    import nas

    with pytest.raises(AttributeError, match="no attribute 'serch'"):
        nas.serch  # noqa: B018
    assert Path(nas.__file__).parent == REPO / "nas"


def test_a_library_call_leaves_torch_threads_as_it_found_them(subset, tmp_path):
    """Training runs with one thread (nas.training.recipe.TRAIN_THREADS) and then gives the caller's
    count back; the outcome is the plain data of `nas train`."""
    import torch

    import nas

    torch.set_num_threads(3)  # the conftest sets 1 again after the test
    runs = nas.train(
        nas.ModelConfig(cell="gru", hidden=4),
        nas.QuantConfig.make("pow2", 4),
        recipe=nas.TrainConfig.for_epochs(1, wave_copies=0),
        data_dir=subset,
        out_dir=tmp_path / "run",
    )
    assert torch.get_num_threads() == 3
    assert [run.seed for run in runs.runs] == [0] and (tmp_path / "run" / "seed0.pt").is_file()
    assert runs.runs[0].result.integer is not None  # scored by the integer engine

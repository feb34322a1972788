"""Leave-one-speaker-out cross-validation: folds keep speakers apart, workers give what one
process gives, and the mean is the mean of the folds."""

from __future__ import annotations

import json
import shutil

import pytest

from nas.bundle.export import export_configs
from nas.cli.main import main
from nas.core.errors import NasError
from nas.features.extract import FeatureConfig
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.training.crossval import plan_crossval, run_fold
from nas.training.recipe import TrainConfig
from tests.conftest import index_of, link_subset

TINY = ["--hidden", "6", "--epochs", "1", "--weights", "pow2", "--no-cache"]


@pytest.fixture(scope="module")
def subset(fsdd_dir, tmp_path_factory):
    return link_subset(fsdd_dir, tmp_path_factory.mktemp("cv") / "data", lambda name: index_of(name) < 8)  # 480 files


def test_crossval_runs_each_fold_and_seed_in_workers(subset, tmp_path, capsys):
    out = tmp_path / "cv.json"
    argv = ["crossval", "--data-dir", str(subset), *TINY, "--speakers", "theo", "george", "--seed", "0", "1", "--workers", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    folds = result["folds"]
    assert [(f["speaker"], f["seed"]) for f in folds] == [("george", 0), ("george", 1), ("theo", 0), ("theo", 1)]
    assert {f["speaker"]: f["validation_speaker"] for f in folds} == {"theo": "yweweler", "george": "jackson"}
    assert all(f["test_total"] == 80 and f["val_total"] == 80 and f["scored_by"] == "integer engine" for f in folds)
    mean = sum(100 * f["test_correct"] / f["test_total"] for f in folds) / len(folds)
    assert result["test_mean"] == pytest.approx(mean)
    assert result["per_speaker"]["theo"]["test_mean"] == pytest.approx(
        sum(100 * f["test_correct"] / 80 for f in folds if f["speaker"] == "theo") / 2
    )
    printed = capsys.readouterr().out
    assert f"leave-one-speaker-out mean test accuracy (integer engine): {mean:.2f}%" in printed
    # a worker's fold is what the same fold gives in this process
    model = json.loads(out.read_text())
    plan = plan_crossval(
        ModelConfig(**model["model_config"]),
        FeatureConfig(**model["feature_config"]),
        QuantConfig(**model["quant_config"]),
        TrainConfig(**model["train_config"]),
        [0],
        ["theo"],
        subset,
        no_cache=True,
    )
    again = run_fold(plan, "theo", 0)
    first = next(f for f in folds if f["speaker"] == "theo" and f["seed"] == 0)
    assert (again.test.correct, again.val.correct, again.best_epoch) == (first["test_correct"], first["val_correct"], first["best_epoch"])


def test_crossval_takes_its_configuration_from_an_export(subset, tmp_path, capsys):
    argv = ["train", "--data-dir", str(subset), *TINY, "--hidden", "5", "--split", "speaker:theo", "--out", str(tmp_path / "t")]
    assert main(argv) == 0
    folder = tmp_path / "export"
    folder.mkdir()
    shutil.copy(tmp_path / "t" / "seed0.pt", folder / "model.pt")  # an export's model.pt holds the same configs
    model, _, quant, train = export_configs(folder)
    assert (model.hidden, quant.weights, train.epochs) == (5, "pow2", 1)
    out = tmp_path / "cv.json"
    assert (
        main(["crossval", "--data-dir", str(subset), "--from-export", str(folder), "--speakers", "lucas", "--no-cache", "--out", str(out)])
        == 0
    )
    assert json.loads(out.read_text())["model_config"]["hidden"] == 5


def test_crossval_takes_its_configuration_from_a_trial_of_a_study(subset, tmp_path, capsys):
    search = [
        "search",
        "--budget-kb",
        "4",
        "--space",
        "smoke",
        "--trials",
        "1",
        "--workers",
        "1",
        "--study",
        "s",
        "--split",
        "speaker:theo",
        "--confirm-seeds",
        "0",
    ]
    assert main([*search, "--data-dir", str(subset), "--results-dir", str(tmp_path)]) == 0
    out = tmp_path / "cv.json"
    argv = ["crossval", "--data-dir", str(subset), "--results-dir", str(tmp_path), "--study", "s", "--speakers", "lucas", "--no-cache"]
    assert main([*argv, "--trial", "0", "--out", str(out)]) == 0
    stored = json.loads(out.read_text())
    trial = json.loads((tmp_path / "s" / "pareto.json").read_text())["front"][0]
    assert stored["model_config"]["hidden"] == trial["hidden"] and stored["train_config"]["epochs"] == 2  # the smoke space's epochs
    capsys.readouterr()
    assert main([*argv, "--trial", "7"]) == 2
    assert "--trial 7: no such trial in study 's'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--speakers", "zoe"], "--speakers zoe: unknown speaker; expected some of george, jackson, lucas, nicolas, theo, yweweler"),
        (["--from-export", "/nonexistent"], "/nonexistent/model.pt: missing; expected an export folder written by 'nas export'"),
    ],
)
def test_crossval_bad_input_is_one_line(subset, capsys, extra, expected):
    assert main(["crossval", "--data-dir", str(subset), *TINY, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err


def test_plan_refuses_an_unknown_speaker_before_training(subset):
    with pytest.raises(NasError, match="unknown speaker"):
        plan_crossval(ModelConfig(), FeatureConfig(), QuantConfig.make("pow2", 4), TrainConfig(), [0], ["zoe"], subset)

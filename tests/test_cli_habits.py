"""The habits of a good command-line tool (docs/cli.md): --json documents on stdout, exit codes
0/1/2, passwords masked, a resume from the study's stored settings, `nas export --checkpoint`,
and no traceback for a bad path."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from nas.cli.main import main
from nas.core.urls import mask_passwords
from tests.conftest import search_argv

SCHEMA = "nas-cli-v1"


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def json_document(out: str, command: str) -> dict:
    """stdout holds exactly one JSON document of the documented schema."""
    document = json.loads(out)
    assert document["schema"] == SCHEMA and document["command"] == command, document
    return document


@pytest.fixture
def study_copy(searched, tmp_path):
    """A copy of the finished smoke search (the fixture's own folder stays read only)."""
    results = tmp_path / "results"
    shutil.copytree(searched, results)
    return results


# ------------------------------------------------------------------------------------ exit codes
def test_memory_over_budget_exits_1_and_says_so_in_json(capsys):
    code, out, _ = run(["memory", "--hidden", "256", "--budget-kb", "36", "--json"], capsys)
    document = json_document(out, "memory")
    assert code == 1 and document["budget"]["fits"] is False and document["budget"]["exceeded"]
    assert document["budget"]["used_bytes"] == document["memory"]["total_bytes"] > 36 * 1024
    code, out, _ = run(["memory", "--hidden", "16", "--budget-kb", "36", "--json"], capsys)
    document = json_document(out, "memory")
    assert code == 0 and document["budget"]["fits"] is True and document["model_config"]["hidden"] == 16
    code, out, _ = run(["memory", "--hidden", "16", "--json"], capsys)
    document = json_document(out, "memory")
    assert code == 0 and document["budget"] is None and document["compute"] is None  # float weights: no device engine
    code, out, _ = run(["memory", "--hidden", "16", "--weights", "pow2", "--json"], capsys)
    document = json_document(out, "memory")
    assert document["compute"]["target"] == "cortex-m4" and document["compute"]["instructions_per_frame"] > 0
    assert document["compute"]["mips_for_real_time"] == round(document["compute"]["instructions_per_frame"] / 0.01 / 1e6, 2)


def test_bad_input_exits_2(capsys):
    with pytest.raises(SystemExit) as stopped:  # argparse: a value out of range
        main(["memory", "--hidden", "0"])
    assert stopped.value.code == 2
    capsys.readouterr()
    code, _, err = run(["memory", "--cell", "gru", "--n-mfcc", "40", "--n-mels", "20"], capsys)
    assert code == 2 and err.startswith("nas: error:")


# ---------------------------------------------------------------------------------------- --json
def test_pareto_json_is_the_front_with_settings_and_counts(study_copy, capsys):
    code, out, _ = run(["pareto", "--study", "s", "--results-dir", str(study_copy), "--json"], capsys)
    document = json_document(out, "pareto")
    stored = json.loads((study_copy / "s" / "pareto.json").read_text())
    assert code == 0 and document["front"] == stored["front"] and document["budget_bytes"] == stored["budget_bytes"] == 4096
    assert document["finished_trials"] == 3 and document["settings"]["budget_bytes"] == 4096
    assert 0 <= document["val_hypervolume"] <= 1 and document["files"]["pareto.json"].endswith("pareto.json")


def test_studies_json_lists_each_study(study_copy, capsys):
    code, out, _ = run(["studies", "--results-dir", str(study_copy), "--json"], capsys)
    document = json_document(out, "studies")
    assert code == 0 and [s["study"] for s in document["studies"]] == ["s"]
    assert document["studies"][0]["finished_trials"] == 3 and document["studies"][0]["best"]["total_bytes"] <= 4096


def test_evaluate_json_scores_an_export(study_copy, subset, tmp_path, capsys):
    export_dir = tmp_path / "export"
    argv = ["export", "--study", "s", "--results-dir", str(study_copy), "--best", "--out", str(export_dir), "--no-measure"]
    assert main([*argv, "--data-dir", str(subset)]) == 0
    capsys.readouterr()
    code, out, _ = run(["evaluate", str(export_dir), "--data-dir", str(subset), "--json"], capsys)
    document = json_document(out, "evaluate")
    stored = json.loads((export_dir / "model.json").read_text())["accuracy"]
    assert code == 0 and document["part"] == "test" and document["reproduces_model_json"] is True
    assert (document["correct"], document["total"]) == (stored["test_correct"], stored["test_total"])
    assert sum(map(sum, document["confusion"])) == document["total"]


def test_search_json_summary_is_alone_on_stdout(subset, tmp_path, capsys):
    argv = search_argv(subset, tmp_path, "--study", "j", "--trials", "1", "--workers", "1", "--json")
    code, out, err = run(argv, capsys)
    document = json_document(out, "search")  # the progress lines went to stderr
    assert code == 0 and document["study"] == "j" and document["finished_trials"] == 1 and document["run_seconds"] > 0
    assert "trial 0:" in err


def test_crossval_json_holds_the_folds(subset, tmp_path, capsys):
    argv = ["crossval", "--cell", "gru", "--hidden", "4", "--epochs", "1", "--wave-copies", "0", "--speakers", "george"]
    argv += ["--workers", "1", "--data-dir", str(subset), "--out", str(tmp_path / "cv.json"), "--json"]
    code, out, _ = run(argv, capsys)
    document = json_document(out, "crossval")
    assert code == 0 and [f["speaker"] for f in document["folds"]] == ["george"]
    assert document["results_file"] == str(tmp_path / "cv.json") and (tmp_path / "cv.json").is_file()


# ----------------------------------------------------------------------------------- passwords
def test_a_password_in_a_storage_url_is_never_printed(capsys):
    url = "postgresql://bob:hunter2@127.0.0.1:1/nas"  # nothing listens on port 1: the connection fails at once
    code, out, err = run(["pareto", "--storage", url], capsys)
    assert code == 2 and "hunter2" not in out + err and "postgresql://bob:***@127.0.0.1:1/nas" in err
    assert mask_passwords("x postgresql+psycopg://u:p@ss@h/db y") == "x postgresql+psycopg://u:***@h/db y"
    assert mask_passwords("sqlite:////tmp/study.db") == "sqlite:////tmp/study.db"


def test_the_location_shows_a_masked_url():
    from nas.study.settings import StudyLocation

    location = StudyLocation("s", "postgresql://bob:hunter2@db.example/nas")
    assert location.display_url == "postgresql://bob:***@db.example/nas" and "hunter2" in location.storage_url


# -------------------------------------------------------------------------------------- resume
def test_a_resume_needs_only_the_study_name(subset, tmp_path, capsys):
    import optuna

    argv = search_argv(subset, tmp_path, "--study", "r", "--trials", "1", "--workers", "1", "--seed", "3")
    assert main(argv) == 0
    capsys.readouterr()
    location = ["--study", "r", "--results-dir", str(tmp_path), "--data-dir", str(subset)]
    code, out, _ = run(["search", *location, "--trials", "2", "--workers", "1", "--confirm-seeds", "0"], capsys)
    assert code == 0 and "1 of 2 trials already finished" in out
    study = optuna.load_study(study_name="r", storage=f"sqlite:///{tmp_path / 'r' / 'study.db'}")
    assert len(study.trials) == 2 and study.user_attrs["settings"]["seed"] == 3


def test_a_refused_resume_lists_every_difference(subset, tmp_path, capsys):
    assert main(search_argv(subset, tmp_path, "--study", "d", "--trials", "1", "--workers", "1")) == 0
    capsys.readouterr()
    argv = ["search", "--study", "d", "--results-dir", str(tmp_path), "--data-dir", str(subset), "--budget-kb", "5", "--seed", "7"]
    code, _, err = run(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--budget-kb 4 (4,096 B), not 5 (5,120 B)" in err and "--seed 0, not 7" in err


def test_a_new_study_needs_a_budget(tmp_path, capsys):
    code, _, err = run(["search", "--study", "new", "--results-dir", str(tmp_path)], capsys)
    assert code == 2 and "--budget-kb: missing; study 'new' does not exist yet" in err


# ---------------------------------------------------------------------------------- --checkpoint
def test_export_takes_a_checkpoint_of_nas_train(subset, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--cell", "gru", "--hidden", "4", "--weights", "pow2", "--epochs", "1", "--wave-copies", "0"]
    assert main([*argv, "--data-dir", str(subset), "--out", str(out)]) == 0
    capsys.readouterr()
    checkpoint = out / "seed0.pt"
    export_dir = tmp_path / "export"
    code, out_text, _ = run(
        ["export", "--checkpoint", str(checkpoint), "--out", str(export_dir), "--no-measure", "--data-dir", str(subset)], capsys
    )
    assert code == 0 and f"exported {checkpoint} to {export_dir}" in out_text
    description = json.loads((export_dir / "model.json").read_text())
    metrics = torch.load(checkpoint, weights_only=True)["metrics"]  # the integer engine's scores, stored by nas train
    assert description["trial"] is None and description["accuracy"]["scored_by"] == "integer engine"
    assert description["accuracy"]["test_correct"] == metrics["int_test_correct"]
    assert description["accuracy"]["val_total"] == metrics["int_val_total"] > 0
    assert (export_dir / "model.c").is_file() and (export_dir / "weights.bin").is_file()
    code, out_text, _ = run(["evaluate", str(export_dir), "--data-dir", str(subset), "--json"], capsys)
    assert code == 0 and json.loads(out_text)["reproduces_model_json"] is True  # the export scores what training stored


def test_export_refuses_a_float_checkpoint(subset, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--cell", "gru", "--hidden", "4", "--epochs", "1", "--wave-copies", "0", "--data-dir", str(subset)]
    assert main([*argv, "--out", str(out)]) == 0
    capsys.readouterr()
    code, _, err = run(["export", "--checkpoint", str(out / "seed0.pt"), "--out", str(tmp_path / "e"), "--no-measure"], capsys)
    assert code == 2 and "a float32 model has no integer model to export" in err


# ------------------------------------------------------------------------------------ bad paths
@pytest.mark.parametrize(
    "argv",
    [
        ["data", "download", "--dest", "/proc/nope"],
        ["search", "--budget-kb", "4", "--space", "smoke", "--results-dir", "/proc/nope"],
        ["report", "--study", "s", "--out", "/proc/nope/page.html"],
        ["export", "--checkpoint", "/proc/nope/seed0.pt"],
        ["export", "--study", "s", "--best", "--no-measure", "--out", "/proc/nope/export"],  # caught by nas.cli.main alone
    ],
)
def test_a_bad_path_is_one_line_not_a_traceback(argv, study_copy, subset, capsys):
    if "--study" in argv:
        argv = [*argv, "--results-dir", str(study_copy)]
    if argv[0] == "search":
        argv = [*argv, "--data-dir", str(subset)]
    code, _, err = run(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err and "/proc/nope" in err, err

"""nas export / nas evaluate on a small real study: the export reloads and reproduces its accuracy."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import optuna
import pytest
import torch

from nas.cli.main import main
from nas.device.compute import TOLERANCE
from nas.device.memory import memory_breakdown
from nas.features.extract import FeatureCache, FeatureConfig
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from tests.conftest import index_of, link_subset


@pytest.fixture(scope="module")
def study(fsdd_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    data = link_subset(fsdd_dir, root / "data", lambda name: index_of(name) < 14)
    argv = ["search", "--budget-kb", "4", "--space", "smoke", "--data-dir", str(data), "--confirm-seeds", "0"]
    assert main([*argv, "--results-dir", str(root / "results"), "--study", "e", "--trials", "3", "--workers", "1"]) == 0
    return root, data


def export_argv(root, *extra):
    return ["export", "--study", "e", "--results-dir", str(root / "results"), *extra]


def test_export_best_then_evaluate_reproduces(study, capsys):
    root, data = study
    out = root / "best"
    assert main(export_argv(root, "--best", "--out", str(out))) == 0
    description = json.loads((out / "model.json").read_text())
    model_config, quant = ModelConfig(**description["model_config"]), QuantConfig(**description["quant_config"])
    breakdown = memory_breakdown(model_config, quant, FeatureConfig(**description["feature_config"]))
    assert (out / "weights.bin").stat().st_size == breakdown.weight_bytes + breakdown.bias_bytes + breakdown.meta_bytes
    assert description["memory"]["total_bytes"] == breakdown.total_bytes
    checkpoint = torch.load(out / "model.pt", weights_only=True)
    assert checkpoint["model_config"] == description["model_config"]
    assert (out / "README.md").read_text().startswith("# nas export")
    # what `nas export` measured with the installed compilers and printed: the memory model's bytes
    memory, compiled = description["memory"], description["compiled"]
    assert "gcc" in compiled  # the host compiler is always there; the ARM one and QEMU in CI
    for compiler in ("gcc", "arm-none-eabi-gcc"):
        if compiler in compiled:
            figures = compiled[compiler]
            assert figures["rodata_bytes"] == memory["flash_bytes"] and figures["data_bytes"] == 0
            assert figures["bss_bytes"] + memory["stack_bytes"] == memory["ram_bytes"]
            assert 0 < figures["max_stack_bytes"] <= memory["stack_bytes"]
            assert f"| {compiler} | {figures['rodata_bytes']:,} | 0 | {figures['bss_bytes']:,} |" in (out / "README.md").read_text()
    if "qemu" in compiled:
        assert compiled["qemu"]["golden_vectors_matching"] == compiled["qemu"]["golden_vectors"] == 20
        # the compute model's prediction, written beside it, within its tolerance of QEMU's count
        measured, predicted = compiled["qemu"]["instructions_per_frame"], description["instructions_predicted"]["cortex-m4"]
        assert abs(predicted["instructions_per_frame"] / measured - 1) <= TOLERANCE, (predicted, measured)
        assert f"about {measured:,} instructions per frame" in (out / "README.md").read_text()
    printed = capsys.readouterr().out
    assert f"gcc -Os: .rodata {memory['flash_bytes']:,} B, .bss {memory['ram_bytes'] - memory['stack_bytes']:,} B" in printed
    assert main(["evaluate", str(out), "--data-dir", str(data), "--html", str(out / "cm.html")]) == 0
    text = capsys.readouterr().out
    stored = description["accuracy"]
    assert f"reproduces model.json: {stored['test_correct']}/{stored['test_total']}" in text
    assert "precision" in text and "confusion matrix" in text and (out / "cm.html").is_file()
    # the best is the front's most accurate trial on validation
    trials = optuna.load_study(study_name="e", storage=f"sqlite:///{root / 'results' / 'e' / 'study.db'}").trials
    assert description["accuracy"]["val_correct"] == max(t.user_attrs["val_correct"] for t in trials)


def test_export_by_trial_and_max_kb(study, capsys):
    root, _ = study
    assert main(export_argv(root, "--trial", "1", "--out", str(root / "t1"))) == 0
    assert json.loads((root / "t1" / "model.json").read_text())["trial"] == 1
    assert main(export_argv(root, "--max-kb", "4", "--out", str(root / "k"))) == 0


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--trial", "99"], "--trial 99: no such trial in study 'e'"),
        (["--max-kb", "0.1"], "--max-kb 0.1: no finished trial fits"),
        ([], "one of the arguments --trial --best --max-kb --checkpoint is required"),
        (["--best", "--trial", "0"], "argument --trial: not allowed with argument --best"),
    ],
)
def test_export_bad_choices(study, capsys, extra, expected):
    root, _ = study
    try:
        code = main(export_argv(root, *extra))
    except SystemExit as exit_:  # argparse rejects the options before any command runs
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err


def test_export_of_a_pruned_trial_is_refused(study, capsys):
    root, _ = study
    storage = f"sqlite:///{root / 'results' / 'e' / 'study.db'}"
    loaded = optuna.load_study(study_name="e", storage=storage)
    loaded.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, params={}, distributions={}))
    number = len(loaded.trials) - 1
    assert main(export_argv(root, "--trial", str(number))) == 2
    assert f"--trial {number}: the trial is pruned, not complete" in capsys.readouterr().err


def test_evaluate_bad_folders(study, tmp_path, capsys):
    root, data = study
    assert main(["evaluate", str(tmp_path / "none"), "--data-dir", str(data)]) == 2
    assert "model.json: missing" in capsys.readouterr().err
    out = root / "broken"
    assert main(export_argv(root, "--best", "--out", str(out))) == 0
    weights = (out / "weights.bin").read_bytes()
    (out / "weights.bin").write_bytes(weights[:-3])
    assert main(["evaluate", str(out), "--data-dir", str(data)]) == 2
    assert "weights.bin: " in capsys.readouterr().err
    (out / "weights.bin").write_bytes(weights)
    (out / "model.json").write_text("{not json")
    assert main(["evaluate", str(out), "--data-dir", str(data)]) == 2
    assert "model.json: not a valid export description" in capsys.readouterr().err


def test_exported_c_fed_pcm_agrees_on_real_test_files(study, capsys):
    """The C export of a real trial, fed each test file's PCM: the engine's logits, the trial's
    accuracy; `make check` passes its golden vectors and `nas evaluate --c` says so."""
    from nas.bundle.export import load_export
    from nas.data.dataset import load_split
    from tests.ccheck import run_c_model

    root, data = study
    out = root / "c"
    assert main(export_argv(root, "--best", "--out", str(out), "--data-dir", str(data), "--no-measure")) == 0
    loaded = load_export(out)
    split, waveforms = load_split(data, "official")
    pcm = [waveforms[r.name].samples for r in split.test]
    labels = np.array([r.digit for r in split.test])
    classes, logits, _, (packed, struct) = run_c_model(out, pcm, pcm=True)
    frames = FeatureCache(None).get([waveforms[r.name] for r in split.test], loaded.feature_config)
    engine = loaded.engine
    assert np.array_equal(logits, np.concatenate([engine.logits([engine.quantize_frames(loaded.normaliser.apply(f))]) for f in frames]))
    description = json.loads((out / "model.json").read_text())
    assert packed == (out / "weights.bin").stat().st_size
    assert struct == description["memory"]["ram_bytes"] - description["memory"]["stack_bytes"]
    assert int((classes == labels).sum()) == description["accuracy"]["test_correct"]
    made = subprocess.run(["make", "-C", str(out), "example", "check"], capture_output=True, text=True)
    assert made.returncode == 0 and "20 of 20 golden vectors match" in made.stdout, made.stdout + made.stderr
    example = subprocess.run([str(out / "example"), str(split.test[0].path)], capture_output=True, text=True)
    assert example.returncode == 0 and f"digit {classes[0]} " in example.stdout
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data-dir", str(data), "--c"]) == 0
    assert f"{len(labels)}/{len(labels)} classes as the engine's, identical logits" in capsys.readouterr().out
    # a C that no longer matches the engine (one bias changed) is a failed check: exit 1
    source = (out / "model.c").read_text()
    bias = source.index("+ bias_value(CLASSIFIER_B, i + k)")
    (out / "model.c").write_text(source[:bias] + "+ 4096 " + source[bias:])
    assert main(["evaluate", str(out), "--data-dir", str(data), "--c"]) == 1
    assert "LOGITS DIFFER" in capsys.readouterr().out
    code = main(["evaluate", str(out), "--data-dir", str(data), "--c", "--json"])
    assert code == 1 and json.loads(capsys.readouterr().out)["c"]["logits_identical"] is False


def test_evaluate_warns_when_the_files_were_trained_on(study, capsys):
    """speaker:george's test part is all of george's files; a model trained on the official split
    learned from george's index 10-13 here: that overlap is said, with its count."""
    root, data = study
    out = root / "warn"
    assert main(export_argv(root, "--best", "--out", str(out))) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data-dir", str(data), "--split", "speaker:george"]) == 0
    captured = capsys.readouterr()
    george = sorted(data.glob("*_george_*.wav"))
    trained_on = [p for p in george if index_of(p.name) >= 10]
    assert 0 < len(trained_on) < len(george)
    assert f"warning: {len(trained_on)} of these {len(george)} files were in the train part of split 'official'" in captured.err
    assert main(["evaluate", str(out), "--data-dir", str(data)]) == 0  # its own split's test part: held out, no warning
    assert "warning" not in capsys.readouterr().err


def test_a_torchaudio_feature_model_exports_the_model_alone(tmp_path, fsdd_dir, capsys):
    """A model trained on torchaudio's MFCC has no device front-end: its C takes feature frames
    (nas_push_frame), its memory counts no front-end, and nas evaluate --c refuses, saying why."""
    from nas.bundle.export import export_trial
    from nas.core.stats import Accuracy
    from nas.study.record import TrialRecord
    from tests.ccheck import run_c_model

    data = link_subset(fsdd_dir, tmp_path / "data", lambda name: index_of(name) < 14)
    argv = ["train", "--data-dir", str(data), "--hidden", "6", "--epochs", "1", "--weights", "pow2", "--frontend", "torchaudio"]
    assert main([*argv, "--out", str(tmp_path / "t")]) == 0
    record = TrialRecord(
        number=0, val=Accuracy(1, 2), test=Accuracy(1, 2), scored_by="integer engine", checkpoint=str(tmp_path / "t" / "seed0.pt")
    )
    out = tmp_path / "export"
    description = export_trial(record, out, data)
    model_config, quant = ModelConfig(**description["model_config"]), QuantConfig(**description["quant_config"])
    assert description["memory"] == memory_breakdown(model_config, quant, None).to_dict()
    assert description["memory"]["frontend_bytes"] == 0 and description["golden_vectors"] is None
    assert not (out / "Makefile").exists() and "nas_push_samples" not in (out / "model.h").read_text()
    _, _, frames, (_, struct) = run_c_model(out, [np.zeros((3, model_config.n_input), np.int16)])
    assert list(frames) == [3] and struct == description["memory"]["ram_bytes"] - description["memory"]["stack_bytes"]
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data-dir", str(data), "--c"]) == 2
    assert "trained on torchaudio features; its C takes feature frames, not PCM" in capsys.readouterr().err

"""The command line: bad input gives one line naming the problem and exit code 2; `nas train`
runs end to end on a small real subset."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from nas.cli.main import main
from nas.device.compute import predict_instructions
from nas.device.memory import memory_breakdown
from nas.engine.intmodel import from_float_model
from nas.features.extract import FeatureCache, FeatureConfig, load_features
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.training.checkpoint import model_from_checkpoint
from nas.training.train import predict_logits
from tests.conftest import index_of, link_subset, write_wav


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nas"), err
    return lines[0]


@pytest.fixture
def bad_data(tmp_path, fsdd_dir):
    """A copy of a few real recordings, to which each test adds one bad file."""
    return link_subset(fsdd_dir, tmp_path / "data", lambda name: index_of(name) in (0, 5, 10))


@pytest.mark.parametrize(
    ("make_bad", "expected"),
    [
        (lambda d: (d / "1_bad_0.wav").write_bytes((d / "1_george_0.wav").read_bytes()[:-501]), "1_bad_0.wav: truncated WAV"),
        (lambda d: (d / "1_bad_0.wav").write_text("hello"), "1_bad_0.wav: not a readable audio file"),
        (lambda d: write_wav(d / "1_bad_0.wav", rate=44100), "1_bad_0.wav: sample rate 44100 Hz, expected 8000 Hz"),
        (lambda d: write_wav(d / "1_bad_0.wav", channels=2), "1_bad_0.wav: 2 channels, expected mono"),
        (lambda d: write_wav(d / "one_george_0.wav"), "one_george_0.wav: file name does not parse"),
    ],
)
def test_bad_files_stop_training_with_one_line(bad_data, capsys, make_bad, expected):
    make_bad(bad_data)
    code, _, err = run(["train", "--data-dir", str(bad_data), "--epochs", "1", "--out", str(bad_data.parent / "out")], capsys)
    assert code == 2
    assert expected in one_line_error(err)
    assert not (bad_data.parent / "out").exists()


def test_bad_files_fail_verify_with_each_problem_named(bad_data, capsys):
    write_wav(bad_data / "1_bad_0.wav", rate=16000)
    code, _, err = run(["data", "verify", "--data-dir", str(bad_data), "--allow-subset"], capsys)
    assert code == 2
    assert "1_bad_0.wav: sample rate 16000 Hz" in err and "verification failed with" in err.splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "--hidden", "0"], "argument --hidden: expected an integer in 1..1024, got 0"),
        (["train", "--layers", "4"], "argument --layers: expected an integer in 1..3, got 4"),
        (["train", "--n-mfcc", "many"], "argument --n-mfcc: expected an integer in 1..128, got 'many'"),
        (["train", "--dropout", "1.5"], "argument --dropout: expected a number in 0 <= x < 1"),
        (["train", "--cell", "transformer"], "argument --cell: invalid choice: 'transformer'"),
        (["train", "--split", "random"], "argument --split: expected 'official' or 'speaker:NAME'"),
        (["train", "--n-mfcc", "60"], "--n-mfcc 60: out of range; expected 1..n_mels (40)"),
        (["train", "--split", "speaker:zoe", "--epochs", "1"], "unknown speaker 'zoe'"),
        (["data", "verify", "--checksums", "/nonexistent/SUMS"], "/nonexistent/SUMS: checksum file not found"),
        (["data", "inspect", "9_nobody_0.wav"], "9_nobody_0.wav: no such recording"),
    ],
)
def test_bad_options_exit_2_with_one_line(argv, expected, capsys, fsdd_dir):
    try:
        code, _, err = run([*argv, "--data-dir", str(fsdd_dir)], capsys)
    except SystemExit as exit_:
        code, err = exit_.code, capsys.readouterr().err
    assert code == 2
    assert expected in one_line_error(err)


def test_missing_and_empty_data_folders(tmp_path, capsys):
    code, _, err = run(["data", "verify", "--data-dir", str(tmp_path / "nope")], capsys)
    assert code == 2 and "nope: data folder from --data-dir does not exist" in one_line_error(err)
    code, _, err = run(["train", "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and "no .wav files found" in one_line_error(err)


def test_missing_digit_stops_training(tmp_path, fsdd_dir, capsys):
    data = link_subset(fsdd_dir, tmp_path / "data", lambda name: not name.startswith("4_") and index_of(name) < 12)
    code, _, err = run(["train", "--data-dir", str(data), "--epochs", "1"], capsys)
    assert code == 2 and "no recordings of digit(s) 4" in one_line_error(err)


def test_no_traceback_in_a_real_process(bad_data):
    (bad_data / "0_x_0.wav").write_bytes(b"RIFF\x00\x00")
    process = subprocess.run(
        [sys.executable, "-m", "nas.cli", "train", "--data-dir", str(bad_data)], capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert "0_x_0.wav: not a readable audio file" in one_line_error(process.stderr)


def test_train_end_to_end_and_resume(tmp_path, fsdd_dir, capsys):
    data = link_subset(fsdd_dir, tmp_path / "data", lambda name: index_of(name) < 14)
    out = tmp_path / "run"
    argv = ["train", "--data-dir", str(data), "--hidden", "16", "--epochs", "3", "--seed", "0", "1", "--out", str(out), "--device", "cpu"]
    code, text, err = run(argv, capsys)
    assert code == 0, err
    assert "parameters: 1,658" in text and "float32 size: 6.48 kB (6,632 B)" in text
    assert "test accuracy over 2 seeds: mean" in text and "95% CI" in text
    # not a terminal: a line at the last epoch of each seed (and every 10th), not silence until the end
    assert "seed 0: epoch 3/3 | train loss" in text and "seed 1: epoch 3/3" in text and "epoch 2/3" not in text
    summary = json.loads((out / "summary.json").read_text())
    assert [r["seed"] for r in summary["runs"]] == [0, 1]
    checkpoint = torch.load(out / "seed0.pt", weights_only=True)
    assert checkpoint["metrics"]["test_total"] == 300 and checkpoint["split"] == "official"
    code, text, err = run(["train", "--data-dir", str(data), "--resume", str(out / "seed0.pt"), "--device", "cpu"], capsys)
    assert code == 0, err
    accuracy = checkpoint["metrics"]["test_correct"] / 3
    assert f"{accuracy:.2f}% [95% CI" in text  # the finished run reloads and reports the same accuracy


def test_resume_of_a_damaged_checkpoint(tmp_path, capsys, fsdd_dir):
    damaged = tmp_path / "seed0.pt"
    damaged.write_bytes(b"\x00" * 100)
    code, _, err = run(["train", "--resume", str(damaged), "--data-dir", str(fsdd_dir)], capsys)
    assert code == 2 and "seed0.pt: not a readable checkpoint" in one_line_error(err)


def test_memory_command_prints_the_breakdown_and_solves_hidden(capsys):
    code, out, _ = run(["memory", "--cell", "gru", "--hidden", "64", "--n-mfcc", "13", "--weights", "pow2", "--weight-bits", "4"], capsys)
    assert code == 0 and "12.91 kB (13,221 B)" in out and "7,808" in out  # docs/memory-model.md works it out by hand
    assert "flash_bytes" in out and "11,013" in out and "ram_bytes" in out
    # the compute model beside the bytes: its prediction, for the default target and another
    predicted = predict_instructions(ModelConfig(hidden=64), QuantConfig.make("pow2", 4), FeatureConfig(), "cortex-m4")
    assert f"compute on cortex-m4: about {round(predicted.per_frame):,} instructions per frame" in out.replace("\n", " ")
    assert f"{round(predicted.mips(0.01), 2):g} MIPS for real time at a 10 ms hop" in out.replace("\n", " ")
    code, out, _ = run(["memory", "--hidden", "64", "--weights", "pow2", "--target", "cortex-m3"], capsys)
    assert code == 0 and "compute on cortex-m3: about" in out
    code, out, _ = run(["memory", "--hidden", "64", "--weights", "float"], capsys)
    assert code == 0 and "compute on" not in out  # float weights: no integer engine on the device
    code, out, _ = run(["memory", "--weights", "pow2", "--budget-kb", "36", "--solve", "hidden"], capsys)
    quant = QuantConfig.make("pow2", 4)
    fits = [h for h in range(1, 400) if memory_breakdown(ModelConfig(hidden=h), quant, FeatureConfig()).total_bytes <= 36 * 1024]
    assert fits == list(range(1, fits[-1] + 1))  # bytes grow with the hidden size: the largest is the answer
    assert code == 0 and f"largest hidden size within 36.00 kB (36,864 B) (total): {fits[-1]}" in out and "| fits" in out
    size = memory_breakdown(ModelConfig(hidden=fits[-1]), quant, FeatureConfig()).total_bytes
    assert f"uses {size / 1024:,.2f} kB ({size:,} B)" in out
    code, out, _ = run(["memory", "--hidden", "256", "--budget-kb", "36"], capsys)
    assert code == 1 and "over budget" in out  # a failed check: scripts see it in the exit code


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["memory", "--weights", "pow2", "--weight-bits", "7"], "--weight-bits 7: out of range for power-of-two weights; expected 3..6"),
        (["memory", "--weights", "fixed", "--weight-bits", "1"], "--weight-bits 1: out of range for fixed-point weights; expected 2..8"),
        (["memory", "--weight-bits", "8"], "float weights are 32-bit"),
        (["memory", "--solve", "hidden"], "--solve hidden: needs --budget-kb"),
        (["memory", "--budget-kb", "0.2", "--solve", "hidden", "--weights", "pow2"], "--budget-kb 0.2: no hidden size fits"),
        (["memory", "--state-bits", "12"], "argument --state-bits: invalid choice"),
    ],
)
def test_memory_bad_options(argv, expected, capsys):
    try:
        code, _, err = run(argv, capsys)
    except SystemExit as exit_:
        code, err = exit_.code, capsys.readouterr().err
    assert code == 2 and expected in one_line_error(err)


def test_quantized_training_reports_the_integer_engine(tmp_path, fsdd_dir, capsys):
    data = link_subset(fsdd_dir, tmp_path / "data", lambda name: index_of(name) < 14)
    out = tmp_path / "q"
    argv = ["train", "--data-dir", str(data), "--hidden", "8", "--epochs", "2", "--weights", "pow2", "--out", str(out)]
    code, text, err = run(argv, capsys)
    assert code == 0, err
    assert "int test accuracy" in text and "pow2 4-bit weights" in text and "total_bytes" in text
    checkpoint = torch.load(out / "seed0.pt", weights_only=True)
    metrics = checkpoint["metrics"]
    assert checkpoint["quant_config"]["weights"] == "pow2"
    # the stored figures, recomputed from the checkpoint: integer engine, and its agreement with the fake-quant model
    split, features = load_features(data, "official", FeatureConfig(**checkpoint["feature_config"]), FeatureCache(None))
    frames, labels = features.part("test")
    model = model_from_checkpoint(checkpoint)
    engine_classes = from_float_model(model, QuantConfig(**checkpoint["quant_config"])).predict(frames)[1]
    fake_classes = predict_logits(model, frames, torch.device("cpu")).argmax(axis=1)
    assert metrics["int_test_total"] == len(split.test) == 300
    assert metrics["int_test_correct"] == int((engine_classes == labels).sum())
    assert metrics["int_float_test_agreement"] == float((engine_classes == fake_classes).mean())
    code, text, _ = run(["train", "--data-dir", str(data), "--resume", str(out / "seed0.pt")], capsys)
    assert code == 0 and f"({metrics['int_test_correct']}/300)" in text


def test_help_and_memory_do_not_load_torch():
    """Building the parser and sizing a model need neither torch nor Optuna: they start at once."""
    script = """
import sys
from nas.cli.main import main
for argv in (["--help"], ["train", "--help"], ["search", "--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
assert main(["memory", "--hidden", "8", "--weights", "pow2", "--budget-kb", "12", "--solve", "hidden"]) == 0
print("LOADED", sorted(m for m in ("torch", "torchaudio", "optuna", "sklearn") if m in sys.modules))
"""
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr
    assert "LOADED []" in process.stdout


def all_parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from all_parsers(child)


def test_every_option_says_its_default():
    """Each option's help shows its default, or says in words what happens without it."""
    from nas.cli.main import build_parser

    checked = 0
    for parser in all_parsers(build_parser()):
        formatter = parser._get_formatter()
        one_of = {action for group in parser._mutually_exclusive_groups if group.required for action in group._group_actions}
        for action in parser._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS or action.nargs == 0 or action.required or action in one_of:
                continue  # positionals, flags, --help/--version, required options and choices
            text = formatter._expand_help(action)
            if action.default is not None:
                shown = " ".join(map(str, action.default)) if isinstance(action.default, list) else str(action.default)
                assert f"(default: {shown})" in " ".join(text.split()), (parser.prog, action.option_strings, text)
            else:
                assert "default:" in text, (parser.prog, action.option_strings, text)
            checked += 1
    assert checked > 60


def test_reproducibility_is_promised_only_where_it_holds(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "any machine" not in text and "same thread count, torch version and CPU type" in text


def test_interrupted_training_names_its_checkpoint_and_the_resume_command(tmp_path, fsdd_dir):
    data = link_subset(fsdd_dir, tmp_path / "data", lambda name: index_of(name) < 14)
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "nas.cli", "train", "--data-dir", str(data), "--hidden", "8", "--epochs", "500", "--out", str(out)]
    process = subprocess.Popen([*argv, "--seed", "3", "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "seed3.pt").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    checkpoint = out / "seed3.pt"
    assert f"continue with: nas train --resume {checkpoint} --data-dir {data}" in err and "seeds not started: 4" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert torch.load(checkpoint, weights_only=True)["resume"]["epoch"] >= 1

"""The command line: bad input gives one line naming the problem and exit code 2; `nas train`
runs end to end on a small real subset."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from nas.cli import main
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
        (lambda d: (d / "1_bad_0.wav").write_text("hello"), "1_bad_0.wav: not a readable WAV file"),
        (lambda d: write_wav(d / "1_bad_0.wav", rate=44100), "1_bad_0.wav: sample rate 44100 Hz, expected 8000 Hz"),
        (lambda d: write_wav(d / "1_bad_0.wav", channels=2), "1_bad_0.wav: 2 channels, expected mono"),
        (lambda d: write_wav(d / "1_bad_0.wav", sample_bytes=1), "1_bad_0.wav: 8-bit samples, expected 16-bit PCM"),
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
    assert "0_x_0.wav: not a readable WAV file" in one_line_error(process.stderr)


def test_train_end_to_end_and_resume(tmp_path, fsdd_dir, capsys):
    data = link_subset(fsdd_dir, tmp_path / "data", lambda name: index_of(name) < 14)
    out = tmp_path / "run"
    argv = ["train", "--data-dir", str(data), "--hidden", "16", "--epochs", "3", "--seed", "0", "1", "--out", str(out), "--device", "cpu"]
    code, text, err = run(argv, capsys)
    assert code == 0, err
    assert "parameters: 1,658" in text and "float32 size: 6.48 kB (6,632 B)" in text
    assert "test accuracy over 2 seeds: mean" in text and "95% CI" in text
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
    assert code == 0 and "9.00 kB (9,211 B)" in out and "7,712" in out
    code, out, _ = run(["memory", "--weights", "pow2", "--budget-kb", "36", "--solve", "hidden"], capsys)
    assert code == 0 and "largest hidden size within 36.00 kB (36,864 B) (total): 142" in out and "fits" in out
    code, out, _ = run(["memory", "--hidden", "256", "--budget-kb", "36"], capsys)
    assert code == 0 and "over budget" in out


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
    assert metrics["int_test_total"] == 300 and 0 <= metrics["int_float_test_agreement"] <= 1
    assert checkpoint["quant_config"]["weights"] == "pow2"
    code, text, _ = run(["train", "--data-dir", str(data), "--resume", str(out / "seed0.pt")], capsys)
    assert code == 0 and f"({metrics['int_test_correct']}/300)" in text

"""One definition of each limit: the command line, the configs, the search space and the budget
solver accept exactly the same values."""

from __future__ import annotations

import argparse

import pytest

from nas.cli.main import build_parser
from nas.core import limits
from nas.core.errors import NasError
from nas.device.memory import Budget, largest_hidden
from nas.features.extract import FeatureConfig
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.study.space import load_space
from nas.training.recipe import TrainConfig

# option -> (its bound, a function that builds and validates the config it sets)
OPTIONS = {
    "--layers": (limits.LAYERS, lambda v: ModelConfig(layers=v).validate()),
    "--hidden": (limits.HIDDEN, lambda v: ModelConfig(hidden=v).validate()),
    "--dropout": (limits.DROPOUT, lambda v: ModelConfig(dropout=v).validate()),
    "--n-mfcc": (
        limits.N_MFCC,
        lambda v: (FeatureConfig(n_mfcc=v, n_mels=limits.N_MELS.high).validate(), ModelConfig(n_input=v).validate()),
    ),
    "--n-mels": (limits.N_MELS, lambda v: FeatureConfig(n_mels=v, n_mfcc=1).validate()),
    "--n-fft": (limits.N_FFT, lambda v: FeatureConfig(n_fft=v, hop_length=1).validate()),
    "--hop-length": (limits.HOP_LENGTH, lambda v: FeatureConfig(hop_length=v, n_fft=limits.N_FFT.high).validate()),
    "--floor-bits": (limits.FLOOR_BITS, lambda v: FeatureConfig(floor_bits=v, frontend="integer").validate()),
    "--epochs": (limits.EPOCHS, lambda v: TrainConfig.for_epochs(v).validate()),
    "--batch-size": (limits.BATCH_SIZE, lambda v: TrainConfig(batch_size=v).validate()),
    "--lr": (limits.LEARNING_RATE, lambda v: TrainConfig(learning_rate=v).validate()),
    "--weight-decay": (limits.WEIGHT_DECAY, lambda v: TrainConfig(weight_decay=v).validate()),
    "--patience": (limits.PATIENCE, lambda v: TrainConfig(patience=v).validate()),
    "--label-smoothing": (limits.LABEL_SMOOTHING, lambda v: TrainConfig(label_smoothing=v).validate()),
    "--noise-std": (limits.NOISE_STD, lambda v: TrainConfig(noise_std=v).validate()),
    "--time-mask": (limits.TIME_MASK, lambda v: TrainConfig(time_mask_fraction=v).validate()),
    "--freq-mask": (limits.FREQ_MASK, lambda v: TrainConfig(freq_mask_width=v).validate()),
    "--seed": (limits.SEED, lambda v: TrainConfig(seed=v).validate()),
}


def edges(bound: limits.Bound) -> list:
    if bound.integer:
        return [int(bound.low) - 1, int(bound.low), int(bound.high), int(bound.high) + 1]
    step = abs(bound.low) / 2 if bound.low > 0 else 0.01
    return [bound.low - step, bound.low, bound.high * 0.999, bound.high, bound.high + 0.01]


def accepted_by_parser(command: str, option: str, value) -> bool:
    try:
        build_parser().parse_args([command, option, str(value)])
    except SystemExit:
        return False
    return True


def accepted_by_config(check, value) -> bool:
    try:
        check(value)
    except NasError:
        return False
    return True


@pytest.mark.parametrize("option", OPTIONS)
def test_the_command_line_accepts_what_the_config_accepts(option):
    bound, check = OPTIONS[option]
    verdicts = [(value, accepted_by_parser("train", option, value), accepted_by_config(check, value)) for value in edges(bound)]
    assert all(by_parser == by_config for _, by_parser, by_config in verdicts), verdicts
    assert any(ok for _, ok, _ in verdicts) and not all(ok for _, ok, _ in verdicts)


@pytest.mark.parametrize("command", ["train", "memory"])
def test_every_command_takes_the_same_hidden_range(command):
    assert accepted_by_parser(command, "--hidden", limits.HIDDEN.high)
    assert not accepted_by_parser(command, "--hidden", limits.HIDDEN.high + 1)


def test_the_budget_solver_never_answers_a_size_that_training_refuses():
    hidden = largest_hidden(Budget(10**9), ModelConfig(), QuantConfig.make("pow2", 4), FeatureConfig())
    assert hidden == limits.HIDDEN.high
    ModelConfig(hidden=hidden).validate()


@pytest.mark.parametrize(
    ("key", "field", "bound", "check"),
    [
        ("architecture.layers", "layers", limits.LAYERS, OPTIONS["--layers"][1]),
        # the search's features: every n_mfcc must fit every n_mels of the (default) space
        ("architecture.n_mfcc", "n_mfcc", limits.N_MFCC, lambda v: FeatureConfig(n_mfcc=v, n_mels=min(load_space().n_mels)).validate()),
        ("formats.pow2_bits", "pow2_bits", limits.POW2_BITS, lambda v: QuantConfig.make("pow2", v).validate()),
        ("formats.fixed_bits", "fixed_bits", limits.FIXED_BITS, lambda v: QuantConfig.make("fixed", v).validate()),
    ],
)
def test_a_space_accepts_what_the_configs_accept(tmp_path, key, field, bound, check):
    table, name = key.split(".")
    for value in range(int(bound.low) - 1, int(bound.high) + 2):
        path = tmp_path / "space.toml"
        path.write_text(f"[{table}]\n{name} = [{value}]\n")
        try:
            space_ok = getattr(load_space(path), field) == (value,)
        except NasError:
            space_ok = False
        assert space_ok == accepted_by_config(check, value), (key, value)


def test_epochs_and_patience_of_a_space_follow_the_training_limits(tmp_path):
    path = tmp_path / "space.toml"
    for value, ok in [(limits.EPOCHS.high, True), (limits.EPOCHS.high + 1, False), (0, False)]:
        path.write_text(f"[training]\nepochs = {value}\npatience = {min(value, limits.PATIENCE.high) or 1}\n")
        if ok:
            assert load_space(path).epochs == value
        else:
            with pytest.raises(NasError, match=r"training\.epochs"):
                load_space(path)


def test_bound_accepts_only_numbers_of_its_kind_in_its_range():
    whole, open_number = limits.Bound(1, 3), limits.Bound(0, 1, integer=False, high_open=True)
    assert [whole.contains(v) for v in (0, 1, 3, 4, 2.5, "2", True, None)] == [False, True, True, False, False, False, False, False]
    assert [open_number.contains(v) for v in (-0.1, 0, 0.5, 1, 1.0, 0.999)] == [False, True, True, False, False, True]
    assert limits.Bound(0, 1, integer=False).contains(1.0)
    assert whole.expected() == "an integer in 1..3" and open_number.expected() == "a number in 0 <= x < 1"
    assert limits.Bound(0.5, 2, integer=False).expected() == "a number in 0.5..2"
    with pytest.raises(NasError, match=r"^--layers 4: out of range; expected an integer in 1\.\.3$"):
        whole.check("--layers", 4)
    assert whole.parse("2") == 2 and open_number.parse("0.25") == 0.25
    for text, message in [("x", "expected an integer in 1..3, got 'x'"), ("7", "expected an integer in 1..3, got 7")]:
        with pytest.raises(argparse.ArgumentTypeError) as caught:
            whole.parse(text)
        assert str(caught.value) == message


def test_quant_config_defaults_and_widths():
    assert [QuantConfig.make(s).weight_bits for s in ("float", "fixed", "pow2")] == [32, 8, 4]
    QuantConfig().validate()
    assert QuantConfig().describe() == "float32"
    assert QuantConfig.make("pow2", 5, state_bits=8).describe() == "pow2 5-bit weights, 16-bit biases, 8-bit state"
    for bad, message in [
        (QuantConfig("float", 8), "--weight-bits 8: float weights are 32-bit"),
        (QuantConfig("pow2", 7), "--weight-bits 7: out of range for power-of-two weights; expected 3..6"),
        (QuantConfig("fixed", 1), "--weight-bits 1: out of range for fixed-point weights; expected 2..8"),
        (QuantConfig("fixed", 8, bias_bits=8), "--bias-bits 8: expected 16 or 32"),
        (QuantConfig("fixed", 8, state_bits=12), "--state-bits 12: expected 8 or 16"),
        (QuantConfig("int4"), "--weights int4: unknown scheme; expected one of float, fixed, pow2"),
    ]:
        with pytest.raises(NasError) as caught:
            bad.validate()
        assert str(caught.value).startswith(message)

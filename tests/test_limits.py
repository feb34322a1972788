"""One definition of each limit: the command line, the configs, the search space and the budget
solver accept exactly the same values."""

from __future__ import annotations

import pytest

from nas import limits
from nas.architecture import ModelConfig
from nas.errors import NasError
from nas.features import FeatureConfig
from nas.formats import QuantConfig
from nas.memory import largest_hidden
from nas.options import build_parser
from nas.recipe import TrainConfig
from nas.space import load_space

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
    hidden = largest_hidden(10**9, ModelConfig(), QuantConfig.make("pow2", 4))
    assert hidden == limits.HIDDEN.high
    ModelConfig(hidden=hidden).validate()


@pytest.mark.parametrize(
    ("key", "field", "bound", "check"),
    [
        ("architecture.layers", "layers", limits.LAYERS, OPTIONS["--layers"][1]),
        ("architecture.n_mfcc", "n_mfcc", limits.N_MFCC, lambda v: FeatureConfig(n_mfcc=v).validate()),  # the search's features
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

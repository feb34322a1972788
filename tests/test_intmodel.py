from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from nas.core.errors import NasError
from nas.data.dataset import list_recordings, make_split, read_all
from nas.device.memory import memory_breakdown
from nas.engine.intmodel import (
    IntWeight,
    accumulator_bits,
    from_float_model,
    int_sigmoid,
    int_tanh,
    pack,
    pow2_multipliers,
    round_shift,
    unpack,
)
from nas.features.extract import FeatureCache, FeatureConfig, build_feature_set
from nas.model.architecture import ModelConfig
from nas.model.formats import QuantConfig
from nas.model.models import RecurrentClassifier
from nas.training.train import TrainConfig, predict_logits, train_model

CPU = torch.device("cpu")
LSB = 2.0**-15


def test_round_shift_rounds_half_up_and_left_shifts():
    assert round_shift(np.array([5, 6, 7, -5, -6, -7]), 2).tolist() == [1, 2, 2, -1, -1, -2]
    assert round_shift(np.array([3, -3]), -2).tolist() == [12, -12]


def test_integer_sigmoid_and_tanh_error_bounds():
    pre = np.arange(-(2**15), 2**15)  # every Q3.12 input
    x = pre / 4096
    sigmoid_error = np.abs(int_sigmoid(pre) * LSB - 1 / (1 + np.exp(-x)))
    assert sigmoid_error.max() <= 3 * LSB
    tanh_error = np.abs(int_tanh(pre) * LSB - np.tanh(x))
    assert tanh_error[np.abs(x) <= 4].max() <= 5 * LSB  # inside the table
    assert tanh_error.max() <= 1 - np.tanh(4) + 2 * LSB  # beyond it, tanh saturates at tanh(4)
    assert int_sigmoid(pre).min() >= 0 and int_sigmoid(pre).max() < 2**15
    assert np.array_equal(int_tanh(pre[1:]), -int_tanh(-pre[1:]))  # odd


QUANTS = [QuantConfig.make("fixed", b, bias_bits=bb, state_bits=s) for b, bb, s in [(2, 16, 16), (5, 32, 16), (8, 16, 8)]]
QUANTS += [QuantConfig.make("pow2", b, bias_bits=bb, state_bits=s) for b, bb, s in [(3, 16, 16), (4, 16, 8), (5, 32, 16), (6, 16, 16)]]


@pytest.mark.parametrize(("cell", "layers", "quant"), list(itertools.product(["gru", "lstm", "rnn"], [1, 2], QUANTS)))
def test_pack_length_equals_memory_model_and_round_trips(cell, layers, quant):
    torch.manual_seed(layers)
    config = ModelConfig(cell=cell, layers=layers, hidden=11, n_input=7)
    engine = from_float_model(RecurrentClassifier(config), quant)
    data = pack(engine)
    breakdown = memory_breakdown(config, quant, None)
    assert len(data) == breakdown.weight_bytes + breakdown.bias_bytes + breakdown.meta_bytes
    again = unpack(data, config, quant)
    for name, weight in engine.weights.items():
        assert np.array_equal(weight.codes, again.weights[name].codes) and weight.shift == again.weights[name].shift
    for name, bias in engine.biases.items():
        assert np.array_equal(bias, again.biases[name])
    frames = [np.random.default_rng(i).standard_normal((5 + i, 7)) for i in range(6)]
    assert np.array_equal(engine.predict(frames)[0], again.predict(frames)[0])


def test_pack_starts_every_row_on_a_byte():
    # GRU 1x1, 3 inputs, fixed 3-bit: W_ih is 3 rows of 3 codes (9 bits, 2 bytes each), W_hh 3 rows of
    # one code (1 byte each), the classifier 10 rows of one code; then the biases and the shifts
    config, quant = ModelConfig(hidden=1, n_input=3), QuantConfig.make("fixed", 3)
    engine = from_float_model(RecurrentClassifier(config), quant)
    engine.weights["layer0.w_ih"].codes[:] = [[1, 2, 3], [-1, 0, 1], [3, -4, 0]]
    engine.weights["layer0.w_hh"].codes[:] = [[1], [-2], [0]]
    engine.weights["classifier.w"].codes[:] = np.arange(10).reshape(10, 1) % 8 - 4
    data = pack(engine)
    # each row's codes from its own byte, LSB first: 1 2 3 -> bits 100 010 110 -> 0b11010001, then 0;
    # -1 0 1 (codes 7 0 1) -> 111 000 100 -> 0b01000111, then 0; 3 -4 0 (3 4 0) -> 0b00100011, then 0
    assert data[:6] == bytes([0b11010001, 0, 0b01000111, 0, 0b00100011, 0])
    assert data[6:9] == bytes([1, 6, 0]) and data[9:19] == bytes(v % 8 for v in range(-4, 6))
    assert np.array_equal(unpack(data, config, quant).weights["layer0.w_ih"].codes, engine.weights["layer0.w_ih"].codes)


def test_unpack_rejects_wrong_length():
    config, quant = ModelConfig(hidden=8), QuantConfig.make("pow2", 4)
    data = pack(from_float_model(RecurrentClassifier(config), quant))
    with pytest.raises(NasError, match="bytes of packed weights, expected"):
        unpack(data[:-1], config, quant)


def test_a_shape_that_could_overflow_int32_accumulates_in_64_bits_exactly():
    codes = np.full((2, 600), 127)
    wide, narrow = IntWeight("fixed", 8, 6, codes, 16), IntWeight("fixed", 8, 6, codes[:, :500], 16)
    assert (wide.accumulator_bits, narrow.accumulator_bits) == (64, 32)  # 500 * 127 * 32768 < 2**31 <= 600 * ...
    inputs = np.full((1, 600), 2**15 - 1)
    assert wide.accumulate(inputs).tolist() == [[600 * 127 * (2**15 - 1)] * 2]  # past 2**31, exact
    assert accumulator_bits("pow2", 4, 512, 16) == 32 and accumulator_bits("pow2", 4, 1024, 16) == 64
    assert accumulator_bits("pow2", 5, 3, 16) == 32 and accumulator_bits("pow2", 5, 4, 16) == 64  # 4 * 2**14 * 2**15 = 2**31


@pytest.mark.parametrize("bits", [3, 4, 5, 6])
def test_pow2_multipliers_are_the_codes_powers_in_units_of_the_smallest(bits):
    levels = 2 ** (bits - 1) - 1
    codes = np.arange(2**bits)
    sign, k = np.where(codes >= 2 ** (bits - 1), -1, 1), codes % 2 ** (bits - 1)
    expected = np.where(k < levels, sign * 2.0 ** (levels - 1 - np.minimum(k, levels - 1)), 0)
    assert pow2_multipliers(bits).tolist() == expected.tolist()
    weight = IntWeight("pow2", bits, 1, codes.reshape(2, -1), 16)  # e_max 1: values sign * 2**(1 - k)
    assert weight.acc_frac == levels - 2  # -e_min
    assert weight.decoded().reshape(-1).tolist() == np.where(k < levels, sign * 2.0 ** (1 - np.minimum(k, levels)), 0).tolist()
    x = np.random.default_rng(bits).integers(-(2**15), 2**15, (3, codes.size // 2))
    exact = x.astype(object) @ weight.exact.T.astype(object)  # Python integers: no rounding anywhere
    assert weight.accumulate(x).tolist() == exact.tolist()


@pytest.fixture(scope="module")
def features(fsdd_dir, tmp_path_factory):
    recordings = [r for r in list_recordings(fsdd_dir) if r.index < 20]
    waveforms = {w.recording.name: w for w in read_all(recordings)}
    return build_feature_set(make_split(recordings, "official"), waveforms, FeatureConfig(), FeatureCache(tmp_path_factory.mktemp("c")))


@pytest.mark.parametrize(("cell", "quant"), [("gru", QuantConfig.make("pow2", 4)), ("lstm", QuantConfig.make("fixed", 8))])
def test_integer_engine_agrees_with_fake_quant_on_real_frames(features, cell, quant):
    config = TrainConfig(epochs=8, learning_rate=1e-2, batch_size=16, warmup_epochs=1, seed=0)
    result = train_model(features, ModelConfig(cell=cell, hidden=32), config, CPU, quant=quant)
    assert result.integer.test.value > 0.7  # it learned (chance is 0.1)
    frames, labels = features.part("test")
    engine = from_float_model(result.model, quant)
    logits, classes = engine.predict(frames)
    assert logits.dtype == np.int64 and np.abs(logits).max() < 2**31
    fake = predict_logits(result.model, frames, CPU)
    assert (fake.argmax(axis=1) == classes).mean() >= 0.98
    logit_error = np.abs(logits / 4096 - fake)
    assert np.median(logit_error) < 0.05, np.percentile(logit_error, [50, 90, 99, 100])  # Q.12 logits track the float ones
    assert result.integer.test.correct == int((classes == labels).sum())
    if quant.weights == "pow2":
        for weight in engine.weights.values():
            values = weight.decoded()
            nonzero = np.abs(values[values != 0])
            assert np.array_equal(np.log2(nonzero), np.round(np.log2(nonzero)))  # 0 or +-2**e only


def test_quantized_checkpoint_reloads_to_the_same_integer_model(features, tmp_path):
    from nas.training.checkpoint import load_checkpoint, model_from_checkpoint

    quant = QuantConfig.make("pow2", 4)
    path = tmp_path / "q.pt"
    config = TrainConfig(epochs=2, warmup_epochs=1, seed=0)
    result = train_model(features, ModelConfig(hidden=8), config, CPU, checkpoint_path=path, quant=quant)
    reloaded = model_from_checkpoint(load_checkpoint(path))
    assert pack(from_float_model(reloaded, quant)) == pack(from_float_model(result.model, quant))

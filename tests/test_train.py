from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from nas.data.dataset import list_recordings, make_split, read_all
from nas.features.extract import FeatureCache, FeatureConfig, build_feature_set
from nas.model.models import ModelConfig, RecurrentClassifier, count_parameters
from nas.training.checkpoint import load_checkpoint, model_from_checkpoint
from nas.training.train import TrainConfig, predict_logits, train_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def features(fsdd_dir, tmp_path_factory):
    """Official-split subset: train = index 10-19 (600 files), val = 5-9, test = 0-4 (300 each)."""
    recordings = [r for r in list_recordings(fsdd_dir) if r.index < 20]
    waveforms = {w.recording.name: w for w in read_all(recordings)}
    split = make_split(recordings, "official")
    return build_feature_set(split, waveforms, FeatureConfig(), FeatureCache(tmp_path_factory.mktemp("cache")))


def test_parameter_count_of_the_reference_gru():
    assert count_parameters(RecurrentClassifier(ModelConfig(cell="gru", hidden=64, n_input=13))) == 15_818


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_classifier_reads_the_last_valid_step(cell):
    torch.manual_seed(0)
    model = RecurrentClassifier(ModelConfig(cell=cell, layers=2, hidden=8, n_input=5)).eval()
    a, b = torch.randn(7, 5), torch.randn(3, 5)
    padded = torch.zeros(2, 7, 5)
    padded[0], padded[1, :3] = a, b
    batched = model(padded, torch.tensor([7, 3]))
    alone = model(b[None], torch.tensor([3]))
    assert torch.allclose(batched[1], alone[0], atol=1e-6)  # padding after the end changes nothing


def test_short_training_beats_chance_by_far(features):
    result = train_model(
        features, ModelConfig(hidden=32), TrainConfig(epochs=8, learning_rate=1e-2, batch_size=16, seed=0, warmup_epochs=1), CPU
    )
    assert result.val.value > 0.7, result.val  # chance is 0.1
    assert result.test.value > 0.7, result.test
    assert (
        result.best_epoch
        == max(range(len(result.history)), key=lambda i: (result.history[i].val_accuracy, -result.history[i].val_loss)) + 1
    )


def test_same_seed_same_model_other_seed_other_model(features):
    config = TrainConfig(epochs=2, seed=3, warmup_epochs=1)
    model_config = ModelConfig(hidden=16)
    first = train_model(features, model_config, config, CPU)
    second = train_model(features, model_config, config, CPU)
    other = train_model(features, model_config, replace(config, seed=4), CPU)
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key])
    assert first.val == second.val and first.test == second.test
    assert any(not torch.equal(v, other.model.state_dict()[k]) for k, v in first.model.state_dict().items())


def test_interrupted_run_resumes_to_the_same_result(features, tmp_path):
    config = TrainConfig(epochs=4, seed=1, warmup_epochs=1)
    model_config = ModelConfig(cell="lstm", hidden=16)
    whole = train_model(features, model_config, config, CPU)

    path = tmp_path / "run.pt"

    def stop_after_two(record, state):
        if record.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(features, model_config, config, CPU, checkpoint_path=path, on_epoch=stop_after_two)
    checkpoint = load_checkpoint(path)
    assert checkpoint["resume"]["epoch"] == 2
    resumed = train_model(features, model_config, config, CPU, checkpoint_path=path, resume=checkpoint)
    assert [r.val_accuracy for r in resumed.history] == [r.val_accuracy for r in whole.history]
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key])

    reloaded = model_from_checkpoint(load_checkpoint(path))
    frames, _ = features.part("test")
    assert np.array_equal(predict_logits(reloaded, frames, CPU), predict_logits(whole.model, frames, CPU))


def test_the_model_returned_holds_the_best_validation_epochs_weights(features, tmp_path):
    """A diverging run (lr 1.0) peaks early: what comes back, and what the checkpoint keeps as
    `state_dict`, are the best validation epoch's weights, not the last epoch's."""
    path = tmp_path / "run.pt"
    for seed in range(4):  # the first seed whose best epoch is not its last (seed 0 with one thread)
        config = TrainConfig(epochs=5, learning_rate=1.0, warmup_epochs=1, patience=5, seed=seed)
        result = train_model(features, ModelConfig(hidden=16), config, CPU, checkpoint_path=path)
        if result.history[result.best_epoch - 1].val_accuracy > result.history[-1].val_accuracy:
            break
    else:
        pytest.fail("no run peaked before its last epoch: the test cannot tell the two apart")
    best = result.history[result.best_epoch - 1]
    assert max(r.val_accuracy for r in result.history) == best.val_accuracy
    assert result.val.value == best.val_accuracy  # re-scored from the returned weights
    checkpoint = load_checkpoint(path)
    returned = result.model.state_dict()
    assert all(torch.equal(value, checkpoint["state_dict"][key]) for key, value in returned.items())
    assert any(not torch.equal(value, checkpoint["resume"]["model"][key]) for key, value in returned.items())

"""The transfer model: copied (not shared) frozen layers, counts, freezing, saving."""

import hashlib
import os

import numpy as np
import pytest
import keras
from keras import layers

import tl_mnist
from common.lesson import saved_models, transfer
from common.errors import UserInputError
from common.lesson.settings import FitSettings
from common.engine.side_by_side import fit_side_by_side
from conftest import synthetic_digits


@pytest.fixture(scope="module")
def base() -> keras.Model:
    """An (untrained) lecture CNN for the 5 even digits."""
    return tl_mnist.lecture_cnn(5, seed=3)


def weights_of(layer_list):
    return [w.copy() for layer in layer_list for w in layer.get_weights()]


def test_lecture_cnn_has_the_lectures_parameter_count(base):
    assert base.count_params() == 26_821


def test_transfer_model_has_the_lectures_trainable_counts(base):
    model = tl_mnist.transfer_model(base, 5, seed=0)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert (trainable, frozen) == (8_005, 18_816)
    assert [layer.name for layer in transfer.hidden_layers(model)] == \
        ["conv1", "pool1", "conv2", "pool2", "flatten", "dropout"]


def test_transfer_model_copies_layers_and_weights_but_shares_nothing(base):
    model = tl_mnist.transfer_model(base, 5, seed=0)
    copied, originals = transfer.hidden_layers(model), transfer.hidden_layers(base)
    assert not {id(layer) for layer in copied} & {id(layer) for layer in originals}
    for a, b in zip(weights_of(copied), weights_of(originals)):
        np.testing.assert_array_equal(a, b)
    assert all(not layer.trainable for layer in copied)
    assert all(layer.trainable for layer in originals)  # the base is untouched


def test_copied_dropout_gets_the_trials_own_seed(base):
    first = tl_mnist.transfer_model(base, 5, seed=0).get_layer("dropout")
    second = tl_mnist.transfer_model(base, 5, seed=1).get_layer("dropout")
    assert first.seed != second.seed != base.get_layer("dropout").seed


def test_training_moves_the_head_only_and_leaves_base_and_its_file_alone(base, tmp_path):
    path = str(tmp_path / "base.keras")
    saved_models.save_model(base, path, {"config": {}})
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    loaded = saved_models.load_model(path)
    base_before = weights_of(transfer.hidden_layers(loaded))
    model = tl_mnist.transfer_model(loaded, 5, seed=0)
    frozen_before = weights_of(transfer.hidden_layers(model))
    head_before = model.get_layer("output").get_weights()[0].copy()

    x, y = synthetic_digits(10, seed=0)
    fit_side_by_side([model], [x[y < 5, ..., None] / 255.0], [y[y < 5]], [0],
                     FitSettings(epochs=2, batch_size=4))

    for a, b in zip(frozen_before, weights_of(transfer.hidden_layers(model))):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(base_before, weights_of(transfer.hidden_layers(loaded))):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(head_before, model.get_layer("output").get_weights()[0])
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == digest


def test_split_body_head_cuts_before_the_first_random_or_trainable_layer(base):
    model = tl_mnist.transfer_model(base, 5, seed=0)
    body, head = transfer.split_body_head(model)
    assert [layer.name for layer in transfer.model_layers(body)] == \
        ["conv1", "pool1", "conv2", "pool2", "flatten"]
    assert [layer.name for layer in transfer.model_layers(head)] == ["dropout", "output"]
    assert head.get_layer("output") is model.get_layer("output")  # training the head trains it


def test_hidden_layers_skip_the_input_layer_of_a_functional_model():
    inputs = keras.Input((28, 28, 1))
    hidden = layers.Flatten(name="flatten")(layers.Conv2D(4, 3, name="conv")(inputs))
    functional = keras.Model(inputs, layers.Dense(2, name="out")(hidden))
    assert isinstance(functional.layers[0], layers.InputLayer)
    assert [layer.name for layer in transfer.hidden_layers(functional)] == ["conv", "flatten"]
    conv, output = 3 * 3 * 4 + 4, 26 * 26 * 4 * 3 + 3
    assert tl_mnist.transfer_model(functional, 3, seed=0).count_params() == conv + output


def test_freeze_and_unfreeze_keep_batchnorm_in_inference_mode():
    inputs = keras.Input((8,))
    x = layers.Dense(4, name="dense")(inputs)
    inner = keras.Model(inputs, layers.BatchNormalization(name="bn")(x), name="inner")
    transfer.freeze(inner)
    assert not inner.trainable_weights
    transfer.unfreeze(inner)
    assert inner.get_layer("dense").trainable and not inner.get_layer("bn").trainable
    assert len(inner.trainable_weights) == 2  # the Dense kernel and bias, not BN's


def test_legacy_h5_loads(base, tmp_path):
    path = str(tmp_path / "mnist_5_15.h5")
    base.save(path)
    loaded = saved_models.load_model(path, "--base-file", (28, 28, 1))
    model = tl_mnist.transfer_model(loaded, 5, seed=0)
    assert model.count_params() == 26_821


def test_corrupt_or_mismatched_models_give_one_clear_error(base, tmp_path):
    truncated = tmp_path / "half.keras"
    base.save(str(tmp_path / "whole.keras"))
    truncated.write_bytes((tmp_path / "whole.keras").read_bytes()[:500])
    with pytest.raises(UserInputError, match="half.keras: not a readable Keras model"):
        saved_models.load_model(str(truncated))
    with pytest.raises(UserInputError, match=r"inputs of shape \(28, 28, 1\), expected"):
        saved_models.load_model(str(tmp_path / "whole.keras"), "--base-file", (32, 32, 3))
    with pytest.raises(FileNotFoundError, match="--base-file .*missing.keras: no such file"):
        saved_models.load_model(str(tmp_path / "missing.keras"))


def test_saved_model_is_reused_only_when_its_config_matches(base, tmp_path):
    path = str(tmp_path / "base.keras")
    saved_models.save_model(base, path, {"config": {"epochs": 15}})
    assert saved_models.load_if_matching(path, {"config": {"epochs": 15}}) is not None
    assert saved_models.load_if_matching(path, {"config": {"epochs": 14}}) is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_a_save_that_fails_midway_leaves_the_old_model_and_no_partial_file(base, tmp_path,
                                                                          monkeypatch):
    path = str(tmp_path / "mnist_5_15.keras")
    saved_models.save_model(base, path, {"config": {"epochs": 15}})
    before = (tmp_path / "mnist_5_15.keras").read_bytes()
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"  # readable by others, as results are

    def crash(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as file:
            file.write(b"PK half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(type(base), "save", crash)
    with pytest.raises(KeyboardInterrupt):
        saved_models.save_model(base, path, {"config": {"epochs": 16}})
    assert (tmp_path / "mnist_5_15.keras").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["mnist_5_15.json", "mnist_5_15.keras"]

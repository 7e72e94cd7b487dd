"""Trials stacked into one network compute, and learn, what each trial does alone."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers

from common import models, stacked, training, transfer
from test_training import assert_same_weights, small_sets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def odd_cnn(seed: int) -> keras.Sequential:
    """Every setting `stack` handles: strides, 'same' padding, no bias, two Dense layers."""
    return keras.Sequential([
        keras.Input((12, 12, 3)),
        layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False, activation="tanh",
                      **models.seeded(seed, "conv1")),
        layers.Conv2D(6, 2, activation="relu", **models.seeded(seed, "conv2")),
        layers.MaxPooling2D(2, padding="same", name="pool"),
        layers.Flatten(name="flatten"),
        layers.Dense(7, activation="relu", **models.seeded(seed, "dense")),
        models.dropout(0.3, seed, "dropout"),
        models.softmax_output(3, seed),
    ])


def test_the_stacked_network_computes_every_trial_as_its_own_model():
    built = [odd_cnn(seed) for seed in (1, 2, 3)]
    x = np.random.default_rng(0).random((5, 12, 12, 3), dtype="float32")
    together = stacked.StackedTrials(built)
    outputs = keras.ops.convert_to_numpy(together.network(np.stack([x] * 3, axis=1)))
    for t, model in enumerate(built):
        np.testing.assert_allclose(outputs[:, t], keras.ops.convert_to_numpy(model(x)),
                                   atol=1e-6)
    before = [model.get_weights() for model in built]
    together.write_back()
    for model, weights in zip(built, before):
        for a, b in zip(model.get_weights(), weights, strict=True):
            np.testing.assert_array_equal(a, b)


def test_each_trial_gets_its_own_dropout_mask_from_its_own_stream():
    built = [odd_cnn(seed) for seed in (1, 2)]
    x = np.ones((4, 12, 12, 3), dtype="float32")
    outputs = stacked.StackedTrials(built).network(np.stack([x, x], axis=1), training=True)
    for t, model in enumerate(built):  # the model's own stream, untouched by the stacking
        np.testing.assert_allclose(keras.ops.convert_to_numpy(outputs[:, t]),
                                   keras.ops.convert_to_numpy(model(x, training=True)),
                                   atol=1e-6)


@pytest.mark.parametrize("batch_size", [4, 7])
def test_stacked_training_equals_training_each_trial_alone(batch_size):
    seeds = [31, 32, 33]
    x, y = [], []
    rng = np.random.default_rng(1)
    for _ in seeds:
        x.append(rng.random((18, 12, 12, 3), dtype="float32"))
        y.append(rng.integers(0, 3, 18))
    alone = [odd_cnn(seed) for seed in seeds]
    for model, inputs, labels, seed in zip(alone, x, y, seeds):
        training.fit_side_by_side([model], [inputs], [labels], [seed], 3, batch_size)
    together = [odd_cnn(seed) for seed in seeds]
    assert stacked.can_stack(together)
    training.fit_side_by_side(together, x, y, seeds, 3, batch_size)
    for a, b in zip(alone, together):
        assert_same_weights(a, b, atol=1e-5)
        states = [model.get_layer("dropout").seed_generator.state for model in (a, b)]
        np.testing.assert_array_equal(*(keras.ops.convert_to_numpy(s) for s in states))
    assert not np.allclose(together[0].get_weights()[0], alone[1].get_weights()[0])


def test_frozen_layers_stay_frozen_when_stacked():
    seeds = [41, 42]
    sets = small_sets(20, seeds)
    base = models.lecture_cnn(5, seed=3)
    built = [transfer.transfer_model(base, 5, seed) for seed in seeds]
    assert stacked.can_stack(built)
    heads_before = [model.get_layer("output").get_weights()[0].copy() for model in built]
    training.fit_side_by_side(built, [x for x, _ in sets], [y for _, y in sets], seeds, 2, 4)
    for model, head in zip(built, heads_before):
        for name in ("conv1", "conv2"):
            assert_same_weights(model.get_layer(name), base.get_layer(name))
        assert not np.allclose(model.get_layer("output").get_weights()[0], head)


def test_only_alike_networks_of_known_layers_are_stacked():
    assert stacked.can_stack([models.lecture_cnn(5, seed) for seed in (1, 2)])
    assert stacked.can_stack([models.deep_cnn(5, seed) for seed in (1, 2)])
    assert stacked.can_stack([models.cifar_cnn(10, seed) for seed in (1, 2)])
    assert not stacked.can_stack([models.lecture_cnn(5, seed=1)])  # one trial: nothing to gain
    assert not stacked.can_stack([models.lecture_cnn(5, seed, augment=True) for seed in (1, 2)])
    assert not stacked.can_stack([models.lecture_cnn(5, seed=1), models.lecture_cnn(4, seed=2)])
    assert not stacked.can_stack([models.lecture_cnn(5, seed=1),
                                  models.lecture_cnn(5, seed=2, activation="tanh")])
    half_frozen = [models.lecture_cnn(5, seed) for seed in (1, 2)]
    transfer.freeze(half_frozen[0].get_layer("conv1"))
    assert not stacked.can_stack(half_frozen)


def test_side_by_side_falls_back_to_branches_where_they_cannot_stack(monkeypatch):
    """The branch-per-trial path (augmentation, VGG heads, no grouped convolution)."""
    seeds = [11, 12, 13]
    sets = small_sets(20, seeds)
    alone = models.lecture_cnn(5, seed=12)
    training.fit_side_by_side([alone], [sets[1][0]], [sets[1][1]], [12], epochs=2, batch_size=4)
    monkeypatch.setattr(stacked, "can_stack", lambda built: False)
    together = [models.lecture_cnn(5, seed=seed) for seed in seeds]
    training.fit_side_by_side(together, [x for x, _ in sets], [y for _, y in sets], seeds,
                              epochs=2, batch_size=4)
    assert_same_weights(alone, together[1], atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow build option")
def test_without_onednn_tensorflow_cannot_train_grouped_convolutions_and_branches_are_used():
    script = ("import common, keras; from common import stacked, models; "
              "print(stacked.grouped_conv_trains(), "
              "stacked.can_stack([models.lecture_cnn(5, s) for s in (1, 2)]))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]

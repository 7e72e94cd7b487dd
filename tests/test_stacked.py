"""Trials stacked into one network compute, and learn, what each trial does alone."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers

import cifar_vgg
import tl_mnist
from common.engine import side_by_side, stacked
from common.lesson import networks, transfer
from common.lesson.settings import FitSettings
from test_training import assert_same_weights, small_sets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Stacking needs grouped convolutions that train: without oneDNN (AVX2-only CPUs, or
# TF_ENABLE_ONEDNN_OPTS=0) the engine trains branches instead and these are skipped
# (conftest.py runs the engine's probe, stacked.grouped_conv_trains, when one is due).
needs_stacking = pytest.mark.needs_stacking


def odd_cnn(seed: int) -> keras.Sequential:
    """Settings `StackedTrials` handles beyond the lecture's: strides, 'same' padding, no
    bias, an activation across channels (softmax), Dropout of rate 0, two Dense layers."""
    return keras.Sequential([
        keras.Input((12, 12, 3)),
        layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False, activation="tanh",
                      **networks.seeded(seed, "conv1")),
        layers.Conv2D(6, 2, activation="softmax", **networks.seeded(seed, "conv2")),
        layers.MaxPooling2D(2, padding="same", name="pool"),
        layers.Flatten(name="flatten"),
        networks.dropout(0.0, seed, "no_dropout"),
        layers.Dense(7, activation="relu", **networks.seeded(seed, "dense")),
        networks.dropout(0.3, seed, "dropout"),
        networks.softmax_output(3, seed),
    ])


def lecture_cnn_with_activation(activation: str, num_classes: int,
                                seed: int) -> keras.Sequential:
    """`tl_mnist.lecture_cnn` with another activation in its convolutions, all else alike."""
    config = tl_mnist.lecture_cnn(num_classes, seed).get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "Conv2D":
            layer["config"]["activation"] = activation
    return keras.Sequential.from_config(config)


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
@needs_stacking
def test_stacked_training_equals_training_each_trial_alone(batch_size):
    seeds = [31, 32, 33]
    x, y = [], []
    rng = np.random.default_rng(1)
    for _ in seeds:
        x.append(rng.random((18, 12, 12, 3), dtype="float32"))
        y.append(rng.integers(0, 3, 18))
    alone = [odd_cnn(seed) for seed in seeds]
    for model, inputs, labels, seed in zip(alone, x, y, seeds):
        side_by_side.fit_side_by_side([model], [inputs], [labels], [seed], FitSettings(3, batch_size))
    together = [odd_cnn(seed) for seed in seeds]
    assert stacked.alike_groups(together) == [[0, 1, 2]]
    side_by_side.fit_side_by_side(together, x, y, seeds, FitSettings(3, batch_size))
    for a, b in zip(alone, together):
        assert_same_weights(a, b, atol=1e-5)
        states = [model.get_layer("dropout").seed_generator.state for model in (a, b)]
        np.testing.assert_array_equal(*(keras.ops.convert_to_numpy(s) for s in states))
    assert not np.allclose(together[0].get_weights()[0], alone[1].get_weights()[0])


@needs_stacking
def test_frozen_layers_stay_frozen_when_stacked():
    seeds = [41, 42]
    sets = small_sets(20, seeds)
    base = tl_mnist.lecture_cnn(5, seed=3)
    built = [tl_mnist.transfer_model(base, 5, seed) for seed in seeds]
    assert stacked.alike_groups(built) == [[0, 1]]
    heads_before = [model.get_layer("output").get_weights()[0].copy() for model in built]
    side_by_side.fit_side_by_side(built, [x for x, _ in sets], [y for _, y in sets], seeds,
                              FitSettings(2, 4))
    for model, head in zip(built, heads_before):
        for name in ("conv1", "conv2"):
            assert_same_weights(model.get_layer(name), base.get_layer(name))
        assert not np.allclose(model.get_layer("output").get_weights()[0], head)


@needs_stacking
def test_only_alike_networks_of_known_layers_are_stacked():
    for build in (tl_mnist.lecture_cnn, networks.deep_cnn):
        assert stacked.alike_groups([build(5, seed) for seed in (1, 2, 3)]) == [[0, 1, 2]]
    assert stacked.alike_groups([cifar_vgg.cifar_cnn("tanh", seed)
                                 for seed in (1, 2, 3)]) == [[0, 1, 2]]
    assert stacked.alike_groups([tl_mnist.lecture_cnn(5, seed, augment=True)
                                 for seed in (1, 2)]) == [[0], [1]]
    assert stacked.alike_groups([tl_mnist.lecture_cnn(5, seed=1), tl_mnist.lecture_cnn(4, seed=2),
                                 tl_mnist.lecture_cnn(5, seed=3),
                                 lecture_cnn_with_activation("tanh", 5, seed=4)]
                                ) == [[0, 2], [1], [3]]
    half_frozen = [tl_mnist.lecture_cnn(5, seed) for seed in (1, 2)]
    transfer.freeze(half_frozen[0].get_layer("conv1"))
    assert stacked.alike_groups(half_frozen) == [[0], [1]]
    spatial = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(2, 3),
                                layers.SpatialDropout2D(0.5), layers.Flatten(),
                                layers.Dense(3, activation="softmax")])
    twice_flat = keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten(), layers.Flatten(),
                                   layers.Dense(3, activation="softmax")])
    first_channels = keras.Sequential([keras.Input((1, 8, 8)),
                                       layers.Conv2D(2, 3, data_format="channels_first"),
                                       layers.Flatten(), layers.Dense(3, activation="softmax")])
    regularized = keras.Sequential([keras.Input((4,)), layers.Dense(
        3, activation="softmax", kernel_regularizer="l2")])
    not_flat = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(2, 3)])
    for model in (spatial, twice_flat, first_channels, regularized, not_flat):
        assert stacked.stacking_key(model) is None, model.layers
    shared = tl_mnist.lecture_cnn(5, seed=1)
    twin = keras.Sequential([keras.Input((28, 28, 1)), *shared.layers])
    assert stacked.alike_groups([shared, twin, tl_mnist.lecture_cnn(5, seed=2)]) == [[0, 2], [1]]


@needs_stacking
def test_alike_trials_stack_and_the_others_train_as_branches_in_the_same_run():
    seeds = [51, 52, 53]
    sets = small_sets(20, seeds)

    def build() -> list[keras.Model]:
        return [tl_mnist.lecture_cnn(5, seed=51), tl_mnist.lecture_cnn(5, seed=52, augment=True),
                tl_mnist.lecture_cnn(5, seed=53)]

    alone = build()
    for model, (x, y), seed in zip(alone, sets, seeds):
        side_by_side.fit_side_by_side([model], [x], [y], [seed], FitSettings(epochs=2, batch_size=7))
    together = build()
    assert stacked.alike_groups(together) == [[0, 2], [1]]
    side_by_side.fit_side_by_side(together, [x for x, _ in sets], [y for _, y in sets], seeds,
                              FitSettings(epochs=2, batch_size=7))
    for a, b in zip(alone, together):
        assert_same_weights(a, b, atol=1e-5)


def test_side_by_side_falls_back_to_branches_where_they_cannot_stack(monkeypatch):
    """The branch-per-trial path (augmentation, VGG heads, no grouped convolution)."""
    seeds = [11, 12, 13]
    sets = small_sets(20, seeds)
    alone = tl_mnist.lecture_cnn(5, seed=12)
    side_by_side.fit_side_by_side([alone], [sets[1][0]], [sets[1][1]], [12],
                              FitSettings(epochs=2, batch_size=4))
    monkeypatch.setattr(stacked, "stacking_key", lambda model: None)
    together = [tl_mnist.lecture_cnn(5, seed=seed) for seed in seeds]
    assert stacked.alike_groups(together) == [[0], [1], [2]]
    side_by_side.fit_side_by_side(together, [x for x, _ in sets], [y for _, y in sets], seeds,
                              FitSettings(epochs=2, batch_size=4))
    assert_same_weights(alone, together[1], atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow build option")
def test_without_onednn_tensorflow_cannot_train_grouped_convolutions_and_branches_are_used():
    script = ("import keras, tl_mnist; from common.engine import stacked; "
              "print(stacked.grouped_conv_trains(), "
              "stacked.alike_groups([tl_mnist.lecture_cnn(5, s) for s in (1, 2)]))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"})
    assert done.returncode == 0, done.stderr
    note, result = done.stdout.strip().splitlines()  # the reason, said once, then the answer
    assert "cannot train grouped convolutions" in note and "branches" in note
    assert result.split() == ["False", "[[0],", "[1]]"]

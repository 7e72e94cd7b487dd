"""The lecture's networks, built with explicit seeds.

Every random piece of a model (each initializer, each Dropout) gets its own seed
derived from the trial's seed, so trial k is the same network whether it is built
alone or beside fourteen others, and two trials never share a random stream.
"""

import numpy as np
import keras
from keras import layers


def derive_seed(seed: int, *keys: int | str) -> int:
    """A well-mixed 31-bit seed for one random piece of trial `seed` (e.g. a layer)."""
    words = [seed] + [key if isinstance(key, int) else int.from_bytes(key.encode(), "little")
                      for key in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0] >> 1)


def seeded(seed: int, name: str) -> dict:
    """Initializer arguments for a Dense/Conv2D layer called `name` in trial `seed`."""
    return {"kernel_initializer": keras.initializers.GlorotUniform(derive_seed(seed, name)),
            "name": name}


def softmax_output(num_classes: int, seed: int, name: str = "output") -> layers.Dense:
    """The output layer every model here ends with: Dense(num_classes) softmax."""
    return layers.Dense(num_classes, activation="softmax", **seeded(seed, name))


def dropout(rate: float, seed: int, name: str) -> layers.Dropout:
    """A Dropout layer with its own seed stream."""
    return layers.Dropout(rate, seed=derive_seed(seed, name), name=name)


def augmentation(seed: int, flips: bool = False, name: str = "augment") -> keras.Sequential:
    """Random translation (10%), rotation (±18°) and zoom (±10%), active only in training.

    Keras's preprocessing layers pass images through unchanged at inference
    (`training=False`), so test accuracy is measured on the real images. No flips for
    digits (a flipped 7 is no 7); `flips=True` adds horizontal flips for photographs.
    Each layer has its own seed stream of trial `seed`.
    """
    pieces = [layers.RandomTranslation(0.1, 0.1, fill_mode="constant",
                                       seed=derive_seed(seed, name, "translate")),
              layers.RandomRotation(0.05, fill_mode="constant",
                                    seed=derive_seed(seed, name, "rotate")),
              layers.RandomZoom(0.1, fill_mode="constant", seed=derive_seed(seed, name, "zoom"))]
    if flips:
        pieces.append(layers.RandomFlip("horizontal", seed=derive_seed(seed, name, "flip")))
    return keras.Sequential(pieces, name=name)


def lecture_cnn(num_classes: int = 5, seed: int = 0, input_shape: tuple = (28, 28, 1),
                activation: str = "relu", augment: bool = False) -> keras.Sequential:
    """The lecture's MNIST network: 26,821 parameters for 5 classes.

    Conv2D(32, 3x3) -> MaxPool(2x2) -> Conv2D(64, 3x3) -> MaxPool(2x2) -> Flatten
    -> Dropout(0.5) -> Dense(num_classes, softmax). Layers are named, so transfer
    code selects them by name or role, never by position. `augment` puts
    `augmentation` (no flips) in front.
    """
    return keras.Sequential([
        keras.Input(input_shape),
        *([augmentation(seed)] if augment else []),
        layers.Conv2D(32, 3, activation=activation, **seeded(seed, "conv1")),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(64, 3, activation=activation, **seeded(seed, "conv2")),
        layers.MaxPooling2D(2, name="pool2"),
        layers.Flatten(name="flatten"),
        dropout(0.5, seed, "dropout"),
        softmax_output(num_classes, seed),
    ], name=f"lecture_cnn_seed{seed}")


def four_convolutions(seed: int, activation: str) -> list[layers.Layer]:
    """Conv2D(32) -> Conv2D(32) -> MaxPool -> Conv2D(64) -> Conv2D(64) -> MaxPool, 3x3
    kernels, named conv1..conv4, pool1, pool2: the body of `cifar_cnn` and `deep_cnn`."""
    return [layers.Conv2D(32, 3, activation=activation, **seeded(seed, "conv1")),
            layers.Conv2D(32, 3, activation=activation, **seeded(seed, "conv2")),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 3, activation=activation, **seeded(seed, "conv3")),
            layers.Conv2D(64, 3, activation=activation, **seeded(seed, "conv4")),
            layers.MaxPooling2D(2, name="pool2")]


def cifar_cnn(num_classes: int = 10, seed: int = 0, activation: str = "tanh",
              input_shape: tuple = (32, 32, 3), augment: bool = False) -> keras.Sequential:
    """The lecture's CIFAR-10 network trained from scratch (no transfer).

    Conv2D(32) -> Conv2D(32) -> MaxPool -> Conv2D(64) -> Conv2D(64) -> MaxPool
    -> Flatten -> Dropout(0.5) -> Dense(num_classes, softmax); all kernels 3x3.
    `augment` puts `augmentation` (with flips: photographs) in front.
    """
    return keras.Sequential([
        keras.Input(input_shape),
        *([augmentation(seed, flips=True)] if augment else []),
        *four_convolutions(seed, activation),
        layers.Flatten(name="flatten"),
        dropout(0.5, seed, "dropout"),
        softmax_output(num_classes, seed),
    ], name=f"cifar_cnn_{activation}_seed{seed}")


def deep_cnn(num_classes: int = 5, seed: int = 0, input_shape: tuple = (28, 28, 1),
             hidden: int = 128, activation: str = "relu",
             name: str | None = None) -> keras.Sequential:
    """A deeper MNIST network with five transferable layers, for the layer-by-layer study.

    Conv2D(32) -> Conv2D(32) -> MaxPool -> Conv2D(64) -> Conv2D(64) -> MaxPool -> Flatten
    -> Dense(hidden) -> Dropout(0.5) -> Dense(num_classes, softmax); kernels 3x3. The
    convolutions are the lecture's CIFAR-10 network's; the hidden Dense stands for
    AlexNet's fully connected layers in Yosinski et al. 196,837 parameters for 5 classes.
    The transferable layers are conv1, conv2, conv3, conv4 and dense1 (see
    `common.transfer.transferable_layers`). `name` defaults to deep_cnn_seed<seed>.
    """
    return keras.Sequential([
        keras.Input(input_shape),
        *four_convolutions(seed, activation),
        layers.Flatten(name="flatten"),
        layers.Dense(hidden, activation=activation, **seeded(seed, "dense1")),
        dropout(0.5, seed, "dropout"),
        softmax_output(num_classes, seed),
    ], name=name or f"deep_cnn_seed{seed}")

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


@keras.saving.register_keras_serializable(package="common")
class InputNoise(layers.GaussianNoise):
    """`keras.layers.GaussianNoise` (zero-mean, training only) for inputs of any scale.

    Keras accepts a standard deviation of at most 1, too little to matter for a VGG
    base's preprocessed pixels (0..255 scale); this takes any. Registered, so a saved
    model that holds it loads again.
    """

    def __init__(self, stddev: float, seed: int | None = None, **kwargs):
        super().__init__(min(stddev, 1.0), seed, **kwargs)
        self.stddev = stddev  # what Keras's `call` and `get_config` use


def augmentation(seed: int, flips: bool = False, name: str = "augment",
                 noise: float = 0.0) -> keras.Sequential:
    """Random translation (10%), rotation (±18°) and zoom (±10%), active only in training.

    Keras's preprocessing layers pass images through unchanged at inference
    (`training=False`), so test accuracy is measured on the real images. No flips for
    digits (a flipped 7 is no 7); `flips=True` adds horizontal flips for photographs.
    `noise > 0` adds Gaussian noise of that standard deviation to every pixel after the
    geometric changes (`InputNoise`, a `keras.layers.GaussianNoise`), also only in
    training. Each layer has its own seed stream of trial `seed`.

    Args:
        seed: the trial's seed.
        flips: add random horizontal flips.
        name: the Sequential's name (and part of each layer's seed).
        noise: the noise's standard deviation, in the units of the model's input: 0.1
            is a tenth of the range of the digits networks' [0, 1] pixels, but almost
            nothing for a VGG base's preprocessed pixels (0..255 scale), where a tenth
            of the range is about 25. 0 (the default) adds no noise layer.

    Raises:
        ValueError: a negative noise.
    """
    if not noise >= 0:  # (also catches NaN)
        raise ValueError(f"noise={noise!r}: the noise's standard deviation must be 0 (none) "
                         "or positive")
    pieces = [layers.RandomTranslation(0.1, 0.1, fill_mode="constant",
                                       seed=derive_seed(seed, name, "translate")),
              layers.RandomRotation(0.05, fill_mode="constant",
                                    seed=derive_seed(seed, name, "rotate")),
              layers.RandomZoom(0.1, fill_mode="constant", seed=derive_seed(seed, name, "zoom"))]
    if flips:
        pieces.append(layers.RandomFlip("horizontal", seed=derive_seed(seed, name, "flip")))
    if noise > 0:
        # Last, so that the noise stays independent per pixel instead of being
        # smeared by the interpolation of a rotation or zoom.
        pieces.append(InputNoise(noise, seed=derive_seed(seed, name, "noise")))
    return keras.Sequential(pieces, name=name)


def four_convolutions(seed: int, activation: str) -> list[layers.Layer]:
    """Conv2D(32) -> Conv2D(32) -> MaxPool -> Conv2D(64) -> Conv2D(64) -> MaxPool, 3x3
    kernels, named conv1..conv4, pool1, pool2: the body of `deep_cnn` (the convolutions
    of the lecture's CIFAR-10 network, `cifar_vgg.cifar_cnn`)."""
    return [layers.Conv2D(32, 3, activation=activation, **seeded(seed, "conv1")),
            layers.Conv2D(32, 3, activation=activation, **seeded(seed, "conv2")),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 3, activation=activation, **seeded(seed, "conv3")),
            layers.Conv2D(64, 3, activation=activation, **seeded(seed, "conv4")),
            layers.MaxPooling2D(2, name="pool2")]


def deep_cnn(num_classes: int = 5, seed: int = 0, input_shape: tuple = (28, 28, 1),
             hidden: int = 128, activation: str = "relu",
             name: str | None = None) -> keras.Sequential:
    """A deeper MNIST network with five transferable layers, for the layer-by-layer study.

    Conv2D(32) -> Conv2D(32) -> MaxPool -> Conv2D(64) -> Conv2D(64) -> MaxPool -> Flatten
    -> Dense(hidden) -> Dropout(0.5) -> Dense(num_classes, softmax); kernels 3x3. The
    convolutions are the lecture's CIFAR-10 network's; the hidden Dense stands for
    AlexNet's fully connected layers in Yosinski et al. 196,837 parameters for 5 classes.
    The transferable layers are conv1, conv2, conv3, conv4 and dense1 (see
    `common.lesson.transfer.transferable_layers`). `name` defaults to deep_cnn_seed<seed>.
    """
    return keras.Sequential([
        keras.Input(input_shape),
        *four_convolutions(seed, activation),
        layers.Flatten(name="flatten"),
        layers.Dense(hidden, activation=activation, **seeded(seed, "dense1")),
        dropout(0.5, seed, "dropout"),
        softmax_output(num_classes, seed),
    ], name=name or f"deep_cnn_seed{seed}")

"""Homework 1: transfer between the two halves of MNIST (the lecture's tl_mnist.py).

A small CNN learns the even digits 0,2,4,6,8 from ~29,500 images. Its hidden layers,
copied and frozen, with a new output layer, then learn the odd digits 1,3,5,7,9 from
only 100 images. You write the four transfer steps:

    TODO 1  split_classes         keep the images of some digits, labels renumbered 0..n-1
    TODO 2  freeze_layers         make layers non-trainable
    TODO 3  new_output_layer      the new head: Dense(num_classes) with softmax
    TODO 4  build_transfer_model  copies of the pretrained hidden layers, frozen, + new head

Copy this file (e.g. to my_tl_mnist.py), replace each `raise NotImplementedError(...)`
with your code, and check it (from the repository's root folder):

    python -m homework.check tl_mnist --file my_tl_mnist.py

Each step prints PASS, or FAIL with what was expected. Use numpy and keras; do not call
`common/` or `tl_mnist.py`, which hold the course's own solution that the checker
compares yours with.
"""

from collections.abc import Sequence

import numpy as np
import keras
from keras import layers


def split_classes(images: np.ndarray, labels: np.ndarray,
                  classes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The images of the digits in `classes`, with their labels renumbered 0..len(classes)-1.

    A digit's new label is its position in `classes`: for classes (1, 3, 5, 7, 9)
    digit 1 becomes 0, 3 becomes 1, ..., 9 becomes 4; for (7, 2) digit 7 becomes 0
    and 2 becomes 1. The kept images stay in their original order.

    Args:
        images: (n, 28, 28, 1) images.
        labels: (n,) integer labels 0..9, one per image.
        classes: the digits to keep, e.g. (1, 3, 5, 7, 9).

    Returns:
        (kept_images, new_labels): the images of those digits, in their original order,
        shape (m, 28, 28, 1); and their new labels, integers of shape (m,).

    Hint: `np.isin` makes the mask of the images to keep.
    """
    raise NotImplementedError("TODO 1: keep the images of `classes` and renumber their "
                              "labels 0..len(classes)-1")


def freeze_layers(layers_to_freeze: Sequence[layers.Layer]) -> None:
    """Makes every layer in `layers_to_freeze` non-trainable, in place.

    A frozen layer keeps its weights while the model it belongs to trains. (A model
    must be compiled after its layers are frozen, or `fit` still uses the old flags.)

    Args:
        layers_to_freeze: the layers to freeze, e.g. a model's hidden layers.

    Returns:
        Nothing: the layers themselves change.
    """
    raise NotImplementedError("TODO 2: make every layer in layers_to_freeze non-trainable")


def new_output_layer(num_classes: int) -> layers.Dense:
    """A new, untrained output layer: Dense(num_classes) with softmax activation.

    Args:
        num_classes: classes of the new task (5 for the odd digits).

    Returns:
        A new `layers.Dense` layer (a fresh one on every call), trainable.
    """
    raise NotImplementedError("TODO 3: return a new Dense layer of num_classes units with "
                              "softmax activation")


def build_transfer_model(pretrained: keras.Model, num_classes: int) -> keras.Model:
    """The transfer model: copies of `pretrained`'s hidden layers, frozen, then a new
    output layer.

    The hidden layers are all of `pretrained.layers` except the last one, its output
    layer (and except the InputLayer, which a functional model lists first). Copy each
    one: `type(layer).from_config(layer.get_config())` makes a new layer with the same
    settings. Put the copies in a new `keras.Sequential`, after
    `keras.Input(pretrained.inputs[0].shape[1:])` and before `new_output_layer(...)`;
    once the model is built, give each copy its original's weights
    (`copy.set_weights(original.get_weights())`) and freeze the copies
    (`freeze_layers`). Do not put the pretrained layers themselves in the new model:
    both models would then share them, and freezing or training the new model would
    change the pretrained one.

    Args:
        pretrained: the model trained on the big task (e.g. the lecture's CNN for
            digits 0,2,4,6,8). Leave it unchanged.
        num_classes: classes of the new task.

    Returns:
        A keras model (not compiled) from images of `pretrained`'s input shape to
        `num_classes` softmax probabilities: the copied hidden layers, with the
        pretrained weights and frozen, then a new trainable Dense(num_classes) softmax.
    """
    raise NotImplementedError("TODO 4: build a new model from copies of the pretrained "
                              "hidden layers (same weights, frozen) and a new output layer")

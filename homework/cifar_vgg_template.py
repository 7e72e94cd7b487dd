"""Homework 3: CIFAR-10 from 100 images per class with frozen VGG16 (the lecture's cifar_vgg.py).

Each trial draws 100 training images of each of the 10 classes. ImageNet VGG16
without its top stays frozen; a new head, Flatten -> Dense(512, tanh) -> Dense(10,
softmax), learns on top of it. You write the four steps:

    TODO 1  stratified_sample     the indices of k random images of every class
    TODO 2  freeze_base           make the whole VGG16 base non-trainable
    TODO 3  make_head             Flatten -> Dense(512, tanh) -> Dense(num_classes, softmax)
    TODO 4  build_transfer_model  the frozen base followed by the new head

Copy this file (e.g. to my_cifar_vgg.py), replace each `raise NotImplementedError(...)`
with your code, and check it (from the repository's root folder):

    python -m homework.check cifar_vgg --file my_cifar_vgg.py

Each step prints PASS, or FAIL with what was expected. Use numpy and keras; do not call
`common/`, which holds the course's own solution that the checker compares yours with.
The checker uses VGG16 with random weights (`weights=None`): nothing is downloaded.
"""

import numpy as np
import keras
from keras import layers  # noqa: F401  (your heads need it)


def stratified_sample(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """The indices of `per_class` images of every class, drawn at random without replacement.

    Every class 0..labels.max() gets exactly `per_class` images, so a small training
    set has all classes equally often. Draw with `rng` (not `np.random`), so that a
    trial's seed decides its sample.

    Args:
        labels: (n,) integer labels 0..k-1.
        per_class: images to draw from each class.
        rng: the trial's generator, e.g. `np.random.default_rng(seed)`.

    Returns:
        A 1-D integer array of k * per_class distinct indices into `labels`.

    Raises:
        ValueError: some class has fewer than `per_class` images (name the class).

    Hint: `np.flatnonzero(labels == label)` and `rng.choice(..., replace=False)`.
    """
    raise NotImplementedError("TODO 1: draw per_class random indices of every class with rng, "
                              "without replacement")


def freeze_base(base: keras.Model) -> None:
    """Makes the whole VGG16 base non-trainable, in place, so training never changes it.

    Args:
        base: `keras.applications.VGG16(include_top=False, ...)`.

    Returns:
        Nothing: `base` itself changes (afterwards `base.trainable_weights` is empty).
    """
    raise NotImplementedError("TODO 2: make the VGG16 base non-trainable")


def make_head(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """The lecture's head: Flatten -> Dense(512, tanh) -> Dense(num_classes, softmax).

    Args:
        input_shape: the shape of one output of the base, e.g. (1, 1, 512).
        num_classes: classes of the new task (10 for CIFAR-10).

    Returns:
        A `keras.Sequential`: `keras.Input(input_shape)`, Flatten,
        Dense(512, activation="tanh"), Dense(num_classes, activation="softmax").
    """
    raise NotImplementedError("TODO 3: build Flatten -> Dense(512, tanh) -> "
                              "Dense(num_classes, softmax)")


def build_transfer_model(base: keras.Model, num_classes: int) -> keras.Model:
    """The whole model: the frozen VGG16 base, then a new head (make_head).

    The base is frozen and never changes, so the model may contain the base itself.

    Args:
        base: VGG16 without its top, already frozen (see freeze_base); leave it frozen.
        num_classes: classes of the new task.

    Returns:
        A keras model (not compiled) from (32, 32, 3) images to `num_classes` softmax
        probabilities: the base, then the layers of the new head. Only the head's
        weights are trainable.
    """
    raise NotImplementedError("TODO 4: put the new head on top of the frozen base")

"""Homework 2: ImageNet VGG16, frozen, on 100 MNIST digits (the lecture's mnist_vgg.py).

The odd digits 1,3,5,7,9 (labels 0..4) are made into the 32x32x3 images VGG16 accepts:
2 pixels of zeros on each side, the gray channel repeated three times. VGG16 without
its top stays frozen; only a new head on top of it learns, in the lecture's five
variants. You write the five steps:

    TODO 1  pad_and_repeat        28x28x1 digits -> 32x32x3 images
    TODO 2  split_classes         keep the images of some digits, labels renumbered 0..n-1
    TODO 3  freeze_base           make the whole VGG16 base non-trainable
    TODO 4  make_head             the head of a variant (see HEAD_VARIANTS)
    TODO 5  build_transfer_model  the frozen base followed by a new head

Copy this file (e.g. to my_mnist_vgg.py), replace each `raise NotImplementedError(...)`
with your code, and check it (from the repository's root folder):

    python -m homework.check mnist_vgg --file my_mnist_vgg.py

Each step prints PASS, or FAIL with what was expected. Use numpy and keras; do not call
`common/`, which holds the course's own solution that the checker compares yours with.
The checker uses VGG16 with random weights (`weights=None`): nothing is downloaded.
"""

from collections.abc import Sequence

import numpy as np
import keras
from keras import layers  # noqa: F401  (your heads need it)

# The lecture's heads on the frozen VGG16, by name; "out" is Dense(num_classes, softmax).
HEAD_VARIANTS = {
    "output": "Flatten -> Dense(out)",
    "dropout": "Flatten -> Dropout(0.5) -> Dense(out)",
    "dense512": "Flatten -> Dense(512, tanh) -> Dropout(0.5) -> Dense(out)",
    "dropout2": "Flatten -> Dropout(0.5) -> Dense(512, tanh) -> Dropout(0.5) -> Dense(out)",
    "dense512_nodrop": "Flatten -> Dense(512, tanh) -> Dense(out)",
}


def pad_and_repeat(images: np.ndarray) -> np.ndarray:
    """MNIST digits made VGG16's size: zero-padded to 32x32, the gray channel repeated 3 times.

    Args:
        images: (n, 28, 28, 1) images, uint8 or float.

    Returns:
        (n, 32, 32, 3) images of the same dtype: each image with 2 rows of zeros above
        and below and 2 columns of zeros left and right, its one channel copied into
        all three.

    Hint: `np.pad` and `np.repeat`.
    """
    raise NotImplementedError("TODO 1: pad each image with 2 zero pixels on every side and "
                              "repeat its gray channel 3 times")


def split_classes(images: np.ndarray, labels: np.ndarray,
                  classes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The images of the digits in `classes`, with their labels renumbered 0..len(classes)-1.

    A digit's new label is its position in `classes`: for classes (1, 3, 5, 7, 9)
    digit 1 becomes 0, 3 becomes 1, ..., 9 becomes 4. The kept images stay in their
    original order.

    Args:
        images: (n, height, width, channels) images.
        labels: (n,) integer labels 0..9, one per image.
        classes: the digits to keep, e.g. (1, 3, 5, 7, 9).

    Returns:
        (kept_images, new_labels): the images of those digits, in their original order;
        and their new labels, integers of shape (m,).
    """
    raise NotImplementedError("TODO 2: keep the images of `classes` and renumber their "
                              "labels 0..len(classes)-1")


def freeze_base(base: keras.Model) -> None:
    """Makes the whole VGG16 base non-trainable, in place, so training never changes it.

    Args:
        base: `keras.applications.VGG16(include_top=False, ...)`.

    Returns:
        Nothing: `base` itself changes (afterwards `base.trainable_weights` is empty).
    """
    raise NotImplementedError("TODO 3: make the VGG16 base non-trainable")


def make_head(variant: str, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """A new head of the given variant, to put on top of the frozen base.

    Args:
        variant: a key of HEAD_VARIANTS, e.g. "dense512": Flatten, then
            Dense(512, activation="tanh"), then Dropout(0.5), then
            Dense(num_classes, activation="softmax").
        input_shape: the shape of one output of the base, e.g. (1, 1, 512).
        num_classes: classes of the new task.

    Returns:
        A `keras.Sequential` starting with `keras.Input(input_shape)`, then the
        variant's layers in the order HEAD_VARIANTS gives, ending in
        Dense(num_classes, softmax).

    Raises:
        ValueError: `variant` is not in HEAD_VARIANTS (say which ones are).
    """
    raise NotImplementedError("TODO 4: build the head of `variant` (see HEAD_VARIANTS)")


def build_transfer_model(base: keras.Model, variant: str, num_classes: int) -> keras.Model:
    """The whole model: the frozen VGG16 base, then a new head of the given variant.

    The base is frozen and never changes, so the model may contain the base itself.

    Args:
        base: VGG16 without its top, already frozen (see freeze_base); leave it frozen.
        variant: a key of HEAD_VARIANTS.
        num_classes: classes of the new task.

    Returns:
        A keras model (not compiled) from (32, 32, 3) images to `num_classes` softmax
        probabilities: the base, then the layers of `make_head(variant, ...)`. Only the
        head's weights are trainable.
    """
    raise NotImplementedError("TODO 5: put a new head of `variant` on top of the frozen base")

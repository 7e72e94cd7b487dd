"""ImageNet VGG16 as a frozen feature extractor, the heads put on it, and its features.

VGG16 without its top (`include_top=False`) turns a 32x32x3 image into a 1x1x512
feature map. Frozen and with nothing random in it, its output for an image never
changes, so `base_features` computes it once per image and every head and trial
trains on those features (see `common.trials.train_heads_on_features` for the proof
of equality with whole-model training).
"""

import hashlib
import os
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import keras
from keras import layers

from common import models
from common.cli import UserInputError
from common.data import keras_cache_file, to_unit_float
from common.transfer import freeze

VGG16_INPUT = (32, 32, 3)
# keras.applications.VGG16 caches its ImageNet weights under this name.
VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"

# The lecture's head variants on top of the frozen VGG16, by name. Its slides give
# (1) the plain output layer, (2) Dropout 0.5 before it, (3) a Dense(512) tanh hidden
# layer, (4) Dropout in the two last hidden layers and (5) the Dense(512) tanh layer
# without Dropout; (3) is read as the hidden layer followed by Dropout, the way the
# lecture's CNN puts Dropout before its output.
HEAD_VARIANTS = {
    "plain": "Flatten -> Dense(out)",
    "dropout": "Flatten -> Dropout(0.5) -> Dense(out)",
    "dense512": "Flatten -> Dense(512, tanh) -> Dropout(0.5) -> Dense(out)",
    "dropout2": "Flatten -> Dropout(0.5) -> Dense(512, tanh) -> Dropout(0.5) -> Dense(out)",
    "dense512_nodrop": "Flatten -> Dense(512, tanh) -> Dense(out)",
}


def vgg16_base(weights: str, input_shape: tuple[int, int, int] = VGG16_INPUT,
               seed: int = 0) -> keras.Model:
    """VGG16 without its top, frozen.

    Args:
        weights: "imagenet" (Keras's cache, else a download), "none" (random weights:
            the same pipeline, but not transfer) or the path of a weights file
            (`vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`).
        input_shape: (height, width, 3), at least 32x32.
        seed: draws the random weights of "none", so that every process of a run
            (`--jobs`, `--resume`) gets the same ones.

    Raises:
        FileNotFoundError: `weights` is a path with no file.
        UserInputError: the ImageNet weights are neither cached nor downloadable, or
            the file does not fit VGG16.
    """
    if weights == "none":
        # keras.applications takes no seed; its initialisers draw from the global one.
        keras.utils.set_random_seed(seed)
        base = keras.applications.VGG16(include_top=False, weights=None, input_shape=input_shape)
    elif weights == "imagenet":
        cached = keras_cache_file(VGG16_NOTOP_FILE, "models")
        if not os.path.exists(cached):
            print(f"VGG16's ImageNet weights are not in Keras's cache ({cached}); "
                  "downloading them (58 MB) ...")
        try:
            base = keras.applications.VGG16(include_top=False, weights="imagenet",
                                            input_shape=input_shape)
        # Keras's get_file raises a bare Exception ("URL fetch failure ...") when offline.
        except Exception as error:  # noqa: BLE001 - re-raised with the cause attached
            raise UserInputError(
                f"--weights imagenet: VGG16's weights are not cached at {cached} and could "
                f"not be downloaded ({str(error).splitlines()[0][:100]}); put the file "
                f"there, pass --weights PATH to a copy, or --weights none") from error
    else:
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"--weights {weights}: no such file (expected "
                                    f"{VGG16_NOTOP_FILE}, or 'imagenet' or 'none')")
        base = keras.applications.VGG16(include_top=False, weights=None, input_shape=input_shape)
        try:
            base.load_weights(weights)
        except (OSError, ValueError, KeyError) as error:
            raise UserInputError(f"--weights {weights}: not VGG16 weights without the top "
                                 f"({str(error).splitlines()[0][:120]})") from error
    freeze(base)
    return base


def weights_label(weights: str) -> str:
    """How results name the weights; random ones are never called transfer."""
    return "random weights: not transfer" if weights == "none" else f"{weights} weights"


def vgg16_preprocess(images: np.ndarray) -> np.ndarray:
    """The input VGG16 was trained on, from RGB images: uint8 0..255 or float 0..1.

    `preprocess_input` flips RGB to BGR and subtracts ImageNet's mean pixel from 0..255
    values; it must run exactly once per image, which is why it lives here and only here.
    """
    pixels = images.astype("float32")
    if images.dtype != np.uint8:
        pixels *= 255.0  # the loaders accept floats only in [0, 1]
    return keras.applications.vgg16.preprocess_input(pixels)


def base_features(base: keras.Model, images: np.ndarray, batch_size: int = 250,
                  label: str = "features") -> np.ndarray:
    """The frozen base's output for images (preprocessed here, once), in batches."""
    start = time.perf_counter()
    interactive = sys.stdout.isatty()  # a progress bar redrawn in place; a log gets one line
    batches = []
    for first in range(0, len(images), batch_size):
        batch = vgg16_preprocess(images[first:first + batch_size])
        batches.append(keras.ops.convert_to_numpy(base(batch, training=False)))
        done = min(first + batch_size, len(images))
        if interactive or done == len(images):
            print(f"\r  {label}: {done:,}/{len(images):,} images, computed once in "
                  f"{time.perf_counter() - start:.0f} s", end="", flush=True)
    print()
    return np.concatenate(batches)


def cached_base_features(base: keras.Model, images: np.ndarray, weights: str,
                         cache_dir: str | None, label: str) -> np.ndarray:
    """`base_features`, kept in `cache_dir` keyed by the weights and the images."""
    if not cache_dir:
        return base_features(base, images, label=label)
    key = hashlib.sha1(images.tobytes())
    for weight in base.get_weights():
        key.update(weight.tobytes())
    path = os.path.join(cache_dir, f"{base.name}_{weights_tag(weights)}_{key.hexdigest()[:16]}.npy")
    if os.path.isfile(path):
        print(f"  {label}: reusing {path}")
        return np.load(path)
    features = base_features(base, images, label=label)
    os.makedirs(cache_dir, exist_ok=True)
    temporary = path + ".tmp.npy"
    np.save(temporary, features)
    os.replace(temporary, path)
    return features


def trial_features(base: keras.Model, pool: np.ndarray, small_sets: Sequence[np.ndarray],
                   test_images: np.ndarray, weights: str, cache_dir: str | None,
                   prepare: Callable[[np.ndarray], np.ndarray] | None = None,
                   ) -> tuple[list[np.ndarray], np.ndarray]:
    """The base's features for each trial's small set and for the test images.

    Each image runs through the base once, even when several trials draw it.

    Args:
        pool: the images the small sets index into.
        small_sets: each trial's indices into `pool`.
        prepare: applied to the images (as floats in [0, 1]) before the base, e.g.
            `data.pad_and_repeat` for MNIST.

    Returns:
        (features of each small set, in its order; features of the test images).
    """
    used = np.unique(np.concatenate(small_sets))  # sorted: searchsorted finds each row
    images = np.concatenate([to_unit_float(pool[used]), to_unit_float(test_images)])
    features = cached_base_features(base, prepare(images) if prepare else images, weights,
                                    cache_dir, f"VGG16 features ({len(used):,} distinct "
                                    f"training and {len(test_images):,} test images)")
    return [features[np.searchsorted(used, chosen)] for chosen in small_sets], features[len(used):]


def weights_tag(weights: str) -> str:
    """A short file-name tag for the weights used."""
    return weights if weights in ("imagenet", "none") else "file"


def head(variant: str, input_shape: tuple[int, ...], num_classes: int, seed: int) -> keras.Sequential:
    """A new head of the given variant (see HEAD_VARIANTS), seeded per trial."""
    if variant not in HEAD_VARIANTS:
        raise UserInputError(f"--variants {variant}: unknown; choose from "
                             f"{', '.join(HEAD_VARIANTS)}")
    parts: list[layers.Layer] = [layers.Flatten(name="flatten")]
    if variant in ("dropout", "dropout2"):
        parts.append(models.dropout(0.5, seed, "dropout1"))
    if variant in ("dense512", "dropout2", "dense512_nodrop"):
        parts.append(layers.Dense(512, activation="tanh", **models.seeded(seed, "hidden")))
    if variant in ("dense512", "dropout2"):
        parts.append(models.dropout(0.5, seed, "dropout2"))
    parts.append(models.softmax_output(num_classes, seed))
    return keras.Sequential([keras.Input(input_shape), *parts], name=f"{variant}_seed{seed}")


def transfer_model(base: keras.Model, variant: str, num_classes: int, seed: int) -> keras.Sequential:
    """The whole model: the frozen base (shared, it never changes) and a new head.

    It takes preprocessed images (`vgg16_preprocess`); the scripts train only its head,
    on the base's features, which the tests show is the same.
    """
    new_head = head(variant, base.outputs[0].shape[1:], num_classes, seed)
    return keras.Sequential([keras.Input(base.inputs[0].shape[1:]), base, *new_head.layers],
                            name=f"vgg16_{variant}_seed{seed}")

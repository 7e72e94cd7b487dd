"""ImageNet networks as frozen feature extractors (VGG16, the lecture's, and others),
the heads put on them, and their features.

VGG16 without its top (`include_top=False`) turns a 32x32x3 image into a 1x1x512
feature map; ResNet50 and MobileNetV2 accept 32x32 too (1x1x2048, 1x1x1280). Each
expects its own preprocessing of the pixels (`BASES`). Frozen and with nothing random
in it, a base's output for an image never changes, so `base_features` computes it once
per image and every head and trial trains on those features (see
`common.trials.train_heads_on_features` for the proof of equality with whole-model
training). `train_heads_on_base` adds the options beyond the lecture: augmentation
(the base then sees new images every epoch) and a fine-tuning stage.
"""

import hashlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import keras
from keras import layers

from common import models, training, trials
from common.cli import STOP_REQUESTED, UserInputError
from common.data import keras_cache_file, to_unit_float
from common.transfer import fine_tune_layers, freeze

VGG16_INPUT = (32, 32, 3)  # the smallest input all the bases accept
# keras.applications.VGG16 caches its ImageNet weights under this name.
VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


@dataclass(frozen=True)
class Base:
    """A keras.applications network usable as a frozen base."""

    title: str  # as people write it
    build: Callable[..., keras.Model]  # keras.applications.<Network>
    preprocess: Callable[[np.ndarray], np.ndarray]  # its preprocess_input, on 0..255 RGB
    weights_file: str  # the name Keras caches its ImageNet weights (without the top) under


BASES = {
    "vgg16": Base("VGG16", keras.applications.VGG16, keras.applications.vgg16.preprocess_input,
                  VGG16_NOTOP_FILE),
    "resnet50": Base("ResNet50", keras.applications.ResNet50,
                     keras.applications.resnet50.preprocess_input,
                     "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    # For inputs other than 96..224 pixels Keras loads the 224-pixel weights.
    "mobilenetv2": Base("MobileNetV2", keras.applications.MobileNetV2,
                        keras.applications.mobilenet_v2.preprocess_input,
                        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
}

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
    """VGG16 without its top, frozen: `pretrained_base("vgg16", ...)`."""
    return pretrained_base("vgg16", weights, input_shape, seed)


def pretrained_base(name: str, weights: str, input_shape: tuple[int, int, int] = VGG16_INPUT,
                    seed: int = 0) -> keras.Model:
    """A `BASES` network without its top, frozen.

    Args:
        name: a key of `BASES` ("vgg16", "resnet50", "mobilenetv2").
        weights: "imagenet" (Keras's cache, else a download), "none" (random weights:
            the same pipeline, but not transfer) or the path of a weights file
            (e.g. `vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`).
        input_shape: (height, width, 3), at least 32x32.
        seed: draws the random weights of "none", so that every process of a run
            (`--jobs`, `--resume`) gets the same ones.

    Raises:
        FileNotFoundError: `weights` is a path with no file.
        UserInputError: the ImageNet weights are neither cached nor downloadable, or
            the file does not fit the network.
    """
    spec = BASES[name]
    if weights == "none":
        # keras.applications takes no seed; its initialisers draw from the global one.
        keras.utils.set_random_seed(seed)
        base = spec.build(include_top=False, weights=None, input_shape=input_shape)
    elif weights == "imagenet":
        cached = keras_cache_file(spec.weights_file, "models")
        if not os.path.exists(cached):
            print(f"{spec.title}'s ImageNet weights are not in Keras's cache ({cached}); "
                  "downloading them ...")
        try:
            base = spec.build(include_top=False, weights="imagenet", input_shape=input_shape)
        # Keras's get_file raises a bare Exception ("URL fetch failure ...") when offline.
        except Exception as error:  # noqa: BLE001 - re-raised with the cause attached
            raise UserInputError(
                f"--weights imagenet: {spec.title}'s weights are not cached at {cached} and could "
                f"not be downloaded ({str(error).splitlines()[0][:100]}); put the file "
                f"there, pass --weights PATH to a copy, or --weights none") from error
    else:
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"--weights {weights}: no such file (expected "
                                    f"{spec.weights_file}, or 'imagenet' or 'none')")
        base = spec.build(include_top=False, weights=None, input_shape=input_shape)
        try:
            base.load_weights(weights)
        except (OSError, ValueError, KeyError) as error:
            raise UserInputError(f"--weights {weights}: not {spec.title} weights without the top "
                                 f"({str(error).splitlines()[0][:120]})") from error
    freeze(base)
    return base


def weights_label(weights: str) -> str:
    """How results name the weights; random ones are never called transfer."""
    return "random weights: not transfer" if weights == "none" else f"{weights} weights"


def preprocess(images: np.ndarray, name: str = "vgg16") -> np.ndarray:
    """The input base `name` was trained on, from RGB images: uint8 0..255 or float 0..1.

    Each network's `preprocess_input` takes 0..255 values (VGG16 and ResNet50 flip RGB
    to BGR and subtract ImageNet's mean pixel; MobileNetV2 scales to -1..1); it must
    run exactly once per image, which is why it lives here and only here.
    """
    pixels = images.astype("float32")
    if images.dtype != np.uint8:
        pixels *= 255.0  # the loaders accept floats only in [0, 1]
    return BASES[name].preprocess(pixels)


def vgg16_preprocess(images: np.ndarray) -> np.ndarray:
    """`preprocess(images, "vgg16")`."""
    return preprocess(images, "vgg16")


def base_features(base: keras.Model, images: np.ndarray, batch_size: int = 250,
                  label: str = "features", name: str = "vgg16") -> np.ndarray:
    """The frozen base's output for images (preprocessed for base `name` here, once)."""
    start = time.perf_counter()
    interactive = sys.stdout.isatty()  # a progress bar redrawn in place; a log gets one line
    batches = []
    for first in range(0, len(images), batch_size):
        if STOP_REQUESTED.is_set():  # Ctrl-C (see common.cli.run_script)
            raise KeyboardInterrupt
        batch = preprocess(images[first:first + batch_size], name)
        batches.append(keras.ops.convert_to_numpy(base(batch, training=False)))
        done = min(first + batch_size, len(images))
        if interactive or done == len(images):
            print(f"\r  {label}: {done:,}/{len(images):,} images, computed once in "
                  f"{time.perf_counter() - start:.0f} s", end="", flush=True)
    print()
    return np.concatenate(batches)


def cached_base_features(base: keras.Model, images: np.ndarray, weights: str,
                         cache_dir: str | None, label: str, name: str = "vgg16") -> np.ndarray:
    """`base_features`, kept in `cache_dir` keyed by the weights and the images."""
    if not cache_dir:
        return base_features(base, images, label=label, name=name)
    key = hashlib.sha1(images.tobytes())
    for weight in base.get_weights():
        key.update(weight.tobytes())
    path = os.path.join(cache_dir, f"{base.name}_{weights_tag(weights)}_{key.hexdigest()[:16]}.npy")
    if os.path.isfile(path):
        print(f"  {label}: reusing {path}")
        return np.load(path)
    features = base_features(base, images, label=label, name=name)
    os.makedirs(cache_dir, exist_ok=True)
    temporary = path + ".tmp.npy"
    np.save(temporary, features)
    os.replace(temporary, path)
    return features


def trial_features(base: keras.Model, pool: np.ndarray, small_sets: Sequence[np.ndarray],
                   test_images: np.ndarray, weights: str, cache_dir: str | None,
                   prepare: Callable[[np.ndarray], np.ndarray] | None = None,
                   name: str = "vgg16") -> tuple[list[np.ndarray], np.ndarray]:
    """The base's features for each trial's small set and for the test images.

    Each image runs through the base once, even when several trials draw it.

    Args:
        pool: the images the small sets index into.
        small_sets: each trial's indices into `pool`.
        prepare: applied to the images (as floats in [0, 1]) before the base, e.g.
            `data.pad_and_repeat` for MNIST.
        name: the base's key in `BASES` (its preprocessing).

    Returns:
        (features of each small set, in its order; features of the test images).
    """
    used = np.unique(np.concatenate(small_sets))  # sorted: searchsorted finds each row
    images = np.concatenate([to_unit_float(pool[used]), to_unit_float(test_images)])
    features = cached_base_features(base, prepare(images) if prepare else images, weights,
                                    cache_dir, f"{name} features ({len(used):,} distinct "
                                    f"training and {len(test_images):,} test images)", name)
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

    It takes preprocessed images (`preprocess`); the scripts train only its head,
    on the base's features, which the tests show is the same.
    """
    new_head = head(variant, base.outputs[0].shape[1:], num_classes, seed)
    return keras.Sequential([keras.Input(base.inputs[0].shape[1:]), base, *new_head.layers],
                            name=f"{base.name}_{variant}_seed{seed}")


def whole_model(base: keras.Model, trained_head: keras.Model, seed: int,
                augment: bool, flips: bool) -> keras.Sequential:
    """Preprocessed images -> [augmentation] -> base -> the given head (its layers shared)."""
    front = [models.augmentation(seed, flips)] if augment else []
    return keras.Sequential([keras.Input(base.inputs[0].shape[1:]), *front, base, trained_head],
                            name=f"{trained_head.name}_whole")


def copy_of(base: keras.Model) -> keras.Model:
    """A new base with the same weights, for one trial's fine-tuning (the base stays as is)."""
    copy = keras.models.clone_model(base)
    copy.set_weights(base.get_weights())
    return copy


def train_heads_on_base(base: keras.Model, heads: Sequence[keras.Model], seeds: Sequence[int],
                        pool: tuple[np.ndarray, np.ndarray], chosen: Sequence[np.ndarray],
                        test: tuple[np.ndarray, np.ndarray], options: Any, epochs: int,
                        batch_size: int, prepare: Callable[[np.ndarray], np.ndarray] | None = None,
                        with_history: bool = False, flips: bool = False) -> list[dict]:
    """New heads on a frozen base, with the options beyond the lecture.

    Stage 1 trains the heads: on the base's features, computed once (the lecture's
    protocol); with `options.augment` on the base's output for newly augmented images
    every epoch (so no features of training images can be cached). Stage 2, with
    `options.fine_tune`, opens the top of a copy of the base per head
    (`transfer.unfreeze_top`) and trains base and head together at the lower rate.
    Tests always run on the real, unaugmented test images.

    Args:
        base: the frozen base (a `BASES` network; its name picks its preprocessing).
        heads: one new head per trial, taking the base's output.
        seeds: each head's trial seed.
        pool: (images, labels) the training sets are drawn from.
        chosen: each head's indices into `pool`.
        test: (images, labels).
        options: a config with the `cli.TrainingOptions` fields, and `weights` and
            `feature_cache` for the features.
        epochs, batch_size: of stage 1 (stage 2: `options.fine_tune_epochs`).
        prepare: applied to images (floats in [0, 1]) before the base, e.g.
            `data.pad_and_repeat` for MNIST.
        with_history: record each head's accuracy and loss per epoch (stage 1).
        flips: augmentation may flip images (photographs, not digits).

    Returns:
        One record per head: "accuracy" after stage 1, "history" (with_history),
        "fine_tuned" (the accuracy after stage 2, with fine-tuning).
    """
    name = base_key(base)
    first_rate, fine_tune_rate = training.learning_rates(options.optimizer, options.lr,
                                                         options.fine_tune_lr)
    fit = {"optimizer": options.optimizer, "learning_rate": first_rate}
    small_features, test_features = trial_features(base, pool[0], chosen, test[0], options.weights,
                                                   options.feature_cache, prepare, name)
    labels = [pool[1][indices] for indices in chosen]
    test_features = (test_features, test[1])

    def base_input(images: np.ndarray) -> np.ndarray:
        unit = to_unit_float(images)
        return preprocess(prepare(unit) if prepare else unit, name)

    if options.augment:
        print(f"  --augment: {name} sees newly augmented training images every epoch, so their "
              "features cannot be cached: slower (the test images' features still are)")
        trained = [whole_model(base, new_head, seed, True, flips)
                   for new_head, seed in zip(heads, seeds)]
        stage_one = [(base_input(pool[0][indices]), y) for indices, y in zip(chosen, labels)]
    else:
        trained, stage_one = heads, list(zip(small_features, labels))
    test_models = heads if options.augment else None
    if with_history:
        scores, histories = trials.train_with_history(
            trained, stage_one, test_features, seeds, epochs, batch_size, "heads",
            test_models=test_models, **fit)
        records = [{"accuracy": score, "history": history}
                   for score, history in zip(scores, histories)]
    else:
        records = [{"accuracy": score} for score in trials.train_and_test(
            trained, stage_one, test_features, seeds, epochs, batch_size, "heads",
            test_models=test_models, **fit)]
    if options.fine_tune != "0":
        copies = [copy_of(base) for _ in heads]
        opened = ", ".join(layer.name for layer in fine_tune_layers(base, options.fine_tune))
        print(f"  fine-tuning: {len(copies)} copies of {name}, {opened} opened, "
              f"{options.fine_tune_epochs} epochs at learning rate {fine_tune_rate:g}")
        whole = [whole_model(copy, new_head, seed, options.augment, flips)
                 for copy, new_head, seed in zip(copies, heads, seeds)]
        scores = trials.fine_tune_and_test(
            whole, copies, options.fine_tune,
            [(base_input(pool[0][indices]), y) for indices, y in zip(chosen, labels)],
            (base_input(test[0]), test[1]), seeds, options.fine_tune_epochs, batch_size,
            "fine-tune", optimizer=options.optimizer, learning_rate=fine_tune_rate)
        for record, score in zip(records, scores):
            record["fine_tuned"] = score
    return records


def base_key(base: keras.Model) -> str:
    """The `BASES` key of a base built by `pretrained_base` (Keras names it after itself)."""
    return next(key for key in BASES if base.name.replace("_", "").startswith(key))

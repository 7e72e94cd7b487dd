"""ImageNet networks as frozen bases (VGG16, the lecture's, and others), and the heads
put on them.

- `BASES`: one row per network, all that the toolkit needs of it: how to build it, its
  preprocessing, where --cut may end it, and its input's range. A new base network is
  one more row; the scripts' --base choices come from this table.
- `pretrained_base`: VGG16 without its top (`include_top=False`) turns a 32x32x3 image
  into a 1x1x512 feature map; ResNet50 and MobileNetV2 accept 32x32 too (1x1x2048,
  1x1x1280). Built frozen, with ImageNet's weights, random ones ("none") or a file;
  `download_errors` turns a failed download into one line.
- `preprocess`: each base's own preprocessing of the pixels, applied exactly once.
- `cut`: a base ended at an earlier block (--cut).
- `HEAD_VARIANTS`, `head`: the lecture's heads on the frozen base (the scripts put them
  after it: `mnist_vgg.transfer_model`, `cifar_vgg.transfer_model`).
- `base_line`, `weights_label`, `base_key`: how results name a base and its weights.

Training on a frozen base's features, computed once, is the engine's
(`common.engine.train_trials`), for every script alike.
"""

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import keras
from keras import layers

from common.lesson import networks
from common.errors import UserInputError, brief
from common.lesson.data import keras_cache_file
from common.lesson.transfer import freeze

VGG16_INPUT = (32, 32, 3)  # the smallest input all the bases accept
# keras.applications.VGG16 caches its ImageNet weights under this name.
VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


@dataclass(frozen=True)
class Base:
    """A keras.applications network usable as a frozen base: one row of `BASES`."""

    title: str  # as people write it
    build: Callable[..., keras.Model]  # keras.applications.<Network>
    preprocess: Callable[[np.ndarray], np.ndarray]  # its preprocess_input, on 0..255 RGB
    weights_file: str  # the name Keras caches its ImageNet weights (without the top) under
    # Where --cut may end it: the outputs of its blocks (with 32x32 inputs), earliest first.
    # Earlier blocks hold more generic features (edges, textures), later ones more specific.
    cuts: tuple[str, ...]
    # How many units of its input one whole pixel range (0..1) spans after `preprocess`:
    # 255 for 0..255 minus a mean, 2 for -1..1. --noise, on the 0..1 scale, is scaled by it.
    input_span: float


BASES = {
    "vgg16": Base("VGG16", keras.applications.VGG16, keras.applications.vgg16.preprocess_input,
                  VGG16_NOTOP_FILE,
                  ("block3_pool", "block4_pool", "block5_pool"),  # 4x4x256, 2x2x512, 1x1x512
                  255.0),
    "resnet50": Base("ResNet50", keras.applications.ResNet50,
                     keras.applications.resnet50.preprocess_input,
                     "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                     ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out"), 255.0),
    # For inputs other than 96..224 pixels Keras loads the 224-pixel weights.
    "mobilenetv2": Base("MobileNetV2", keras.applications.MobileNetV2,
                        keras.applications.mobilenet_v2.preprocess_input,
                        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
                        ("block_6_expand_relu", "block_13_expand_relu", "out_relu"), 2.0),
}

# The lecture's head variants on top of the frozen VGG16, by name. Its slides give
# (1) a new output layer alone ("output", as tl_mnist.py calls it), (2) Dropout 0.5
# before it, (3) a Dense(512) tanh hidden layer, (4) Dropout in the two last hidden
# layers and (5) the Dense(512) tanh layer without Dropout; (3) is read as the hidden
# layer followed by Dropout, the way the lecture's CNN puts Dropout before its output.
HEAD_VARIANTS = {
    "output": "Flatten -> Dense(out)",
    "dropout": "Flatten -> Dropout(0.5) -> Dense(out)",
    "dense512": "Flatten -> Dense(512, tanh) -> Dropout(0.5) -> Dense(out)",
    "dropout2": "Flatten -> Dropout(0.5) -> Dense(512, tanh) -> Dropout(0.5) -> Dense(out)",
    "dense512_nodrop": "Flatten -> Dense(512, tanh) -> Dense(out)",
}


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
        with download_errors(name):
            base = spec.build(include_top=False, weights="imagenet", input_shape=input_shape)
    else:
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"--weights {weights}: no such file (expected "
                                    f"{spec.weights_file}, or 'imagenet' or 'none')")
        base = spec.build(include_top=False, weights=None, input_shape=input_shape)
        try:
            base.load_weights(weights)
        except (OSError, ValueError, KeyError) as error:
            raise UserInputError(f"--weights {weights}: not {spec.title} weights without the top "
                                 f"({brief(error)})") from error
    freeze(base)
    return base


@contextlib.contextmanager
def download_errors(name: str):
    """Around building base `name` with ImageNet's weights: says first when they are to be
    downloaded, and turns a failed download into one line naming what to do.

    Raises:
        UserInputError: the weights are neither in Keras's cache nor downloadable.
    """
    spec = BASES[name]
    cached = keras_cache_file(spec.weights_file, "models")
    if not os.path.exists(cached):
        print(f"{spec.title}'s ImageNet weights are not in Keras's cache ({cached}); "
              "downloading them ...")
    try:
        yield
    # Keras's get_file raises a bare Exception ("URL fetch failure ...") when offline.
    except Exception as error:  # noqa: BLE001 - re-raised with the cause attached
        raise UserInputError(
            f"--weights imagenet: {spec.title}'s weights are not cached at {cached} and could "
            f"not be downloaded ({brief(error, 100)}); put the file "
            f"there, pass --weights PATH to a copy, or --weights none") from error


def cut(base: keras.Model, layer: str) -> keras.Model:
    """`base` ending at `layer` (one of its row's `cuts`), or `base` itself for "".

    The layers are shared with `base`; the cut model is frozen, as `pretrained_base`
    freezes a whole base (so that `transfer.frozen_part` finds it, and --fine-tune opens
    its top). The name stays the base's (so `base_key` still finds its preprocessing).

    Raises:
        UserInputError: `layer` is not a cut of this base.
    """
    if not layer:
        return base
    allowed = BASES[base_key(base)].cuts
    if layer not in allowed:
        raise UserInputError(f"--cut {layer}: not a block output of {base.name}; choose "
                             f"from {', '.join(allowed)}")
    model = keras.Model(base.inputs[0], base.get_layer(layer).output, name=base.name)
    freeze(model)
    return model


def noise_scale(base: keras.Model) -> float:
    """How many units of `base`'s input one whole pixel range (0..1) spans (its row's
    `input_span`); --noise, given on the 0..1 scale, is multiplied by it."""
    return BASES[base_key(base)].input_span


def base_line(config: Any) -> str:
    """How a summary names the base of a run: "vgg16 with imagenet weights, cut at
    block3_pool, head dense512_nodrop"."""
    parts = [f"{config.base} with {weights_label(config.weights)}"]
    if config.cut:
        parts.append(f"cut at {config.cut}")
    if getattr(config, "head", None):
        parts.append(f"head {config.head}")
    return ", ".join(parts)


def is_lectures_base(config: Any) -> bool:
    """Whether a run's base is the lecture's: VGG16 with ImageNet's weights (cached, or a
    file), uncut: its
    accuracy ranges hold for nothing else."""
    return config.base == "vgg16" and config.weights != "none" and not config.cut


def control_notes(config: Any) -> list[str]:
    """The summary's warning for random weights (--weights none): a control, not transfer."""
    if config.weights != "none":
        return []
    return [f"*** random {BASES[config.base].title} weights: a control, not transfer; the "
            "lecture's ranges do not apply"]


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


def head(variant: str, input_shape: tuple[int, ...], num_classes: int, seed: int) -> keras.Sequential:
    """A new head of the given variant (see HEAD_VARIANTS), seeded per trial."""
    if variant not in HEAD_VARIANTS:
        raise UserInputError(f"head {variant}: unknown; choose from "
                             f"{', '.join(HEAD_VARIANTS)}")
    parts: list[layers.Layer] = [layers.Flatten(name="flatten")]
    if variant in ("dropout", "dropout2"):
        parts.append(networks.dropout(0.5, seed, "dropout1"))
    if variant in ("dense512", "dropout2", "dense512_nodrop"):
        parts.append(layers.Dense(512, activation="tanh", **networks.seeded(seed, "hidden")))
    if variant in ("dense512", "dropout2"):
        parts.append(networks.dropout(0.5, seed, "dropout2"))
    parts.append(networks.softmax_output(num_classes, seed))
    return keras.Sequential([keras.Input(input_shape), *parts], name=f"{variant}_seed{seed}")


def base_key(base: keras.Model) -> str:
    """The `BASES` key of a base built by `pretrained_base` (Keras names it after itself)."""
    return next(key for key in BASES if base.name.replace("_", "").startswith(key))

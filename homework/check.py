"""Grades a filled-in homework template step by step, on small synthetic data.

    python -m homework.check tl_mnist                           # the shipped template: all FAIL
    python -m homework.check tl_mnist --file my_tl_mnist.py     # a student's solution
    python -m homework.check tl_mnist --file my_tl_mnist.ipynb  # ... or notebook
    python -m homework.check all                                # every shipped template
    python -m homework.check tl_mnist --file my_tl_mnist.py --results results.json
    python -m homework.check tl_mnist --gradescope              # inside Gradescope's autograder

Each step calls one function of the student's file on data made here (no dataset
files, no network; VGG16 with random weights) and compares the result with what
`common/` and tl_mnist.py do (`tl_mnist.lecture_cnn`, `tl_mnist.transfer_model`),
printing `PASS  step` or `FAIL  step: what was expected, what came back`. A step whose
function raises fails alone; the other steps still run. Exit status: 0 when every step
passes, 1 otherwise, 2 for a --file that does not exist (with --gradescope: 0 once
results.json is written, the grade being in it).

A notebook (.ipynb) is graded by its definitions only: its code cells' imports,
assignments of values that call nothing, and function and class definitions run;
everything else (training at the top level, `%` magics, `!` shell lines) is skipped.

`--results PATH` also writes Gradescope's results.json: one test per step, worth the
step's `points` in STEPS (the one place to change them) when it passes.
homework/gradescope.py builds the autograder zip that runs this with --gradescope.

From Python, `check("tl_mnist", "my_tl_mnist.py")` returns one StepResult per step;
homework/test_homework.py runs the same steps as pytest tests. To grade a new
template, write its check functions below and list them in STEPS.
"""

import argparse
import ast
import dataclasses
import importlib.util
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from common import files, startup

startup.prepare_tensorflow()  # before keras, as keras-io sets KERAS_BACKEND
import keras
from keras import layers
from common.errors import UserInputError
from common.lesson import bases, data, transfer
from common.runs.device import configure_device
import tl_mnist  # the lecture's own steps, where a student reads them: lecture_cnn, transfer_model

HOMEWORK_DIR = os.path.dirname(os.path.abspath(__file__))
MNIST_SHAPE = data.MNIST_SHAPE  # (28, 28, 1)
VGG16_FEATURES = (1, 1, 512)  # VGG16's output for one 32x32 image, the heads' input
MESSAGE_LIMIT = 240  # characters of an exception's text kept in a FAIL line
SUBMITTED_SUFFIXES = (".py", ".ipynb")  # what a student hands in: the template, or a notebook
# Where Gradescope's autograder finds the student's upload and reads the grade
# (https://gradescope-autograders.readthedocs.io/en/latest/specs/).
GRADESCOPE_SUBMISSION = "/autograder/submission"
GRADESCOPE_RESULTS = "/autograder/results/results.json"
# Students see every step's result, and the checker's printout (the same lines), at once:
# the grade is only that the functions work, nothing is kept back for after the due date.
GRADESCOPE_VISIBILITY = "visible"


class WrongAnswer(Exception):
    """The student's function returned, but not what the step asks for; says what to fix."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One graded step of a template."""

    name: str  # what the report calls it, e.g. "freezing"
    function: str  # the template function it grades, e.g. "freeze_base"
    check: Callable[[Callable[..., Any]], None]  # given that function; raises WrongAnswer
    points: float = 1  # what passing it is worth in Gradescope's results.json


@dataclasses.dataclass(frozen=True)
class StepResult:
    """The outcome of one step."""

    step: str  # the step's name
    passed: bool
    message: str = ""  # why it failed (one line); empty when it passed

    def line(self) -> str:
        """The report's line: `PASS  step` or `FAIL  step: message`."""
        return f"PASS  {self.step}" if self.passed else f"FAIL  {self.step}: {self.message}"


# --- what the checks have in common --------------------------------------------------

def shown(values: np.ndarray, limit: int = 8) -> str:
    """The first few values of an array, on one line."""
    flat = np.asarray(values).ravel()
    more = " ..." if flat.size > limit else ""
    return "[" + " ".join(str(value) for value in flat[:limit]) + more + "]"


def weight_values(weights: Sequence) -> list[np.ndarray]:
    """Copies of the weights' current values (to compare after training)."""
    return [keras.ops.convert_to_numpy(weight).copy() for weight in weights]


def all_equal(first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> bool:
    """Whether two lists of arrays are equal, array by array."""
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second))


def expect_model(value: Any, function: str) -> keras.Model:
    """`value` if it is a keras model, else a WrongAnswer saying what came back."""
    if not isinstance(value, keras.Model):
        raise WrongAnswer(f"{function} must return a keras model, got {type(value).__name__}")
    return value


def flat_layers(model: keras.Model) -> list[layers.Layer]:
    """The model's layers in order, nested models (a Sequential head, VGG16) opened up."""
    flat: list[layers.Layer] = []
    for layer in transfer.model_layers(model):
        flat.extend(flat_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return flat


def describe(layer_list: Sequence[layers.Layer]) -> str:
    """Layers as the lecture writes them: `Flatten -> Dense(512, tanh) -> Dense(5, softmax)`."""
    def one(layer: layers.Layer) -> str:
        if isinstance(layer, layers.Dense):
            return f"Dense({layer.units}, {layer.get_config()['activation']})"
        if isinstance(layer, layers.Dropout):
            return f"Dropout({layer.rate:g})"
        return type(layer).__name__
    return " -> ".join(one(layer) for layer in layer_list) or "no layers"


def expect_probabilities(model: Callable, inputs: np.ndarray, num_classes: int, what: str) -> None:
    """Raises WrongAnswer unless `model(inputs)` gives a softmax row per input."""
    try:
        outputs = keras.ops.convert_to_numpy(model(inputs, training=False))
    except ValueError as error:  # Keras's answer to inputs of the wrong shape
        raise WrongAnswer(f"{what} does not accept inputs of shape {inputs.shape}: "
                          f"{str(error).splitlines()[0][:MESSAGE_LIMIT]}") from error
    expected_shape = (len(inputs), num_classes)
    if outputs.shape != expected_shape:
        raise WrongAnswer(f"{what} gives outputs of shape {outputs.shape} for {len(inputs)} "
                          f"inputs, expected {expected_shape}")
    if outputs.min() < 0 or not np.allclose(outputs.sum(axis=1), 1.0, atol=1e-4):
        raise WrongAnswer(f"{what}'s outputs are not probabilities (rows sum to "
                          f"{shown(outputs.sum(axis=1).round(3), 4)}): end in a softmax")


def expect_output_layer(model: keras.Model, num_classes: int, function: str) -> layers.Dense:
    """The model's output layer, if it is a trainable Dense(num_classes, softmax)."""
    output = (flat_layers(model) or [None])[-1]  # a nested head's last layer counts
    if not isinstance(output, layers.Dense):
        last = "no layer" if output is None else f"{type(output).__name__} {output.name!r}"
        raise WrongAnswer(f"the model from {function} must end in a Dense output layer, "
                          f"not in {last}")
    got = describe([output])
    if output.units != num_classes or output.get_config()["activation"] != "softmax":
        raise WrongAnswer(f"expected the output layer Dense({num_classes}, softmax), got {got}")
    if not output.trainable:
        raise WrongAnswer(f"the new output layer {output.name!r} is frozen: it is the part "
                          "that must learn")
    return output


def train_one_step(model: keras.Model, inputs: np.ndarray, labels: np.ndarray) -> None:
    """One step of plain SGD, large enough that every trainable weight visibly moves."""
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5),
                  loss="sparse_categorical_crossentropy")
    model.train_on_batch(inputs, labels)


def synthetic_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` random uint8 28x28x1 images (each its own) and shuffled labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, *MNIST_SHAPE), dtype=np.uint8)
    return images, rng.permutation(np.arange(count) % 10)


def unfrozen_vgg16() -> keras.Model:
    """VGG16 without its top, random weights (nothing downloaded), still trainable."""
    return keras.applications.VGG16(include_top=False, weights=None, input_shape=bases.VGG16_INPUT)


# --- the steps -----------------------------------------------------------------------

def check_split_classes(split_classes: Callable) -> None:
    """Same images and labels as common.lesson.data.select_classes, for two lists of classes."""
    images, labels = synthetic_digits(60, seed=1)
    for classes in (data.ODD_DIGITS, (7, 2, 9)):
        expected_images, expected_labels = data.select_classes(images, labels, classes)
        result = split_classes(images.copy(), labels.copy(), classes)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise WrongAnswer(f"split_classes must return (images, labels), got "
                              f"{type(result).__name__}")
        got_images, got_labels = (np.asarray(part) for part in result)
        where = f"classes {classes}"
        if len(got_images) != len(expected_images) or len(got_labels) != len(expected_labels):
            raise WrongAnswer(f"{where}: expected {len(expected_images)} images and labels (those "
                              f"of these digits among {len(labels)}), got {len(got_images)} "
                              f"images and {len(got_labels)} labels")
        if not np.array_equal(got_images, expected_images):
            raise WrongAnswer(f"{where}: the right number of images, but not the images of these "
                              "digits in their original order")
        if got_labels.shape != expected_labels.shape or \
                not np.array_equal(got_labels, expected_labels):
            mapping = ", ".join(f"{digit}->{new}" for new, digit in enumerate(classes))
            raise WrongAnswer(f"{where}: expected labels {shown(expected_labels)} ({mapping}), "
                              f"got {shown(got_labels)} of shape {got_labels.shape}")


def check_freeze_layers(freeze_layers: Callable) -> None:
    """The lecture CNN's hidden layers frozen, its output layer not: 8,005 trainable."""
    model = tl_mnist.lecture_cnn(5, seed=0)
    hidden, output = transfer.hidden_layers(model), transfer.output_layer(model)
    freeze_layers(hidden)
    still_trainable = [layer.name for layer in hidden if layer.trainable]
    if still_trainable:
        raise WrongAnswer(f"{', '.join(still_trainable)} still trainable after freeze_layers: "
                          "set each layer's `trainable` to False")
    if not output.trainable:
        raise WrongAnswer("the output layer, which was not passed in, was frozen too: freeze "
                          "only the layers given")
    expected = transfer.parameter_count(output.trainable_weights)
    got = transfer.parameter_count(model.trainable_weights)
    if got != expected:
        raise WrongAnswer(f"{got:,} trainable parameters after freezing the hidden layers, "
                          f"expected {expected:,} (the output layer's)")


def check_new_output_layer(new_output_layer: Callable) -> None:
    """A fresh, trainable Dense(n, softmax), as common.lesson.networks.softmax_output."""
    num_classes = 3
    layer = new_output_layer(num_classes)
    if not isinstance(layer, layers.Dense):
        raise WrongAnswer(f"expected a keras Dense layer, got {type(layer).__name__}")
    if layer.units != num_classes or layer.get_config()["activation"] != "softmax":
        raise WrongAnswer(f"new_output_layer({num_classes}): expected Dense({num_classes}, "
                          f"softmax), got {describe([layer])}")
    if not layer.trainable:
        raise WrongAnswer("the new output layer is frozen: it is the part that must learn")
    if new_output_layer(num_classes) is layer:
        raise WrongAnswer("two calls returned the same layer object: make a new layer on each call")
    features = np.random.default_rng(0).normal(size=(4, 16)).astype("float32")
    expect_probabilities(layer, features, num_classes, "the new output layer")


def check_cnn_transfer_model(build_transfer_model: Callable) -> None:
    """Copies (not shared layers) with the pretrained weights, frozen, a new softmax
    output; one training step moves only the output, and the pretrained model never."""
    pretrained = tl_mnist.lecture_cnn(5, seed=0)
    originals = transfer.hidden_layers(pretrained)
    pretrained_weights = weight_values(pretrained.weights)
    num_classes = 3  # not the pretrained model's 5, so its own output layer cannot pass
    model = expect_model(build_transfer_model(pretrained, num_classes), "build_transfer_model")

    pretrained_layers = {id(layer) for layer in transfer.sublayers(pretrained)}
    shared = [layer.name for layer in transfer.sublayers(model) if id(layer) in pretrained_layers]
    if shared:
        raise WrongAnswer(f"the new model shares the layer objects {', '.join(shared)} with the "
                          "pretrained model, so freezing or training one changes the other: "
                          "copy each layer (type(layer).from_config(layer.get_config())) "
                          "and its weights")
    output = expect_output_layer(model, num_classes, "build_transfer_model")
    copies = [layer for layer in flat_layers(model) if layer is not output]
    if [type(layer) for layer in copies] != [type(layer) for layer in originals]:
        raise WrongAnswer(f"expected copies of the hidden layers {describe(originals)}, got "
                          f"{describe(copies)}")
    for copy, original in zip(copies, originals):
        if not all_equal(weight_values(copy.weights), weight_values(original.weights)):
            raise WrongAnswer(f"the copy {copy.name!r} does not hold the weights of the pretrained "
                              f"{original.name!r}: copy.set_weights(original.get_weights())")
    trainable_copies = [layer.name for layer in copies if layer.trainable]
    if trainable_copies:
        raise WrongAnswer(f"the copied layers {', '.join(trainable_copies)} are trainable: freeze "
                          "every copied hidden layer")
    if any(not layer.trainable for layer in originals):
        raise WrongAnswer("the pretrained model's layers were frozen: freeze the copies only")
    reference = tl_mnist.transfer_model(pretrained, num_classes, seed=0)
    expected = transfer.parameter_count(reference.trainable_weights)
    got = transfer.parameter_count(model.trainable_weights)
    if got != expected:
        raise WrongAnswer(f"{got:,} trainable parameters, "
                          f"expected {expected:,} (the new output layer's only)")
    images = np.random.default_rng(2).random((4, *MNIST_SHAPE), dtype=np.float32)
    expect_probabilities(model, images, num_classes, "the transfer model")

    copied_before = weight_values(model.non_trainable_weights)
    output_before = weight_values(output.weights)
    train_one_step(model, images, np.arange(4) % num_classes)
    if not all_equal(copied_before, weight_values(model.non_trainable_weights)):
        raise WrongAnswer("one training step changed the copied layers' weights: they must be "
                          "frozen")
    if all_equal(output_before, weight_values(output.weights)):
        raise WrongAnswer("one training step left the output layer unchanged: it must be trainable")
    if not all_equal(pretrained_weights, weight_values(pretrained.weights)):
        raise WrongAnswer("training the new model changed the pretrained model's weights: it must "
                          "hold copies, not the pretrained layers")


def check_pad_and_repeat(pad_and_repeat: Callable) -> None:
    """Same arrays as common.lesson.data.pad_and_repeat, for uint8 and float images."""
    rng = np.random.default_rng(3)
    uint8_images = rng.integers(1, 256, (5, *MNIST_SHAPE), dtype=np.uint8)  # no zeros: pads show
    for images in (uint8_images, uint8_images.astype("float32") / 255.0):
        expected = data.pad_and_repeat(images)
        got = np.asarray(pad_and_repeat(images.copy()))
        if got.shape != expected.shape:
            raise WrongAnswer(f"expected shape {expected.shape} (2 zero pixels on each side, the "
                              f"gray channel 3 times), got {got.shape}")
        if got.dtype != expected.dtype:
            raise WrongAnswer(f"{images.dtype} images came back as {got.dtype}: keep the dtype")
        wrong = np.argwhere(got != expected)
        if len(wrong):
            image, row, column, channel = wrong[0]
            raise WrongAnswer(f"{len(wrong):,} values differ from zero-padding 2 pixels on each "
                              f"side and repeating the channel; the first at image {image}, row "
                              f"{row}, column {column}, channel {channel}: expected "
                              f"{expected[image, row, column, channel]:g}, got "
                              f"{got[image, row, column, channel]:g}")


def check_freeze_base(freeze_base: Callable) -> None:
    """No trainable weight left in VGG16, changed in place."""
    base = unfrozen_vgg16()
    freeze_base(base)
    if base.trainable_weights:
        names = ", ".join(weight.path for weight in base.trainable_weights[:2])
        raise WrongAnswer(f"VGG16 still has {len(base.trainable_weights)} trainable weight "
                          f"tensors ({names}, ...): make the base non-trainable in place "
                          "(the function returns nothing)")


def expect_head(head: keras.Model, variant: str, num_classes: int, function: str) -> None:
    """Raises WrongAnswer unless `head` has common.lesson.bases.head's layers and counts."""
    reference = bases.head(variant, VGG16_FEATURES, num_classes, seed=0)
    expected, got = describe(flat_layers(reference)), describe(flat_layers(head))
    if got != expected:
        raise WrongAnswer(f"{function} for {variant!r}: expected {expected}, got {got}")
    expected_count, got_count = (transfer.parameter_count(model.trainable_weights)
                                 for model in (reference, head))
    if got_count != expected_count:
        raise WrongAnswer(f"{function} for {variant!r}: {got_count:,} trainable parameters, "
                          f"expected {expected_count:,}")
    features = np.random.default_rng(4).normal(size=(2, *VGG16_FEATURES)).astype("float32")
    expect_probabilities(head, features, num_classes, f"the {variant!r} head")


def check_head_variants(make_head: Callable) -> None:
    """Every variant of common.lesson.bases.HEAD_VARIANTS, and a ValueError for an unknown one."""
    num_classes = 4  # not the lecture's 5, so a head that ignores num_classes fails
    for variant in bases.HEAD_VARIANTS:
        head = expect_model(make_head(variant, VGG16_FEATURES, num_classes), "make_head")
        expect_head(head, variant, num_classes, "make_head")
    try:
        make_head("no_such_head", VGG16_FEATURES, num_classes)
    except ValueError:
        return
    raise WrongAnswer("make_head('no_such_head', ...) returned: raise ValueError for an unknown "
                      "variant, naming the known ones")


def check_cifar_head(make_head: Callable) -> None:
    """Flatten -> Dense(512, tanh) -> Dense(n, softmax), as common.lesson.bases.head('dense512_nodrop')."""
    num_classes = 6  # not CIFAR-10's 10, so a head that ignores num_classes fails
    head = expect_model(make_head(VGG16_FEATURES, num_classes), "make_head")
    expect_head(head, "dense512_nodrop", num_classes, "make_head")


def expect_vgg_transfer_model(model: keras.Model, base: keras.Model, variant: str,
                              num_classes: int) -> None:
    """Raises WrongAnswer unless `model` is the frozen base + the variant's head, and one
    training step moves the head only."""
    if base.trainable_weights:
        raise WrongAnswer("build_transfer_model made the VGG16 base trainable: leave it frozen")
    frozen = transfer.parameter_count(model.non_trainable_weights)
    if frozen != base.count_params():
        raise WrongAnswer(f"expected VGG16's {base.count_params():,} parameters in the model, all "
                          f"frozen; found {frozen:,} non-trainable parameters")
    reference = bases.head(variant, base.outputs[0].shape[1:], num_classes, seed=0)
    expected_layers = flat_layers(reference)
    got_layers = flat_layers(model)[-len(expected_layers):]
    if describe(got_layers) != describe(expected_layers):
        raise WrongAnswer(f"expected the model to end in the {variant!r} head "
                          f"{describe(expected_layers)}, got {describe(got_layers)}")
    expected_count = transfer.parameter_count(reference.trainable_weights)
    got_count = transfer.parameter_count(model.trainable_weights)
    if got_count != expected_count:
        raise WrongAnswer(f"{got_count:,} trainable parameters, "
                          f"expected {expected_count:,} (the {variant!r} head's only)")
    images = np.random.default_rng(5).normal(0, 60, (4, *bases.VGG16_INPUT)).astype("float32")
    expect_probabilities(model, images, num_classes, f"the transfer model ({variant!r})")

    output = expect_output_layer(model, num_classes, "build_transfer_model")
    frozen_before = weight_values(model.non_trainable_weights)
    output_before = weight_values(output.weights)
    train_one_step(model, images, np.arange(4) % num_classes)
    if not all_equal(frozen_before, weight_values(model.non_trainable_weights)):
        raise WrongAnswer("one training step changed VGG16's weights: the base must stay frozen")
    if all_equal(output_before, weight_values(output.weights)):
        raise WrongAnswer("one training step left the output layer unchanged: the head must be "
                          "trainable")


def check_mnist_vgg_transfer_model(build_transfer_model: Callable) -> None:
    """The frozen base + each of two heads (common.lesson.bases.head's layers after the base, as
    mnist_vgg.transfer_model builds them)."""
    base = bases.pretrained_base("vgg16", "none")  # random weights, frozen
    base_weights = weight_values(base.weights)
    for variant in ("output", "dense512"):  # two, so a model that ignores `variant` fails
        model = expect_model(build_transfer_model(base, variant, 4), "build_transfer_model")
        expect_vgg_transfer_model(model, base, variant, 4)
    if not all_equal(base_weights, weight_values(base.weights)):
        raise WrongAnswer("training the transfer model changed the VGG16 base")


def check_cifar_transfer_model(build_transfer_model: Callable) -> None:
    """The frozen base + Flatten -> Dense(512, tanh) -> Dense(n, softmax)."""
    base = bases.pretrained_base("vgg16", "none")  # random weights, frozen
    base_weights = weight_values(base.weights)
    model = expect_model(build_transfer_model(base, 6), "build_transfer_model")
    expect_vgg_transfer_model(model, base, "dense512_nodrop", 6)
    if not all_equal(base_weights, weight_values(base.weights)):
        raise WrongAnswer("training the transfer model changed the VGG16 base")


def check_stratified_sample(stratified_sample: Callable) -> None:
    """per_class distinct random indices of each class, drawn with `rng`, as
    common.lesson.data.stratified_sample; a ValueError when a class is too small."""
    per_class = 5
    rng = np.random.default_rng(6)
    labels = rng.permutation(np.repeat(np.arange(10), np.arange(8, 18)))  # class c: 8 + c images
    chosen = np.asarray(stratified_sample(labels, per_class, np.random.default_rng(0)))
    if chosen.ndim != 1 or not np.issubdtype(chosen.dtype, np.integer):
        raise WrongAnswer(f"expected a 1-D array of integer indices, got shape {chosen.shape} "
                          f"and dtype {chosen.dtype}")
    if len(chosen) != 10 * per_class:
        raise WrongAnswer(f"expected {10 * per_class} indices ({per_class} of each of 10 classes), "
                          f"got {len(chosen)}")
    if chosen.min() < 0 or chosen.max() >= len(labels):
        raise WrongAnswer(f"indices must lie in 0..{len(labels) - 1}, got "
                          f"{chosen.min()}..{chosen.max()}")
    if len(np.unique(chosen)) != len(chosen):
        raise WrongAnswer(f"{len(chosen) - len(np.unique(chosen))} indices drawn twice: draw "
                          "without replacement")
    counts = np.bincount(labels[chosen], minlength=10)
    if (counts != per_class).any():
        raise WrongAnswer(f"expected {per_class} images of every class, got per class "
                          f"{shown(counts, 10)}")
    again = np.asarray(stratified_sample(labels, per_class, np.random.default_rng(0)))
    if not np.array_equal(np.sort(again), np.sort(chosen)):
        raise WrongAnswer("two generators with the same seed drew different images: draw with "
                          "`rng`, not np.random")
    draws = {tuple(np.sort(stratified_sample(labels, per_class, np.random.default_rng(seed))))
             for seed in range(1, 4)}
    if len(draws | {tuple(np.sort(chosen))}) == 1:
        raise WrongAnswer("four different seeds drew the same images: draw them at random with "
                          "rng.choice(..., replace=False)")
    too_few = np.concatenate([labels[labels != 2], [2, 2, 2]])  # class 2: 3 images
    try:
        stratified_sample(too_few, per_class, np.random.default_rng(0))
    except ValueError:
        return
    raise WrongAnswer(f"class 2 has 3 images and {per_class} were asked for, but no ValueError "
                      "came: raise one naming the class")


# Each template's steps, in the order of its TODOs. A step is worth 1 point, the transfer
# model 2: it checks the most (copies, weights, freezing, what one training step moves).
STEPS: dict[str, tuple[Step, ...]] = {
    "tl_mnist": (
        Step("class split", "split_classes", check_split_classes),
        Step("freezing", "freeze_layers", check_freeze_layers),
        Step("new head", "new_output_layer", check_new_output_layer),
        Step("transfer model", "build_transfer_model", check_cnn_transfer_model,
             points=2),
    ),
    "mnist_vgg": (
        Step("padding", "pad_and_repeat", check_pad_and_repeat),
        Step("class split", "split_classes", check_split_classes),
        Step("freezing", "freeze_base", check_freeze_base),
        Step("head variants", "make_head", check_head_variants),
        Step("transfer model", "build_transfer_model", check_mnist_vgg_transfer_model,
             points=2),
    ),
    "cifar_vgg": (
        Step("stratified sample", "stratified_sample", check_stratified_sample),
        Step("freezing", "freeze_base", check_freeze_base),
        Step("head", "make_head", check_cifar_head),
        Step("transfer model", "build_transfer_model", check_cifar_transfer_model,
             points=2),
    ),
}


# --- reading a student's file: a module, or a notebook's definitions -----------------

# An IPython line that is not Python: `%magic`, `!shell`, `files = !ls`, `x = %time f()`,
# and `name?` / `?name` (help). `!=` at a line's start is Python's, and stays.
IPYTHON_LINE = re.compile(r"^\s*(?:[%!](?!=)|[\w.,\s]+=\s*[%!](?!=)|\?{1,2}[\w.]+\s*$"
                          r"|[\w.]+\?{1,2}\s*$)")
# What may run of a notebook's top level: statements that only define names (an import
# runs its module's code, not the student's).
DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
CALLING = (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)


def template_path(name: str) -> str:
    """The shipped template of homework `name`."""
    return os.path.join(HOMEWORK_DIR, f"{name}_template.py")


def cell_filename(path: str, number: int) -> str:
    """The file name a notebook's cell is compiled under, so that tracebacks and FAIL
    lines say `my.ipynb cell 3 line 2`."""
    return f"{os.path.realpath(path)} cell {number}"


def is_definition(statement: ast.stmt) -> bool:
    """Whether a notebook's top-level statement only defines names: an import, a function
    or class, or names bound to a value that calls nothing (`CLASSES = (1, 3, 5)`).

    Everything else, `model.fit(...)`, `history = model.fit(...)`, loops, is what a
    student runs to try the functions out: it would train (for minutes) or download,
    and the checker calls the functions itself."""
    if isinstance(statement, DEFINITIONS):
        return True
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets = [statement.target]
    else:
        return False
    names_only = all(isinstance(node, (ast.Name, ast.Tuple, ast.List, ast.Starred,
                                       ast.Store, ast.Load))
                     for target in targets for node in ast.walk(target))
    return names_only and not any(isinstance(node, CALLING) for node in ast.walk(statement.value))


def python_of_cell(source: str) -> str:
    """A code cell's text with its IPython lines blanked (line numbers stay the cell's);
    empty for a cell magic (`%%time`, `%%bash`, ...), which makes the whole cell not Python."""
    lines = source.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith("%%"):
        return ""
    return "\n".join("" if IPYTHON_LINE.match(line) else line for line in lines) + "\n"


def notebook_definitions(path: str) -> list[tuple[str, ast.Module]]:
    """The definitions of each code cell of the notebook at `path` (see is_definition),
    with the file name to compile them under; cells are numbered from 1, all kinds counted.

    Raises:
        UserInputError: the file is not a Jupyter notebook.
        SyntaxError: a code cell is not Python (beyond its IPython lines).
    """
    with open(path, encoding="utf-8") as file:
        try:
            notebook = json.load(file)
        except json.JSONDecodeError as error:
            raise UserInputError(f"{os.path.basename(path)} is not a Jupyter notebook "
                                 f"(not JSON: {error})") from error
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise UserInputError(f"{os.path.basename(path)} is not a Jupyter notebook (no list of "
                             "cells): hand in the .ipynb file Jupyter saves")
    definitions = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = python_of_cell("".join(source) if isinstance(source, list) else str(source))
        filename = cell_filename(path, number)
        tree = ast.parse(text, filename=filename)
        definitions.append((filename, ast.Module([statement for statement in tree.body
                                                  if is_definition(statement)], [])))
    return definitions


def load_notebook(path: str, module_name: str) -> ModuleType:
    """The definitions of the notebook at `path` run, cell after cell, as one module."""
    module = ModuleType(module_name)
    module.__file__ = os.path.abspath(path)
    sys.modules[module_name] = module  # dataclasses and pickling look a module up here
    for filename, definitions in notebook_definitions(path):
        exec(compile(definitions, filename, "exec"), module.__dict__)  # noqa: S102 - grading
    return module


def load_submission(path: str, name: str) -> ModuleType:
    """Imports the file at `path` as a module: a .py file whole (running its top-level
    code), a notebook (.ipynb) by its definitions only (see notebook_definitions).

    Raises:
        FileNotFoundError: no file at `path`.
        Whatever the file raises when imported (a SyntaxError, an ImportError, ...).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--file {path}: no such file")
    module_name = f"homework_submission_{name}"
    if path.endswith(".ipynb"):
        return load_notebook(path, module_name)
    spec = importlib.util.spec_from_file_location(module_name, os.path.abspath(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look a module up here
    spec.loader.exec_module(module)
    return module


def submitted_file(folder: str, name: str) -> str:
    """The one .py or .ipynb file in `folder` or below (what a student uploaded to
    Gradescope); hidden files and folders, __pycache__ and __MACOSX are not looked at.

    Raises:
        FileNotFoundError: no such folder, or no such file in it.
        UserInputError: more than one such file: which one to grade is not clear.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"--submission {folder}: no such folder")
    found = []
    for parent, folders, names in os.walk(folder):
        folders[:] = sorted(entry for entry in folders
                            if not entry.startswith((".", "__MACOSX", "__pycache__")))
        found += [os.path.join(parent, entry) for entry in sorted(names)
                  if entry.endswith(SUBMITTED_SUFFIXES) and not entry.startswith(".")]
    if not found:
        raise FileNotFoundError(f"--submission {folder}: no .py or .ipynb file in it: hand in "
                                f"your filled-in copy of {name}_template.py or .ipynb")
    if len(found) > 1:
        shown_names = ", ".join(os.path.relpath(entry, folder) for entry in found)
        raise UserInputError(f"--submission {folder}: {len(found)} files to grade "
                             f"({shown_names}): hand in one .py or .ipynb file")
    return found[0]


def is_students(filename: str, student_file: str) -> bool:
    """Whether a traceback frame's file is the student's: the file, or one of its cells."""
    return (os.path.realpath(filename) == student_file
            or filename.startswith(f"{student_file} cell "))


def failure_message(error: BaseException, path: str, function: str) -> str:
    """One line saying why a step failed: a wrong answer, a TODO left, or a crash."""
    if isinstance(error, WrongAnswer):
        return str(error)
    student_file = os.path.realpath(path)
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if is_students(frame.filename, student_file)]
    culprit = frames[-1].name if frames else function
    if culprit == "<module>":
        culprit = f"importing {os.path.basename(path)}"
    text = (str(error).splitlines() or [""])[0][:MESSAGE_LIMIT]
    if isinstance(error, NotImplementedError):
        return f"TODO {culprit} not done (NotImplementedError: {text})"
    where = (f" ({os.path.basename(frames[-1].filename)} line {frames[-1].lineno})"
             if frames else "")
    return f"{culprit} raised {type(error).__name__}: {text}{where}"


def run_step(step: Step, submission: ModuleType) -> StepResult:
    """Grades one step; whatever the student's code raises fails this step only."""
    path = submission.__file__
    function = getattr(submission, step.function, None)
    if not callable(function):
        return StepResult(step.name, False, f"no function {step.function} in "
                          f"{os.path.basename(path)}: keep the template's function names")
    keras.utils.set_random_seed(0)  # the checks' models start alike, whatever ran before
    try:
        step.check(function)
    # This is the grading: a student's function may raise anything (a TODO, a TypeError,
    # Keras's errors), and that must fail this step and let the next one run.
    # SystemExit too: a stray sys.exit() or exit() in the student's code fails its step.
    except (Exception, SystemExit) as error:  # noqa: BLE001 - turned into the step's FAIL line
        return StepResult(step.name, False, failure_message(error, path, step.function))
    return StepResult(step.name, True)


def check(name: str, path: str | None = None) -> list[StepResult]:
    """Grades the homework file at `path` (default: the shipped template) step by step.

    Args:
        name: the homework, a key of STEPS: "tl_mnist", "mnist_vgg" or "cifar_vgg".
        path: the student's filled-in copy of the template, a .py file or a notebook.

    Returns:
        One StepResult per step, in the template's order. A file that cannot be
        imported fails every step, with the reason.

    Raises:
        ValueError: an unknown `name`.
        FileNotFoundError: no file at `path`.
    """
    if name not in STEPS:
        raise ValueError(f"unknown homework {name!r}: choose from {', '.join(STEPS)}")
    path = path or template_path(name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--file {path}: no such file")
    try:
        submission = load_submission(path, name)
    # Importing runs the student's top-level code, which may raise anything; that fails
    # every step (with the reason) instead of stopping the grading of other files.
    except (Exception, SystemExit) as error:  # noqa: BLE001 - turned into FAIL lines
        reason = f"could not import {path}: {failure_message(error, path, '<module>')}"
        return [StepResult(step.name, False, reason) for step in STEPS[name]]
    return [run_step(step, submission) for step in STEPS[name]]


# --- Gradescope's results.json -------------------------------------------------------

def points_line(name: str, results: Sequence[StepResult]) -> str:
    """`3 of 4 steps pass, 3 of 5 points`: the grade, as results.json's output says it."""
    steps = STEPS[name]
    score = sum(step.points for step, result in zip(steps, results) if result.passed)
    passed = sum(result.passed for result in results)
    return (f"{passed} of {len(results)} steps pass, {score:g} of "
            f"{sum(step.points for step in steps):g} points")


def gradescope_results(name: str, results: Sequence[StepResult], summary: str,
                       seconds: float) -> dict[str, Any]:
    """Gradescope's results.json for one graded file: a test per step, in order.

    The fields are those of Gradescope's autograder specification
    (https://gradescope-autograders.readthedocs.io/en/latest/specs/): a test's `score`
    is its step's points when it passes, else 0, its `output` the report's PASS or
    FAIL line (a FAIL says what to fix); the top-level `score` is their sum.

    Args:
        name: the homework, a key of STEPS.
        results: one StepResult per step of STEPS[name].
        summary: the top-level output: what was graded (or why nothing was), the points.
        seconds: how long the grading took.
    """
    steps = STEPS[name]
    assert [result.step for result in results] == [step.name for step in steps]
    tests = [{"name": f"{step.name} ({step.function})",
              "number": str(number),  # the template's TODO number
              "score": step.points if result.passed else 0,
              "max_score": step.points,
              "status": "passed" if result.passed else "failed",
              "output": result.line(),
              "visibility": GRADESCOPE_VISIBILITY}
             for number, (step, result) in enumerate(zip(steps, results), start=1)]
    return {"score": sum(test["score"] for test in tests),
            "execution_time": round(seconds),
            "output": summary,
            "visibility": GRADESCOPE_VISIBILITY,
            "stdout_visibility": GRADESCOPE_VISIBILITY,
            "tests": tests}


# --- the command line ----------------------------------------------------------------

def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line's flags, checked against each other."""
    parser = argparse.ArgumentParser(prog="python -m homework.check",
                                     description="Grades a filled-in homework template.")
    parser.add_argument("name", choices=(*STEPS, "all"),
                        help="the homework; all: every shipped template")
    parser.add_argument("--file", help="the student's file, a copy of the .py template or of "
                        "the notebook (.ipynb) (default: the shipped template "
                        "homework/NAME_template.py)")
    parser.add_argument("--submission", metavar="DIR",
                        help="grade the one .py or .ipynb file in DIR, e.g. a student's upload "
                        f"(with --gradescope the default: {GRADESCOPE_SUBMISSION})")
    parser.add_argument("--results", metavar="PATH",
                        help="also write Gradescope's results.json to PATH: a test per step, "
                        "worth its points when it passes (with --gradescope the default: "
                        f"{GRADESCOPE_RESULTS})")
    parser.add_argument("--gradescope", action="store_true",
                        help="run as Gradescope's autograder: the defaults above; no file to "
                        "grade scores 0 with the reason in results.json; exit status 0 once "
                        "results.json is written")
    args = parser.parse_args(argv)
    one_only = [flag for flag in ("file", "submission", "results", "gradescope")
                if getattr(args, flag)]
    if args.name == "all" and one_only:
        parser.error(f"--{one_only[0]} grades one homework: name it instead of all")
    if args.file and args.submission:
        parser.error("--file and --submission both say what to grade: give one of them")
    if args.gradescope:
        args.submission = args.submission or (None if args.file else GRADESCOPE_SUBMISSION)
        args.results = args.results or GRADESCOPE_RESULTS
    return args


def file_to_grade(args: argparse.Namespace, name: str) -> str:
    """--file, the one file in --submission, or the shipped template.

    Raises:
        FileNotFoundError, UserInputError: no such file, or no single file to grade.
    """
    path = args.file or (submitted_file(args.submission, name) if args.submission
                         else template_path(name))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--file {path}: no such file")
    return path


def report_name(path: str, args: argparse.Namespace) -> str:
    """How the report names the graded file: as --file gave it, as found in --submission,
    or the shipped template relative to here."""
    return args.file or (path if args.submission else os.path.relpath(path))


def grade(name: str, args: argparse.Namespace) -> bool | None:
    """Grades one homework for the command line: prints the report and writes --results.

    Returns:
        Whether every step passed; None for no file to grade (said on stderr), except
        with --gradescope, where that scores 0 with the reason in results.json.
    """
    started = time.monotonic()
    try:
        path = file_to_grade(args, name)
        results = check(name, path)
    except (FileNotFoundError, UserInputError) as error:
        if not args.gradescope:
            print(f"homework.check: error: {error}", file=sys.stderr)
            return None
        results = [StepResult(step.name, False, str(error)) for step in STEPS[name]]
        graded = "nothing graded"
        summary = f"{name}: {graded}, {points_line(name, results)}\n{error}"
    else:
        graded = report_name(path, args)
        summary = f"{name} ({os.path.basename(path)}): {points_line(name, results)}"
    passed = sum(result.passed for result in results)
    print(f"{name} ({graded}):")
    for result in results:
        print(result.line())
    print(f"{name}: {passed} of {len(results)} steps pass\n")
    if args.results:
        try:
            files.atomic_write_json(args.results, gradescope_results(
                name, results, summary, time.monotonic() - started))
        except OSError as error:
            print(f"homework.check: error: --results {args.results}: cannot write it "
                  f"({error.strerror or error})", file=sys.stderr)
            return None
        print(f"results for Gradescope: {args.results}")
    return passed == len(results)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (0 all pass, 1 a step fails, 2 bad input;
    with --gradescope 0 once results.json is written)."""
    args = parse_arguments(argv)
    configure_device()  # TensorFlow probes for a GPU here, quietly, not in the first check
    outcomes = [grade(name, args) for name in (list(STEPS) if args.name == "all" else [args.name])]
    if None in outcomes:
        return 2
    return 0 if args.gradescope or all(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

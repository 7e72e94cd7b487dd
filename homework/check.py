"""Grades a filled-in homework template step by step, on small synthetic data.

    python -m homework.check tl_mnist                        # the shipped template: all FAIL
    python -m homework.check tl_mnist --file my_tl_mnist.py  # a student's solution
    python -m homework.check all                             # every shipped template

Each step calls one function of the student's file on data made here (no dataset
files, no network; VGG16 with random weights) and compares the result with what
`common/` and tl_mnist.py do (`tl_mnist.lecture_cnn`, `tl_mnist.transfer_model`),
printing `PASS  step` or `FAIL  step: what was expected, what came back`. A step whose
function raises fails alone; the other steps still run. Exit status: 0 when every step
passes, 1 otherwise, 2 for a --file that does not exist.

From Python, `check("tl_mnist", "my_tl_mnist.py")` returns one StepResult per step;
homework/test_homework.py runs the same steps as pytest tests. To grade a new
template, write its check functions below and list them in STEPS.
"""

import argparse
import dataclasses
import importlib.util
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from common import startup

startup.hide_tensorflow_startup_lines()  # before keras, as keras-io sets KERAS_BACKEND
import keras
from keras import layers
from common.lesson import bases, data, transfer
from common.runs.device import configure_device
import tl_mnist  # the lecture's own steps, where a student reads them: lecture_cnn, transfer_model

HOMEWORK_DIR = os.path.dirname(os.path.abspath(__file__))
MNIST_SHAPE = data.MNIST_SHAPE  # (28, 28, 1)
VGG16_FEATURES = (1, 1, 512)  # VGG16's output for one 32x32 image, the heads' input
MESSAGE_LIMIT = 240  # characters of an exception's text kept in a FAIL line


class WrongAnswer(Exception):
    """The student's function returned, but not what the step asks for; says what to fix."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One graded step of a template."""

    name: str  # what the report calls it, e.g. "freezing"
    function: str  # the template function it grades, e.g. "freeze_base"
    check: Callable[[Callable[..., Any]], None]  # given that function; raises WrongAnswer


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


# Each template's steps, in the order of its TODOs.
STEPS: dict[str, tuple[Step, ...]] = {
    "tl_mnist": (
        Step("class split", "split_classes", check_split_classes),
        Step("freezing", "freeze_layers", check_freeze_layers),
        Step("new head", "new_output_layer", check_new_output_layer),
        Step("transfer model", "build_transfer_model", check_cnn_transfer_model),
    ),
    "mnist_vgg": (
        Step("padding", "pad_and_repeat", check_pad_and_repeat),
        Step("class split", "split_classes", check_split_classes),
        Step("freezing", "freeze_base", check_freeze_base),
        Step("head variants", "make_head", check_head_variants),
        Step("transfer model", "build_transfer_model", check_mnist_vgg_transfer_model),
    ),
    "cifar_vgg": (
        Step("stratified sample", "stratified_sample", check_stratified_sample),
        Step("freezing", "freeze_base", check_freeze_base),
        Step("head", "make_head", check_cifar_head),
        Step("transfer model", "build_transfer_model", check_cifar_transfer_model),
    ),
}


# --- running the steps ---------------------------------------------------------------

def template_path(name: str) -> str:
    """The shipped template of homework `name`."""
    return os.path.join(HOMEWORK_DIR, f"{name}_template.py")


def load_submission(path: str, name: str) -> ModuleType:
    """Imports the file at `path` as a module (running its top-level code).

    Raises:
        FileNotFoundError: no file at `path`.
        Whatever the file raises when imported (a SyntaxError, an ImportError, ...).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--file {path}: no such file")
    module_name = f"homework_submission_{name}"
    spec = importlib.util.spec_from_file_location(module_name, os.path.abspath(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look a module up here
    spec.loader.exec_module(module)
    return module


def failure_message(error: Exception, path: str, function: str) -> str:
    """One line saying why a step failed: a wrong answer, a TODO left, or a crash."""
    if isinstance(error, WrongAnswer):
        return str(error)
    student_file = os.path.realpath(path)
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if os.path.realpath(frame.filename) == student_file]
    culprit = frames[-1].name if frames else function
    if culprit == "<module>":
        culprit = f"importing {os.path.basename(path)}"
    text = (str(error).splitlines() or [""])[0][:MESSAGE_LIMIT]
    if isinstance(error, NotImplementedError):
        return f"TODO {culprit} not done (NotImplementedError: {text})"
    where = f" ({os.path.basename(path)} line {frames[-1].lineno})" if frames else ""
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
        path: the student's filled-in copy of the template.

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


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (0 all pass, 1 a step fails, 2 bad input)."""
    parser = argparse.ArgumentParser(prog="python -m homework.check",
                                     description="Grades a filled-in homework template.")
    parser.add_argument("name", choices=(*STEPS, "all"),
                        help="the homework; all: every shipped template")
    parser.add_argument("--file", help="the student's file (default: the shipped template "
                        "homework/NAME_template.py)")
    args = parser.parse_args(argv)
    if args.name == "all" and args.file:
        parser.error("--file grades one homework: name it instead of all")
    configure_device()  # TensorFlow probes for a GPU here, quietly, not in the first check
    names = list(STEPS) if args.name == "all" else [args.name]
    all_passed = True
    for name in names:
        path = args.file or template_path(name)
        try:
            results = check(name, path)
        except FileNotFoundError as error:
            print(f"homework.check: error: {error}", file=sys.stderr)
            return 2
        passed = sum(result.passed for result in results)
        print(f"{name} ({args.file or os.path.relpath(path)}):")
        for result in results:
            print(result.line())
        print(f"{name}: {passed} of {len(results)} steps pass\n")
        all_passed = all_passed and passed == len(results)
    return 0 if all_passed else 1


if __name__ == "__main__":
    sys.exit(main())

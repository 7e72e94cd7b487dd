"""Training many independent trials side by side, as one Keras model.

The lecture trains each trial alone: 100 epochs of 25 steps with 4 images, where
the fixed cost of a step dwarfs its arithmetic. `fit_side_by_side` wires the trials'
models into one model with a branch per trial, so one step trains every trial on its
own 4 images. Each branch keeps its own weights, its own optimizer state (Adam's
moments are per weight), its own data order and its own Dropout stream, and the
summed loss gives each branch exactly its own gradient: trial k learns what it would
learn alone. Where the trials' networks allow it (the lecture's CNNs and heads), the
branches go further and become one network whose every layer holds all the trials
(`common.engine.stacked`): one grouped convolution instead of 15 small ones. The training
images sit in the model as a table on the device and each step looks its batch up by
index, so no data is copied in per step.
"""

import dataclasses
import functools
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import keras
from keras import layers

from common.engine import stacked
from common.errors import STOP_REQUESTED
from common.lesson.orders import epoch_orders
from common.lesson.settings import FitSettings


class TableLookup(layers.Layer):
    """Returns the rows of a fixed table (the training data) at the given indices."""

    def __init__(self, table: np.ndarray, **kwargs):
        super().__init__(trainable=False, **kwargs)
        # Cast to the float type the model computes in (float64 inputs would not mix).
        self.table = keras.Variable(np.asarray(table, dtype=keras.config.floatx()),
                                    trainable=False, name="table")

    def call(self, indices):
        return keras.ops.take(self.table, indices, axis=0)


class EpochProgress(keras.callbacks.Callback):
    """One status line per phase, updated each epoch: epoch, mean loss per trial, time."""

    def __init__(self, label: str, epochs: int, branches: int,
                 on_epoch: Callable[[int], None] | None = None):
        super().__init__()
        self.label, self.epochs, self.branches, self.on_epoch = label, epochs, branches, on_epoch
        self.start = time.perf_counter()
        self.interactive = sys.stdout.isatty()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.on_epoch:
            self.on_epoch(epoch)
        # Ctrl-C or SIGTERM (common.runs.cli.run_script): stop here, unless training is done.
        if STOP_REQUESTED.is_set() and epoch + 1 < self.epochs:
            raise KeyboardInterrupt
        # The joint model's loss is the sum of its branches' losses: one per trial.
        loss = (logs or {}).get("loss", float("nan")) / self.branches
        mean = f" (mean over {self.branches} trials)" if self.branches > 1 else ""
        line = (f"  {self.label}: epoch {epoch + 1} of {self.epochs}, loss {loss:.4f}{mean}, "
                f"{time.perf_counter() - self.start:.0f} s")
        last = epoch + 1 == self.epochs
        if self.interactive:
            print("\r" + line, end="\n" if last else "", flush=True)
        elif last or (epoch + 1) % max(1, self.epochs // 5) == 0:
            print(line, flush=True)


@functools.cache
def say_once(reason: str) -> None:
    """Prints, once per process, why the engine takes a slower way on this machine."""
    print(f"  fast engine: {reason}", flush=True)


def steps_per_call(steps: int) -> int:
    """How many training steps one call of Keras's compiled step runs: all `steps` (an
    epoch's), or 1 on PyTorch, whose Keras trainer refuses more."""
    if keras.backend.backend() == "torch" and steps > 1:
        say_once("the PyTorch backend runs one training step per call (Keras allows no "
                 "steps_per_execution above 1 there), not an epoch's: the same results, "
                 "more time per step")
        return 1
    return steps


def compile_for_training(model: keras.Model, losses: list, fit: FitSettings,
                         steps_per_execution: int) -> None:
    """Compiles with a fresh optimizer and one loss per output, running up to
    `steps_per_execution` steps per call (`steps_per_call`).

    XLA is left off: measured on a 2-core CPU it made these small convolutions about
    4 times slower. On JAX, Keras compiles the step anyway.
    """
    model.compile(optimizer=fit.make_optimizer(), loss=losses,
                  steps_per_execution=steps_per_call(steps_per_execution),
                  jit_compile=False if keras.backend.backend() == "tensorflow" else "auto")


def data_arguments(x: np.ndarray | list, y: np.ndarray | list | None = None,
                   weights: np.ndarray | list | None = None, *, batch_size: int) -> dict:
    """`fit`'s or `predict`'s data arguments for arrays in order (inputs, and labels and
    sample weights for `fit`; a list holds one array per input of the model).

    On TensorFlow, as a `tf.data` pipeline without autotuning: Keras's own pipeline for
    arrays autotunes, and deleting it at the end of `fit` or `predict` then waits for the
    tuning thread's next wake-up: up to a minute after a long run (measured: 0-30 s), and
    about 4.5 s after 2 of 6 `predict`s of 15 CNNs on 5,074 images (a 2-core CPU).
    """
    if keras.backend.backend() != "tensorflow":
        given = {"x": x, "y": y, "sample_weight": weights}
        return {**{name: a for name, a in given.items() if a is not None},
                "batch_size": batch_size}
    import tensorflow as tf

    # tf.data reads a list as one array to stack, a tuple as separate inputs; Keras reads
    # a 1-tuple as inputs alone.
    arrays = tuple(tuple(a) if isinstance(a, list) else a for a in (x, y, weights)
                   if a is not None)
    options = tf.data.Options()
    options.autotune.enabled = False
    return {"x": tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size)
            .with_options(options)}


@dataclasses.dataclass
class Part:
    """One part of the side-by-side model: a stacked group of trials, or one trial's
    branch, with its rows of the data table, labels, sample weights and loss per step."""

    index_input: keras.KerasTensor
    output: keras.KerasTensor
    x: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None
    loss: keras.losses.Loss | str
    write_back: Callable[[], None]  # the trials' weights back into their models


def side_by_side_part(group: list[int], models: Sequence[keras.Model], table: TableLookup,
                      rows: list[np.ndarray], targets: list[np.ndarray],
                      weights: list[np.ndarray] | None, batch_size: int) -> Part:
    """The part training the trials at positions `group` (see `stacked.alike_groups`)."""
    first = group[0]
    if len(group) == 1:  # a branch: the model itself, trained in place
        index_input = keras.Input((), dtype="int32", name=f"trial_{first}")
        return Part(index_input, models[first](table(index_input)), rows[first], targets[first],
                    None if weights is None else weights[first],
                    "sparse_categorical_crossentropy", lambda: None)

    def side_by_side(arrays: list[np.ndarray]) -> np.ndarray:  # (steps * batch, trials)
        return np.stack([arrays[k] for k in group], axis=1)

    together = stacked.StackedTrials([models[k] for k in group], f"stacked_{first}")
    index_input = keras.Input((len(group),), dtype="int32", name=f"trials_{first}")
    return Part(index_input, together.network(table(index_input)), side_by_side(rows),
                side_by_side(targets), None if weights is None else side_by_side(weights),
                stacked.SummedOverTrials(batch_size), together.write_back)


class ClearGradients(keras.callbacks.Callback):
    """Clears the gradients of `variables` before each training step (PyTorch only)."""

    def __init__(self, variables: list):
        super().__init__()
        self.variables = variables

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        for variable in self.variables:
            variable.value.grad = None


def gradient_clearing(network: keras.Model) -> list[keras.callbacks.Callback]:
    """On PyTorch, for a model two of whose trainable weights share a path (trials'
    copies of one pretrained base, fine-tuned: VGG16 names its weights without the
    model's name): a callback that clears their gradients before each step. Keras hands
    PyTorch its weights keyed by path, so it tracks only one of two namesakes and its
    step never clears the other's gradient, which then adds up from step to step."""
    if keras.backend.backend() != "torch":
        return []
    paths = [variable.path for variable in network.trainable_variables]
    shared = [variable for variable in network.trainable_variables
              if paths.count(variable.path) > 1]
    if not shared:
        return []
    say_once("on PyTorch, Keras keeps one of the trainable weights that share a name "
             "(the trials' copies of one network) and would let the others' gradients add "
             "up: the engine clears them before each step")
    return [ClearGradients(shared)]


def fit_side_by_side(models: Sequence[keras.Model], inputs: Sequence[np.ndarray],
                     labels: Sequence[np.ndarray], seeds: Sequence[int], fit: FitSettings,
                     label: str = "training",
                     on_epoch: Callable[[int], None] | None = None) -> None:
    """Trains each model on its own data, all in one Keras model, in place.

    Trial k learns what `models[k].fit(**in_seeded_order((inputs[k], labels[k]), fit,
    seeds[k]), epochs=fit.epochs)` teaches it, after a `compile` with
    `fit.make_optimizer()` and sparse categorical cross-entropy.

    Args:
        models: one built model per trial, each ending in a softmax.
        inputs: each trial's training inputs (all the same length and shape).
        labels: each trial's integer labels.
        seeds: each trial's seed (its data order; its layers were seeded when built).
        fit: epochs, batch size (per trial), optimizer and learning rate.
        label: name of the phase in the progress line.
        on_epoch: called with the epoch number after each epoch (e.g. to validate).
    """
    epochs, batch_size = fit.epochs, fit.batch_size
    count = len(labels[0])
    assert all(len(y) == count for y in labels), "every trial needs the same number of examples"
    table = TableLookup(np.concatenate(inputs), name="training_data")
    orders = [epoch_orders(count, batch_size, epochs, seed) for seed in seeds]
    rows = [indices + k * count for k, (indices, _) in enumerate(orders)]  # rows in the table
    targets = [np.asarray(target)[indices] for target, (indices, _) in zip(labels, orders)]
    weights = None if orders[0][1] is None else [w for _, w in orders]
    steps_per_epoch = len(rows[0]) // (epochs * batch_size)

    # Alike trials (see common.engine.stacked) become one stacked network; the others, one
    # branch each; all of them parts of one Keras model.
    parts = [side_by_side_part(group, models, table, rows, targets, weights, batch_size)
             for group in stacked.alike_groups(models)]
    network = keras.Model([part.index_input for part in parts],
                          [part.output for part in parts], name="side_by_side")

    def write_back() -> None:
        for part in parts:
            part.write_back()

    def epoch_done(epoch: int) -> None:
        if on_epoch:
            write_back()
            on_epoch(epoch)

    compile_for_training(network, [part.loss for part in parts], fit, steps_per_epoch)
    progress = EpochProgress(label, epochs, len(models), epoch_done)
    # The index arrays hold every epoch in order, so Keras must not shuffle them, and
    # `steps_per_epoch` makes it carry on through them epoch after epoch.
    try:
        network.fit(**data_arguments([part.x for part in parts], [part.y for part in parts],
                                     None if weights is None else [part.weights for part in parts],
                                     batch_size=batch_size),
                    epochs=epochs, steps_per_epoch=steps_per_epoch, shuffle=False, verbose=0,
                    callbacks=[*gradient_clearing(network), progress])
    finally:
        write_back()


def predict_in_batches(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> list[np.ndarray]:
    """The model's outputs for `x`, as a list of arrays (one per output).

    Calls the model directly instead of `predict`, which compiles a new function for
    every new model: here most models are predicted once, so that would only cost time.
    """
    batches = [keras.tree.flatten(model(x[start:start + batch_size], training=False))
               for start in range(0, len(x), batch_size)]
    return [np.concatenate([keras.ops.convert_to_numpy(batch[i]) for batch in batches])
            for i in range(len(batches[0]))]


def side_by_side_model(models: Sequence[keras.Model], input_shape: tuple) -> keras.Model:
    """One model giving every model's output for the same input (sharing their layers)."""
    shared_input = keras.Input(input_shape)
    return keras.Model(shared_input, [model(shared_input) for model in models])


def predict_joint(joint: keras.Model, x: np.ndarray, batch_size: int = 256) -> list[np.ndarray]:
    """`joint`'s outputs for `x` (a `side_by_side_model`), as a list of arrays.

    A test set of 10 batches or more goes through Keras's compiled `predict`, which
    pays for its compilation there (15 CNNs on 5,074 images: 3.0 s against 5.2 s batch
    by batch on a 2-core CPU). It compiles anew for every new model, and TensorFlow
    warns about retracing when 5 of the last 10 calls compiled: with fewer batches per
    `predict` a study scoring many models would get there (measured: at 8 batches, not
    at 10 or 20), so fewer images go batch by batch. (`data_arguments`: without the
    wait that Keras's own pipeline for arrays can add at the end.)
    """
    if len(x) < 10 * batch_size:
        return predict_in_batches(joint, x, batch_size)
    outputs = joint.predict(**data_arguments(x, batch_size=batch_size), verbose=0)
    return [np.asarray(p) for p in keras.tree.flatten(outputs)]


def predict_side_by_side(models: Sequence[keras.Model], x: np.ndarray,
                         batch_size: int = 256) -> list[np.ndarray]:
    """Every model's predictions for the same inputs, in one pass over `x`."""
    return predict_joint(side_by_side_model(models, x.shape[1:]), x, batch_size)


def accuracies(models: Sequence[keras.Model], x: np.ndarray, y: np.ndarray) -> list[float]:
    """Each model's classification accuracy on (x, y)."""
    return [float(np.mean(np.argmax(p, axis=-1) == y)) for p in predict_side_by_side(models, x)]

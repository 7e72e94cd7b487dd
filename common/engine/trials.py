"""The fast engine: many trials of an option trained at once, with the same results.

Trial k has seed `base_seed + k`; that seed draws its small set, initialises its new
layers, seeds its Dropout and orders its data. The scripts' plain `one_trial`
(`compile`, `fit`, `evaluate`, one model at a time) is the reference; `train_trials`
gives every trial the accuracy `one_trial` gives it, faster:

- all trials train side by side in one Keras model (`common.engine.side_by_side`), alike ones
  stacked into one network (`common.engine.stacked`);
- a frozen, deterministic front of the models (a pretrained body: VGG16, the copied
  layers of the lecture's CNN) computes its output once per image, and only the heads
  train, on those features (`split_body_head`).

`tests/test_plain_equals_engine.py` proves the equality for each script.
"""

import hashlib
import os
import sys
import time
from collections.abc import Mapping, Sequence

import numpy as np
import keras

from common import files
from common.lesson.classic import CLASSIC_HEADS, classic_head_accuracies
from common.lesson.plain import TrialKey, seed_of
from common.errors import STOP_REQUESTED, UserInputError
from common.lesson.settings import FitSettings
from common.engine.side_by_side import (fit_side_by_side, predict_in_batches, predict_joint,
                                        side_by_side_model)
from common.engine.small_maps import (small_map_convolutions, small_map_convolutions_are_slow,
                                      small_maps_as_matmuls)
from common.lesson.transfer import is_random, model_layers, split_body_head

Examples = tuple[np.ndarray, np.ndarray]  # (images or features, labels)


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean sparse categorical cross-entropy, as Keras computes it (clipped at 1e-7)."""
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))


def scores(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, cross-entropy loss) of predicted class probabilities."""
    return float(np.mean(probabilities.argmax(-1) == labels)), cross_entropy(probabilities, labels)


def train_and_score(models: Sequence[keras.Model], train_sets: Sequence[Examples], test: Examples,
                    seeds: Sequence[int], fit: FitSettings, validate: bool,
                    label: str) -> list[dict]:
    """Trains every model on its own set side by side; scores each on `test`.

    With `validate`, also records each model's history as `fit` with the test set as
    `validation_data` does: accuracy and loss on the training set and on the test set
    after every epoch; with `fit.history` (--log-dir), the training set's alone. (The
    training figures are measured at the end of the epoch with Dropout and augmentation
    off, where Keras averages them over the epoch's steps.)
    """
    keys = ["accuracy", "loss"] + (["val_accuracy", "val_loss"] if validate else [])
    histories = [{key: [] for key in keys} for _ in models]
    on_test_set = side_by_side_model(models, test[0].shape[1:])  # built once, used every epoch

    def record(epoch: int) -> None:
        on_test = predict_joint(on_test_set, test[0]) if validate else [None] * len(models)
        for model, (x, y), history, probabilities in zip(models, train_sets, histories, on_test):
            accuracy, loss = scores(predict_in_batches(model, x)[0], y)
            history["accuracy"].append(accuracy)
            history["loss"].append(loss)
            if validate:
                accuracy, loss = scores(probabilities, test[1])
                history["val_accuracy"].append(accuracy)
                history["val_loss"].append(loss)

    fit_side_by_side(models, [x for x, _ in train_sets], [y for _, y in train_sets], seeds, fit,
                     label=label, on_epoch=record if validate or fit.history else None)
    if validate:
        return [{"accuracy": history["val_accuracy"][-1], "history": history}
                for history in histories]
    return [{"accuracy": scores(probabilities, test[1])[0],
             **({"history": history} if fit.history else {})}
            for probabilities, history in zip(predict_joint(on_test_set, test[0]), histories)]


def shared_body(models: Sequence[keras.Model]) -> tuple[keras.Model, list[keras.Model]]:
    """The frozen body the trials' models share (`split_body_head`), and their heads.

    Every trial's body holds the same pretrained weights (copies of the same layers,
    or the same frozen base), so one body computes the features of all trials.
    """
    bodies, heads = zip(*(split_body_head(model) for model in models))
    reference = bodies[0].get_weights()
    assert all(all(np.array_equal(a, b) for a, b in zip(reference, body.get_weights()))
               for body in bodies[1:]), "trials must share the same frozen body"
    return bodies[0], list(heads)


def body_features(body: keras.Model, images: np.ndarray, cache_dir: str | None = None,
                  batch_size: int = 250) -> np.ndarray:
    """The body's output for `images`, in batches, with a progress line; kept in
    `cache_dir` (keyed by the body's weights and the images) when one is given."""
    path = None
    if cache_dir:
        key = hashlib.sha1(images.tobytes())
        for weight in body.get_weights():
            key.update(weight.tobytes())
        path = os.path.join(cache_dir, f"{body.name}_{key.hexdigest()[:16]}.npy")
        if os.path.isfile(path):
            print(f"  features of the frozen layers: reusing {path}")
            return np.load(path)
    slow = small_map_convolutions(body) if small_map_convolutions_are_slow() else []
    if slow:
        print(f"  JAX on a CPU: {len(slow)} convolutions on maps smaller than their kernel "
              f"({', '.join(conv.name for conv in slow)}) computed as matrix products, "
              "which XLA runs far faster there")
        body = small_maps_as_matmuls(body, slow)
    start, batches = time.perf_counter(), []
    interactive = sys.stdout.isatty()  # a line redrawn in place; a log gets one line
    for first in range(0, len(images), batch_size):
        if STOP_REQUESTED.is_set():  # Ctrl-C or SIGTERM (see common.runs.cli.run_script)
            raise KeyboardInterrupt
        batches.append(keras.ops.convert_to_numpy(
            body(images[first:first + batch_size], training=False)))
        done = min(first + batch_size, len(images))
        if interactive or done == len(images):
            print(f"\r  features of the frozen layers: {done:,}/{len(images):,} images, "
                  f"computed once in {time.perf_counter() - start:.1f} s", end="", flush=True)
    print()
    features = np.concatenate(batches)
    if path:  # (np.save keeps the name: atomic_save's temporary name ends in .npy too)
        files.atomic_save(path, lambda temporary: np.save(temporary, features))
    return features


def train_trials(models: Mapping[TrialKey, keras.Model], train_sets: Mapping[int, Examples],
                 test: Examples, fit: FitSettings, label: str = "training",
                 validate: bool = False, feature_cache: str | None = None,
                 cache_features: bool = True) -> list[tuple[TrialKey, dict]]:
    """The fast equivalent of the scripts' plain `one_trial`, for every trial at once.

    Trial `seed` gets what `one_trial(models[seed], train_sets[seed], test, fit, seed)`
    gives; `common.lesson.plain.trial_by_trial(one_trial, ...)` is that, trial after
    trial: `compile` with `fit.make_optimizer()`, `fit` on `lesson.orders.in_seeded_order`
    (with `validation_data=test` when `validate`), `evaluate` on `test`. The models are
    trained in place. A frozen front shared by the models (no trainable weights, nothing
    random) computes its output once per distinct image and only the heads train.
    `tests/test_plain_equals_engine.py` checks the equality for every script.

    Args:
        models: each trial's built model, ending in a softmax, keyed by its seed (or by
            (option, seed), to train the trials of several options at once).
        train_sets: trial seed -> its (images, labels) (trials may share arrays; more
            seeds than `models` may be given).
        test: (images, labels) every trial is scored on.
        fit: epochs, batch size, optimizer, learning rate.
        label: the option's name in the progress line.
        validate: record each trial's history (accuracy and loss per epoch, on its
            training set and on `test`), as `fit(..., validation_data=test)` does.
        feature_cache: keep the frozen front's features in this folder.
        cache_features: False: train the whole models, for models whose frozen
            fronts differ (the layer-by-layer study).

    Returns:
        (key, record) per trial, in the order of `models`: record {"accuracy": test
        accuracy} (+ "history" with validate).
    """
    keys = list(models)
    if not keys:
        return []
    seeds = [seed_of(key) for key in keys]
    chosen, sets = [models[key] for key in keys], [train_sets[seed] for seed in seeds]
    body, heads = shared_body(chosen) if cache_features else (None, chosen)
    if body is not None and not model_layers(body):
        if chosen[0].non_trainable_weights and is_random(model_layers(chosen[0])[0]):
            print("  the models start with a random layer (augmentation): the frozen layers "
                  "see new images every epoch, so no features are cached and the whole "
                  "models train")
        body, heads = None, chosen
    if body is not None:
        sets, test = features_of(body, sets, test, feature_cache)
    return list(zip(keys, train_and_score(heads, sets, test, seeds, fit, validate, label)))


def pretrain(models: Mapping[int, keras.Model], train_sets: Mapping[int, Examples],
             fit: FitSettings, label: str = "pretraining") -> None:
    """The fast equivalent of the scripts' plain `pretrain(model, train_set, fit, seed)`
    for each seed of `models`: all of them side by side, trained in place."""
    seeds = list(models)
    fit_side_by_side([models[seed] for seed in seeds], [train_sets[seed][0] for seed in seeds],
                     [train_sets[seed][1] for seed in seeds], seeds, fit, label=label)


def features_of(body: keras.Model, train_sets: Sequence[Examples], test: Examples,
                feature_cache: str | None = None) -> tuple[list[Examples], Examples]:
    """The frozen body's features of every trial's training set and of the test set,
    each distinct training array computed once (trials of several heads share theirs)."""
    distinct = list({id(x): x for x, _ in train_sets}.values())
    offsets = np.cumsum([0] + [len(x) for x in distinct])
    features = body_features(body, np.concatenate([*distinct, test[0]]), feature_cache)
    by_array = {id(x): features[offsets[k]:offsets[k + 1]] for k, x in enumerate(distinct)}
    return [(by_array[id(x)], y) for x, y in train_sets], (features[offsets[-1]:], test[1])


def classic_trials(kind: str, models: Mapping[int, keras.Model],
                   train_sets: Mapping[int, Examples], test: Examples,
                   feature_cache: str | None = None) -> list[tuple[int, dict]]:
    """A classic classifier (`common.lesson.classic`: logistic regression or a linear
    SVM) per trial, fitted on the features of the models' shared frozen front instead
    of their Keras head; the same code with --plain (scikit-learn trains it, not `fit`).

    Returns:
        (seed, {"accuracy": ...}) per trial, in the order of `models`.

    Raises:
        UserInputError: the models have no frozen front (e.g. they start with augmentation).
    """
    seeds = list(models)
    if not seeds:
        return []
    body, _ = shared_body([models[seed] for seed in seeds])
    if not model_layers(body):
        raise UserInputError(f"the {kind} head learns from the frozen layers' features, which "
                             "change every epoch with --augment: drop --augment, or that head")
    feature_sets, test_features = features_of(body, [train_sets[seed] for seed in seeds], test,
                                              feature_cache)
    print(f"  {CLASSIC_HEADS[kind]} on those features, one per trial")
    accuracies = classic_head_accuracies(kind, feature_sets, test_features, seeds)
    return [(seed, {"accuracy": accuracy}) for seed, accuracy in zip(seeds, accuracies)]

"""Trials: each trial's small training set, and training options over all trials.

Trial k has seed `base_seed + k`; that seed draws its small set, initialises its new
layers, seeds its Dropout and orders its data. All trials of an option train side by
side (see `common.training`), and transfer heads train on features of the frozen
body computed once.
"""

import time
from collections.abc import Callable, Sequence

import numpy as np
import keras

from common.data import stratified_sample
from common.transfer import model_layers, split_body_head, unfreeze_top
from common.training import (accuracies, fit_side_by_side, predict_in_batches, predict_joint,
                             side_by_side_model)


def trial_seeds(base_seed: int, trials: int) -> list[int]:
    """Seeds of trials 0..trials-1: base_seed + k."""
    return [base_seed + k for k in range(trials)]


def draw_small_sets(labels: np.ndarray, per_class: int, seeds: Sequence[int],
                    class_names: Sequence[str] | None = None,
                    flag: str = "--small-size") -> list[np.ndarray]:
    """Each trial's stratified sample of `per_class` images per class (indices)."""
    return [stratified_sample(labels, per_class, np.random.default_rng(seed), class_names, flag)
            for seed in seeds]


def train_and_test(models: Sequence[keras.Model], train_sets: Sequence[tuple[np.ndarray, np.ndarray]],
                   test: tuple[np.ndarray, np.ndarray], seeds: Sequence[int], epochs: int,
                   batch_size: int, label: str,
                   test_models: Sequence[keras.Model] | None = None, **fit_options) -> list[float]:
    """Trains each model on its own set, side by side, and returns test accuracies.

    `test_models` (default: `models`) are what is tested, e.g. the heads of models
    that start with augmentation and a frozen base, tested on the base's features.
    """
    fit_side_by_side(models, [x for x, _ in train_sets], [y for _, y in train_sets], seeds,
                     epochs, batch_size, label=label, **fit_options)
    return accuracies(test_models or models, *test)


def frozen_features(models: Sequence[keras.Model]) -> tuple[keras.Model, list[keras.Model]]:
    """The shared frozen body of the trials' models, and each model's trainable head.

    Every trial's body is a copy of the same pretrained layers, so one body computes
    the features of all trials.
    """
    bodies, heads = zip(*(split_body_head(model) for model in models))
    reference = bodies[0].get_weights()
    assert all(all(np.array_equal(a, b) for a, b in zip(reference, body.get_weights()))
               for body in bodies[1:]), "trials must share the same frozen body"
    return bodies[0], list(heads)


def train_heads_on_features(models: Sequence[keras.Model],
                            train_sets: Sequence[tuple[np.ndarray, np.ndarray]],
                            test: tuple[np.ndarray, np.ndarray], seeds: Sequence[int],
                            epochs: int, batch_size: int, label: str,
                            say: Callable[[str], None] = print, **fit_options) -> list[float]:
    """`train_and_test` for models with a frozen body, run on cached body features.

    The body's output for an image never changes (frozen, no randomness), so it is
    computed once for every trial's training images and for the test images, and only
    the heads train, on those features. The heads keep everything random (Dropout), so
    the result equals training each whole model; the tests check it. The models'
    heads are trained in place.
    """
    body, heads = frozen_features(models)
    if not model_layers(body):
        say("  the models start with a random layer (augmentation): the frozen layers see new "
            "images every epoch, so no features are cached and the whole models train")
        return train_and_test(models, train_sets, test, seeds, epochs, batch_size, label,
                              **fit_options)
    start = time.perf_counter()
    counts = [len(x) for x, _ in train_sets]
    features = predict_in_batches(body, np.concatenate([x for x, _ in train_sets] + [test[0]]))[0]
    say(f"  features of the frozen body: {features.shape[1:]} for {len(features):,} images, "
        f"computed once in {time.perf_counter() - start:.1f} s")
    offsets = np.cumsum([0] + counts)
    feature_sets = [(features[offsets[k]:offsets[k + 1]], y) for k, (_, y) in enumerate(train_sets)]
    test_features = (features[offsets[-1]:], test[1])
    return train_and_test(heads, feature_sets, test_features, seeds, epochs, batch_size, label,
                          **fit_options)


def fine_tune_and_test(models: Sequence[keras.Model], parts: Sequence[Sequence[keras.Layer]],
                       spec: str, train_sets: Sequence[tuple[np.ndarray, np.ndarray]],
                       test: tuple[np.ndarray, np.ndarray], seeds: Sequence[int], epochs: int,
                       batch_size: int, label: str, **fit_options) -> list[float]:
    """The second stage of transfer: each model's pretrained `part` opened at the top
    (`transfer.unfreeze_top(part, spec)`), the whole models trained side by side.

    Returns:
        Each model's test accuracy after fine-tuning.
    """
    for part in parts:
        unfreeze_top(part, spec)
    return train_and_test(models, train_sets, test, seeds, epochs, batch_size, label,
                          **fit_options)


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean sparse categorical cross-entropy, as Keras computes it (clipped at 1e-7)."""
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))


def train_with_history(models: Sequence[keras.Model],
                       train_sets: Sequence[tuple[np.ndarray, np.ndarray]],
                       test: tuple[np.ndarray, np.ndarray], seeds: Sequence[int], epochs: int,
                       batch_size: int, label: str,
                       test_models: Sequence[keras.Model] | None = None,
                       **fit_options) -> tuple[list[float], list[dict]]:
    """`train_and_test`, plus each model's history, as `fit` with the test set as
    validation data would give it: accuracy and loss on its own training set and on
    the test set after every epoch. (Training figures are measured at the end of the
    epoch with Dropout and augmentation off, not averaged over the epoch.)
    """
    histories = [{"accuracy": [], "loss": [], "val_accuracy": [], "val_loss": []}
                 for _ in models]
    on_test_set = side_by_side_model(test_models or models, test[0].shape[1:])  # compiled once

    def record(epoch: int) -> None:
        on_test = predict_joint(on_test_set, test[0])
        for model, (x, y), history, test_probabilities in zip(models, train_sets, histories,
                                                               on_test):
            on_train = predict_in_batches(model, x)[0]
            history["accuracy"].append(float(np.mean(on_train.argmax(-1) == y)))
            history["loss"].append(cross_entropy(on_train, y))
            history["val_accuracy"].append(float(np.mean(test_probabilities.argmax(-1) == test[1])))
            history["val_loss"].append(cross_entropy(test_probabilities, test[1]))

    fit_side_by_side(models, [x for x, _ in train_sets], [y for _, y in train_sets], seeds,
                     epochs, batch_size, label=label, on_epoch=record, **fit_options)
    return [history["val_accuracy"][-1] for history in histories], histories

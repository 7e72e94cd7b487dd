"""The plain path (`--plain`): a script's own Keras code, one trial after the other.

`trial_by_trial(one_trial, ...)` and `pretrain_each(pretrain, ...)` take the same
arguments as the engine's `train_trials` and `pretrain` (`common.engine`), models and
training sets keyed by each trial's seed, so that a script's `main` chooses between
the two paths in one visible line.
"""

import time
from collections.abc import Callable, Iterator, Mapping

import keras
import numpy as np

from common.errors import STOP_REQUESTED
from common.lesson.settings import FitSettings

Examples = tuple[np.ndarray, np.ndarray]  # (images, labels)
# A trial's key: its seed, or (option, seed) where one call trains several options.
TrialKey = int | tuple[str, int]
OneTrial = Callable[[keras.Model, Examples, Examples, FitSettings, int], dict]


def seed_of(key: TrialKey) -> int:
    """The seed of a trial's key (its seed, or (option, seed))."""
    return key[1] if isinstance(key, tuple) else key


def trial_by_trial(one_trial: OneTrial, models: Mapping[TrialKey, keras.Model],
                   train_sets: Mapping[int, Examples], test: Examples, fit: FitSettings,
                   label: str = "training") -> Iterator[tuple[TrialKey, dict]]:
    """Yields (key, `one_trial(models[key], train_sets[seed], test, fit, seed)`) of each
    trial as it ends, with a progress line (the trials file records it at once).

    Args:
        one_trial: the script's plain trial.
        models: each trial's built model, keyed by its seed (or by (option, seed)).
        train_sets: seed -> that trial's (images, labels).
        test: the (images, labels) every trial is scored on.
        fit: epochs, batch size, optimizer, learning rate.
        label: what trains, for the progress line.
    """
    start = time.perf_counter()
    for k, (key, model) in enumerate(models.items(), start=1):
        if STOP_REQUESTED.is_set():  # Ctrl-C or SIGTERM: no trial after the one in progress
            return
        seed = seed_of(key)
        record = one_trial(model, train_sets[seed], test, fit, seed)
        print(f"  {label}: trial {k} of {len(models)} ({model.name}): "
              f"{100 * record['accuracy']:.1f}%, {time.perf_counter() - start:.0f} s",
              flush=True)
        yield key, record


def pretrain_each(pretrain: Callable[[keras.Model, Examples, FitSettings, int], None],
                  models: Mapping[int, keras.Model], train_sets: Mapping[int, Examples],
                  fit: FitSettings, label: str = "pretraining") -> None:
    """`pretrain(models[seed], train_sets[seed], fit, seed)` for each seed, one after the
    other."""
    for seed, model in models.items():
        print(f"  {label}: {model.name}", flush=True)
        pretrain(model, train_sets[seed], fit, seed)

"""The fast engine: speed only, the same results as the scripts' plain Keras code.

- `train_trials(models, train_sets, test, fit)`, models and training sets keyed by
  each trial's seed: what the plain `one_trial(models[seed], train_sets[seed], test,
  fit, seed)` gives each trial (`common.lesson.plain.trial_by_trial`), every trial at
  once: side by side in one Keras model (`side_by_side`), alike ones stacked into one
  network (`stacked`), on the frozen front's features computed once (`trials`; on
  JAX on a CPU with its convolutions on small maps as matrix products, `small_maps`).
- `pretrain(models, train_sets, fit)`: the plain `pretrain(...)` of each model, side
  by side.
- `classic_trials(...)`: scikit-learn heads on the frozen features (on both paths).
- `accuracies(models, x, y)`: test accuracy of each model, batch by batch.

It imports `common.lesson`, never `common.runs`; `tests/test_plain_equals_engine.py`
proves the equality for every script.
"""

from common.engine.side_by_side import accuracies
from common.engine.trials import classic_trials, pretrain, train_trials

__all__ = ["accuracies", "classic_trials", "pretrain", "train_trials"]

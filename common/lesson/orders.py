"""Each trial's data order, drawn from its seed, for the plain `fit` and the engine alike.

Plain `fit(x, y, batch_size, epochs)` shuffles with Keras's own random generator; here
every epoch's order is laid out in advance from the trial's seed, so that the scripts'
plain code and the fast engine (`common.engine`) train on the same batches and can be
checked against each other trial by trial.
"""

import numpy as np

from common.lesson.networks import derive_seed
from common.lesson.settings import FitSettings


def epoch_orders(count: int, batch_size: int, epochs: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """One branch's example order over all epochs, reshuffled every epoch.

    Each epoch is padded to whole batches; padding entries get sample weight 0 and the
    real entries of a short last batch weight batch_size/real, so every step's loss is
    the mean over its real examples, as in a plain `fit`.

    Returns:
        (indices, weights): arrays of length epochs * steps_per_epoch * batch_size;
        weights is None when no padding was needed.
    """
    rng = np.random.default_rng(derive_seed(seed, "shuffle"))
    steps = -(-count // batch_size)
    padded = steps * batch_size
    indices = np.zeros((epochs, padded), dtype=np.int32)
    for epoch in range(epochs):
        indices[epoch, :count] = rng.permutation(count)
    if padded == count:
        return indices.ravel(), None
    weights = np.zeros((epochs, padded), dtype="float32")
    weights[:, : (steps - 1) * batch_size] = 1.0
    weights[:, (steps - 1) * batch_size: count] = batch_size / (count - (steps - 1) * batch_size)
    return indices.ravel(), weights.ravel()


def in_seeded_order(train: tuple[np.ndarray, np.ndarray], fit: FitSettings,
                    seed: int) -> dict:
    """`model.fit`'s data arguments for `fit.epochs` epochs of `train`, each epoch in its
    own shuffled order drawn from the trial's `seed`.

    Plain `fit(x, y, batch_size, epochs)` shuffles with Keras's own random generator;
    here every epoch's order is laid out in advance, exactly as `fit_side_by_side` lays
    it out, so that the plain code and the fast engine train on the same batches and
    can be checked against each other trial by trial. `steps_per_epoch` makes `fit` go
    on through the arrays epoch after epoch; the short last batch of an epoch is padded
    with entries of sample weight 0 (see `epoch_orders`).

    Example:
        model.fit(**in_seeded_order((x, y), fit, seed), epochs=fit.epochs)
    """
    x, y = train
    indices, weights = epoch_orders(len(y), fit.batch_size, fit.epochs, seed)
    return {"x": x[indices], "y": np.asarray(y)[indices], "sample_weight": weights,
            "batch_size": fit.batch_size, "steps_per_epoch": -(-len(y) // fit.batch_size),
            "shuffle": False}

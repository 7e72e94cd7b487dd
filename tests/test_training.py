"""Side-by-side training equals training alone; cached features equal the whole model."""

import numpy as np
import pytest

import tl_mnist
from common import engine
from common.engine import trials
from common.engine.side_by_side import fit_side_by_side
from common.lesson import data
from common.lesson.orders import epoch_orders
from common.lesson.settings import FitSettings
from conftest import synthetic_digits


def small_sets(count: int, seeds) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` images of digits 0..4 per trial, each trial its own draw."""
    x, y = synthetic_digits(30, seed=5)
    x, y = x[y < 5, ..., None].astype("float32") / 255, y[y < 5].astype(np.int64)
    return list(data.small_sets((x, y), count, seeds).values())


def assert_same_weights(first, second, atol=0.0):
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)


def test_epoch_orders_visit_every_example_once_per_epoch():
    indices, weights = epoch_orders(10, batch_size=4, epochs=3, seed=0)
    assert indices.shape == weights.shape == (3 * 12,)
    for epoch in range(3):
        assert sorted(indices[epoch * 12:epoch * 12 + 10]) == list(range(10))
        # the short last batch (2 real examples) is weighted so its loss is their mean
        np.testing.assert_allclose(weights[epoch * 12 + 8:epoch * 12 + 12], [2, 2, 0, 0])
    assert not np.array_equal(indices[:10], indices[12:22])


def test_epoch_orders_need_no_weights_when_batches_divide_evenly():
    indices, weights = epoch_orders(100, batch_size=4, epochs=2, seed=1)
    assert weights is None and len(indices) == 200


def test_a_trial_learns_the_same_alone_or_beside_others():
    seeds = [11, 12, 13]
    sets = small_sets(20, seeds)
    alone = tl_mnist.lecture_cnn(5, seed=12)
    fit_side_by_side([alone], [sets[1][0]], [sets[1][1]], [12], FitSettings(epochs=3, batch_size=4))
    together = [tl_mnist.lecture_cnn(5, seed=seed) for seed in seeds]
    fit_side_by_side(together, [x for x, _ in sets], [y for _, y in sets], seeds,
                     FitSettings(epochs=3, batch_size=4))
    assert_same_weights(alone, together[1], atol=1e-5)
    assert not np.allclose(together[0].get_weights()[0], together[1].get_weights()[0])


def test_same_seeds_reproduce_a_run_exactly():
    seeds = [0, 1]
    runs = []
    for _ in range(2):
        sets = small_sets(15, seeds)
        built = [tl_mnist.lecture_cnn(5, seed=seed) for seed in seeds]
        runs.append(engine.train_trials(dict(zip(seeds, built)), dict(zip(seeds, sets)),
                                        sets[0], FitSettings(epochs=2, batch_size=4),
                                        label="run"))
        runs.append(built)
    assert runs[0] == runs[2]
    for first, second in zip(runs[1], runs[3]):
        assert_same_weights(first, second)


@pytest.mark.parametrize("batch_size", [4, 7])
def test_training_heads_on_cached_features_equals_training_whole_models(batch_size, capsys):
    """The speed-up for transfer: `train_trials` computes the features of the shared
    frozen layers once and trains the heads on them; the result is whole-model training's."""
    seeds = [21, 22]
    sets = small_sets(20, seeds)
    test = sets[0]
    fit = FitSettings(epochs=4, batch_size=batch_size)
    base = tl_mnist.lecture_cnn(5, seed=99)
    fit_side_by_side([base], [sets[1][0]], [sets[1][1]], [99], FitSettings(epochs=2, batch_size=4))
    whole = [tl_mnist.transfer_model(base, 5, seed) for seed in seeds]
    cached = [tl_mnist.transfer_model(base, 5, seed) for seed in seeds]

    # the whole models side by side, no features cached (the engine's inner step)
    whole_records = trials.train_and_score(whole, sets, test, seeds, fit, validate=False,
                                           label="whole")
    capsys.readouterr()
    cached_records = [record for _, record in engine.train_trials(
        dict(zip(seeds, cached)), dict(zip(seeds, sets)), test, fit, label="cached")]
    assert "features of the frozen layers" in capsys.readouterr().out  # it did cache
    for a, b in zip(whole, cached):
        assert_same_weights(a, b, atol=1e-5)
    assert whole_records == cached_records
    # Dropout really was active while training: without it the weights would differ
    no_dropout = tl_mnist.transfer_model(base, 5, seeds[0])
    no_dropout.get_layer("dropout").rate = 0.0
    engine.train_trials({seeds[0]: no_dropout}, {seeds[0]: sets[0]}, test, fit,
                        label="no dropout")
    assert not np.allclose(no_dropout.get_layer("output").get_weights()[0],
                           whole[0].get_layer("output").get_weights()[0], atol=1e-4)

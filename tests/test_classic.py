"""common.lesson.classic: a logistic regression or linear SVM on frozen features, per trial."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from common.lesson import classic

KINDS = list(classic.CLASSIC_HEADS)


def features(rng: np.random.Generator, labels: np.ndarray, centres: np.ndarray,
             spread: float = 1.0, shift: float = 0.0) -> np.ndarray:
    """ReLU-like features (n, 4, 4, d / 16) around each label's centre, as a body gives."""
    raw = centres[labels] + spread * rng.normal(size=(len(labels), centres.shape[1])) + shift
    return np.maximum(raw, 0).astype("float32").reshape(len(labels), 4, 4, -1)


def separable(seed: int, per_class: int, classes: int = 5, dimensions: int = 512):
    """Training sets of 3 trials and a test set whose classes lie far apart."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dimensions)) * 3
    labels = [np.arange(per_class * classes) % classes for _ in range(4)]
    sets = [(features(rng, y, centres), y) for y in labels]
    return sets[:3], sets[3]


@pytest.mark.parametrize("kind", KINDS)
def test_separable_features_are_classified_perfectly(kind):
    train_sets, test = separable(0, per_class=10)
    assert classic.classic_head_accuracies(kind, train_sets, test, [0, 1, 2]) == [1.0] * 3


@pytest.mark.parametrize("kind", KINDS)
def test_a_seed_reproduces_the_accuracies(kind):
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 512)) * 0.15  # overlapping classes: accuracies are not 100%
    labels = np.arange(60) % 3
    train_sets = [(features(rng, labels, centres), labels) for _ in range(2)]
    test = (features(rng, np.arange(300) % 3, centres), np.arange(300) % 3)
    first = classic.classic_head_accuracies(kind, train_sets, test, [5, 6])
    assert classic.classic_head_accuracies(kind, train_sets, test, [5, 6]) == first
    assert all(1 / 3 < accuracy < 1 for accuracy in first), first


def test_an_unknown_kind_names_the_valid_ones():
    train_sets, test = separable(0, per_class=2)
    with pytest.raises(ValueError, match="'svm'.*logreg, linear_svm"):
        classic.classic_head_accuracies("svm", train_sets, test, [0, 1, 2])
    with pytest.raises(ValueError, match="3 training sets but 2 seeds"):
        classic.classic_head_accuracies("logreg", train_sets, test, [0, 1])


@pytest.mark.parametrize("kind", KINDS)
def test_the_scaler_is_fitted_on_the_training_features_only(kind):
    # Two classes at -1 and +1 in every feature (no ReLU here); the test set is shifted
    # by +3, ten times the size of the training set. Standardised with the training
    # statistics, every test image lands on class 1's side: 50%. A scaler fitted on the
    # test set, or on training and test together, would undo most of the shift: ~100%.
    rng = np.random.default_rng(2)
    y_train, y_test = np.arange(40) % 2, np.arange(400) % 2
    x_train = (2.0 * y_train - 1)[:, None] + 0.3 * rng.normal(size=(40, 64))
    x_test = (2.0 * y_test - 1)[:, None] + 0.3 * rng.normal(size=(400, 64)) + 3
    pipeline = classic.fit_classic_head(kind, x_train, y_train, seed=0)
    np.testing.assert_allclose(pipeline[0].mean_, x_train.mean(axis=0))
    np.testing.assert_allclose(pipeline[0].scale_, x_train.std(axis=0))
    assert classic.classic_head_accuracies(kind, [(x_train, y_train)], (x_test, y_test),
                                           [0]) == [0.5]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("count, dimensions", [(1000, 512), (250, 2048)])
def test_no_convergence_warning_on_realistic_features(kind, count, dimensions):
    """Ten overlapping classes of ReLU features, the sizes of the lecture's small sets."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(10, dimensions)) * 0.4 - 1
    labels = np.arange(count) % 10
    train = (features(rng, labels, centres, spread=2.0), labels)
    test = (features(rng, np.arange(500) % 10, centres, spread=2.0), np.arange(500) % 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        accuracy, = classic.classic_head_accuracies(kind, [train], test, [0])
    assert 0.3 < accuracy <= 1.0  # it learned something (chance: 10%)

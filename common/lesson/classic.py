"""A classic classifier on the pretrained network's features, instead of a new Dense head.

The lecture lists it as one way to transfer: run the frozen body once, then fit a
linear classifier (logistic regression, or a linear SVM) on its features. Each trial
standardises its own training features (a StandardScaler fitted on them alone, so the
test set never leaks into training) and fits the classifier seeded with its seed.

Usage (what `common.engine.classic_trials` does):
    body, _ = trials.shared_body(models)                  # the models' frozen front
    feature_sets, test_features = trials.features_of(body, train_sets, test)
    accuracies = classic_head_accuracies("logreg", feature_sets, test_features, seeds)
"""

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

# What each kind fits, for printing beside the results.
CLASSIC_HEADS = {"logreg": "StandardScaler -> LogisticRegression",
                 "linear_svm": "StandardScaler -> LinearSVC"}

# Iteration limits, far above what ~100–1,000 standardised samples of 512–2,048
# features needed on synthetic tests here (lbfgs: under 40 iterations; liblinear's dual
# solver: under 500; 2-core AMD EPYC, scikit-learn 1.x), so a run never stops early
# with a ConvergenceWarning.
LOGREG_MAX_ITER = 5_000
SVM_MAX_ITER = 10_000


def check_kind(kind: str) -> None:
    """Raises ValueError, naming the valid kinds, unless `kind` is one of `CLASSIC_HEADS`."""
    if kind not in CLASSIC_HEADS:
        raise ValueError(f"unknown classic classifier {kind!r}: use one of "
                         f"{', '.join(CLASSIC_HEADS)}")


def classic_head(kind: str, seed: int) -> Pipeline:
    """An unfitted StandardScaler -> classifier pipeline of the given kind.

    Both classifiers keep scikit-learn's default regularisation (C = 1). The linear
    SVM solves the dual problem: with no more samples than a few times the features,
    as here, it converged in about 2 s where the primal solver took 30–450 s (1,000
    samples of 512 features, 2-core AMD EPYC).

    Args:
        kind: "logreg" (LogisticRegression, multinomial, lbfgs) or "linear_svm"
            (LinearSVC, one-vs-rest, squared hinge loss).
        seed: the trial's seed, the classifier's `random_state` (LinearSVC shuffles
            its coordinates with it; lbfgs is deterministic and does not use it).

    Returns:
        The pipeline, ready for `fit(features, labels)` on flattened features.

    Raises:
        ValueError: an unknown kind.
    """
    check_kind(kind)
    classifier = (LogisticRegression(max_iter=LOGREG_MAX_ITER, random_state=seed)
                  if kind == "logreg"
                  else LinearSVC(dual=True, max_iter=SVM_MAX_ITER, random_state=seed))
    return make_pipeline(StandardScaler(), classifier)


def flatten(features: np.ndarray) -> np.ndarray:
    """(n, ...) features -> (n, d), one row per image."""
    return np.asarray(features).reshape(len(features), -1)


def fit_classic_head(kind: str, features: np.ndarray, labels: np.ndarray, seed: int) -> Pipeline:
    """`classic_head(kind, seed)` fitted on one trial's training features.

    Args:
        kind: see `classic_head`.
        features: the frozen body's output for the trial's training images, (n, ...).
        labels: their class indices, (n,).
        seed: the trial's seed.

    Returns:
        The fitted pipeline; its scaler holds the training features' mean and scale.

    Raises:
        ValueError: an unknown kind, or features and labels of different lengths.
    """
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels: pass one "
                         "label per image")
    return classic_head(kind, seed).fit(flatten(features), np.asarray(labels))


def classic_head_accuracies(kind: str, train_sets: Sequence[tuple[np.ndarray, np.ndarray]],
                            test: tuple[np.ndarray, np.ndarray],
                            seeds: Sequence[int]) -> list[float]:
    """Fits one classic classifier per trial on its features and tests it.

    Args:
        kind: "logreg" or "linear_svm" (see `CLASSIC_HEADS`).
        train_sets: each trial's (features, labels) of its small training set.
        test: (features, labels) of the test set, the same for every trial.
        seeds: each trial's seed, in the order of `train_sets`.

    Returns:
        Each trial's test accuracy, as a fraction.

    Raises:
        ValueError: an unknown kind, or not one seed per training set.
    """
    check_kind(kind)
    if len(train_sets) != len(seeds):
        raise ValueError(f"{len(train_sets)} training sets but {len(seeds)} seeds: pass one "
                         "seed per trial")
    test_features, test_labels = flatten(test[0]), np.asarray(test[1])
    return [float(np.mean(fit_classic_head(kind, features, labels, seed).predict(test_features)
                          == test_labels))
            for (features, labels), seed in zip(train_sets, seeds)]

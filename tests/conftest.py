"""Shared fixtures: small synthetic digit images, made here; no network, no dataset files."""

import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from common import startup  # noqa: E402

startup.prepare_tensorflow()  # before any test module imports keras


def synthetic_digits(per_class: int, seed: int, shape=(28, 28)) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images where digit d is a bright 6x6 square at a place of its own, plus noise.

    Easy enough that a few epochs learn it, so training tests see real learning.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_class)
    images = rng.integers(0, 60, size=(len(labels), *shape), dtype=np.uint8)
    for index, digit in enumerate(labels):
        row, col = 2 + 5 * (digit // 4), 2 + 6 * (digit % 4)
        images[index, row:row + 6, col:col + 6] = 255
    order = rng.permutation(len(labels))
    return images[order], labels[order].astype(np.uint8)


@pytest.fixture(scope="session")
def mnist_like_npz(tmp_path_factory) -> str:
    """An .npz in Keras's mnist.npz layout: 40 training and 12 test images per digit."""
    path = tmp_path_factory.mktemp("data") / "mnist_like.npz"
    x_train, y_train = synthetic_digits(40, seed=1)
    x_test, y_test = synthetic_digits(12, seed=2)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return str(path)


NEEDS_STACKING_REASON = ("this CPU's TensorFlow cannot train grouped convolutions (oneDNN off, "
                         "e.g. AVX2-only CPUs): the engine uses branches here")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs_stacking: the test needs stacked trials (grouped convolutions that "
                   "train); skipped where common.engine.stacked.grouped_conv_trains() is False")


def pytest_runtest_setup(item):
    """Skips `needs_stacking` tests where the engine falls back to branches.

    The probe is the engine's own, `common.engine.stacked.grouped_conv_trains` (cached), and runs
    only when a marked test is about to run: not at collection, not for other tests."""
    if item.get_closest_marker("needs_stacking") is None:
        return
    from common.engine import stacked

    if not stacked.grouped_conv_trains():
        pytest.skip(NEEDS_STACKING_REASON)


@pytest.fixture(scope="session")
def cifar_like_npz(tmp_path_factory) -> str:
    """An .npz in Keras's CIFAR-10 layout: 8 training and 5 test images per class, 32x32x3."""
    path = tmp_path_factory.mktemp("cifar") / "cifar_like.npz"
    arrays = {}
    for split, per_class, seed in (("train", 8, 3), ("test", 5, 4)):
        x, y = synthetic_digits(per_class, seed, shape=(32, 32))
        arrays[f"x_{split}"], arrays[f"y_{split}"] = np.repeat(x[..., None], 3, axis=-1), y
    np.savez(path, **arrays)
    return str(path)

"""Each script, given a data file that cannot serve its experiment, stops before any
training: one line on stderr naming the file, exit status 2, no model saved."""

import os

import numpy as np
import pytest

import cifar_vgg
import tl_mnist
from common.lesson import data
from common.runs import cli
from conftest import synthetic_digits


def write(path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def mnist_file(path, **changes) -> str:
    """A valid synthetic mnist.npz (5 images per digit in each split), some arrays changed."""
    x, y = synthetic_digits(5, seed=0)
    return write(path, **{"x_train": x, "y_train": y, "x_test": x, "y_test": y, **changes})


def cifar_file(path, **changes) -> str:
    """A valid synthetic CIFAR-10 .npz (3 images per class in each split), some changed."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10, dtype=np.uint8), 3)[:, None]  # Keras's (n, 1) labels
    x = rng.integers(0, 256, (len(y), 32, 32, 3), dtype=np.uint8)
    return write(path, **{"x_train": x, "y_train": y, "x_test": x, "y_test": y, **changes})


def with_nan(images: np.ndarray, count: int) -> np.ndarray:
    unit = data.to_unit_float(images)
    unit[:count, 0, 0] = np.nan
    return unit


def odd_digits_removed(split: str) -> dict:
    x, y = synthetic_digits(5, seed=0)
    even = np.isin(y, data.EVEN_DIGITS)
    return {f"x_{split}": x[even], f"y_{split}": y[even]}


def files_in(folder) -> list[str]:
    """Every file under `folder` (none when it does not exist)."""
    return [name for _, _, names in os.walk(folder) for name in names]


MNIST_CASES = {
    "empty": (dict(x_train=np.zeros((0, 28, 28), np.uint8), y_train=np.zeros(0, np.uint8)),
              "(train images): no images"),
    "no_odd_train": (odd_digits_removed("train"),
                     "(train labels): no images of classes 1, 3, 5, 7, 9"),
    "no_odd_test": (odd_digits_removed("test"),
                    "(test labels): no images of classes 1, 3, 5, 7, 9"),
    "nan": (dict(x_test=with_nan(synthetic_digits(5, seed=0)[0], 3)),
            "(test images): 3 images have NaN or infinite pixels"),
    "out_of_range": (dict(x_train=synthetic_digits(5, seed=0)[0].astype(np.float32)),
                     "(train images): float images must lie in [0, 1] (found 0..255)"),
}


@pytest.mark.parametrize("case", MNIST_CASES)
def test_tl_mnist_refuses_bad_data_before_training(case, tmp_path, capsys):
    changes, message = MNIST_CASES[case]
    path = mnist_file(tmp_path / f"{case}.npz", **changes)
    models = tmp_path / "models"
    config = cli.parse_config(tl_mnist.Config, ["--data", path, "--quick", "--models-dir",
                                                str(models), "--out", str(tmp_path / "out")],
                              "", tl_mnist.QUICK)
    status = cli.run_script(tl_mnist.main, config, "tl_mnist.py")
    error = capsys.readouterr().err
    assert status == 2, error
    assert error.count("\n") == 1 and "Traceback" not in error, error
    assert error.startswith(f"tl_mnist.py: error: --data {path} {message}"), error
    assert files_in(models) == [] and files_in(tmp_path / "out") == []


def cifar_images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


CIFAR_CASES = {
    "no_truck": (dict(x_train=cifar_images(27, seed=1),
                      y_train=np.repeat(np.arange(9, dtype=np.uint8), 3)),  # no 9: truck
                 "(train labels): no images of class truck;"),
    "nan": (dict(x_train=with_nan(cifar_images(30, seed=1), 1)),
            "(train images): 1 image has NaN or infinite pixels"),
    "empty_test": (dict(x_test=np.zeros((0, 32, 32, 3), np.uint8),
                        y_test=np.zeros((0, 1), np.uint8)), "(test images): no images"),
}


@pytest.mark.parametrize("case", CIFAR_CASES)
def test_cifar_vgg_refuses_bad_data_before_training(case, tmp_path, capsys):
    changes, message = CIFAR_CASES[case]
    path = cifar_file(tmp_path / f"{case}.npz", **changes)
    out = tmp_path / "out"
    config = cli.parse_config(cifar_vgg.Config, ["--data", path, "--quick", "--weights", "none",
                                                 "--out", str(out)], "", cifar_vgg.QUICK)
    status = cli.run_script(cifar_vgg.main, config, "cifar_vgg.py")
    error = capsys.readouterr().err
    assert status == 2, error
    assert error.count("\n") == 1 and "Traceback" not in error, error
    assert error.startswith(f"cifar_vgg.py: error: --data {path} {message}"), error
    assert files_in(out) == []

"""Data: loading and its errors, class splits, stratified samples, padding."""

import os

import numpy as np
import pytest

from common.lesson import data
from common.errors import UserInputError
from conftest import synthetic_digits


def test_select_classes_keeps_only_those_classes_and_renumbers_them():
    x, y = synthetic_digits(5, seed=0)
    x_odd, y_odd = data.select_classes(x, y, (1, 3, 5, 7, 9))
    assert len(y_odd) == 25
    assert sorted(np.unique(y_odd)) == [0, 1, 2, 3, 4]
    for digit, label in zip((1, 3, 5, 7, 9), range(5)):
        np.testing.assert_array_equal(np.sort(x_odd[y_odd == label].ravel()),
                                      np.sort(x[y == digit].ravel()))


def test_stratified_sample_draws_per_class_without_replacement():
    labels = np.repeat(np.arange(5), 30)
    chosen = data.stratified_sample(labels, 20, np.random.default_rng(0))
    assert len(chosen) == 100 and len(set(chosen)) == 100
    assert np.bincount(labels[chosen]).tolist() == [20] * 5


def test_stratified_sample_depends_on_the_seed_only():
    labels = np.repeat(np.arange(5), 30)
    first = data.stratified_sample(labels, 20, np.random.default_rng(7))
    again = data.stratified_sample(labels, 20, np.random.default_rng(7))
    other = data.stratified_sample(labels, 20, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert set(first) != set(other)


def test_stratified_sample_names_the_class_that_is_too_small():
    labels = np.array([0] * 30 + [1] * 3)
    with pytest.raises(UserInputError, match="class 3 has only 3 images.*--small-size"):
        data.stratified_sample(labels, 20, np.random.default_rng(0), ["1", "3"])


def test_to_unit_float_scales_uint8_to_0_1():
    x = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    np.testing.assert_allclose(data.to_unit_float(x), [[0, 1], [0.2, 0.4]], rtol=1e-6)


def test_pad_and_repeat_matches_numpy():
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    padded = data.pad_and_repeat(x)
    expected = np.repeat(np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))), 3, axis=-1)
    assert padded.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(padded, expected)


def save(path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def keras_layout(**changes) -> dict:
    x, y = synthetic_digits(3, seed=0)
    return {"x_train": x, "y_train": y, "x_test": x, "y_test": y, **changes}


def test_load_npz_reads_keras_layout_and_adds_a_channel(tmp_path):
    x_train, y_train, x_test, y_test = data.load_npz(save(tmp_path / "d.npz", **keras_layout()),
                                                     data.MNIST_SHAPE)
    assert x_train.shape == (30, 28, 28, 1) and y_train.dtype == np.int64


def test_load_npz_reads_the_lectures_cifar_layout_with_column_labels(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    y = np.array([[9], [0], [1], [2], [3], [4], [5], [6], [7], [8]], dtype=np.uint8)
    path = save(tmp_path / "c.npz", training_inputs=x, training_labels=y, test_inputs=x,
                test_labels=y)
    _, y_train, _, _ = data.load_npz(path, data.CIFAR10_SHAPE, data.CIFAR10_CLASSES)
    assert y_train.tolist() == [9, 0, 1, 2, 3, 4, 5, 6, 7, 8]


@pytest.mark.parametrize("arrays, message", [
    (keras_layout(y_test=None), "has keys .* expected x_train"),
    (keras_layout(x_train=np.zeros((30, 32, 32), np.uint8)), r"shape \(30, 32, 32\), expected"),
    (keras_layout(x_train=np.zeros((30, 28, 28), np.int32)), "dtype int32, expected uint8"),
    (keras_layout(x_train=np.full((30, 28, 28), 3.0)), r"must lie in \[0, 1\]"),
    (keras_layout(y_train=np.full(30, 10)), r"labels must lie in 0..9"),
    (keras_layout(y_train=np.zeros(29, np.uint8)), "29 labels for 30 images"),
    (keras_layout(y_train=np.zeros(30, np.float32)), "expected integers"),
    # Task A: files that are well-formed but cannot serve the experiment.
    (keras_layout(x_train=np.zeros((0, 28, 28), np.uint8), y_train=np.zeros(0, np.uint8)),
     r"\(train images\): no images \(an empty array of shape \(0, 28, 28\)\)"),
    (keras_layout(x_test=np.zeros(0, np.uint8), y_test=np.zeros(0, np.uint8)),
     r"\(test images\): no images .*both the training and the test"),
    (keras_layout(x_train=synthetic_digits(3, seed=0)[0] / np.float32(0.5)),
     r"must lie in \[0, 1\] \(found 0..510\)"),
    (keras_layout(x_train=np.full((30, 28, 28), -0.5, np.float32)), r"must lie in \[0, 1\]"),
    (keras_layout(x_train=np.ones((30, 28, 28), np.uint8)),
     r"uint8 pixels only reach 1 \(of 255\).*cast to uint8"),
    (keras_layout(x_test=np.zeros((30, 28, 28), np.uint8)), r"\(test images\): uint8 pixels only"),
    (keras_layout(x_train=synthetic_digits(3, seed=0)[0] / np.float32(255 * 255)),
     r"float pixels only reach .* divided by 255 twice"),
    (keras_layout(x_train=np.zeros((30, 28, 28), np.complex64)), "dtype complex64"),
    (keras_layout(y_train=np.eye(10, dtype=np.uint8)[synthetic_digits(3, seed=0)[1]]),
     r"shape \(30, 10\).*look one-hot: store y.argmax\(axis=1\)"),
    (keras_layout(y_train=synthetic_digits(3, seed=0)[1].astype(np.float32)),
     r"dtype float32, expected integers.*y.astype\('uint8'\)"),
    (keras_layout(y_train=synthetic_digits(3, seed=0)[1] + np.float32(0.5)),
     "not whole numbers"),
    (keras_layout(y_train=np.full(30, -1, np.int64)), r"labels must lie in 0..9, found -1..-1"),
])
def test_load_npz_rejects_malformed_files(tmp_path, arrays, message):
    path = save(tmp_path / "bad.npz", **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(UserInputError, match=message):
        data.load_npz(path, data.MNIST_SHAPE)


def test_load_npz_errors_for_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data .*nothing.npz: no such file"):
        data.load_npz(str(tmp_path / "nothing.npz"), data.MNIST_SHAPE)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not an npz file")
    with pytest.raises(UserInputError, match="not a readable .npz"):
        data.load_npz(str(garbage), data.MNIST_SHAPE)


def test_digits_fallback_looks_like_mnist():
    digits = data.load_digits_as_mnist()
    assert digits.x_train.shape[1:] == (28, 28, 1) and digits.x_train.dtype == np.uint8
    assert len(digits.y_train) + len(digits.y_test) == 1797
    assert set(digits.y_train) == set(digits.y_test) == set(range(10))
    assert digits.x_train[:, :4].max() == 0  # the 4-pixel frame MNIST leaves empty
    again = data.load_digits_as_mnist()
    np.testing.assert_array_equal(digits.y_test, again.y_test)


def offline_loader():
    raise Exception("URL fetch failure on https://example.invalid/mnist.npz: None")


def test_auto_falls_back_to_digits_when_mnist_cannot_be_had(monkeypatch, tmp_path):
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline_loader)
    dataset = data.load_mnist(None, "auto")
    assert dataset.name == "digits" and "MNIST is not available" in dataset.warning


def test_dataset_mnist_never_falls_back(monkeypatch, tmp_path):
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline_loader)
    with pytest.raises(UserInputError, match="could not be downloaded.*--data PATH"):
        data.load_mnist(None, "mnist")


def test_data_and_dataset_digits_exclude_each_other(mnist_like_npz):
    with pytest.raises(UserInputError, match="exclude each other"):
        data.load_mnist(mnist_like_npz, "digits")


def with_nan(images: np.ndarray, indices, value=np.nan) -> np.ndarray:
    """`images` as floats in [0, 1], with one pixel of each of `indices` set to `value`."""
    unit = data.to_unit_float(images)
    unit[list(indices), 3, 4] = value
    return unit


def test_nan_and_infinite_pixels_are_counted_and_named(tmp_path):
    x, y = synthetic_digits(3, seed=0)
    path = save(tmp_path / "nan.npz", **keras_layout(x_test=with_nan(x, [5, 7, 9])))
    with pytest.raises(UserInputError) as error:
        data.load_npz(path, data.MNIST_SHAPE)
    assert str(error.value).startswith(f"--data {path} (test images): 3 images have NaN or "
                                       "infinite pixels (the first: image 5); drop those")
    path = save(tmp_path / "inf.npz", **keras_layout(x_train=with_nan(x, [2], np.inf)))
    with pytest.raises(UserInputError, match=r"\(train images\): 1 image has NaN or infinite"):
        data.load_npz(path, data.MNIST_SHAPE)
    clean = save(tmp_path / "clean.npz", **keras_layout(x_train=with_nan(x, [], 0.0)))
    assert data.load_npz(clean, data.MNIST_SHAPE)[0].dtype == np.float32


def without(images: np.ndarray, labels: np.ndarray, classes) -> tuple[np.ndarray, np.ndarray]:
    keep = ~np.isin(labels, classes)
    return images[keep], labels[keep]


@pytest.mark.parametrize("split, missing, message", [
    ("train", data.ODD_DIGITS, "(train labels): no images of classes 1, 3, 5, 7, 9; the "
                               "experiments need all ten digits"),
    ("test", data.ODD_DIGITS, "(test labels): no images of classes 1, 3, 5, 7, 9"),
    ("train", data.EVEN_DIGITS, "(train labels): no images of classes 0, 2, 4, 6, 8"),
    ("test", (7,), "(test labels): no images of class 7; the experiments need all ten digits "
                   "(the big task 0,2,4,6,8, the small task 1,3,5,7,9) in both the training "
                   "and the test set: pass the complete dataset file"),
], ids=["no_odd_train", "no_odd_test", "no_even_train", "no_7_test"])
def test_mnist_without_some_digit_in_a_split_is_refused(tmp_path, split, missing, message):
    x, y = without(*synthetic_digits(3, seed=0), missing)
    path = save(tmp_path / "part.npz", **keras_layout(**{f"x_{split}": x, f"y_{split}": y}))
    with pytest.raises(UserInputError) as error:
        data.load_mnist(path, "mnist")
    assert str(error.value).startswith(f"--data {path} {message}")


def test_cifar_without_a_class_names_it(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    y = np.repeat(np.arange(10, dtype=np.uint8), 3)
    x_test, y_test = without(x, y, [3, 5])
    path = save(tmp_path / "c.npz", x_train=x, y_train=y, x_test=x_test, y_test=y_test)
    with pytest.raises(UserInputError) as error:
        data.load_cifar10(path)
    assert str(error.value) == (f"--data {path} (test labels): no images of classes cat, dog; "
                                "the experiment trains and tests on all ten classes: pass the "
                                "complete dataset file")


def test_keras_loader_output_is_checked_too(monkeypatch, tmp_path):
    import keras

    x, y = synthetic_digits(2, seed=0)
    x_test, y_test = without(x, y, [9])
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: ((x, y), (x_test, y_test)))
    with pytest.raises(UserInputError, match="^Keras's mnist.npz \\(test labels\\): no images "
                                             "of class 9;"):
        data.load_mnist(None, "auto")


def test_check_labels_accepts_every_class_and_returns_int64():
    labels = data.check_labels(np.arange(10, dtype=np.uint8)[:, None], "here", 10,
                               data.CIFAR10_CLASSES)
    assert labels.dtype == np.int64 and labels.tolist() == list(range(10))
    with pytest.raises(UserInputError, match="^here: no images of class truck;"):
        data.check_labels(np.arange(9), "here", 9, data.CIFAR10_CLASSES)


def offline_cifar(monkeypatch, tmp_path) -> None:
    import keras

    def fail():
        raise Exception("URL fetch failure on https://example.invalid/cifar-10.tar.gz: None")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fail)


def test_quick_cifar_offline_uses_the_shipped_real_sample(monkeypatch, tmp_path):
    offline_cifar(monkeypatch, tmp_path)
    dataset = data.load_cifar10(None, quick=True)
    assert dataset.name == "cifar10-sample" and dataset.source == data.CIFAR10_SAMPLE
    assert dataset.source.endswith(os.path.join("common", "lesson", "cifar10_quick.npz"))
    assert "CIFAR-10 is not available" in dataset.warning
    assert "200-image CIFAR-10 sample shipped for --quick" in dataset.warning
    assert "not the lecture's data" in dataset.warning
    assert dataset.x_train.shape == (200, 32, 32, 3) and dataset.x_train.dtype == np.uint8
    assert dataset.x_test.shape == (1000, 32, 32, 3) and dataset.x_test.dtype == np.uint8
    assert np.bincount(dataset.y_train).tolist() == [20] * 10
    assert np.bincount(dataset.y_test).tolist() == [100] * 10
    # Real photographs, not noise: neighbouring pixels agree far more than random ones.
    pixels = dataset.x_test.astype(np.float32)
    assert np.abs(np.diff(pixels, axis=2)).mean() < 30
    assert dataset.describe()["train_images"] == 200


def test_cifar_offline_without_quick_still_asks_for_data(monkeypatch, tmp_path):
    offline_cifar(monkeypatch, tmp_path)
    with pytest.raises(UserInputError, match="could not be downloaded.*Pass --data PATH to an "
                                             ".npz of CIFAR-10.*connect to the internet once"):
        data.load_cifar10(None)


def test_the_shipped_sample_is_in_keras_layout_as_the_make_script_writes_it():
    with np.load(data.CIFAR10_SAMPLE, allow_pickle=False) as sample:
        assert sorted(sample.files) == sorted(data.KERAS_KEYS)
        shapes = {key: (sample[key].shape, sample[key].dtype) for key in sample.files}
    assert shapes == {"x_train": ((200, 32, 32, 3), np.uint8), "y_train": ((200,), np.uint8),
                      "x_test": ((1000, 32, 32, 3), np.uint8), "y_test": ((1000,), np.uint8)}

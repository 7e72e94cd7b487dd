"""Data: loading and its errors, class splits, stratified samples, padding."""

import numpy as np
import pytest

from common import data
from common.cli import UserInputError
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
    x = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    y = np.array([[0], [1], [2], [9]], dtype=np.uint8)
    path = save(tmp_path / "c.npz", training_inputs=x, training_labels=y, test_inputs=x,
                test_labels=y)
    _, y_train, _, _ = data.load_npz(path, data.CIFAR10_SHAPE)
    assert y_train.tolist() == [0, 1, 2, 9]


@pytest.mark.parametrize("arrays, message", [
    (keras_layout(y_test=None), "has keys .* expected x_train"),
    (keras_layout(x_train=np.zeros((30, 32, 32), np.uint8)), r"shape \(30, 32, 32\), expected"),
    (keras_layout(x_train=np.zeros((30, 28, 28), np.int32)), "dtype int32, expected uint8"),
    (keras_layout(x_train=np.full((30, 28, 28), 3.0)), r"must lie in \[0, 1\]"),
    (keras_layout(y_train=np.full(30, 10)), r"labels must lie in 0..9"),
    (keras_layout(y_train=np.zeros(29, np.uint8)), "29 labels for 30 images"),
    (keras_layout(y_train=np.zeros(30, np.float32)), "expected integers"),
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

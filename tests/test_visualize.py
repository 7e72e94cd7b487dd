"""visualize.py: feature maps checked against the layers themselves, its files, its errors.

Synthetic data only (conftest's digits, coloured 32x32x3 images), VGG16 with random
weights, nothing downloaded; one subprocess run of --quick, the rest in-process.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import keras
from keras import layers

import mnist_vgg
import tl_mnist
import visualize
from common.lesson import bases, data, saved_models
from common.runs import cli
from conftest import ROOT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = ("filters.png", "feature_maps.png", "activity.png")
# Every download fails at once: the proxy is a closed port on this machine.
OFFLINE = {name: "http://127.0.0.1:9" for name in ("http_proxy", "https_proxy",
                                                   "HTTP_PROXY", "HTTPS_PROXY")}


@pytest.fixture(scope="module")
def cnn_path(tmp_path_factory) -> str:
    """The lecture's CNN (untrained; its layers are what matters), saved as .keras."""
    path = str(tmp_path_factory.mktemp("models") / "cnn.keras")
    saved_models.save_model(tl_mnist.lecture_cnn(5, seed=3), path, {"config": {}})
    return path


@pytest.fixture(scope="module")
def cifar_like_npz(tmp_path_factory) -> str:
    """Keras's CIFAR-10 layout: 32x32x3 uint8 images, labels (n, 1); 20 test images."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "cifar_like.npz"
    images = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    labels = (np.arange(20) % 10).astype(np.uint8)[:, None]
    np.savez(path, x_train=images, y_train=labels, x_test=images, y_test=labels)
    return str(path)


def assert_files_written(out) -> dict:
    for name in PLOTS:
        with open(os.path.join(out, name), "rb") as file:
            assert file.read(8) == PNG_SIGNATURE, name
    with open(os.path.join(out, "visualize.json")) as file:
        return json.load(file)


def test_mosaic_places_each_tile_in_rows_with_gaps():
    tiles = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    grid = visualize.mosaic(tiles, columns=3)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2)  # two rows of three, 1-pixel gaps
    np.testing.assert_array_equal(grid[0:2, 4:7], tiles[1])
    np.testing.assert_array_equal(grid[3:5, 4:7], tiles[4])
    assert np.isnan(grid[2]).all() and np.isnan(grid[:, 3]).all() and np.isnan(grid[3:, 8:]).all()


def test_feature_maps_are_the_conv_layers_outputs_and_activity_counts_them():
    model = tl_mnist.lecture_cnn(5, seed=1)
    images = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    maps = visualize.feature_maps(model, images)
    assert [layer.name for layer, _ in maps] == ["conv1", "conv2"]
    conv1 = model.get_layer("conv1")(images)
    conv2 = model.get_layer("conv2")(model.get_layer("pool1")(conv1))
    np.testing.assert_allclose(maps[0][1], keras.ops.convert_to_numpy(conv1), atol=1e-5)
    np.testing.assert_allclose(maps[1][1], keras.ops.convert_to_numpy(conv2), atol=1e-5)
    row = visualize.layer_activity(maps[1][0], maps[1][1])
    assert row["output_shape"] == [11, 11, 64] and row["kernel_shape"] == [3, 3, 32, 64]
    assert row["active_fraction"] == pytest.approx(np.mean(maps[1][1][0] > 0))
    assert row["active_fraction_mean"] == pytest.approx(np.mean(maps[1][1] > 0))
    assert row["active_channels"] == int(np.sum((maps[1][1][0] > 0).any(axis=(0, 1))))


def test_vgg16_nested_in_a_sequential_gives_the_same_maps_as_vgg16_alone():
    base = bases.pretrained_base("vgg16", "none")
    whole = mnist_vgg.transfer_model(base, "output", seed=0)  # Sequential: VGG16, Flatten, Dense
    images = bases.preprocess(np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3),
                                                              dtype=np.uint8), "vgg16")
    alone, nested = visualize.feature_maps(base, images), visualize.feature_maps(whole, images)
    assert len(nested) == len(alone) == 13 == len(visualize.conv_layers(whole))
    assert visualize.uses_vgg_input(whole) and not visualize.uses_vgg_input(tl_mnist.lecture_cnn(5))
    for (layer, maps), (same_layer, same_maps) in zip(alone, nested):
        assert layer is same_layer
        np.testing.assert_allclose(maps, same_maps, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lecture_cnn_writes_plots_and_json_naming_both_conv_layers(suffix, cnn_path,
                                                                   mnist_like_npz, tmp_path):
    path = cnn_path
    if suffix == ".h5":  # the lecture's own models are legacy .h5 files
        path = str(tmp_path / "cnn.h5")
        saved_models.load_model(cnn_path).save(path)
    out = tmp_path / "out"
    payload = visualize.main(visualize.Config(base_file=path, data=mnist_like_npz, out=str(out),
                                              image_index=5, max_maps=4))
    saved = assert_files_written(out)
    assert [(row["layer"], row["output_shape"]) for row in saved["layers"]] == [
        ("conv1", [26, 26, 32]), ("conv2", [11, 11, 64])]
    assert saved["config"]["image_index"] == 5 and saved["image"]["label"] in range(10)
    assert saved["dataset"]["name"] == "mnist" and saved["activity_images"] == 100
    assert all(0 <= row["active_fraction"] <= 1 for row in saved["layers"])
    assert payload["layers"] == saved["layers"]


def test_vgg16_with_random_weights_gives_13_conv_layers(cifar_like_npz, tmp_path, capsys):
    out = tmp_path / "out"
    visualize.main(visualize.Config(base="vgg16", weights="none", data=cifar_like_npz,
                                    out=str(out), image_index=19))
    saved = assert_files_written(out)
    assert len(saved["layers"]) == 13
    assert saved["layers"][0] == {**saved["layers"][0], "layer": "block1_conv1",
                                  "output_shape": [32, 32, 64], "kernel_shape": [3, 3, 3, 64]}
    assert saved["layers"][-1]["output_shape"] == [2, 2, 512]
    assert saved["model"]["weights"] == "random weights: not transfer"
    assert saved["dataset"]["name"] == "cifar10" and saved["image"]["name"] == "truck"
    assert saved["activity_images"] == 20  # the whole (small) test set
    assert "block5_conv3" in capsys.readouterr().out


def run_in_process(config: visualize.Config, capsys) -> tuple[int, str]:
    status = cli.run_script(visualize.main, config, "visualize.py")
    return status, capsys.readouterr().err


def assert_one_line(status: int, error: str, message: str) -> None:
    assert status == 2
    assert error.count("\n") == 1 and "Traceback" not in error, error
    assert message in error, (message, error)


def test_model_without_conv_layer_is_one_line(mnist_like_npz, tmp_path, capsys):
    path = str(tmp_path / "dense.keras")
    dense = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(5)])
    saved_models.save_model(dense, path, {})
    status, error = run_in_process(visualize.Config(base_file=path, data=mnist_like_npz,
                                                    out=str(tmp_path)), capsys)
    assert_one_line(status, error, "has no Conv2D layer (Flatten, Dense)")


def test_missing_model_is_one_line_naming_the_fix(tmp_path, capsys):
    missing = str(tmp_path / "mnist_5_15.keras")
    status, error = run_in_process(visualize.Config(base_file=missing, out=str(tmp_path)), capsys)
    assert_one_line(status, error, f"--base-file {missing}: no such file; run python tl_mnist.py")
    assert "--quick" in error


@pytest.mark.parametrize("config, message", [
    ({"image_index": 120}, "--image-index 120: the test set has 120 images; choose 0 to 119"),
    ({"image_index": -1}, "--image-index -1: the test set has 120 images"),
    ({"weights": "none"}, "--weights none: only with --base vgg16"),
    ({"dataset": "cifar10"}, "--dataset cifar10: the model takes 28x28x1 digits"),
])
def test_bad_choices_are_one_line(config, message, cnn_path, mnist_like_npz, tmp_path, capsys):
    status, error = run_in_process(visualize.Config(base_file=cnn_path, data=mnist_like_npz,
                                                    out=str(tmp_path), **config), capsys)
    assert_one_line(status, error, message)


def test_quick_run_trains_a_stand_in_and_writes_its_files(mnist_like_npz, tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "visualize.py"), "--quick", "--data", mnist_like_npz,
         "--out", "shown"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, **OFFLINE, "KERAS_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "training a STAND-IN now" in result.stdout and "conv2" in result.stdout
    saved = assert_files_written(tmp_path / "shown")
    assert saved["model"]["source"] == "stand-in trained now (--quick)"
    assert [row["layer"] for row in saved["layers"]] == ["conv1", "conv2"]


@pytest.mark.parametrize("dataset, quick, mode", [
    ("mnist", True, "mnist"), ("mnist", False, "mnist"), ("auto", False, "auto"),
    ("auto", True, "digits")])  # --quick never downloads
def test_dataset_mnist_means_mnist_or_fail(dataset, quick, mode, monkeypatch, tmp_path):
    """--dataset mnist never falls back to the digits, --quick or not (as in every script)."""
    asked = []
    monkeypatch.setattr(visualize.data, "load_mnist",
                        lambda path, how: asked.append(how) or data.load_digits_as_mnist())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty cache
    visualize.mnist_data.cache_clear()
    try:
        visualize.mnist_data(visualize.Config(dataset=dataset, quick=quick))
    finally:
        visualize.mnist_data.cache_clear()
    assert asked == [mode]

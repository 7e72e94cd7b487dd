"""Frozen VGG16 and its heads (common/bases.py), mnist_vgg.py and cifar_vgg.py.

VGG16 keeps random weights here (`weights="none"`): the pipeline is the same as with
ImageNet's, and nothing is downloaded. One VGG16 is built for the whole module; the
scripts run in subprocesses with KERAS_HOME in a temporary folder and an unreachable
proxy, so they can neither use a cache nor reach the network.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import keras
from keras import layers

import cifar_vgg
import mnist_vgg
from common import engine
from common.engine import side_by_side, trials
from common.lesson import bases, data
from common.runs import cli
from common.lesson.settings import FitSettings
from conftest import ROOT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Every download fails at once: the proxy is a closed port on this machine.
OFFLINE = {name: "http://127.0.0.1:9" for name in ("http_proxy", "https_proxy",
                                                   "HTTP_PROXY", "HTTPS_PROXY")}
EXPECTED_TRAINABLE = {"output": 2_565, "dropout": 2_565, "dense512": 265_221,
                      "dropout2": 265_221, "dense512_nodrop": 265_221}


@pytest.fixture(scope="module")
def base() -> keras.Model:
    """The one VGG16 of this module: random weights, frozen. Tests must not train it."""
    keras.utils.set_random_seed(0)
    return bases.pretrained_base("vgg16", "none")


def random_images(count: int, seed: int, shape=(32, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *shape), dtype=np.uint8)


def synthetic_cifar(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 32, 32, 3) images whose class sets their colour, plus noise; labels (n,)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_class)
    colours = np.array([[25 * c, 255 - 25 * c, (97 * c) % 256] for c in range(10)])
    noisy = colours[labels][:, None, None, :] + rng.integers(-30, 30, (len(labels), 32, 32, 3))
    order = rng.permutation(len(labels))
    return np.clip(noisy, 0, 255).astype(np.uint8)[order], labels[order].astype(np.uint8)


def write_cifar_npz(path, per_class=30, test_per_class=10, keys=data.KERAS_KEYS) -> str:
    x_train, y_train = synthetic_cifar(per_class, seed=1)
    x_test, y_test = synthetic_cifar(test_per_class, seed=2)
    np.savez(path, **dict(zip(keys, (x_train, y_train[:, None], x_test, y_test[:, None]))))
    return str(path)


def run_script(script: str, *args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], cwd=str(cwd),
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **OFFLINE, "no_proxy": "", "NO_PROXY": "",
                               "KERAS_HOME": str(cwd)})


def trainable_count(model: keras.Model) -> int:
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


def head_weights(model: keras.Model) -> list[np.ndarray]:
    """The weights of every layer after the frozen VGG16."""
    return [w for layer in model.layers[1:] for w in layer.get_weights()]


# --- data --------------------------------------------------------------------------

def test_pad_and_repeat_pads_mnist_to_vgg16_input_and_repeats_the_channel():
    x = random_images(4, seed=0, shape=(28, 28, 1))
    out = data.pad_and_repeat(x)
    assert out.shape == (4, 32, 32, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.repeat(np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))),
                                                 3, axis=-1))
    for channel in range(3):
        np.testing.assert_array_equal(out[:, 2:30, 2:30, channel], x[..., 0])
    assert not out[:, :2].any() and not out[:, 30:].any()
    assert not out[:, :, :2].any() and not out[:, :, 30:].any()


@pytest.mark.parametrize("keys", [data.KERAS_KEYS, data.LECTURE_KEYS],
                         ids=["keras_layout", "lecture_layout"])
def test_cifar_npz_loads_in_both_layouts_with_flat_labels(keys, tmp_path):
    path = write_cifar_npz(tmp_path / "cifar.npz", per_class=3, test_per_class=2, keys=keys)
    dataset = data.load_cifar10(path)
    x_train, y_train = synthetic_cifar(3, seed=1)
    assert dataset.name == "cifar10" and dataset.source == os.path.abspath(path)
    assert dataset.x_train.shape == (30, 32, 32, 3) and dataset.x_test.shape == (20, 32, 32, 3)
    assert dataset.y_train.shape == (30,) and dataset.y_test.shape == (20,)
    assert dataset.y_train.dtype == np.int64
    np.testing.assert_array_equal(dataset.x_train, x_train)
    np.testing.assert_array_equal(dataset.y_train, y_train)


# --- preprocessing and features ----------------------------------------------------

def test_vgg16_preprocess_is_caffe_mode_on_a_copy_for_uint8_and_unit_floats():
    images = random_images(3, seed=1)
    kept = images.copy()
    expected = images[..., ::-1].astype("float32") - np.array([103.939, 116.779, 123.68],
                                                               dtype="float32")
    np.testing.assert_allclose(bases.preprocess(images, "vgg16"), expected, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(images, kept)
    np.testing.assert_allclose(bases.preprocess(images.astype("float32") / 255, "vgg16"),
                               expected, rtol=0, atol=1e-3)


def test_body_features_of_preprocessed_images_preprocess_exactly_once(base):
    """The scripts preprocess once (`bases.preprocess`, in `mnist_vgg.to_vgg_input` and
    cifar_vgg.main); the engine's `trials.body_features` then runs the base as it is."""
    images = random_images(5, seed=2)
    kept = images.copy()
    features = trials.body_features(base, bases.preprocess(images, "vgg16"),
                                    batch_size=2)  # batches of 2, 2 and 1
    once = keras.applications.vgg16.preprocess_input(images.astype("float32"))
    twice = keras.applications.vgg16.preprocess_input(once.copy())
    expected = keras.ops.convert_to_numpy(base(once, training=False))
    assert features.shape == (5, 1, 1, 512) and features.std() > 0
    scale = np.abs(expected).max()
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5 * scale)
    doubled = keras.ops.convert_to_numpy(base(twice, training=False))
    assert not np.allclose(features, doubled, rtol=1e-3, atol=1e-3 * scale)
    np.testing.assert_array_equal(images, kept)


# --- heads and the transfer model --------------------------------------------------

def described_layers(description: str) -> list[tuple[str, list[str]]]:
    """'Flatten -> Dense(512, tanh)' -> [('Flatten', []), ('Dense', ['512', 'tanh'])]."""
    parts = []
    for part in description.split("->"):
        match = re.fullmatch(r"(\w+)(?:\((.*)\))?", part.strip())
        assert match, f"cannot read {part!r} in {description!r}"
        args = [arg.strip() for arg in match.group(2).split(",")] if match.group(2) else []
        parts.append((match.group(1), args))
    return parts


def test_the_lecture_has_five_head_variants():
    assert set(bases.HEAD_VARIANTS) == set(EXPECTED_TRAINABLE)


@pytest.mark.parametrize("variant", list(bases.HEAD_VARIANTS))
def test_head_has_the_layers_its_description_names(variant):
    head = bases.head(variant, (1, 1, 512), 5, seed=0)
    described = described_layers(bases.HEAD_VARIANTS[variant])
    assert [type(layer).__name__ for layer in head.layers] == [name for name, _ in described]
    for layer, (name, args) in zip(head.layers, described):
        if name == "Dropout":
            assert layer.rate == float(args[0])
        elif name == "Dense":
            units, activation = (5, "softmax") if args[0] == "out" else (int(args[0]), args[1])
            assert layer.units == units and layer.activation.__name__ == activation
    assert trainable_count(head) == EXPECTED_TRAINABLE[variant]
    assert tuple(head.compute_output_shape((None, 1, 1, 512))) == (None, 5)


def test_unknown_head_variant_is_a_user_error():
    with pytest.raises(cli.UserInputError, match="head foo: unknown"):
        bases.head("foo", (1, 1, 512), 5, seed=0)


@pytest.mark.parametrize("variant", list(bases.HEAD_VARIANTS))
def test_transfer_model_trains_only_its_head(base, variant):
    model = mnist_vgg.transfer_model(base, variant, seed=3)  # 5 classes: the odd digits
    assert model.layers[0] is base
    assert base.trainable_weights == [] and not any(w.trainable for w in base.weights)
    assert trainable_count(model) == EXPECTED_TRAINABLE[variant]
    assert model.count_params() == base.count_params() + EXPECTED_TRAINABLE[variant]
    assert base.count_params() == 14_714_688  # VGG16 without its top
    assert tuple(model.compute_output_shape((None, 32, 32, 3))) == (None, 5)


def test_fit_leaves_the_frozen_base_unchanged_and_trains_the_head(base):
    model = mnist_vgg.transfer_model(base, "dense512", seed=4)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    base_before = base.get_weights()
    head_before = head_weights(model)
    x = bases.preprocess(random_images(8, seed=3), "vgg16")
    model.fit(x, np.arange(8) % 5, batch_size=4, epochs=1, verbose=0)  # two steps
    for before, after in zip(base_before, base.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    changed = [not np.array_equal(before, after)
               for before, after in zip(head_before, head_weights(model), strict=True)]
    assert all(changed), changed


@pytest.mark.parametrize("batch_size", [4, 5])
def test_training_heads_on_cached_features_equals_training_whole_models(base, batch_size,
                                                                         capsys):
    """What the scripts rely on: VGG16's features computed once give the same heads."""
    seed = 7
    x = bases.preprocess(random_images(12, seed=5), "vgg16")
    y = np.arange(12) % 5
    test = (bases.preprocess(random_images(10, seed=6), "vgg16"), np.arange(10) % 5)
    fit = FitSettings(epochs=2, batch_size=batch_size)
    whole = mnist_vgg.transfer_model(base, "dense512", seed)
    cached = mnist_vgg.transfer_model(base, "dense512", seed)
    initial = head_weights(whole)
    for a, b in zip(initial, head_weights(cached), strict=True):
        np.testing.assert_array_equal(a, b)

    side_by_side.fit_side_by_side([whole], [x], [y], [seed], fit)
    whole_accuracy = side_by_side.accuracies([whole], *test)
    capsys.readouterr()
    cached_records = [record for _, record in
                      engine.train_trials({seed: cached}, {seed: (x, y)}, test, fit, label="t")]
    assert "features of the frozen layers" in capsys.readouterr().out  # it did cache
    for a, b in zip(head_weights(whole), head_weights(cached), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert whole_accuracy == [record["accuracy"] for record in cached_records]
    assert not np.allclose(initial[0], head_weights(whole)[0])  # the heads did train
    # Dropout was active in both: without it the head learns something else
    no_dropout = mnist_vgg.transfer_model(base, "dense512", seed)
    no_dropout.get_layer("dropout2").rate = 0.0
    engine.train_trials({seed: no_dropout}, {seed: (x, y)}, test, fit, label="no dropout")
    assert not np.allclose(head_weights(no_dropout)[0], head_weights(whole)[0], atol=1e-4)


# --- weights files -----------------------------------------------------------------

def test_missing_weights_file_names_the_flag():
    with pytest.raises(FileNotFoundError, match="--weights /nonexistent.h5"):
        bases.pretrained_base("vgg16", "/nonexistent.h5")


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_a_file_that_is_not_vgg16_weights_is_a_user_error(tmp_path):
    text = tmp_path / "w.h5"
    text.write_text("not weights\n")
    with pytest.raises(cli.UserInputError, match="--weights .*w.h5: not VGG16 weights"):
        bases.pretrained_base("vgg16", str(text))
    other = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    other.save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(cli.UserInputError, match="not VGG16 weights"):
        bases.pretrained_base("vgg16", str(tmp_path / "other.weights.h5"))


def test_a_vgg16_weights_file_loads(base, tmp_path):
    path = str(tmp_path / bases.VGG16_NOTOP_FILE)  # the legacy .h5 format of Keras's file
    base.save(path)
    loaded = bases.pretrained_base("vgg16", path)
    assert loaded.trainable_weights == []
    for a, b in zip(base.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_imagenet_weights_neither_cached_nor_downloadable_are_one_line(tmp_path):
    result = run_script("mnist_vgg.py", "--weights", "imagenet", "--dataset", "digits",
                        "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("mnist_vgg.py: error: --weights imagenet"), result.stderr
    assert str(tmp_path / "models" / bases.VGG16_NOTOP_FILE) in result.stderr
    assert "could not be downloaded" in result.stderr


# --- the scripts: bad input --------------------------------------------------------

def test_missing_cifar10_names_the_data_flag(tmp_path):
    result = run_script("cifar_vgg.py", "--weights", "none", "--out", str(tmp_path / "out"),
                        cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("cifar_vgg.py: error: ") and "--data" in result.stderr
    assert "could not be downloaded" in result.stderr


def run_in_process(script, flags, tmp_path, capsys) -> tuple[int, str]:
    config = cli.parse_config(script.Config, [*flags, "--weights", "none",
                                              "--out", str(tmp_path / "out")], "", script.QUICK)
    status = cli.run_script(script.main, config, "script.py")
    return status, capsys.readouterr().err


def assert_one_line(status, error, message):
    assert status == 2
    assert error.count("\n") == 1 and "Traceback" not in error, error
    assert message in error, (message, error)


def parse_error(script, flags, capsys) -> tuple[int, str]:
    """A flag refused by the script's config: argparse's one line and exit status 2."""
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_config(script.Config, flags, "", script.QUICK)
    return exit_info.value.code, capsys.readouterr().err


def test_unknown_head_is_one_line(capsys):
    status, error = parse_error(mnist_vgg, ["--options", "output,foo"], capsys)
    assert_one_line(status, error, "--options output,foo: unknown foo")


def test_unknown_option_is_one_line(capsys):
    status, error = parse_error(cifar_vgg, ["--options", "foo"], capsys)
    assert_one_line(status, error, "--options foo: unknown foo")


def test_cifar_npz_with_mnist_shaped_images_is_one_line(tmp_path, capsys):
    x, y = synthetic_cifar(2, seed=0)
    path = tmp_path / "gray.npz"
    np.savez(path, x_train=x[..., 0][:, 2:30, 2:30], y_train=y, x_test=x, y_test=y)
    status, error = run_in_process(cifar_vgg, ["--data", str(path)], tmp_path, capsys)
    assert_one_line(status, error, "images have shape (20, 28, 28), expected (n, 32, 32, 3)")


def test_too_few_cifar_images_per_class_names_the_per_class_flag(tmp_path, capsys):
    path = write_cifar_npz(tmp_path / "few.npz", per_class=5, test_per_class=2)
    status, error = run_in_process(cifar_vgg, ["--quick", "--data", path], tmp_path, capsys)
    assert_one_line(status, error, "class airplane has only 5 images")
    assert "--per-class" in error, error  # cifar_vgg.py has no --small-size flag


def test_float_images_in_an_npz_work_with_vgg16_or_are_one_line(tmp_path, capsys):
    """check_images accepts floats in [0, 1]; VGG16's pipeline must not crash on them."""
    x, y = synthetic_cifar(2, seed=0)
    path = tmp_path / "float.npz"
    unit = x.astype("float32") / 255
    np.savez(path, x_train=unit, y_train=y, x_test=unit, y_test=y)
    status, error = run_in_process(
        cifar_vgg, ["--data", str(path), "--options", "vgg16", "--per-class", "2", "--epochs", "1",
                    "--trials", "1"], tmp_path, capsys)
    if status != 0:
        assert_one_line(status, error, "--data")


# --- the scripts end to end --------------------------------------------------------

def test_mnist_vgg_quick_run_writes_json_and_png(tmp_path):
    out = tmp_path / "out"
    result = run_script("mnist_vgg.py", "--quick", "--weights", "none", "--dataset", "digits",
                        "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "random VGG16 weights: a control, not transfer" in result.stdout
    with open(out / "mnist_vgg.json") as file:
        results = json.load(file)
    assert results["weights"] == "random weights: not transfer"
    assert results["dataset"]["name"] == "digits" and results["config"]["trials"] == 2
    assert list(results["accuracies"]) == list(bases.HEAD_VARIANTS)
    for variant, accuracies in results["accuracies"].items():
        assert len(accuracies) == 2 and all(0 <= a <= 1 for a in accuracies), variant
        assert results["summary"][variant]["n"] == 2
        assert results["summary"][variant]["mean"] == pytest.approx(np.mean(accuracies))
    assert results["heads"] == bases.HEAD_VARIANTS
    assert (out / "mnist_vgg.png").read_bytes()[:8] == PNG_SIGNATURE


def test_cifar_vgg_quick_run_writes_json_with_histories_and_png(tmp_path):
    out = tmp_path / "out"
    path = write_cifar_npz(tmp_path / "synthetic_cifar.npz")
    result = run_script("cifar_vgg.py", "--quick", "--weights", "none", "--data", path,
                        "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "random VGG16 weights: a control, not transfer" in result.stdout
    with open(out / "cifar_vgg.json") as file:
        results = json.load(file)
    assert results["weights"] == "random weights: not transfer"
    assert results["dataset"]["name"] == "cifar10"
    assert results["dataset"]["train_images"] == 300 and results["dataset"]["test_images"] == 100
    epochs, runs = results["config"]["epochs"], [*cifar_vgg.SCRATCH_RUNS, "vgg16"]
    assert epochs == 3 and results["config"]["trials"] == 1
    assert list(results["accuracies"]) == list(results["histories"]) == runs
    assert set(results["summary"]) == set(runs) and results["complete"]
    assert [c["treatment"] for c in results["comparisons"]] == runs[1:]  # against runs[0]
    for run in runs:
        (history,) = results["histories"][run]
        assert set(history) == {"accuracy", "val_accuracy", "loss", "val_loss"}
        assert all(len(values) == epochs for values in history.values()), run
        assert results["accuracies"][run] == [history["val_accuracy"][-1]]
    vgg_loss = results["histories"]["vgg16"][0]["loss"]
    assert vgg_loss[-1] < vgg_loss[0]  # the head on the frozen base learns
    assert (out / "cifar_vgg.png").read_bytes()[:8] == PNG_SIGNATURE

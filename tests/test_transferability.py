"""transferability.py: copying the first n layers (weights, freezing, fresh rest), and the
study end to end on synthetic digits."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import transferability
from common import cli, models, transfer
from common.training import fit_side_by_side
from conftest import ROOT, synthetic_digits

LAYERS = ["conv1", "conv2", "conv3", "conv4", "dense1"]


@pytest.fixture(scope="module")
def source():
    """A deep CNN standing in for a trained base (its own seed: its own weights)."""
    return models.deep_cnn(5, seed=100)


def weights(model, name):
    return [w.copy() for w in model.get_layer(name).get_weights()]


def same(first, second):
    return all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def odd_digits(count):
    """`count` synthetic images of digits 1,3,5,7,9 as floats, labels 0..4."""
    x, y = synthetic_digits(count // 5 + 1, seed=4)
    keep = np.flatnonzero(y % 2 == 1)[:count]
    return x[keep, ..., None].astype("float32") / 255, (y[keep] // 2).astype(np.int64)


def test_deep_cnn_has_five_transferable_layers(source):
    assert [layer.name for layer in transfer.transferable_layers(source)] == LAYERS
    assert source.count_params() == 196_837
    assert transferability.LAYERS == tuple(LAYERS)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("frozen", [True, False])
def test_copies_exactly_n_layers_into_new_objects_with_the_right_flags(source, n, frozen):
    before = {name: weights(source, name) for name in LAYERS}
    model = transfer.copy_first_layers(source, models.deep_cnn(5, seed=7), n, frozen)
    for name in LAYERS[:n]:
        assert same(weights(model, name), before[name]), name
        assert model.get_layer(name).trainable is not frozen, name
    for name in [*LAYERS[n:], "output"]:
        assert not np.array_equal(weights(model, name)[0], weights(source, name)[0]), name
        assert model.get_layer(name).trainable, name
    assert not {id(layer) for layer in model.layers} & {id(layer) for layer in source.layers}
    assert all(layer.trainable for layer in source.layers)  # the source is untouched
    assert all(same(weights(source, name), before[name]) for name in LAYERS)
    copied = sum(int(np.prod(w.shape)) for name in LAYERS[:n]
                 for w in source.get_layer(name).weights)
    assert len(model.non_trainable_weights) == (2 * n if frozen else 0)
    assert model.count_params() - sum(int(np.prod(w.shape)) for w in model.trainable_weights) \
        == (copied if frozen else 0)


def test_the_rest_is_initialised_by_the_trials_seed(source):
    first, again, other = (transfer.copy_first_layers(source, models.deep_cnn(5, seed=seed), 2,
                                                      frozen=True) for seed in (7, 7, 8))
    assert same(first.get_weights(), again.get_weights())
    for name in ["conv3", "conv4", "dense1", "output"]:
        assert not np.array_equal(weights(first, name)[0], weights(other, name)[0]), name
    for name in ["conv1", "conv2"]:
        assert same(weights(first, name), weights(other, name))
    assert first.get_layer("dropout").seed != other.get_layer("dropout").seed


def test_training_moves_only_the_fresh_layers_when_frozen_and_never_the_source(source):
    before = {name: weights(source, name) for name in LAYERS}
    frozen = transfer.copy_first_layers(source, models.deep_cnn(5, seed=1, name="frozen"), 3,
                                        frozen=True)
    tuned = transfer.copy_first_layers(source, models.deep_cnn(5, seed=1, name="tuned"), 3,
                                       frozen=False)
    fresh = {name: weights(frozen, name) for name in ["conv4", "dense1", "output"]}
    x, y = odd_digits(40)
    fit_side_by_side([frozen, tuned], [x, x], [y, y], [1, 1], epochs=1, batch_size=8)
    for name in LAYERS[:3]:
        assert same(weights(frozen, name), before[name]), name  # frozen: not moved
        assert not same(weights(tuned, name), before[name]), name  # fine-tuned: moved
    for name, initial in fresh.items():
        assert not np.allclose(weights(frozen, name)[0], initial[0]), name  # these learn
    assert all(same(weights(source, name), before[name]) for name in LAYERS)


@pytest.mark.parametrize("n", [0, 6, -1, 2.0, True])
def test_n_outside_one_to_l_is_a_clear_error(source, n):
    with pytest.raises(ValueError, match=r"copy 1 to 5 layers.*conv1, conv2, conv3, conv4, dense1"):
        transfer.copy_first_layers(source, models.deep_cnn(5, seed=7), n, frozen=True)


def test_another_architecture_or_a_shared_model_is_a_clear_error(source):
    with pytest.raises(ValueError, match="build the target with the source's architecture"):
        transfer.copy_first_layers(source, models.lecture_cnn(5, seed=7), 1, frozen=True)
    with pytest.raises(ValueError, match="build the target with the source's architecture"):
        transfer.copy_first_layers(source, models.deep_cnn(5, seed=7, hidden=64), 5, frozen=True)
    with pytest.raises(ValueError, match="shares layer objects"):
        transfer.copy_first_layers(source, source, 1, frozen=True)


def test_groups_hold_the_four_models_of_an_n_unless_b_is_large():
    small = transferability.option_groups(trials=3, b_size=1000)
    assert small[2] == (3, ["3AnB-frozen", "3AnB-fine-tuned", "3BnB-frozen", "3BnB-fine-tuned"])
    large = transferability.option_groups(trials=3, b_size=30_508)  # the whole half
    assert len(small) == 5 and len(large) == 20 and large[1] == (1, ["1AnB-fine-tuned"])
    assert [o for _, group in small for o in group] == [o for _, group in large for o in group]


def test_main_writes_the_table_json_and_png_and_resumes(mnist_like_npz, tmp_path, capsys):
    # --target-size 0: the whole B half (200 images here), one step per epoch
    config = transferability.Config(data=mnist_like_npz, out=str(tmp_path),
                                    models_dir=str(tmp_path), trials=1, epochs=2,
                                    source_epochs=2, batch_size=200, test_size=100)
    results = transferability.main(config)
    with open(tmp_path / "transferability.json") as file:
        written = json.load(file)
    assert written["complete"] and written["script"] == "transferability"
    assert written["plots"] == ["transferability.png"]
    assert (tmp_path / "transferability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(written["table"]["models"]) == list(transferability.MODELS)
    assert all(len(cells) == 5 and all(cells) for cells in written["table"]["models"].values())
    assert len(written["summary"]) == 20 and "3AnB-frozen" in written["summary"]
    assert [(c["baseline"], c["treatment"]) for c in written["comparisons"]] == \
        [(f"{n}BnB-frozen", f"{n}AnB-frozen") for n in range(1, 6)]
    assert written["bases"]["A"]["test_accuracy_on_A"] > 0.2
    assert len(written["bases"]["B"]["test_accuracy_on_B"]) == 1
    assert written["b_training_images"] == 200
    assert {"config", "dataset", "device", "environment", "seeds", "accuracies"} <= set(written)
    assert "AnB-fine-tuned" in capsys.readouterr().out

    again = transferability.main(dataclasses.replace(config, resume=True))
    out = capsys.readouterr().out
    assert "resuming: 20 finished trials" in out and "reusing" in out and "epoch" not in out
    assert again["accuracies"] == results["accuracies"]


def test_a_target_size_not_divisible_by_five_is_one_line(mnist_like_npz, tmp_path, capsys):
    config = transferability.Config(data=mnist_like_npz, out=str(tmp_path / "out"),
                                    models_dir=str(tmp_path), target_size=12)
    assert cli.run_script(transferability.main, config, "transferability.py") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--target-size 12: must be 0" in error
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_quick_run_in_a_subprocess(mnist_like_npz, tmp_path):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "transferability.py"), "--quick",
                             "--data", mnist_like_npz], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "KERAS_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "summary" in result.stdout and "n=5 dense1" in result.stdout
    assert (tmp_path / "results" / "transferability.json").is_file()
    assert (tmp_path / "results" / "transferability.png").is_file()
    assert list((tmp_path / "saved_models").glob("transferability_mnist_B_100img_*.keras"))

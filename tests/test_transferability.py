"""transferability.py: copying the first n layers (weights, freezing, fresh rest), and the
study end to end on synthetic digits."""

import dataclasses
import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tl_mnist
import transferability
from common import engine
from common.lesson import networks, transfer
from common.lesson import plain as lesson_plain
from common.runs import cli
from common.runs.trial_log import TrialLog
from common.lesson.settings import FitSettings
from common.engine.side_by_side import fit_side_by_side
from conftest import ROOT, synthetic_digits

LAYERS = ["conv1", "conv2", "conv3", "conv4", "dense1"]


@pytest.fixture(scope="module")
def source():
    """A deep CNN standing in for a trained base (its own seed: its own weights)."""
    return networks.deep_cnn(5, seed=100)


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
    model = transfer.copy_first_layers(source, networks.deep_cnn(5, seed=7), n, frozen)
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
    first, again, other = (transfer.copy_first_layers(source, networks.deep_cnn(5, seed=seed), 2,
                                                      frozen=True) for seed in (7, 7, 8))
    assert same(first.get_weights(), again.get_weights())
    for name in ["conv3", "conv4", "dense1", "output"]:
        assert not np.array_equal(weights(first, name)[0], weights(other, name)[0]), name
    for name in ["conv1", "conv2"]:
        assert same(weights(first, name), weights(other, name))
    assert first.get_layer("dropout").seed != other.get_layer("dropout").seed


def test_training_moves_only_the_fresh_layers_when_frozen_and_never_the_source(source):
    before = {name: weights(source, name) for name in LAYERS}
    frozen = transfer.copy_first_layers(source, networks.deep_cnn(5, seed=1, name="frozen"), 3,
                                        frozen=True)
    tuned = transfer.copy_first_layers(source, networks.deep_cnn(5, seed=1, name="tuned"), 3,
                                       frozen=False)
    fresh = {name: weights(frozen, name) for name in ["conv4", "dense1", "output"]}
    x, y = odd_digits(40)
    fit_side_by_side([frozen, tuned], [x, x], [y, y], [1, 1], FitSettings(epochs=1, batch_size=8))
    for name in LAYERS[:3]:
        assert same(weights(frozen, name), before[name]), name  # frozen: not moved
        assert not same(weights(tuned, name), before[name]), name  # fine-tuned: moved
    for name, initial in fresh.items():
        assert not np.allclose(weights(frozen, name)[0], initial[0]), name  # these learn
    assert all(same(weights(source, name), before[name]) for name in LAYERS)


@pytest.mark.parametrize("n", [0, 6, -1, 2.0, True])
def test_n_outside_one_to_l_is_a_clear_error(source, n):
    with pytest.raises(ValueError, match=r"copy 1 to 5 layers.*conv1, conv2, conv3, conv4, dense1"):
        transfer.copy_first_layers(source, networks.deep_cnn(5, seed=7), n, frozen=True)


def test_another_architecture_or_a_shared_model_is_a_clear_error(source):
    with pytest.raises(ValueError, match="build the target with the source's architecture"):
        transfer.copy_first_layers(source, tl_mnist.lecture_cnn(5, seed=7), 1, frozen=True)
    with pytest.raises(ValueError, match="build the target with the source's architecture"):
        transfer.copy_first_layers(source, networks.deep_cnn(5, seed=7, hidden=64), 5, frozen=True)
    with pytest.raises(ValueError, match="shares layer objects"):
        transfer.copy_first_layers(source, source, 1, frozen=True)


def test_each_model_type_is_one_call_unless_b_is_large():
    small = transferability.option_groups(trials=3, b_size=1000)
    assert small == [(model, [1, 2, 3, 4, 5]) for model in transferability.MODELS]
    large = transferability.option_groups(trials=3, b_size=30_508)  # the whole half
    assert large[:3] == [("AnB-frozen", [1, 2]), ("AnB-frozen", [3, 4]), ("AnB-frozen", [5])]
    assert all(3 * 30_508 * len(ns) <= transferability.GROUP_IMAGES for _, ns in large)
    huge = transferability.option_groups(trials=10, b_size=30_508)  # over the cap: one n each
    assert len(huge) == 20 and huge[1] == ("AnB-frozen", [2])
    for groups in (small, large, huge):  # every option exactly once, model type by type
        assert [transferability.option_name(n, model) for model, ns in groups for n in ns] == \
            [transferability.option_name(n, model) for model in transferability.MODELS
             for n in range(1, 6)]


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
    assert written["path"] == "engine" and written["layers"] == LAYERS
    assert written["bases"]["A"]["test_accuracy_on_A"] > 0.2
    assert len(written["bases"]["B"]["test_accuracy_on_B"]) == 1
    assert written["b_training_images"] == 200
    assert {"config", "dataset", "device", "environment", "seeds", "accuracies"} <= set(written)
    out = capsys.readouterr().out
    assert "AnB-fine-tuned" in out and "n=5 dense1" in out and "5AnB-frozen vs 5BnB-frozen" in out

    again = transferability.main(dataclasses.replace(config, resume=True))
    out = capsys.readouterr().out
    assert "resuming: 20 finished trials" in out and "reusing" in out and "epoch" not in out
    assert again["accuracies"] == results["accuracies"]


def test_a_target_size_not_divisible_by_five_is_one_line(mnist_like_npz, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # (the config's own check, at the command line)
        cli.parse_config(transferability.Config, [
            "--data", mnist_like_npz, "--out", str(tmp_path / "out"), "--models-dir",
            str(tmp_path), "--target-size", "12"], "", transferability.QUICK)
    assert exit_info.value.code == 2
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


def test_plain_code_and_engine_agree_trial_by_trial(mnist_like_npz, tmp_path):
    """--plain (the bases' `pretrain`, each network's `one_trial`) and the engine (bases and
    networks side by side, stacked) give every trial the same accuracy. Two trials, so
    the nBnB networks copy from two different baseBs; two options only, for time."""
    dataset = transferability.data.load_mnist(mnist_like_npz, "auto")
    accuracies = {}
    for plain in (True, False):
        config = transferability.Config(data=mnist_like_npz, out=str(tmp_path / f"{plain}"),
                                        models_dir=str(tmp_path / f"{plain}"), trials=2,
                                        epochs=2, batch_size=25, target_size=50, test_size=60,
                                        plain=plain)
        a_train, _, b_pool, b_test = transferability.data.two_tasks(
            dataset, transferability.TASK_A, transferability.TASK_B, 0, config.test_size)
        log = TrialLog("transferability", config, dataset)
        b_sets = transferability.b_training_sets(b_pool, 50, log.all_seeds)
        fit = FitSettings(epochs=2, batch_size=25)
        base_fit = FitSettings(epochs=1, batch_size=50)
        # the two paths, as transferability.main chooses them
        pretrain_all = (functools.partial(lesson_plain.pretrain_each, transferability.pretrain)
                        if plain else engine.pretrain)
        train_trials = (functools.partial(lesson_plain.trial_by_trial, transferability.one_trial)
                        if plain else functools.partial(engine.train_trials, cache_features=False))
        bases = [transferability.base_networks(role, sets, base_fit, config.models_dir, False,
                                               dataset.name, pretrain_all)
                 for role, sets in (("A", {0: a_train}), ("B", b_sets))]
        base_a, bases_b = bases[0][0], bases[1]
        networks = {**transferability.transferred_networks("BnB-frozen", [2], log.todo,
                                                          base_a, bases_b),
                    **transferability.transferred_networks("AnB-fine-tuned", [4], log.todo,
                                                          base_a, bases_b)}
        log.record_trials(train_trials(networks, b_sets, b_test, fit, label="both"))
        accuracies[plain] = log.accuracies(log.planned)
    assert list(accuracies[True]) == ["2BnB-frozen", "4AnB-fine-tuned"]
    for option, by_seed in accuracies[True].items():
        assert list(by_seed) == [0, 1], option
        np.testing.assert_allclose(list(by_seed.values()),
                                   list(accuracies[False][option].values()), atol=1e-6,
                                   err_msg=option)

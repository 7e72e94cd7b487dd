"""The fast engine gives every trial the accuracy the script's plain Keras code gives it.

Each script runs twice on the same small synthetic data and seeds: once with `--plain`
(its `one_trial`: compile, fit, evaluate, one trial after the other) and once through
the engine (trials side by side, stacked, on cached features). Per-trial accuracies
must agree to float tolerance.
"""

import numpy as np
import pytest

import cifar_vgg
import example_experiment
import mnist_vgg
import tl_mnist
from common.runs import cli


def both_paths(script, argv: list[str], tmp_path) -> tuple[dict, dict]:
    """The script's results with --plain and with the engine (separate output folders)."""
    results = []
    for path in ("plain", "engine"):
        flags = [*argv, "--out", str(tmp_path / path)] + (["--plain"] if path == "plain" else [])
        config = cli.parse_config(script.Config, flags, "", script.QUICK)
        results.append(script.main(config))
    plain, engine = results
    assert plain["path"] == "plain" and engine["path"] == "engine"
    return plain, engine


def assert_same_accuracies(plain: dict, engine: dict) -> None:
    assert plain["accuracies"].keys() == engine["accuracies"].keys()
    for option in plain["accuracies"]:
        np.testing.assert_allclose(plain["accuracies"][option], engine["accuracies"][option],
                                   atol=1e-6, err_msg=option)


def test_tl_mnist_plain_code_and_engine_agree(mnist_like_npz, tmp_path):
    # Each path pretrains its own base (its own models folder): pretraining is compared too.
    argv = ["--data", mnist_like_npz, "--trials", "2", "--epochs", "4", "--small-size", "20",
            "--pretrain-epochs", "2", "--pretrain-batch-size", "32", "--fine-tune", "1",
            "--fine-tune-epochs", "2"]
    plain, engine = both_paths(tl_mnist, argv, tmp_path)
    assert set(plain["accuracies"]) == {"no transfer", "transfer", "transfer + fine-tune"}
    assert_same_accuracies(plain, engine)
    assert plain["base"]["big_task_test_accuracy"] == pytest.approx(
        engine["base"]["big_task_test_accuracy"], abs=1e-6)


def test_mnist_vgg_plain_code_and_engine_agree(mnist_like_npz, tmp_path):
    argv = ["--data", mnist_like_npz, "--weights", "none", "--trials", "2", "--epochs", "3",
            "--small-size", "10", "--test-size", "40", "--options", "output,dense512",
            "--fine-tune", "1", "--fine-tune-epochs", "1"]
    plain, engine = both_paths(mnist_vgg, argv, tmp_path)
    assert set(plain["accuracies"]) == {"output", "dense512", "output + fine-tune",
                                        "dense512 + fine-tune"}
    assert_same_accuracies(plain, engine)
    # The test-set curves agree too (the training curves are measured differently: Keras
    # averages them over the epoch's steps, the engine measures them at the epoch's end).
    for option, runs in plain["histories"].items():
        for plain_run, engine_run in zip(runs, engine["histories"][option]):
            np.testing.assert_allclose(plain_run["val_accuracy"], engine_run["val_accuracy"],
                                       atol=1e-6)
            np.testing.assert_allclose(plain_run["val_loss"], engine_run["val_loss"], rtol=1e-3)


def test_cifar_vgg_plain_code_and_engine_agree(cifar_like_npz, tmp_path):
    argv = ["--data", cifar_like_npz, "--weights", "none", "--trials", "2", "--epochs", "2",
            "--per-class", "3", "--options", "cnn_tanh,vgg16", "--fine-tune", "2",
            "--fine-tune-epochs", "1"]
    plain, engine = both_paths(cifar_vgg, argv, tmp_path)
    assert set(plain["accuracies"]) == {"cnn_tanh", "vgg16", "vgg16 + fine-tune"}
    assert_same_accuracies(plain, engine)
    fine_tuned = plain["histories"]["vgg16 + fine-tune"][0]
    assert fine_tuned["fine_tune_start"] == 2 and len(fine_tuned["val_accuracy"]) == 3


def test_the_minimal_example_experiment_runs_end_to_end_both_ways(mnist_like_npz, tmp_path):
    """example_experiment.py, the template of docs/development.md's "Adding an experiment":
    a complete run each way, the same accuracies, and its JSON and plot written."""
    argv = ["--data", mnist_like_npz, "--dataset", "mnist", "--trials", "2", "--epochs", "3",
            "--small-size", "20"]
    plain, engine = both_paths(example_experiment, argv, tmp_path)
    assert list(engine["accuracies"]) == ["dropout", "no_dropout"] and engine["complete"]
    assert_same_accuracies(plain, engine)
    assert [c["treatment"] for c in engine["comparisons"]] == ["no_dropout"]
    for path in ("plain", "engine"):
        assert (tmp_path / path / "example_experiment.json").is_file()
        assert (tmp_path / path / "example_experiment.png").is_file()
        assert (tmp_path / path / "example_experiment.trials.jsonl").is_file()

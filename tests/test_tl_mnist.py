"""tl_mnist.py end to end, and every bad input giving its one-line error."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import tl_mnist
from common.runs import cli
from conftest import ROOT, synthetic_digits

FAST = ["--trials", "2", "--epochs", "3", "--pretrain-epochs", "2", "--small-size", "20"]


def run_script(*args: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, "tl_mnist.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_HOME": cwd})


def test_quick_run_writes_json_and_png_and_reuses_its_base(mnist_like_npz, tmp_path):
    result = run_script("--quick", "--data", mnist_like_npz, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "saved saved_models" in result.stdout and "summary" in result.stdout
    with open(tmp_path / "results" / "tl_mnist.json") as file:
        results = json.load(file)
    assert results["config"]["trials"] == 3 and results["dataset"]["name"] == "mnist"
    assert len(results["accuracies"]["no transfer"]) == len(results["accuracies"]["transfer"]) == 3
    assert set(results["summary"]["transfer"]) == {"n", "min", "max", "mean", "std", "ci95",
                                                   "lecture_verdict", "at_chance"}
    assert results["complete"] and results["comparisons"][0]["treatment"] == "transfer"
    assert "95% CI of mean" in result.stdout and "transfer vs no transfer: " in result.stdout
    assert {"load", "pretrain", "trials", "total"} <= set(results["timings_s"])
    assert results["environment"]["keras"] and results["device"]
    assert results["base"]["trained_now"] is True
    assert (tmp_path / "results" / "tl_mnist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = run_script("--quick", "--data", mnist_like_npz, "--trials", "1", cwd=str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert "reusing saved_models" in again.stdout


def test_main_learns_the_synthetic_task_with_and_without_transfer(mnist_like_npz, tmp_path):
    config = tl_mnist.Config(data=mnist_like_npz, out=str(tmp_path), models_dir=str(tmp_path),
                             trials=2, epochs=15, pretrain_epochs=15,
                             pretrain_batch_size=16, small_size=20)
    results = tl_mnist.main(config)
    assert min(results["accuracies"]["no transfer"]) > 0.6
    assert min(results["accuracies"]["transfer"]) > 0.6
    assert results["base"]["big_task_test_accuracy"] > 0.9


def write_npz(path, **changes) -> str:
    """A valid synthetic mnist.npz with some arrays changed (None: left out)."""
    x, y = synthetic_digits(30, seed=0)
    arrays = {"x_train": x, "y_train": y, "x_test": x, "y_test": y, **changes}
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return str(path)


@pytest.mark.parametrize("flags, message", [
    (["--trials", "0"], "--trials 0: must be at least 1"),
    (["--epochs", "-3"], "--epochs -3: must be at least 1"),
    (["--lr", "0"], "--lr 0.0: must be at least 1e-07"),
    (["--batch-size", "two"], "argument --batch-size: invalid int value: 'two'"),
    (["--dataset", "fashion"], "argument --dataset: invalid choice: 'fashion'"),
    (["--learning-speed", "3"], "unrecognized arguments: --learning-speed 3"),
])
def test_nonsensical_flags_give_one_line_and_exit_2(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_config(tl_mnist.Config, flags, "", tl_mnist.QUICK)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error


def bad_input_cases(folder) -> list[tuple[list[str], str]]:
    x, y = synthetic_digits(30, seed=0)
    few_threes = np.concatenate([np.flatnonzero(y != 3), np.flatnonzero(y == 3)[:3]])
    garbage = folder / "garbage.npz"
    garbage.write_bytes(b"\x00" * 64)
    return [
        (["--data", str(folder / "absent.npz")], "absent.npz: no such file"),
        (["--data", str(garbage)], "not a readable .npz file"),
        (["--data", write_npz(folder / "keys.npz", y_test=None)],
         "expected x_train, y_train, x_test, y_test"),
        (["--data", write_npz(folder / "shape.npz", x_train=x[:, :20])], "expected (n, 28, 28)"),
        (["--data", write_npz(folder / "dtype.npz", x_test=x.astype(np.int16))],
         "dtype int16, expected uint8"),
        (["--data", write_npz(folder / "labels.npz", y_train=y + 5)], "labels must lie in 0..9"),
        (["--data", write_npz(folder / "few.npz", x_train=x[few_threes], y_train=y[few_threes])],
         "class 3 has only 3 images"),
        (["--data", write_npz(folder / "ok.npz"), "--small-size", "12"], "multiple of 5"),
        (["--data", write_npz(folder / "ok.npz"), "--base-file", str(folder / "absent.keras")],
         "absent.keras: no such file"),
    ]


def test_every_bad_input_gives_one_line_and_exit_2(tmp_path, capsys):
    for flags, message in bad_input_cases(tmp_path):
        config = cli.parse_config(tl_mnist.Config, [*FAST, "--out", str(tmp_path / "out"),
                                                    "--models-dir", str(tmp_path), *flags],
                                  "", tl_mnist.QUICK)
        status = cli.run_script(tl_mnist.main, config, "tl_mnist.py")
        error = capsys.readouterr().err
        assert status == 2, flags
        assert error.count("\n") == 1 and "Traceback" not in error, error
        assert message in error, (message, error)


def test_missing_mnist_is_one_line_in_a_subprocess(tmp_path):
    result = run_script("--data", str(tmp_path / "mnist.npz"), *FAST, cwd=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no such file" in result.stderr


def test_a_base_file_is_recorded_as_given_not_with_this_runs_settings(tmp_path):
    """--base-file was trained elsewhere: the JSON says where it came from, and claims
    none of this run's pretraining settings for it."""
    path = str(tmp_path / "mine.keras")
    tl_mnist.lecture_cnn(5, seed=0).save(path)
    big = synthetic_digits(3, seed=0)
    base, record = tl_mnist.pretrained_cnn(tl_mnist.Config(base_file=path),
                                           types.SimpleNamespace(name="mnist"), big)
    assert record == {"path": path, "given": "--base-file", "trained_now": False}
    assert base.name == "lecture_cnn_seed0"

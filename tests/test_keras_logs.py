"""`--log-dir`: every trial's per-epoch CSV (CSVLogger's columns) and TensorBoard files,
written alike by the plain path and the engine, and read back here."""

import csv
import glob
import os

import numpy as np
import pytest

import mnist_vgg
import tl_mnist
from common.runs import cli, keras_logs


def run(script, argv: list[str], out) -> dict:
    return script.main(cli.parse_config(script.Config, [*argv, "--out", str(out)], "",
                                        script.QUICK))


def read_csv(path: str) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def read_scalars(folder: str) -> dict[str, dict[int, float]]:
    """tag -> {step: value} of the TensorBoard event files in `folder`, read as TensorBoard
    itself reads them (its EventAccumulator)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        return {}
    events = EventAccumulator(folder)
    events.Reload()
    return {tag: {scalar.step: scalar.value for scalar in events.Scalars(tag)}
            for tag in events.Tags()["scalars"]}


def logged_files(log_dir) -> set[str]:
    """The CSV files and TensorBoard folders under `log_dir`, relative to it."""
    csvs = glob.glob(os.path.join(log_dir, "*", "*.csv"))
    events = glob.glob(os.path.join(log_dir, "*", "*", "*", "events.out.tfevents.*"))
    return ({os.path.relpath(path, log_dir) for path in csvs}
            | {os.path.relpath(os.path.dirname(path), log_dir) for path in events})


def check_trial_logs(trial: str, epochs: int, validated: bool) -> list[dict]:
    """A trial's CSV and TensorBoard files agree with each other; returns the CSV rows."""
    columns, rows = read_csv(trial + ".csv")
    metrics = ["accuracy", "loss"] + (["val_accuracy", "val_loss"] if validated else [])
    assert columns == ["epoch", *metrics]  # CSVLogger's order: epoch, then sorted keys
    assert [int(row["epoch"]) for row in rows] == list(range(epochs))
    for part, prefix in (("train", ""), ("validation", "val_")):
        scalars = read_scalars(os.path.join(trial, part))
        if part == "validation" and not validated:
            assert not scalars
            continue
        assert set(scalars) == {"epoch_accuracy", "epoch_loss"}
        for name in ("accuracy", "loss"):
            np.testing.assert_allclose(
                [scalars[f"epoch_{name}"][epoch] for epoch in range(epochs)],
                [float(row[prefix + name]) for row in rows], rtol=1e-6)
    return rows


@pytest.mark.parametrize("path", ["plain", "engine"])
def test_tl_mnist_writes_a_csv_and_tensorboard_files_per_trial(mnist_like_npz, tmp_path, path):
    log_dir = tmp_path / "logs"
    argv = ["--data", mnist_like_npz, "--trials", "2", "--epochs", "3", "--small-size", "20",
            "--pretrain-epochs", "1", "--pretrain-batch-size", "64", "--models-dir",
            str(tmp_path / "models"), "--log-dir", str(log_dir)]
    result = run(tl_mnist, argv + (["--plain"] if path == "plain" else []), tmp_path / "out")
    assert logged_files(log_dir) == {f"{option}/trial_{seed}{end}"
                                     for option in ("no_transfer", "transfer")
                                     for seed in (0, 1) for end in (".csv", "/train")}
    for option, name in (("no_transfer", "no transfer"), ("transfer", "transfer")):
        for seed in (0, 1):
            rows = check_trial_logs(str(log_dir / option / f"trial_{seed}"), 3, validated=False)
            assert all(0 <= float(row["accuracy"]) <= 1 for row in rows)
    assert "histories" in result and not result["histories"]  # curves need the test set's


def test_validated_runs_log_the_same_test_curves_on_both_paths(mnist_like_npz, tmp_path):
    argv = ["--data", mnist_like_npz, "--weights", "none", "--trials", "2", "--epochs", "2",
            "--small-size", "10", "--test-size", "40", "--options", "output,dense512"]
    rows = {}
    for path in ("plain", "engine"):
        log_dir = tmp_path / path / "logs"
        run(mnist_vgg, argv + ["--log-dir", str(log_dir)] + (["--plain"] if path == "plain"
                                                               else []), tmp_path / path)
        assert logged_files(log_dir) == {f"{option}/trial_{seed}{end}"
                                         for option in ("output", "dense512") for seed in (0, 1)
                                         for end in (".csv", "/train", "/validation")}
        rows[path] = {(option, seed): check_trial_logs(
            str(log_dir / option / f"trial_{seed}"), 2, validated=True)
            for option in ("output", "dense512") for seed in (0, 1)}
    for trial, plain_rows in rows["plain"].items():
        np.testing.assert_allclose([float(row["val_accuracy"]) for row in plain_rows],
                                   [float(row["val_accuracy"]) for row in rows["engine"][trial]],
                                   atol=1e-6, err_msg=str(trial))


def test_csv_rows_leave_out_what_is_not_per_epoch_and_folders_are_safe_names():
    history = {"loss": [0.5, 0.25], "accuracy": [0.5, 0.75], "fine_tune_start": 1}
    assert keras_logs.epoch_rows(history) == (
        ["epoch", "accuracy", "loss"],
        [{"epoch": 0, "accuracy": 0.5, "loss": 0.5}, {"epoch": 1, "accuracy": 0.75, "loss": 0.25}])
    assert keras_logs.folder_name("transfer (dense128)") == "transfer_dense128"
    assert keras_logs.folder_name("vgg16 + fine-tune") == "vgg16_fine-tune"


def test_without_tensorboard_only_the_csv_is_written_and_the_run_says_so(tmp_path, capsys):
    logs = keras_logs.KerasLogs(str(tmp_path))
    logs.tensorboard = False  # as where the tensorboard package is not installed
    for seed in (0, 1):
        logs.write("no transfer", seed, {"loss": [1.0], "accuracy": [0.5]})
    assert sorted(os.listdir(tmp_path / "no_transfer")) == ["trial_0.csv", "trial_1.csv"]
    assert capsys.readouterr().out.count("TensorBoard's files need the tensorboard package") == 1

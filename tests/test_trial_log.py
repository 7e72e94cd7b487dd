"""The trials file: finished trials survive a kill, --resume goes on, --jobs gives the
same results."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import tl_mnist
from common import cli, data, trial_log, trials
from common.experiment import Experiment
from conftest import ROOT

CONFIG = {"epochs": 5, "seed": 0, "trials": 3, "out": "results"}


def make_log(tmp_path, resume=False, **changes) -> trial_log.TrialLog:
    log = trial_log.TrialLog(str(tmp_path / "x.trials.jsonl"), "x", {**CONFIG, **changes},
                             resume, say=lambda line: None)
    log.start()
    return log


def test_each_trial_is_one_flushed_line_and_resume_reads_them_back(tmp_path):
    log = make_log(tmp_path)
    log.append("transfer", 0, 0.93, history={"loss": [1.0]})
    log.append("transfer", 1, 0.95)
    lines = (tmp_path / "x.trials.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["config"] == CONFIG and len(lines) == 3
    # Only the config fields that change results must match: --out and --trials may differ.
    again = make_log(tmp_path, resume=True, out="elsewhere", trials=30)
    assert again.accuracies(["transfer", "other"], [0, 1, 2]) == {
        "transfer": {0: 0.93, 1: 0.95}, "other": {}}
    assert again.extra("transfer", [0], "history") == [{"loss": [1.0]}]
    assert again.missing([("transfer", 0), ("transfer", 2)]) == [("transfer", 2)]


def test_resume_refuses_another_config_naming_the_flag(tmp_path):
    make_log(tmp_path)
    with pytest.raises(cli.UserInputError, match=r"--epochs 5 -> 100"):
        make_log(tmp_path, resume=True, epochs=100)


def test_a_new_run_keeps_an_earlier_file_with_trials_and_writes_nothing_before_start(tmp_path):
    make_log(tmp_path).append("a", 0, 0.5)
    # A run that fails on bad input before its trials start leaves the file alone.
    trial_log.TrialLog(str(tmp_path / "x.trials.jsonl"), "x", CONFIG, False)
    assert "0.5" in (tmp_path / "x.trials.jsonl").read_text()
    make_log(tmp_path)
    make_log(tmp_path)  # the file it replaces holds no trial: nothing to keep
    kept = [name for name in os.listdir(tmp_path) if name != "x.trials.jsonl"]
    assert len(kept) == 1 and kept[0].startswith("x.trials.") and kept[0].endswith(".jsonl")
    assert "0.5" in (tmp_path / kept[0]).read_text()
    assert len((tmp_path / "x.trials.jsonl").read_text().splitlines()) == 1


def test_run_trains_only_the_missing_trials(tmp_path):
    log = make_log(tmp_path)
    log.append("a", 0, 0.5)
    asked = []

    def train(todo):
        asked.append(todo)
        return [{"accuracy": 0.6 + seed / 10} for _, seed in todo]

    log.run([("a", 0), ("a", 1), ("a", 2)], train)
    log.run([("a", 0), ("a", 1)], train)  # all finished: not called
    assert asked == [[("a", 1), ("a", 2)]]
    assert make_log(tmp_path, resume=True).accuracies(["a"], [0, 1, 2])["a"] == {
        0: 0.5, 1: 0.7, 2: 0.8}


def test_a_line_cut_off_by_a_kill_is_dropped_and_the_next_trial_gets_its_own_line(tmp_path):
    path = tmp_path / "x.trials.jsonl"
    make_log(tmp_path).append("a", 0, 0.5)
    with open(path, "a") as file:
        file.write('{"option": "a", "seed": 1, "accu')  # killed mid-write
    resumed = make_log(tmp_path, resume=True)
    assert resumed.accuracies(["a"], [0, 1])["a"] == {0: 0.5}
    resumed.append("a", 1, 0.6)
    assert make_log(tmp_path, resume=True).accuracies(["a"], [0, 1])["a"] == {0: 0.5, 1: 0.6}


@pytest.mark.parametrize("damage, message", [
    ('{"option": "a", "seed": 2, "accuracy": 0.7}\nnot json\n', "line 3: not a trial record"),
    ('{"option": "a", "seed": "two", "accuracy": 0.7}\n', "line 2: not a trial record"),
    ('{"option": "a", "seed": 2}\n', "line 2: not a trial record"),
])
def test_other_damage_is_one_error_naming_the_line(tmp_path, damage, message):
    path = tmp_path / "x.trials.jsonl"
    make_log(tmp_path)
    with open(path, "a") as file:
        file.write(damage)
    with pytest.raises(cli.UserInputError, match=message):
        make_log(tmp_path, resume=True)


@pytest.mark.parametrize("content", [b'{"option": "a"}\n', b"\xff\xfe binary\n"])
def test_a_file_that_is_no_trials_file_is_one_error(tmp_path, content):
    (tmp_path / "x.trials.jsonl").write_bytes(content)
    with pytest.raises(cli.UserInputError, match="not a t"):
        make_log(tmp_path, resume=True)


@pytest.mark.parametrize("shard, expected", [("", [10, 11, 12, 13, 14]), ("1/2", [10, 12, 14]),
                                             ("2/2", [11, 13]), ("3/3", [12])])
def test_shards_split_the_trials_between_them(shard, expected):
    assert trial_log.shard_seeds([10, 11, 12, 13, 14], shard) == expected


@pytest.mark.parametrize("shard", ["0/2", "3/2", "a/b", "2"])
def test_a_bad_shard_names_the_flag(shard):
    with pytest.raises(cli.UserInputError, match="--shard"):
        trial_log.shard_seeds([0, 1], shard)


def test_a_config_becomes_the_flags_that_give_it_back():
    config = cli.parse_config(tl_mnist.Config, ["--quick", "--epochs", "7", "--data", "a.npz"],
                              "", tl_mnist.QUICK)
    argv = cli.config_argv(config, jobs=1, resume=True, shard=None)
    again = cli.parse_config(tl_mnist.Config, argv, "", tl_mnist.QUICK)
    assert again == dataclasses.replace(config, resume=True)


def test_ctrl_c_ends_with_the_summary_of_the_finished_trials(mnist_like_npz, tmp_path,
                                                              monkeypatch, capsys):
    engine = trials.train_and_test

    def interrupted_in_option_2(models, *args, **kwargs):  # Ctrl-C while "transfer" trains
        if kwargs.get("label", args[5] if len(args) > 5 else "").startswith("transfer"):
            raise KeyboardInterrupt
        return engine(models, *args, **kwargs)

    monkeypatch.setattr(trials, "train_and_test", interrupted_in_option_2)
    config = tl_mnist.Config(data=mnist_like_npz, trials=2, epochs=2, pretrain_epochs=1,
                             small_size=10, out=str(tmp_path), models_dir=str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        tl_mnist.main(config)
    printed = capsys.readouterr().out
    assert "interrupted (Ctrl-C)" in printed and "summary" in printed
    with open(tmp_path / "tl_mnist.json") as file:
        results = json.load(file)
    assert results["complete"] is False and list(results["summary"]) == ["no transfer"]
    assert len(results["accuracies"]["no transfer"]) == 2 and results["comparisons"] == []


def tl_mnist_command(data: str, folder: str, *extra: str) -> list[str]:
    # 10 images per trial, 3 steps per epoch: option 2 trains for a few seconds, long
    # enough to kill the run after option 1's trials are written and before it ends.
    return [sys.executable, os.path.join(ROOT, "tl_mnist.py"), "--data", data, "--trials", "2",
            "--epochs", "250", "--pretrain-epochs", "1", "--small-size", "10",
            "--test-size", "40", "--out", folder, "--models-dir", folder, *extra]


def trial_lines(path: str) -> list[dict]:
    with open(path) as file:
        return [json.loads(line) for line in file.read().splitlines()[1:]]


def stop_after_option_1(command: list[str], path: str, stop: signal.Signals,
                        ) -> subprocess.Popen:
    """Starts the run, waits until option 1's two trials are in the file, then sends `stop`."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if os.path.isfile(path) and len(trial_lines(path)) >= 2:
            break
        time.sleep(0.05)
    process.send_signal(stop)
    return process


def test_a_killed_run_resumes_keeping_every_finished_trial(mnist_like_npz, tmp_path):
    folder = str(tmp_path / "run")
    path = os.path.join(folder, "tl_mnist.trials.jsonl")
    # SIGKILL: no chance to clean up, the hardest stop.
    process = stop_after_option_1(tl_mnist_command(mnist_like_npz, folder), path, signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    finished = trial_lines(path)
    assert [(r["option"], r["seed"]) for r in finished] == [("no transfer", 0), ("no transfer", 1)]

    resumed = subprocess.run(tl_mnist_command(mnist_like_npz, folder, "--resume"),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 2 finished trials" in resumed.stdout
    assert "option 1" not in resumed.stdout  # its trials were not trained again
    lines = trial_lines(path)
    assert lines[:2] == finished and len(lines) == 4
    with open(os.path.join(folder, "tl_mnist.json")) as file:
        results = json.load(file)
    assert results["complete"] and results["summary"]["transfer"]["n"] == 2



def test_ctrl_c_stops_at_the_epoch_end_with_a_summary_and_status_130(mnist_like_npz, tmp_path):
    path = str(tmp_path / "tl_mnist.trials.jsonl")
    process = stop_after_option_1(tl_mnist_command(mnist_like_npz, str(tmp_path)), path,
                                  signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Ctrl-C: stopping at the end of this epoch" in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("tl_mnist.py: interrupted; every finished")
    assert "interrupted (Ctrl-C)" in out and "no transfer        2" in out
    with open(tmp_path / "tl_mnist.json") as file:
        results = json.load(file)
    assert results["complete"] is False and list(results["summary"]) == ["no transfer"]


def test_jobs_give_the_same_results_as_one_process(mnist_like_npz, tmp_path):
    command = tl_mnist_command(mnist_like_npz, str(tmp_path), "--jobs", "2", "--epochs", "20")
    in_jobs = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert in_jobs.returncode == 0, in_jobs.stderr
    assert in_jobs.stdout.count("finished: ") == 4
    with open(tmp_path / "tl_mnist.json") as file:
        from_jobs = json.load(file)
    config = cli.parse_config(tl_mnist.Config, command[2:], "", tl_mnist.QUICK)
    serial = tl_mnist.main(dataclasses.replace(config, jobs=1, out=str(tmp_path / "serial")))
    assert from_jobs["accuracies"] == serial["accuracies"]
    assert from_jobs["trial_seeds"] == serial["trial_seeds"] == {"no transfer": [0, 1],
                                                                 "transfer": [0, 1]}


def test_a_damaged_trials_file_is_one_line_with_resume(mnist_like_npz, tmp_path, capsys):
    (tmp_path / "tl_mnist.trials.jsonl").write_text("{not json\n{}\n")
    config = tl_mnist.Config(data=mnist_like_npz, out=str(tmp_path), resume=True)
    assert cli.run_script(tl_mnist.main, config, "tl_mnist.py") == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "tl_mnist.trials.jsonl line 1" in error


def test_more_trials_on_resume_train_only_the_new_ones_with_the_same_results(
        mnist_like_npz, tmp_path, capsys):
    import mnist_vgg

    def run(folder: str, trials: int, resume: bool = False) -> dict:
        return mnist_vgg.main(mnist_vgg.Config(
            data=mnist_like_npz, dataset="mnist", weights="none", variants="plain,dropout",
            trials=trials, epochs=2, small_size=10, test_size=30, out=str(tmp_path / folder),
            resume=resume))

    whole = run("whole", 3)
    run("grown", 2)
    capsys.readouterr()
    grown = run("grown", 3, resume=True)
    assert "resuming: 4 finished trials" in capsys.readouterr().out
    assert grown["accuracies"] == whole["accuracies"] and grown["complete"]
    assert len(trial_lines(str(tmp_path / "grown" / "mnist_vgg.trials.jsonl"))) == 6


def test_jobs_with_a_shard_is_refused_before_anything_is_written(tmp_path):
    config = tl_mnist.Config(jobs=2, shard="1/2", out=str(tmp_path / "out"))
    dataset = data.load_digits_as_mnist()
    with pytest.raises(cli.UserInputError, match="--jobs 2 with --shard 1/2"):
        Experiment("tl_mnist", config, dataset, tl_mnist.one_trial)
    assert not os.listdir(tmp_path)


def test_a_shard_without_trials_is_refused(tmp_path):
    config = tl_mnist.Config(trials=2, shard="3/3", out=str(tmp_path / "out"))
    with pytest.raises(cli.UserInputError, match="--shard 3/3: no trial falls to this shard"):
        Experiment("tl_mnist", config, data.load_digits_as_mnist(), tl_mnist.one_trial)

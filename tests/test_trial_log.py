"""The trials file: finished trials survive a kill, --resume goes on, shards merge, --jobs
gives the same results."""

import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import tl_mnist
from common import engine
from common.runs import cli, trial_log
from conftest import ROOT


@dataclasses.dataclass(frozen=True)
class Config(cli.RunFlags):
    """A script's config in small: result fields, and operational ones (--out, --trials)."""

    trials: int = cli.shared("trials", 3)
    seed: int = cli.shared("seed", 0)
    epochs: int = cli.shared("epochs", 5)
    out: str = cli.shared("out", "results")


@dataclasses.dataclass
class Data:
    """What a TrialLog needs of a `data.Dataset`."""

    name: str = "mnist"


def make_log(tmp_path, **changes) -> trial_log.TrialLog:
    config = Config(**{"out": str(tmp_path), **changes})
    return trial_log.TrialLog("x", config, Data(), say=lambda line: None)


def test_each_trial_is_one_flushed_line_and_resume_reads_them_back(tmp_path):
    log = make_log(tmp_path)
    log.append("transfer", 0, 0.93, history={"loss": [1.0]})
    log.append("transfer", 1, 0.95)
    lines = (tmp_path / "x.trials.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["config"]["epochs"] == 5 and len(lines) == 3
    # Only the config fields that change results must match: --trials may differ.
    again = make_log(tmp_path, resume=True, trials=30)
    assert again.accuracies(["transfer", "other"]) == {"transfer": {0: 0.93, 1: 0.95},
                                                      "other": {}}
    assert again.records[("transfer", 0)]["history"] == {"loss": [1.0]}
    assert again.todo("transfer") == [2, *range(3, 30)]
    assert again.planned == ["transfer"]


def test_resume_refuses_another_config_naming_the_flag(tmp_path):
    make_log(tmp_path).append("a", 0, 0.5)
    with pytest.raises(cli.UserInputError, match=r"--epochs 5 -> 100"):
        make_log(tmp_path, resume=True, epochs=100)
    with pytest.raises(cli.UserInputError, match=r"the data used mnist -> digits"):
        trial_log.TrialLog("x", Config(out=str(tmp_path), resume=True), Data("digits"),
                           say=lambda line: None)


@pytest.mark.parametrize("script", ["tl_mnist", "mnist_vgg", "cifar_vgg", "transferability",
                                    "example_experiment"])
def test_after_the_shards_of_jobs_one_process_summarizes_in_every_script(script, monkeypatch):
    """--jobs N: after the shards, `main` runs once more, resuming, to summarize (with
    their pretrained model: no --retrain where the script has it)."""
    module = importlib.import_module(script)
    monkeypatch.setattr(cli, "run_in_shards", lambda main, config: False)
    retrain = {"retrain": True} if hasattr(module.Config, "retrain") else {}  # the shards'
    configs = []
    status = cli.run_script(configs.append, module.Config(jobs=2, **retrain), f"{script}.py")
    assert status == 0 and len(configs) == 1
    assert (configs[0].jobs, configs[0].resume, getattr(configs[0], "retrain", False)) == (
        1, True, False)


def test_a_new_run_keeps_an_earlier_file_with_trials_and_writes_nothing_before_a_trial(tmp_path):
    make_log(tmp_path).append("a", 0, 0.5)
    # A run that fails on bad input before its first trial leaves the file alone.
    make_log(tmp_path)
    assert "0.5" in (tmp_path / "x.trials.jsonl").read_text()
    make_log(tmp_path).append("b", 0, 0.6)
    make_log(tmp_path).append("c", 0, 0.7)
    kept = sorted(name for name in os.listdir(tmp_path) if name != "x.trials.jsonl")
    assert len(kept) >= 1 and all(name.startswith("x.trials.") for name in kept)
    assert "0.5" in "".join((tmp_path / name).read_text() for name in kept)
    assert "0.7" in (tmp_path / "x.trials.jsonl").read_text()


def test_record_writes_only_the_missing_trials_as_they_come(tmp_path):
    log = make_log(tmp_path)
    log.append("a", 0, 0.5)
    seeds = log.todo("a")
    assert seeds == [1, 2]
    written = []

    def results():  # as the plain path yields them, one trial after the other
        for seed in [0, *seeds]:
            yield seed, {"accuracy": 0.6 + seed / 10}
            written.append(len(make_log(tmp_path, resume=True).records))

    log.record("a", results())
    assert written == [1, 2, 3]  # each trial on disk before the next one trains
    assert make_log(tmp_path, resume=True).accuracies(["a"])["a"] == {0: 0.5, 1: 0.7, 2: 0.8}


def test_a_fine_tuned_record_starts_with_its_first_stage_history(tmp_path):
    log = make_log(tmp_path)
    first = {"accuracy": 0.5, "history": {"accuracy": [0.4, 0.5], "loss": [2.0, 1.0]}}
    second = {"accuracy": 0.7, "history": {"accuracy": [0.7], "loss": [0.5]}}
    log.record("a", [(0, first)])
    log.record("a", [(0, second)], stage=" + fine-tune")
    assert log.records[("a + fine-tune", 0)]["history"] == {
        "accuracy": [0.4, 0.5, 0.7], "loss": [2.0, 1.0, 0.5], "fine_tune_start": 2}


def test_a_line_cut_off_by_a_kill_is_dropped_and_the_next_trial_gets_its_own_line(tmp_path):
    path = tmp_path / "x.trials.jsonl"
    make_log(tmp_path).append("a", 0, 0.5)
    with open(path, "a") as file:
        file.write('{"option": "a", "seed": 1, "accu')  # killed mid-write
    resumed = make_log(tmp_path, resume=True)
    assert resumed.accuracies(["a"])["a"] == {0: 0.5}
    resumed.append("a", 1, 0.6)
    assert make_log(tmp_path, resume=True).accuracies(["a"])["a"] == {0: 0.5, 1: 0.6}


def test_resume_merges_the_shards_files_and_refuses_another_runs(tmp_path):
    for shard, accuracy in (("1/2", 0.5), ("2/2", 0.6)):
        make_log(tmp_path, shard=shard).record("a", [(int(shard[0]) - 1, {"accuracy": accuracy})])
    assert sorted(os.listdir(tmp_path)) == ["x.shard-1-of-2.trials.jsonl",
                                            "x.shard-2-of-2.trials.jsonl"]
    merged = make_log(tmp_path, resume=True)
    assert merged.accuracies(["a"])["a"] == {0: 0.5, 1: 0.6}
    assert len((tmp_path / "x.trials.jsonl").read_text().splitlines()) == 3
    make_log(tmp_path, shard="1/3", epochs=9).append("a", 2, 0.7)
    with pytest.raises(cli.UserInputError, match=r"shard-1-of-3.*--epochs 9 -> 5"):
        make_log(tmp_path, resume=True)


@pytest.mark.parametrize("damage, message", [
    ('{"option": "a", "seed": 2, "accuracy": 0.7}\nnot json\n', "line 4: not a trial record"),
    ('{"option": "a", "seed": "two", "accuracy": 0.7}\n', "line 3: not a trial record"),
    ('{"option": "a", "seed": 2}\n', "line 3: not a trial record"),
])
def test_other_damage_is_one_error_naming_the_line(tmp_path, damage, message):
    path = tmp_path / "x.trials.jsonl"
    make_log(tmp_path).append("a", 0, 0.5)  # the header, then one trial
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
    original = engine.train_trials

    def interrupted_in_option_2(models, *args, **kwargs):  # Ctrl-C while "transfer" trains
        if kwargs.get("label", "").startswith("transfer"):
            raise KeyboardInterrupt
        return original(models, *args, **kwargs)

    monkeypatch.setattr(engine, "train_trials", interrupted_in_option_2)
    config = tl_mnist.Config(data=mnist_like_npz, trials=2, epochs=2, pretrain_epochs=1,
                             small_size=10, out=str(tmp_path), models_dir=str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        tl_mnist.main(config)
    printed = capsys.readouterr().out
    assert "interrupted (Ctrl-C or SIGTERM)" in printed and "summary" in printed
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



@pytest.mark.parametrize("stop, said", [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_ctrl_c_or_sigterm_stops_at_the_epoch_end_with_a_summary_and_status_130(
        mnist_like_npz, tmp_path, stop, said):
    """SIGTERM, a cluster's time limit, stops a run as Ctrl-C does: a summary of the
    finished trials, and --resume goes on from them."""
    path = str(tmp_path / "tl_mnist.trials.jsonl")
    process = stop_after_option_1(tl_mnist_command(mnist_like_npz, str(tmp_path)), path, stop)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert f"{said}: stopping at the end of this epoch" in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("tl_mnist.py: interrupted; every finished")
    assert "interrupted (Ctrl-C or SIGTERM)" in out and "no transfer        2" in out
    with open(tmp_path / "tl_mnist.json") as file:
        results = json.load(file)
    assert results["complete"] is False and list(results["summary"]) == ["no transfer"]


def test_jobs_give_the_same_results_as_one_process(mnist_like_npz, tmp_path):
    """--jobs 2 runs two shard processes of the same command, then the summary once; the
    trials and the JSON's accuracies equal those of --jobs 1."""
    runs = {}
    for jobs in ("2", "1"):
        folder = str(tmp_path / f"jobs{jobs}")
        command = tl_mnist_command(mnist_like_npz, folder, "--jobs", jobs, "--epochs", "20")
        runs[jobs] = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert runs[jobs].returncode == 0, runs[jobs].stderr
    assert runs["2"].stdout.count("finished: ") == 4 and "finished: " not in runs["1"].stdout
    results = {}
    for jobs in ("2", "1"):
        with open(tmp_path / f"jobs{jobs}" / "tl_mnist.json") as file:
            results[jobs] = json.load(file)
    assert results["2"]["accuracies"] == results["1"]["accuracies"]
    assert results["2"]["trial_seeds"] == results["1"]["trial_seeds"] == {
        "no transfer": [0, 1], "transfer": [0, 1]}
    lines = {jobs: sorted((r["option"], r["seed"], r["accuracy"]) for r in trial_lines(
        str(tmp_path / f"jobs{jobs}" / "tl_mnist.trials.jsonl"))) for jobs in ("2", "1")}
    assert lines["2"] == lines["1"] and len(lines["1"]) == 4
    # The code after the trials in main ran once in each process: the launcher's own
    # summary once, and each shard's summary (of its own trials) once in its log.
    assert runs["2"].stdout.count("\nsummary: ") == 1 == runs["1"].stdout.count("\nsummary: ")
    for job in (1, 2):
        log = (tmp_path / "jobs2" / f"tl_mnist.job{job}.log").read_text()
        assert log.count("\nsummary: ") == 1 and log.count(f"shard {job}/2: its trials") == 1
    # One shard pretrained the base while the other waited for it, then reused it.
    logs = [(tmp_path / "jobs2" / f"tl_mnist.job{job}.log").read_text() for job in (1, 2)]
    assert sum(log.count("pretraining on") for log in logs) == 1
    assert "pretraining on" not in runs["2"].stdout and "reusing" in runs["2"].stdout


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
            data=mnist_like_npz, dataset="mnist", weights="none", options="output,dropout",
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
    with pytest.raises(cli.UserInputError, match="--jobs 2 with --shard 1/2"):
        make_log(tmp_path / "out", jobs=2, shard="1/2")
    assert not os.listdir(tmp_path)


def test_a_shard_without_trials_is_refused(tmp_path):
    with pytest.raises(cli.UserInputError, match="--shard 3/3: no trial falls to this shard"):
        make_log(tmp_path / "out", trials=2, shard="3/3")


def test_a_stop_during_the_engines_last_epoch_keeps_every_trial_it_finished(tmp_path):
    from common.errors import STOP_REQUESTED

    log = make_log(tmp_path)
    STOP_REQUESTED.set()  # Ctrl-C arrived while the engine scored its finished trials
    try:
        with pytest.raises(KeyboardInterrupt):
            log.record("a", [(0, {"accuracy": 0.5}), (1, {"accuracy": 0.6})])
        assert log.todo("b") == []  # and no new trial starts
    finally:
        STOP_REQUESTED.clear()
    assert make_log(tmp_path, resume=True).accuracies(["a"])["a"] == {0: 0.5, 1: 0.6}


def test_an_interrupted_transferability_run_still_summarizes_every_model(mnist_like_npz,
                                                                         tmp_path, monkeypatch,
                                                                         capsys):
    import transferability

    original = engine.train_trials

    def interrupted_after_the_first_group(models, *args, **kwargs):
        if kwargs.get("label") != "AnB-frozen":
            raise KeyboardInterrupt
        return original(models, *args, **kwargs)

    monkeypatch.setattr(engine, "train_trials", interrupted_after_the_first_group)
    config = cli.parse_config(transferability.Config, [
        "--quick", "--data", mnist_like_npz, "--out", str(tmp_path), "--models-dir",
        str(tmp_path)], "", transferability.QUICK)
    with pytest.raises(KeyboardInterrupt):
        transferability.main(config)
    with open(tmp_path / "transferability.json") as file:
        results = json.load(file)
    assert results["complete"] is False and len(results["accuracies"]) == 20
    assert [len(results["accuracies"][f"{n}AnB-frozen"]) for n in range(1, 6)] == [1] * 5
    assert results["table"]["models"]["BnB-frozen"] == [None] * 5
    assert "interrupted (Ctrl-C or SIGTERM)" in capsys.readouterr().out

"""Trials over a SLURM job array: --shard auto from the array's environment, the sbatch
script the toolkit prints, and an array of 3 simulated by separate processes whose
merged result is the single run's, trial for trial."""

import json
import os
import subprocess
import sys

import pytest

from common.errors import UserInputError
from common.runs import slurm
from conftest import ROOT


@pytest.mark.parametrize("task, first, count, shard", [
    ("1", "1", "3", "1/3"), ("7", "5", "3", "3/3"), ("0", "0", "2", "1/2")])
def test_the_array_task_is_its_shard(task, first, count, shard):
    environment = {"SLURM_ARRAY_TASK_ID": task, "SLURM_ARRAY_TASK_MIN": first,
                   "SLURM_ARRAY_TASK_COUNT": count}
    assert slurm.array_shard(environment) == shard


def test_outside_an_array_shard_auto_is_one_line_naming_the_fix():
    with pytest.raises(UserInputError, match="--shard auto: not inside a SLURM job array"):
        slurm.array_shard({})


def test_the_printed_sbatch_script_is_valid_bash(tmp_path):
    printed = subprocess.run([sys.executable, "-m", "common.runs.slurm", "3", "python",
                              "tl_mnist.py", "--data", "my data.npz", "--trials", "30"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    script = printed.stdout
    assert "#SBATCH --array=1-3" in script
    assert "python tl_mnist.py --data 'my data.npz' --trials 30 --shard auto --resume" in script
    assert "#   python tl_mnist.py --data 'my data.npz' --trials 30 --resume" in script
    path = tmp_path / "job.sh"
    path.write_text(script)
    checked = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_a_command_with_its_own_shard_is_refused():
    printed = subprocess.run([sys.executable, "-m", "common.runs.slurm", "3", "python",
                              "tl_mnist.py", "--shard", "1/3"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    assert printed.returncode == 2 and "must not have --shard" in printed.stderr


def test_an_array_of_three_merged_gives_the_single_runs_trials(mnist_like_npz, tmp_path):
    command = [sys.executable, os.path.join(ROOT, "tl_mnist.py"), "--data", mnist_like_npz,
               "--trials", "3", "--epochs", "3", "--pretrain-epochs", "1", "--small-size", "10",
               "--test-size", "40", "--models-dir", str(tmp_path / "models")]
    array = tmp_path / "array"
    tasks = [subprocess.Popen([*command, "--out", str(array), "--shard", "auto", "--resume"],
                              env={**os.environ, "SLURM_ARRAY_TASK_ID": str(task),
                                   "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for task in (1, 2, 3)]
    for task in tasks:
        out, err = task.communicate(timeout=300)
        assert task.returncode == 0, err
    assert {f"tl_mnist.shard-{k}-of-3.trials.jsonl" for k in (1, 2, 3)} <= set(os.listdir(array))
    merged = subprocess.run([*command, "--out", str(array), "--resume"], capture_output=True,
                            text=True, timeout=300)
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.count("merged 2 trials from") == 3  # each shard: one seed, 2 options
    single = subprocess.run([*command, "--out", str(tmp_path / "single")], capture_output=True,
                            text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    results = {}
    for name in ("array", "single"):
        with open(tmp_path / name / "tl_mnist.json") as file:
            results[name] = json.load(file)
    assert results["array"]["accuracies"] == results["single"]["accuracies"]
    assert results["array"]["trial_seeds"] == results["single"]["trial_seeds"]
    assert results["array"]["complete"] and results["array"]["shard"] is None

"""Trials spread over a SLURM job array: each array task one `--shard`, merged after.

- `--shard auto` takes the shard from the array task's environment
  (`SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN`, `SLURM_ARRAY_TASK_COUNT`).
- `python -m common.runs.slurm TASKS python tl_mnist.py --data mnist.npz` prints a ready
  `sbatch` script: an array of TASKS tasks running that command with `--shard auto
  --resume` (a task ended by its time limit, SIGTERM, keeps its finished trials, and
  the resubmitted task goes on from them), and, as its last comment, the command
  that merges the shards into the run's JSON, table and plot.
"""

import os
import shlex
import sys
from collections.abc import Mapping, Sequence

from common.errors import UserInputError

AUTO = "auto"  # --shard auto: the shard of this SLURM array task


def array_shard(environment: Mapping[str, str] = os.environ) -> str:
    """The "K/N" shard of this SLURM array task (K counts from 1, whatever the first
    task's ID).

    Raises:
        UserInputError: not inside a SLURM array task.
    """
    try:
        task = int(environment["SLURM_ARRAY_TASK_ID"])
        first = int(environment.get("SLURM_ARRAY_TASK_MIN", "0"))
        count = int(environment["SLURM_ARRAY_TASK_COUNT"])
    except (KeyError, ValueError):
        raise UserInputError("--shard auto: not inside a SLURM job array (SLURM_ARRAY_TASK_ID "
                             "and SLURM_ARRAY_TASK_COUNT are not set); pass --shard K/N, or "
                             "submit with sbatch --array") from None
    if not 0 <= task - first < count:
        raise UserInputError(f"--shard auto: SLURM array task {task} is outside the array "
                             f"(first task {first}, {count} tasks); use --array=1-{count}")
    return f"{task - first + 1}/{count}"


def sbatch_script(tasks: int, command: Sequence[str], folder: str, hours: int = 4) -> str:
    """An sbatch job-array script that runs `command` as `tasks` shards in `folder`."""
    name = os.path.splitext(os.path.basename(command[1]))[0] if len(command) > 1 else "run"
    shard = [part for part in command if part not in ("--resume",)]
    line = shlex.join([*shard, "--shard", AUTO, "--resume"])
    merge = shlex.join([*shard, "--resume"])
    return "\n".join([
        "#!/bin/bash",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --array=1-{tasks}",
        "#SBATCH --cpus-per-task=2",
        f"#SBATCH --time={hours}:00:00",
        f"#SBATCH --output={name}.slurm-%A_%a.log",
        "#SBATCH --requeue",
        "# Each task trains every N-th trial into results/<script>.shard-K-of-N.trials.jsonl;",
        "# at its time limit SLURM sends SIGTERM, the task stops at the end of its epoch and",
        "# keeps its finished trials, and a requeued task goes on from them.",
        "set -euo pipefail",
        f"cd {shlex.quote(folder)}",
        line,
        "# When every task has finished, merge the shards into one JSON, table and plot:",
        f"#   {merge}",
        ""])


def main(argv: Sequence[str]) -> int:
    """`python -m common.runs.slurm TASKS COMMAND...`: prints the sbatch script."""
    if len(argv) < 2 or not argv[0].isdigit() or int(argv[0]) < 1:
        print("usage: python -m common.runs.slurm TASKS COMMAND... (e.g. 20 python "
              "tl_mnist.py --data mnist.npz --trials 200)", file=sys.stderr)
        return 2
    if any(part == "--shard" or part.startswith("--shard=") or part.startswith("--jobs")
           for part in argv[1:]):
        print("common.runs.slurm: error: the command must not have --shard or --jobs: each "
              "array task gets its own --shard auto", file=sys.stderr)
        return 2
    print(sbatch_script(int(argv[0]), argv[1:], os.getcwd()), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

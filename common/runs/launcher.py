"""`--jobs N`: the same command as N shard processes, their trials merged after.

The launcher stands outside every script's `main`: `common.runs.cli.run_script` calls
it instead of `main` when `--jobs` is above 1. It starts `script <flags> --shard k/N`
for k = 1..N, each process training every N-th trial into its own trials file
(`common.runs.trial_log`), and waits for them. Then `run_script` calls `main` once
with `--resume`: it merges the shards' files, finds every trial finished, and writes
the same summary, JSON and plots as a single process would.
"""

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from common.errors import STOP_REQUESTED, UserInputError
from common.runs import trial_log

INTERRUPTED = 130  # the exit status of a script stopped by Ctrl-C (see `cli.run_script`)


def run_shards(script: str, argv: Sequence[str], jobs: int, out: str, name: str,
               say: Callable[[str], None] = print, poll_s: float = 0.5) -> bool:
    """Runs `script argv --shard k/jobs` in `jobs` processes and waits for them all.

    Each process appends its trials to its shard file in `out`; every new trial is
    announced as it lands. A process's own output goes to `<out>/<name>.jobK.log`.

    Args:
        script: the script's file.
        argv: its flags, without --jobs and --shard.
        jobs: how many processes.
        out: the run's output folder (--out).
        name: the script's name ("tl_mnist"), which names its files.

    Returns:
        True when the processes were interrupted (Ctrl-C reaches them too).

    Raises:
        UserInputError: a process failed; its log file is named with its last line.
    """
    os.makedirs(out, exist_ok=True)
    logs = [os.path.join(out, f"{name}.job{job}.log") for job in range(1, jobs + 1)]
    processes = []
    for job, log in enumerate(logs, start=1):
        with open(log, "w") as output:
            command = [sys.executable, script, *argv, "--shard", f"{job}/{jobs}"]
            processes.append(subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT))
    say(f"  {jobs} processes started, one shard of the trials each; their output: "
        f"{os.path.join(out, name)}.job*.log")
    seen: set[tuple[str, int]] = set()
    # Ctrl-C in a terminal reaches every process; a SIGTERM sent to this one alone (a
    # scheduler's time limit) is passed on, so that each shard stops at its epoch's end.
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, functools.partial(pass_on_sigterm, processes, previous))
    try:
        while any(process.poll() is None for process in processes):
            time.sleep(poll_s)
            seen = announce_new_trials(out, name, seen, say)
    finally:  # interrupted: wait until the processes have written their trials
        for process in processes:
            process.wait()
        signal.signal(signal.SIGTERM, previous)
    announce_new_trials(out, name, seen, say)
    statuses = [process.returncode for process in processes]
    if STOP_REQUESTED.is_set() or INTERRUPTED in statuses:
        return True
    for log, status in zip(logs, statuses):
        if status != 0:
            with open(log) as output:
                lines = [line.strip() for line in output if line.strip()] or ["(no output)"]
            raise UserInputError(f"--jobs: a process ended with status {status}; see "
                                 f"{log}: {lines[-1]}")
    return False


def pass_on_sigterm(processes: Sequence[subprocess.Popen], previous: Any, signum: int,
                    frame: Any) -> None:
    """SIGTERM: sends it on to the shard processes still running, then handles it as
    before (`previous`: the script's stop at the end of the epoch)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    if callable(previous):
        previous(signum, frame)


def announce_new_trials(out: str, name: str, seen: set[tuple[str, int]],
                        say: Callable[[str], None]) -> set[tuple[str, int]]:
    """Says "finished: <option>, seed S: xx.x%" for each shard trial not in `seen`;
    returns every trial seen so far."""
    for path in trial_log.shard_files(out, name):
        for record in trial_log.read_trials_or_none(path) or []:
            trial = (record["option"], record["seed"])
            if trial not in seen:
                say(f"  finished: {record['option']}, seed {record['seed']}: "
                    f"{100 * record['accuracy']:.1f}%")
                seen = seen | {trial}
    return seen

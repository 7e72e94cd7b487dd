"""Finished trials on disk, the moment they finish: `<out>/<script>.trials.jsonl`.

The file's first line records the script and its config; each further line is one
finished trial (its option, seed, test accuracy and anything else worth keeping),
appended in one write and flushed to disk. A crash, a kill or Ctrl-C therefore loses
only the trials still training. `--resume` reads the file back and trains only the
trials it lacks, refusing when the config differs.

The same file lets independent processes share one experiment: `--shard K/N` runs
every N-th trial and appends it here, and `--jobs N` starts N such processes of the
script itself and waits for them (see `run_shards`).
"""

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from common.checkpoints import atomic_write_text
from common import cli
from common.cli import UserInputError

FORMAT = "trials-jsonl-1"
INTERRUPTED = 130  # the exit status of a script stopped by Ctrl-C (see `cli.run_script`)
# Config fields that change how a run is carried out, not its results: a resumed run
# may differ in these. (--trials too: trials are keyed by seed, so a run of 15 can be
# resumed with --trials 30 to add 15 more.)
OPERATIONAL_FIELDS = {field.name for field in dataclasses.fields(cli.RunFlags)} | {
    "out", "feature_cache", "retrain", "models_dir", "quick", "trials"}

Trial = tuple[str, int]  # (option, seed)


def trials_path(out: str, script: str) -> str:
    return os.path.join(out, f"{script}.trials.jsonl")


def parse_shard(shard: str) -> tuple[int, int]:
    """'K/N' -> (K, N), 1 <= K <= N; '' -> (1, 1), the whole run.

    Raises:
        UserInputError: anything else, naming --shard.
    """
    if not shard:
        return 1, 1
    try:
        which, shards = (int(part) for part in shard.split("/"))
    except ValueError:
        which = shards = 0
    if not 1 <= which <= shards:
        raise UserInputError(f"--shard {shard}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return which, shards


def shard_seeds(seeds: Sequence[int], shard: str) -> list[int]:
    """The seeds shard K/N runs: trials K-1, K-1+N, K-1+2N, ... of `seeds`."""
    which, shards = parse_shard(shard)
    return list(seeds[which - 1::shards])


def read_trials(path: str) -> tuple[dict, list[dict]]:
    """The header and the trial records of a trials file.

    A last line cut off mid-write (no newline, not JSON) was a trial that never
    finished; it is left out. Any other damage is an error.

    Raises:
        UserInputError: not a trials file, or a damaged line, naming file and line.
    """
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().split("\n")
    except UnicodeDecodeError:
        raise UserInputError(f"{path}: not a text file, so not a trials file; move it away, "
                             "or rerun without --resume") from None
    records: list[dict] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or number == len(lines):  # (the last piece: empty, or cut off)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or (records and not valid_trial(record)):
            raise UserInputError(f"{path} line {number}: not a trial record (the file is "
                                 "damaged); remove that line, or rerun without --resume")
        records.append(record)
    if not records or records[0].get("format") != FORMAT:
        raise UserInputError(f"{path}: not a trials file of this toolkit (no header line); "
                             "move it away, or rerun without --resume")
    return records[0], records[1:]


def valid_trial(record: dict) -> bool:
    """Whether a line holds a trial: an option name, an integer seed, an accuracy."""
    return (isinstance(record.get("option"), str) and isinstance(record.get("seed"), int)
            and isinstance(record.get("accuracy"), (int, float)))


def cut_unfinished_line(path: str) -> None:
    """Removes a last line cut off mid-write, so the next trial starts on a line of its own."""
    with open(path, "rb+") as file:
        content = file.read()
        if content and not content.endswith(b"\n"):
            file.truncate(content.rfind(b"\n") + 1)


def read_trials_or_none(path: str) -> list[dict] | None:
    """The trial records of a file, or None if it is no readable trials file."""
    try:
        return read_trials(path)[1]
    except (UserInputError, OSError):
        return None


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """'--flag saved -> current' for each result-changing field that differs."""
    names = (set(saved) | set(current)) - OPERATIONAL_FIELDS
    return [f"--{name.replace('_', '-')} {saved.get(name)} -> {current.get(name)}"
            for name in sorted(names) if saved.get(name) != current.get(name)]


class TrialLog:
    """The finished trials of one run, kept in memory and in the trials file.

    Nothing is written until `start` (called by `Experiment` once every input has been
    checked), so a run that fails on bad input leaves an earlier run's file alone.

    Args:
        path: the trials file.
        script: the script's name, recorded in the header.
        config: what the results depend on: the run's config as a dict, plus anything
            else to check on --resume (e.g. the dataset actually used).
        resume: continue from the trials in `path` (same config) instead of starting over.
        say: where progress lines go.

    Raises:
        UserInputError: `resume` and the file's config differs, or the file is damaged.
    """

    def __init__(self, path: str, script: str, config: Mapping[str, Any], resume: bool,
                 say: Callable[[str], None] = print):
        self.path, self.say = path, say
        self.header = {"format": FORMAT, "script": script, "config": dict(config),
                       "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.records: dict[Trial, dict] = {}
        self.resuming = resume and os.path.isfile(path)
        if self.resuming:
            header, records = read_trials(path)
            differences = config_differences(header.get("config", {}), config)
            if header.get("script") != script or differences:
                raise UserInputError(
                    f"--resume: {path} holds a run with another config "
                    f"({'; '.join(differences) or 'script ' + str(header.get('script'))}); "
                    "rerun with the same flags, or without --resume to start over")
            self._add(records)
            say(f"resuming: {len(self.records)} finished trials from {path}")
        elif resume:
            say(f"--resume: no {path} yet, starting from the first trial")

    def start(self) -> None:
        """Makes the file ready for appending: the earlier run's file, when resuming;
        else a new file (an older one with finished trials is kept under its date)."""
        if self.resuming:
            cut_unfinished_line(self.path)
            return
        if os.path.isfile(self.path) and read_trials_or_none(self.path):
            kept = f"{self.path[:-len('.jsonl')]}.{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
            os.replace(self.path, kept)  # never silently drop finished trials
            self.say(f"  (the previous run's finished trials are kept in {kept})")
        atomic_write_text(self.path, json.dumps(self.header) + "\n")
        self.resuming = True  # from now on this run's own file

    def _add(self, records: Iterable[dict]) -> None:
        for record in records:
            self.records.setdefault((record["option"], int(record["seed"])), record)

    def reload(self) -> None:
        """Reads trials other processes appended (see `run_shards`)."""
        self._add(read_trials(self.path)[1])

    def missing(self, trials: Iterable[Trial]) -> list[Trial]:
        """The given (option, seed) trials that have not finished yet, in order."""
        return [trial for trial in trials if trial not in self.records]

    def append(self, option: str, seed: int, accuracy: float, **extra: Any) -> None:
        """Records one finished trial: one line, one write, flushed to disk."""
        record = {"option": option, "seed": int(seed), "accuracy": float(accuracy), **extra}
        line = (json.dumps(record) + "\n").encode("utf-8")
        # O_APPEND and a single write: concurrent shards never interleave their lines.
        handle = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(handle, line)
            os.fsync(handle)
        finally:
            os.close(handle)
        self.records[(option, int(seed))] = record

    def run(self, trials: Sequence[Trial], train: Callable[[list[Trial]], list[dict]]) -> None:
        """Trains the trials not finished yet, all at once, and records each.

        Args:
            trials: (option, seed) pairs.
            train: trains the given trials side by side and returns one record per
                trial ({"accuracy": ..., plus extras}) in the same order.
        """
        todo = self.missing(trials)
        if not todo:
            return
        for (option, seed), record in zip(todo, train(todo), strict=True):
            self.append(option, seed, **record)

    def accuracies(self, options: Iterable[str],
                   seeds: Sequence[int]) -> dict[str, dict[int, float]]:
        """Finished accuracies per option, by seed in the order of `seeds`."""
        return {option: {seed: self.records[(option, seed)]["accuracy"] for seed in seeds
                         if (option, seed) in self.records} for option in options}

    def extra(self, option: str, seeds: Sequence[int], key: str) -> list:
        """One extra field (e.g. "history") of an option's finished trials, in seed order."""
        return [self.records[(option, seed)][key] for seed in seeds
                if (option, seed) in self.records]


def run_shards(script: str, argv: Sequence[str], jobs: int, log: TrialLog,
               say: Callable[[str], None] = print, poll_s: float = 0.5) -> bool:
    """Runs `script argv --shard k/jobs` in `jobs` processes and waits for them all.

    Each process appends its trials to the log's file; every new trial is announced as
    it lands. A process's own output goes to `<trials file>.jobK.log`.

    Returns:
        True when the processes were interrupted (Ctrl-C reaches them too).

    Raises:
        UserInputError: a process failed; its log file is named with its last line.
    """
    processes = []
    stem = log.path[:-len(".jsonl")]
    for job in range(1, jobs + 1):
        with open(f"{stem}.job{job}.log", "w") as output:
            command = [sys.executable, script, *argv, "--shard", f"{job}/{jobs}"]
            processes.append(subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT))
    say(f"  {jobs} processes started; their output: {stem}.job*.log")
    seen = set(log.records)
    try:
        while any(process.poll() is None for process in processes):
            time.sleep(poll_s)
            log.reload()
            for option, seed in sorted(set(log.records) - seen, key=lambda trial: trial[1]):
                say(f"  finished: {option}, seed {seed}: "
                    f"{100 * log.records[(option, seed)]['accuracy']:.1f}%")
            seen = set(log.records)
    finally:  # Ctrl-C: the processes got it too; wait until they have written their trials
        for process in processes:
            process.wait()
    statuses = [process.returncode for process in processes]
    if cli.STOP_REQUESTED.is_set() or INTERRUPTED in statuses:
        return True
    for job, status in enumerate(statuses, start=1):
        if status != 0:
            with open(f"{stem}.job{job}.log") as output:
                lines = [line.strip() for line in output if line.strip()] or ["(no output)"]
            raise UserInputError(f"--jobs: process {job} ended with status {status}; see "
                                 f"{stem}.job{job}.log: {lines[-1]}")
    return False


def end_of_shard(log: TrialLog, config: Any, interrupted: bool) -> None:
    """What a `--shard` process does after its trials: say where they are (and exit 130
    when interrupted, so a job scheduler sees it); the summary is the whole run's job."""
    print(f"shard {config.shard}: its finished trials are in {log.path}")
    if interrupted:
        raise KeyboardInterrupt

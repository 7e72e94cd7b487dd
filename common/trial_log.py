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
# Config fields that change how a run is carried out, not its results: a resumed run
# may differ in these. (--trials too: trials are keyed by seed, so a run of 15 can be
# resumed with --trials 30 to add 15 more.)
OPERATIONAL_FIELDS = {"out", "resume", "jobs", "shard", "feature_cache", "retrain",
                      "models_dir", "quick", "trials"}

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
        k, n = (int(part) for part in shard.split("/"))
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise UserInputError(f"--shard {shard}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return k, n


def shard_seeds(seeds: Sequence[int], shard: str) -> list[int]:
    """The seeds shard K/N runs: trials K-1, K-1+N, K-1+2N, ... of `seeds`."""
    k, n = parse_shard(shard)
    return list(seeds[k - 1::n])


def read_trials(path: str) -> tuple[dict, list[dict]]:
    """The header and the trial records of a trials file.

    A last line cut off mid-write (no newline, not JSON) was a trial that never
    finished; it is left out. Any other damage is an error.

    Raises:
        UserInputError: not a trials file, or a damaged line, naming file and line.
    """
    with open(path, encoding="utf-8") as file:
        text = file.read()
    lines = text.split("\n")
    records: list[dict] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # the unfinished last line of a killed run
                continue
            raise UserInputError(f"{path} line {number}: not a JSON record (the file is "
                                 "damaged); delete it, or rerun without --resume") from None
        if not isinstance(record, dict):
            raise UserInputError(f"{path} line {number}: not a JSON object (damaged file)")
        records.append(record)
    if not records or records[0].get("format") != FORMAT:
        raise UserInputError(f"{path}: not a trials file of this toolkit (no header line); "
                             "delete it, or rerun without --resume")
    for number, record in enumerate(records[1:], start=2):
        if not {"option", "seed", "accuracy"} <= set(record):
            raise UserInputError(f"{path}: record {number} lacks option, seed or accuracy "
                                 "(damaged file); delete it, or rerun without --resume")
    return records[0], records[1:]


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """'--flag saved -> current' for each result-changing field that differs."""
    names = (set(saved) | set(current)) - OPERATIONAL_FIELDS
    return [f"--{name.replace('_', '-')} {saved.get(name)} -> {current.get(name)}"
            for name in sorted(names) if saved.get(name) != current.get(name)]


class TrialLog:
    """The finished trials of one run, kept in memory and in the trials file.

    Args:
        path: the trials file.
        script: the script's name, recorded in the header.
        config: the run's config as a dict.
        resume: continue from the trials in `path` (same config) instead of starting over.
        say: where progress lines go.

    Raises:
        UserInputError: `resume` and the file's config differs, or the file is damaged.
    """

    def __init__(self, path: str, script: str, config: Mapping[str, Any], resume: bool,
                 say: Callable[[str], None] = print):
        self.path, self.say = path, say
        self.records: dict[Trial, dict] = {}
        if resume and os.path.isfile(path):
            header, records = read_trials(path)
            differences = config_differences(header.get("config", {}), config)
            if header.get("script") != script or differences:
                raise UserInputError(
                    f"--resume: {path} holds a run with another config "
                    f"({'; '.join(differences) or 'script ' + str(header.get('script'))}); "
                    "rerun with the same flags, or without --resume to start over")
            self._add(records)
            say(f"resuming: {len(self.records)} finished trials from {path}")
            return
        if resume:
            say(f"--resume: no {path} yet, starting from the first trial")
        elif os.path.isfile(path):
            os.replace(path, path + ".previous")  # never silently drop finished trials
            say(f"  (the previous run's trials file is kept as {path}.previous)")
        header = {"format": FORMAT, "script": script, "config": dict(config),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        atomic_write_text(path, json.dumps(header) + "\n")

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

    def accuracies(self, options: Iterable[str], seeds: Sequence[int]) -> dict[str, dict[int, float]]:
        """Finished accuracies per option, by seed in the order of `seeds`."""
        return {option: {seed: self.records[(option, seed)]["accuracy"] for seed in seeds
                         if (option, seed) in self.records} for option in options}

    def extra(self, option: str, seeds: Sequence[int], key: str) -> list:
        """One extra field (e.g. "history") of an option's finished trials, in seed order."""
        return [self.records[(option, seed)][key] for seed in seeds
                if (option, seed) in self.records]


def run_shards(script: str, argv: Sequence[str], jobs: int, log: TrialLog,
               say: Callable[[str], None] = print, poll_s: float = 0.5) -> None:
    """Runs `script argv --shard k/jobs` in `jobs` processes and waits for them all.

    Each process appends its trials to the log's file; every new trial is announced as
    it lands. A process's own output goes to `<trials file>.jobK.log`.

    Raises:
        UserInputError: a process failed; its log file is named with its last line.
    """
    processes = []
    for k in range(1, jobs + 1):
        log_path = f"{log.path[:-len('.jsonl')]}.job{k}.log"
        with open(log_path, "w") as output:
            command = [sys.executable, script, *argv, "--shard", f"{k}/{jobs}"]
            processes.append((subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT),
                              log_path))
    say(f"  {jobs} processes started; their output: {log.path[:-len('.jsonl')]}.job*.log")
    seen = set(log.records)
    try:
        while True:
            running = [process.poll() is None for process, _ in processes]
            log.reload()
            for option, seed in sorted(set(log.records) - seen, key=lambda trial: trial[1]):
                say(f"  finished: {option}, seed {seed}: "
                    f"{100 * log.records[(option, seed)]['accuracy']:.1f}%")
            seen = set(log.records)
            if not any(running):
                break
            time.sleep(poll_s)
    finally:  # Ctrl-C: the processes got it too; wait until they have written their trials
        for process, _ in processes:
            process.wait()
    for process, log_path in processes:
        if process.returncode != 0:
            with open(log_path) as output:
                lines = [line.strip() for line in output if line.strip()] or ["(no output)"]
            raise UserInputError(f"--jobs: a process ended with status {process.returncode}; "
                                 f"see {log_path}: {lines[-1]}")


def run_trials(log: TrialLog, config: Any, script: str, train_here: Callable[[], None],
               say: Callable[[str], None] = print) -> bool:
    """Trains this run's trials, here or (`--jobs N`) in N processes of `script`.

    Args:
        config: the script's config (with the `cli.RunOptions` fields).
        train_here: trains the trials of this process's shard, recording each in `log`.

    Returns:
        True when Ctrl-C stopped it; the finished trials are in `log` either way, so
        the caller can still summarise them (and then raise KeyboardInterrupt).
    """
    interrupted = False
    try:
        if config.jobs > 1 and not config.shard:
            # Pretrained models are saved by now: the processes reuse them, never retrain.
            argv = cli.config_argv(config, jobs=1, resume=True, retrain=False, shard=None)
            run_shards(script, argv, config.jobs, log, say)
        else:
            train_here()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        log.reload()
    # With --jobs the processes got the Ctrl-C too and stopped; this one only waited.
    if interrupted or cli.STOP_REQUESTED.is_set():
        say("\ninterrupted (Ctrl-C): what follows covers the finished trials only")
        return True
    return False

"""Finished trials on disk, the moment they finish: `<out>/<script>.trials.jsonl`.

The file's first line records the script and its config; each further line is one
finished trial (its option, seed, test accuracy and anything else worth keeping),
appended in one write and flushed to disk. A crash, a kill or Ctrl-C therefore loses
only the trials still training. `--resume` reads the file back and trains only the
trials it lacks, refusing when the config differs.

`--shard K/N` runs every N-th trial into a file of its own,
`<out>/<script>.shard-K-of-N.trials.jsonl`; `merge_shards` joins such files into the
run's trials file (`--jobs N` does both: `common.runs.launcher`).
"""

import contextlib
import dataclasses
import glob
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from common.errors import STOP_REQUESTED, UserInputError, flag
from common.files import atomic_write_text, json_ready
from common.runs.keras_logs import KerasLogs

FORMAT = "trials-jsonl-1"

Trial = tuple[str, int]  # (option, seed)


def trials_path(out: str, script: str, shard: str = "") -> str:
    """The run's trials file, or (`shard` "K/N") that shard's own."""
    if not shard:
        return os.path.join(out, f"{script}.trials.jsonl")
    which, shards = parse_shard(shard)
    return os.path.join(out, f"{script}.shard-{which}-of-{shards}.trials.jsonl")


def trial_seeds(base_seed: int, trials: int) -> list[int]:
    """Seeds of trials 0..trials-1: base_seed + k."""
    return [base_seed + k for k in range(trials)]


def results_fields(config: Any) -> dict[str, Any]:
    """The config's fields that change results (not those marked `operational`, such as
    --out or --jobs), as the trials file records them for --resume to compare."""
    return {field.name: getattr(config, field.name) for field in dataclasses.fields(config)
            if not field.metadata.get("operational")}


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
    """'--flag saved -> current' for each result-changing field that differs (`current`
    holds only those: `results_fields`, and the dataset the run used)."""
    def what(name: str) -> str:
        return "the data used" if name == "dataset_used" else flag(name)

    return [f"{what(name)} {saved.get(name)} -> {current.get(name)}"
            for name in sorted(current) if saved.get(name) != current.get(name)]


def keep_aside(path: str, say: Callable[[str], None] = print) -> None:
    """Renames an earlier run's trials file that holds finished trials to a dated name,
    so a new run never silently drops them."""
    if os.path.isfile(path) and read_trials_or_none(path):
        stem = f"{path[:-len('.jsonl')]}.{time.strftime('%Y%m%d-%H%M%S')}"
        kept, count = f"{stem}.jsonl", 1
        while os.path.exists(kept):  # two runs within a second: never overwrite one
            kept, count = f"{stem}-{count}.jsonl", count + 1
        os.replace(path, kept)
        say(f"  (the previous run's finished trials are kept in {kept})")


def refuse_jobs_with_shard(jobs: int, shard: str) -> None:
    """Raises UserInputError for --jobs N (N > 1) with --shard: a shard is one process."""
    if jobs > 1 and shard:
        raise UserInputError(f"--jobs {jobs} with --shard {shard}: a shard runs in one "
                             "process; drop one of the two")


def keep_earlier_run_aside(out: str, script: str, say: Callable[[str], None] = print) -> None:
    """A new run (not --resume): an earlier run's trials file and shard files are kept
    under dated names, so that no later --resume merges them into this run."""
    for path in [trials_path(out, script), *shard_files(out, script)]:
        keep_aside(path, say)


class TrialLog:
    """The finished trials of one run (or one shard of it), in memory and in its file.

    Nothing is written until the first trial is recorded (or, on --resume, shard files
    are merged in), so a run that fails on bad input, or before its first trial,
    leaves an earlier run's file alone.

    Args:
        script: the script's name ("tl_mnist"); names the file in `config.out`.
        config: the script's config (with `seed`, `trials`, `out` and the
            `cli.RunFlags`: `resume`, `shard`, `jobs`).
        dataset: the data actually used (`common.lesson.data.Dataset`); its name is
            checked on --resume like the config.
        say: where progress lines go.

    Raises:
        UserInputError: --jobs with --shard, a shard with no trial, --resume with
            another config, or a damaged file.
    """

    def __init__(self, script: str, config: Any, dataset: Any,
                 say: Callable[[str], None] = print):
        refuse_jobs_with_shard(config.jobs, config.shard)
        self.script, self.config, self.dataset, self.say = script, config, dataset, say
        self.shard = config.shard
        # what this process's outputs are called: "tl_mnist", "tl_mnist.shard-1-of-3"
        self.name = script + (".shard-{}-of-{}".format(*parse_shard(self.shard))
                              if self.shard else "")
        self.all_seeds = trial_seeds(config.seed, config.trials)
        self.seeds = shard_seeds(self.all_seeds, config.shard)  # this process's trials
        if not self.seeds:
            raise UserInputError(f"--shard {config.shard}: no trial falls to this shard "
                                 f"(--trials {config.trials}); use at most "
                                 f"{config.trials} shards")
        self.path = trials_path(config.out, script, config.shard)
        self.compared = {**results_fields(config), "dataset_used": dataset.name}  # --resume
        self.header = {"format": FORMAT, "script": script,
                       "config": {**dataclasses.asdict(config), "dataset_used": dataset.name},
                       "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.makedirs(config.out, exist_ok=True)
        self.records: dict[Trial, dict] = {}
        self.interrupted = False  # set when Ctrl-C or SIGTERM ended `until_interrupted`
        self.planned: list[str] = []  # every option asked for (`todo`); the first is the baseline
        self.resuming = config.resume and os.path.isfile(self.path)
        self.opened = False  # whether the file is ready for appending (`_open`)
        log_dir = getattr(config, "log_dir", None)  # --log-dir: CSV and TensorBoard per trial
        self.keras_logs = KerasLogs(log_dir) if log_dir else None
        if self.resuming:
            self._add(self._read_same_run(self.path))
        if config.resume and config.shard:
            # trials an earlier merge put in the run's own file, or that shards of another
            # --jobs count trained, are finished too
            main = trials_path(config.out, script)
            for path in ([main] if os.path.isfile(main) else []) + shard_files(config.out,
                                                                                script):
                if path != self.path:
                    self._add(self._read_same_run(path))
        if config.resume and not config.shard:
            self._merge(shard_files(config.out, script))
        if self.records:
            say(f"resuming: {len(self.records)} finished trials from {self.path}"
                + (" and the run's other trials files" if self.shard else ""))
        elif config.resume:
            say(f"--resume: no finished trials in {self.path} yet, starting from the first")

    def _read_same_run(self, path: str) -> list[dict]:
        """The trial records of `path`, a file of this very run (same script, same config).

        Raises:
            UserInputError: a file of another run, naming the flags that differ.
        """
        header, records = read_trials(path)
        differences = config_differences(header.get("config", {}), self.compared)
        if header.get("script") != self.script or differences:
            raise UserInputError(
                f"--resume: {path} holds a run with another config "
                f"({'; '.join(differences) or 'script ' + str(header.get('script'))}); "
                "rerun with the same flags, move that file away, or drop --resume to "
                "start over")
        return records

    def _merge(self, paths: Sequence[str]) -> None:
        """Adds the trials of shard files (`--shard K/N`, `--jobs N`) to this run's file."""
        for path in paths:
            new = [record for record in self._read_same_run(path)
                   if (record["option"], int(record["seed"])) not in self.records]
            for record in new:
                self.append(**record)
            if new:
                self.say(f"merged {len(new)} trials from {path}")

    def _open(self) -> None:
        """Makes the file ready for appending: the earlier run's file, when resuming;
        else a new file (an older one with finished trials is kept under its date, and
        for a whole run the older run's shard files too)."""
        if self.resuming:
            cut_unfinished_line(self.path)
        else:
            if self.shard or self.config.resume:  # (--resume merges the shard files)
                keep_aside(self.path, self.say)
            else:
                keep_earlier_run_aside(self.config.out, self.script, self.say)
            atomic_write_text(self.path, json.dumps(self.header) + "\n")
        self.opened = True

    def _add(self, records: Iterable[dict]) -> None:
        for record in records:
            self.records.setdefault((record["option"], int(record["seed"])), record)

    def plan(self, *options: str) -> None:
        """Counts `options` as part of the run (the summary covers them, finished or not),
        in this order after those planned before; the first is the baseline."""
        self.planned += [option for option in options if option not in self.planned]

    def todo(self, *options: str) -> list[int]:
        """This process's seeds for which any of `options` has not finished yet (none once
        a stop was asked for); the options count as planned from now on (the summary
        covers them).

        (An option and its fine-tuned second stage are asked together: a second stage
        starts from its first, which then trains again if needed.)"""
        self.plan(*options)
        if STOP_REQUESTED.is_set():  # after Ctrl-C or SIGTERM no trial starts
            return []
        return [seed for seed in self.seeds
                if any((option, seed) not in self.records for option in options)]

    def record(self, option: str, results: Iterable[tuple[int, dict]], stage: str = "") -> None:
        """Writes each trial's record the moment `results` yields it as (seed, record),
        skipping trials already finished.

        With the plain path `results` is a generator that trains trial after trial, so
        a trial is on disk as soon as it ends; after Ctrl-C or SIGTERM it stops after
        the trial in progress, and this raises KeyboardInterrupt once every trial it
        yielded is written.

        Args:
            option: the option the trials belong to.
            results: (seed, record) pairs, record {"accuracy": ..., more fields}.
            stage: the name of a second stage (`transfer.FINE_TUNED`): the records go
                under option + stage, each history after its first stage's.
        """
        self.record_trials((((option, seed), record) for seed, record in results), stage)

    def record_trials(self, results: Iterable[tuple[Trial, dict]], stage: str = "") -> None:
        """`record` for the trials of several options at once: results keyed by
        (option, seed)."""
        for (option, seed), record in results:
            if stage:
                option, record = option + stage, joined(self.records[(option, seed)], record)
            if (option, seed) not in self.records:
                self.append(option, seed, **record)
        if STOP_REQUESTED.is_set():  # Ctrl-C or SIGTERM: what finished is written
            raise KeyboardInterrupt

    def append(self, option: str, seed: int, accuracy: float, **extra: Any) -> None:
        """Records one finished trial: one line, one write, flushed to disk."""
        if not self.opened:
            self._open()
        record = json_ready({"option": option, "seed": int(seed), "accuracy": float(accuracy),
                                **extra})
        line = (json.dumps(record) + "\n").encode("utf-8")
        # O_APPEND and a single write: a line is never interleaved with another.
        handle = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(handle, line)
            os.fsync(handle)
        finally:
            os.close(handle)
        self.records[(option, int(seed))] = record
        if self.keras_logs and "history" in record:
            self.keras_logs.write(option, int(seed), record["history"])

    @contextlib.contextmanager
    def until_interrupted(self) -> Iterator[None]:
        """Runs the training steps; Ctrl-C or SIGTERM ends them early, but not the run.

        The finished trials are on disk already; after the block the script still
        prints and writes the summary of what finished (`common.runs.summary` says it
        covers an interrupted run, then exits with status 130).
        """
        try:
            yield
        except KeyboardInterrupt:
            self.interrupted = True
        if STOP_REQUESTED.is_set():
            self.interrupted = True

    def accuracies(self, options: Iterable[str]) -> dict[str, dict[int, float]]:
        """Finished accuracies per option, by seed in the order of the run's seeds."""
        return {option: {seed: self.records[(option, seed)]["accuracy"]
                         for seed in self.all_seeds if (option, seed) in self.records}
                for option in options}

    def histories(self, options: Iterable[str]) -> dict[str, list[dict]]:
        """Each option's per-epoch histories on the training and the test set, of its
        trials that recorded one (those without the test set's are for --log-dir)."""
        found = {option: [self.records[(option, seed)]["history"] for seed in self.all_seeds
                          if "val_accuracy" in self.records.get((option, seed), {})
                          .get("history", {})]
                 for option in options}
        return {option: runs for option, runs in found.items() if runs}


def shard_files(out: str, script: str) -> list[str]:
    """The shard trials files of `script` in `out`, in shard order."""
    return sorted(glob.glob(os.path.join(out, f"{script}.shard-*-of-*.trials.jsonl")),
                  key=lambda path: [int(part) for part in os.path.basename(path).split("-")
                                    if part.isdigit()])


def joined(first: dict, second: dict) -> dict:
    """A fine-tuned trial's record: its own accuracy, and both stages' histories back to
    back with the epoch where the second starts."""
    if "history" not in first or "history" not in second:
        return second
    history = {key: first["history"][key] + second["history"][key] for key in first["history"]}
    history["fine_tune_start"] = len(first["history"]["accuracy"])
    return {**second, "history": history}

"""The end of a run, in three steps a script's `main` calls one after the other:

- `compare`: the numbers, from the trials file: each option's accuracies by seed, its
  statistics and verdict against the lecture, and the comparisons;
- `plot_trials_and_curves`: each trial's accuracy per option, and the training curves;
- `write_summary`: the printed summary and the JSON results.

After Ctrl-C or SIGTERM (`TrialLog.until_interrupted`) they cover the finished trials
and say so. A `--shard` writes them under its own name (`<script>.shard-K-of-N.json`).
"""

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from common import files
from common.runs import plots, stats, tables
from common.runs.device import configure_device
from common.runs.trial_log import TrialLog


class Stopwatch:
    """How long each phase of a run took (the JSON's timings_s), phase after phase."""

    def __init__(self):
        self.started = self.phase_started = time.perf_counter()
        self.timings: dict[str, float] = {}

    def lap(self, name: str) -> None:
        """Records the time since the previous lap (or the start) as phase `name`."""
        now = time.perf_counter()
        self.timings[name] = round(now - self.phase_started, 2)
        self.phase_started = now

    def total(self) -> dict[str, float]:
        """Every phase, "total" the whole run so far."""
        return {**self.timings, "total": round(time.perf_counter() - self.started, 2)}


def compare(log: TrialLog, lecture: Mapping[str, tuple[float, float]],
            num_classes: int | None = None,
            pairs: Sequence[tuple[str, str]] | None = None) -> dict:
    """The summary's numbers, from every finished trial of the run's options.

    Args:
        log: the run's trials.
        lecture: option -> the lecture's (min, max) range, for the options it has.
        num_classes: the task's classes, to flag a run that stayed at chance.
        pairs: (baseline, treatment) pairs to compare; default: every option against
            the first.

    Returns:
        The JSON fields of `tables.trial_results`, with "lecture_ranges" and "chance"
        (the accuracy of guessing, 1 / num_classes).
    """
    by_option = log.accuracies(log.planned)
    planned = len(log.planned) * len(log.all_seeds)
    baseline = log.planned[0] if log.planned and not pairs else None
    results = tables.trial_results(by_option, baseline, planned, lecture, num_classes)
    if pairs:
        results["comparisons"] = [stats.compare(baseline, treatment, by_option[baseline],
                                                by_option[treatment])
                                  for baseline, treatment in pairs
                                  if by_option.get(baseline) and by_option.get(treatment)]
    results["complete"] = results["complete"] and not log.interrupted
    return {**results, "lecture_ranges": dict(lecture),
            "chance": 1 / num_classes if num_classes else None}


def plot_trials_and_curves(log: TrialLog, results: dict, title: str,
                           trials_plot: bool = True) -> list[str]:
    """Draws each trial's accuracy per option (`<name>.png`, with `trials_plot`) and the
    training curves of the options that recorded histories (`<name>_curves.png`, or
    `<name>.png` without the trials plot); returns the files written."""
    written = []
    stem = os.path.join(log.config.out, log.name)
    if trials_plot and results["summary"]:
        written.append(f"{stem}.png")
        plots.plot_trials(written[-1], results["accuracies"], results["lecture_ranges"],
                          f"{title}, {len(log.all_seeds)} trials ({log.dataset.name})")
    histories = log.histories(log.planned)
    if histories:
        written.append(f"{stem}_curves.png" if trials_plot else f"{stem}.png")
        plots.plot_histories(written[-1], histories, f"{title} ({log.dataset.name})")
    return written


def write_summary(log: TrialLog, results: dict, title: str, training: str,
                  figures: Sequence[str], clock: Stopwatch,
                  extra: Mapping[str, Any] | None = None, notes: Sequence[str] = ()) -> dict:
    """Prints the summary and writes the JSON results (`<out>/<name>.json`).

    Args:
        log: the run's trials.
        results: `compare`'s numbers.
        title: what the accuracies are of ("test accuracy on digits 1,3,5,7,9").
        training: how the target task trained (`training_line`).
        figures: the plots written (named in the JSON and the last line).
        clock: the run's phases; the time since its last lap is the trials'.
        extra: more JSON fields of the script's own (the pretrained base, ...).
        notes: lines printed under the summary.

    Returns:
        The JSON payload.

    Raises:
        KeyboardInterrupt: after writing, when Ctrl-C or SIGTERM stopped the run (so
            that the script ends with exit status 130).
    """
    clock.lap("trials")
    by_option = log.accuracies(log.planned)
    if log.interrupted:
        print("\ninterrupted (Ctrl-C or SIGTERM): what follows covers the finished trials only")
    for k, seed in enumerate(log.all_seeds):
        cells = [f"{name} {100 * accuracies[seed]:5.1f}%" if seed in accuracies
                 else f"{name}   —  " for name, accuracies in by_option.items()]
        print(f"  trial {k:2d} (seed {seed}): " + "   ".join(cells))
    histories = log.histories(log.planned)
    payload = {"script": log.script, "shard": log.shard or None,
               "config": dataclasses.asdict(log.config),
               "path": "plain" if log.config.plain else "engine",
               "dataset": log.dataset.describe(), "device": configure_device(),
               "environment": tables.environment(), "seeds": log.all_seeds,
               "training": training, **(extra or {}), **results, "histories": histories,
               "trials_file": log.path, "plots": [os.path.basename(path) for path in figures],
               "timings_s": clock.total()}
    json_path = os.path.join(log.config.out, f"{log.name}.json")
    files.atomic_write_json(json_path, payload)
    print(f"\nsummary: {title}\n{training}\n"
          + tables.summary_table(results["summary"], results["lecture_ranges"]) + "\n"
          + tables.comparison_lines(results["comparisons"]))
    for option, runs in histories.items():
        best = np.mean([max(run["val_accuracy"]) for run in runs])
        final_train = np.mean([run["accuracy"][-1] for run in runs])
        print(f"  {option}: training accuracy {100 * final_train:.1f}% at the end; test "
              f"accuracy at its best epoch {100 * best:.1f}%")
    for note in notes:
        print(note)
    if log.shard:
        print(f"shard {log.shard}: its trials are in {log.path}; once every shard has "
              "finished, the same command without --shard and with --resume merges them")
    print(f"wall time {payload['timings_s']['total']:.0f} s; wrote {json_path}"
          + "".join(f" and {path}" for path in figures))
    if log.interrupted:
        raise KeyboardInterrupt
    return payload

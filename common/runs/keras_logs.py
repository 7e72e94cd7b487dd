"""Keras-style logs of every trial (`--log-dir DIR`): the files Keras users look for.

For each trial of each option, as soon as the trial is recorded:

- `DIR/<option>/trial_<seed>.csv`: one row per epoch with the columns
  `keras.callbacks.CSVLogger` writes (`epoch`, then the history's metrics sorted:
  `accuracy`, `loss`, and `val_accuracy`, `val_loss` for runs validated on the test set);
- `DIR/<option>/trial_<seed>/train` and `.../validation`: TensorBoard event files with
  the scalars `epoch_accuracy` and `epoch_loss`, as `keras.callbacks.TensorBoard` names
  them, so that `tensorboard --logdir DIR` shows every trial as a run.

Both paths write the same files from the same per-epoch history: the plain path's is
`fit`'s own `History`; the engine's is measured per trial at each epoch's end (see
`common.engine.trials.train_and_score`). TensorBoard's files need the tensorboard
package (in requirements.txt), not TensorFlow; where it is missing the CSV files are
written alone, and the run says so once.
"""

import importlib.util
import os
import re
import time
from collections.abc import Mapping, Sequence

from common.files import atomic_write_text

# fit's History names per-epoch metrics "accuracy", "loss" and, with validation data,
# "val_accuracy", "val_loss"; TensorBoard's callback logs the val_ ones under validation/.
VALIDATION_PREFIX = "val_"


def folder_name(option: str) -> str:
    """An option's name as a folder: "transfer (dense128)" -> "transfer_dense128"."""
    return re.sub(r"[^\w.-]+", "_", option).strip("_") or "option"


def epoch_rows(history: Mapping[str, object]) -> tuple[list[str], list[dict]]:
    """CSVLogger's columns and rows of a history: "epoch" (from 0), then the metrics in
    sorted order; entries that are not per-epoch lists (the fine-tuning stage's start)
    are left out."""
    metrics = sorted(key for key, values in history.items() if isinstance(values, Sequence))
    epochs = max((len(history[key]) for key in metrics), default=0)
    rows = [{"epoch": epoch, **{key: history[key][epoch] for key in metrics
                                if epoch < len(history[key])}} for epoch in range(epochs)]
    return ["epoch", *metrics], rows


def write_csv(path: str, history: Mapping[str, object]) -> None:
    """The history as CSVLogger's file (comma-separated, a header row, one row per epoch)."""
    columns, rows = epoch_rows(history)
    lines = [",".join(columns)]
    lines += [",".join(str(row.get(column, "NA")) for column in columns) for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def write_tensorboard(folder: str, history: Mapping[str, object]) -> None:
    """The history's metrics as TensorBoard scalars, training under `folder/train`, the
    test set's under `folder/validation`, step = epoch (as Keras's callback does).

    Written with the tensorboard package's own event writer, which needs no TensorFlow,
    so the files are the same on every Keras backend."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    columns, rows = epoch_rows(history)
    by_part = {"train": [c for c in columns[1:] if not c.startswith(VALIDATION_PREFIX)],
               "validation": [c for c in columns[1:] if c.startswith(VALIDATION_PREFIX)]}
    for part, metrics in by_part.items():
        if not metrics:
            continue
        writer = EventFileWriter(os.path.join(folder, part))
        for row in rows:
            values = [Summary.Value(tag="epoch_" + metric.removeprefix(VALIDATION_PREFIX),
                                    simple_value=float(row[metric]))
                      for metric in metrics if metric in row]
            writer.add_event(Event(wall_time=time.time(), step=row["epoch"],
                                   summary=Summary(value=values)))
        writer.close()


class KerasLogs:
    """Writes each recorded trial's CSV and TensorBoard files under one folder."""

    def __init__(self, folder: str):
        self.folder = folder
        self.tensorboard = importlib.util.find_spec("tensorboard") is not None
        self.warned = False

    def write(self, option: str, seed: int, history: Mapping[str, object]) -> None:
        """The files of trial `seed` of `option`."""
        trial = os.path.join(self.folder, folder_name(option), f"trial_{seed}")
        os.makedirs(os.path.dirname(trial), exist_ok=True)
        write_csv(trial + ".csv", history)
        if self.tensorboard:
            write_tensorboard(trial, history)
        elif not self.warned:
            print(f"  --log-dir {self.folder}: TensorBoard's files need the tensorboard "
                  "package (pip install tensorboard); writing the CSV files only", flush=True)
            self.warned = True

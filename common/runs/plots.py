"""The run's figures: each trial's accuracy per option, and the training curves.

matplotlib is imported inside the plotting functions only, so that importing this
module (and every script's `--help`) stays fast.
"""

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from common.files import atomic_save


def plot_trials(path: str, results: Mapping[str, Sequence[float]],
                lecture: Mapping[str, tuple[float, float]], title: str) -> None:
    """Per-trial test accuracies of each option side by side, saved as a PNG.

    Each option is a column of points (one per trial) with its mean as a bar; the
    lecture's min–max range is a shaded band behind the column; trials with the same
    seed are joined by a faint line, so paired differences are visible. Options
    without finished trials are left out.
    """
    results = {name: values for name, values in results.items() if len(values)}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    figure, axes = plt.subplots(figsize=(1.9 * len(names) + 2.5, 4.5))
    for column, name in enumerate(names):
        if name in lecture:
            low, high = lecture[name]
            axes.fill_between([column - 0.3, column + 0.3], 100 * low, 100 * high, color="0.85",
                              label="lecture's range" if column == 0 else None)
        values = 100 * np.asarray(results[name])
        jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
        axes.scatter(column + np.asarray(jitter), values, s=22, zorder=3, label=None)
        axes.hlines(values.mean(), column - 0.25, column + 0.25, color="black", zorder=4,
                    label="mean" if column == 0 else None)
    if len(names) == 2 and len(results[names[0]]) == len(results[names[1]]):
        jitter = np.linspace(-0.12, 0.12, len(results[names[0]]))
        for k, (left, right) in enumerate(zip(results[names[0]], results[names[1]])):
            axes.plot([jitter[k], 1 + jitter[k]], [100 * left, 100 * right], color="0.6",
                      linewidth=0.6, zorder=2)
    axes.set_xticks(range(len(names)), names)
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(title, fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def save_figure(figure: Any, path: str, dpi: int = 120) -> None:
    """Saves a matplotlib figure as a PNG through a temporary file and a rename."""
    atomic_save(path, functools.partial(figure.savefig, format="png", dpi=dpi))


def history_curves(trials: Sequence[dict], key: str) -> np.ndarray | None:
    """The trials' curves of `key` as rows of one array, shorter ones padded with NaN;
    None when no trial has the key."""
    curves = [np.asarray(trial[key], dtype=float) for trial in trials if trial.get(key)]
    if not curves:
        return None
    padded = np.full((len(curves), max(len(curve) for curve in curves)), np.nan)
    for row, curve in zip(padded, curves):
        row[:len(curve)] = curve
    return padded


def fine_tune_starts(trials: Sequence[dict], name: str) -> list[int]:
    """The distinct "fine_tune_start" epoch indices of a run's trials (usually one)."""
    starts = set()
    for trial in trials:
        start = trial.get("fine_tune_start")
        if start is None:
            continue
        length = len(trial.get("val_accuracy") or trial.get("accuracy") or [])
        if (isinstance(start, bool) or not isinstance(start, (int, np.integer))
                or not 0 < start < length):
            raise ValueError(f"run {name!r}: fine_tune_start={start!r} must be the index of "
                             f"the first fine-tuning epoch, 1..{length - 1} for its {length} "
                             "epochs")
        starts.add(int(start))
    return sorted(starts)


def plot_histories(path: str, histories: Mapping[str, Sequence[dict]], title: str) -> None:
    """Accuracy and loss per epoch, side by side: training dashed, test solid, one
    colour per run; saved as a PNG (atomically).

    Each line is the mean over the run's trials, and the light band around a test
    line spans its trials' min–max. The gap between a run's two lines is its
    overfitting. Runs may have different numbers of epochs; a trial that stopped
    early counts in the mean only for the epochs it has.

    Args:
        path: the PNG to write.
        histories: run name -> one history per trial, each {"accuracy", "loss",
            "val_accuracy", "val_loss"}: lists per epoch, as
            `engine.train_trials(..., validate=True)` gives them (accuracies as
            fractions, losses as cross-entropy). Optionally
            "fine_tune_start": the index in those lists of the first epoch of a
            fine-tuning stage (the lists then hold both stages back to back); a dotted
            vertical line labelled "fine-tuning starts" marks it in both panels.
        title: the figure's title.

    Raises:
        ValueError: a "fine_tune_start" outside the history it belongs to.
    """
    runs = {name: trials for name, trials in histories.items() if len(trials)}
    starts = {name: fine_tune_starts(trials, name) for name, trials in runs.items()}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.transforms import blended_transform_factory

    figure, (accuracy_axes, loss_axes) = plt.subplots(1, 2, figsize=(12, 5.2))
    panels = ((accuracy_axes, "accuracy", 100, "accuracy (%)"),
              (loss_axes, "loss", 1, "cross-entropy loss (nats)"))
    handles = []
    for index, (name, trials) in enumerate(runs.items()):
        colour = f"C{index % 10}"
        count = f"{len(trials)} trial{'s' if len(trials) != 1 else ''}"
        handles.append(Line2D([], [], color=colour, label=f"{name} ({count})"))
        for axes, metric, scale, _ in panels:
            for key, style in ((metric, "--"), (f"val_{metric}", "-")):
                curves = history_curves(trials, key)
                if curves is None:
                    continue
                curves = scale * curves
                epochs = np.arange(1, curves.shape[1] + 1)
                axes.plot(epochs, np.nanmean(curves, axis=0), style, color=colour, linewidth=1.6)
                if style == "-" and len(curves) > 1:
                    axes.fill_between(epochs, np.nanmin(curves, axis=0),
                                      np.nanmax(curves, axis=0), color=colour, alpha=0.15,
                                      linewidth=0)
    # One line per distinct start: grey when every run that fine-tunes starts together,
    # else in the run's colour. It sits between the last epoch of the first stage
    # (epoch `start`, counting from 1) and the first of the second.
    distinct = {start for run_starts in starts.values() for start in run_starts}
    lines = ([(start, "0.3") for start in distinct] if len(distinct) == 1 else
             [(start, f"C{index % 10}") for index, name in enumerate(runs)
              for start in starts[name]])
    for axes, _, _, label in panels:
        for start, colour in lines:
            axes.axvline(start + 0.5, color=colour, linestyle=":", linewidth=1.4)
            axes.text(start + 0.5, 0.98, " fine-tuning starts", rotation=90, color=colour,
                      fontsize=7, ha="right", va="top",
                      bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
                      transform=blended_transform_factory(axes.transData, axes.transAxes))
        axes.set_xlabel("epoch")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
    accuracy_axes.set_title("accuracy", fontsize=10)
    loss_axes.set_title("loss", fontsize=10)
    styles = [Line2D([], [], color="0.3", linestyle="--", label="training"),
              Line2D([], [], color="0.3", linestyle="-", label="test"),
              Patch(color="0.3", alpha=0.15, label="test, min–max over trials")]
    if lines:
        styles.append(Line2D([], [], color="0.3", linestyle=":", label="fine-tuning starts"))
    # Below both panels, where they hide no curve: the runs, then what the lines mean.
    run_rows = -(-len(handles) // 4)
    row_height = 0.045
    figure.legend(handles=handles, fontsize=8, loc="lower center",
                  ncol=max(1, min(len(handles), 4)), frameon=False,
                  bbox_to_anchor=(0.5, row_height))
    figure.legend(handles=styles, fontsize=8, loc="lower center", ncol=len(styles),
                  frameon=False, bbox_to_anchor=(0.5, 0))
    figure.suptitle(title, fontsize=11)
    figure.tight_layout(rect=(0, row_height * (run_rows + 1) + 0.01, 1, 1))
    try:
        save_figure(figure, path)
    finally:
        plt.close(figure)

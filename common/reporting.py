"""The summary table, JSON results and plots (the statistics are in `common.stats`).

matplotlib is imported inside the plotting function only, so that importing this
module (and every script's `--help`) stays fast.
"""

import functools
import json
import math
import platform
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import keras

from common import stats
from common.checkpoints import atomic_save, atomic_write_text


def percent_range(low: float, high: float) -> str:
    return f"{100 * low:.1f}–{100 * high:.1f}%"


# A run whose mean accuracy lies within this of chance (1 / classes) did not learn.
CHANCE_MARGIN = 0.02


def near_chance(mean: float, chance: float) -> bool:
    """Whether `mean` lies within `CHANCE_MARGIN` of `chance` (a little slack for float
    rounding, so that 0.12 counts as within 0.02 of 0.1)."""
    return abs(mean - chance) <= CHANCE_MARGIN + 1e-9


def at_chance(accuracies: Sequence[float], num_classes: int) -> bool:
    """Whether a run stayed at chance: its mean accuracy lies within `CHANCE_MARGIN`
    (2 points) of 1 / num_classes, above or below. Such a run did not learn (e.g. it
    diverged, or its features carry nothing); its number says nothing about the method.

    Args:
        accuracies: the run's test accuracies (fractions), one per trial.
        num_classes: classes of the task (chance is 1 / num_classes).

    Returns:
        True when the mean is within 2 points of chance; False for no accuracies.

    Raises:
        ValueError: num_classes below 2.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes!r}: a classification has 2 or more classes")
    if len(accuracies) == 0:
        return False
    return near_chance(float(np.mean(accuracies)), 1 / num_classes)


def lecture_verdict(mean: float, lecture_range: tuple[float, float] | None,
                    chance: float | None = None) -> str:
    """Where our mean accuracy lies against the lecture's min–max.

    Args:
        mean: our mean test accuracy, a fraction.
        lecture_range: the lecture's (min, max) as fractions; None when it gives none.
        chance: the chance accuracy (1 / classes), if the verdict should say when the
            run did not learn: a mean within `CHANCE_MARGIN` of it gives "at chance",
            unless the lecture's range is itself at chance.

    Returns:
        "within", "above" or "below" the range (its ends count as within), "at chance"
        (only with `chance`), or "" when there is no range.
    """
    if lecture_range is None:
        return ""
    low, high = lecture_range
    if chance is not None and near_chance(mean, chance) and not near_chance(high, chance):
        return "at chance"
    return "above" if mean > high else "below" if mean < low else "within"


def summary_table(rows: Mapping[str, dict], lecture: Mapping[str, tuple[float, float]],
                  num_classes: int | None = None) -> str:
    """A plain-text table: one row per option, our statistics beside the lecture's range.

    The lecture column says where our mean lies, e.g. "40.0–41.4% (within)". A run
    at chance (`at_chance`) ends its row with "at chance: did not learn".

    Args:
        rows: option name -> `stats.summarize` output (accuracies as fractions), as in
            `trial_results(...)["summary"]`.
        lecture: option name -> the lecture's (min, max), as fractions.
        num_classes: classes of the task, to mark runs at chance. Without it a row is
            marked only when it carries `"at_chance": True` (`trial_results` given
            num_classes).
    """
    if not rows:
        return "(no trial has finished yet)"
    width = max(len(name) for name in rows) + 2
    lines = [f"{'':<{width}}{'trials':>7}  {'min–max':>13}  {'mean ± std':>14}  "
             f"{'95% CI of mean':>15}  {'lecture':>22}"]
    for name, summary in rows.items():
        ours = percent_range(summary["min"], summary["max"])
        spread = (f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}%"
                  if summary["std"] is not None else f"{100 * summary['mean']:.1f}%")
        interval = percent_range(*summary["ci95"]) if summary.get("ci95") else "—"
        theirs = (f"{percent_range(*lecture[name])} "
                  f"({lecture_verdict(summary['mean'], lecture[name])})"
                  if name in lecture else "—")
        chance = (at_chance([summary["mean"]], num_classes) if num_classes
                  else summary.get("at_chance") is True)
        lines.append(f"{name:<{width}}{summary['n']:>7}  {ours:>13}  {spread:>14}  "
                     f"{interval:>15}  {theirs:>22}"
                     + ("  at chance: did not learn" if chance else ""))
    return "\n".join(lines)


def comparison_lines(comparisons: Sequence[dict]) -> str:
    """One line per comparison: the difference, its interval, Welch's test, Cohen's d."""
    lines = []
    for comparison in comparisons:
        interval = ""
        if comparison["ci95"]:
            low, high = comparison["ci95"]
            interval = f" (95% CI {100 * low:+.1f} to {100 * high:+.1f})"
        test = (f"Welch t = {comparison['welch_t']:.2f}, df = {comparison['welch_df']:.1f}, "
                f"p = {stats.format_p(comparison['p_value'])}"
                if comparison["welch_t"] is not None
                else "Welch's test needs 2+ trials with some spread")
        if comparison["cohens_d"] is not None:
            test += f", Cohen's d = {comparison['cohens_d']:.2f}"
        if comparison["paired_trials"]:
            ties = comparison["trials_tied"]
            test += (f"; ahead in {comparison['trials_ahead']} of {comparison['paired_trials']} "
                     f"paired trials{f' ({ties} tied)' if ties else ''}")
        if comparison["paired_p_value"] is not None:
            test += f", paired t-test p = {stats.format_p(comparison['paired_p_value'])}"
        lines.append(f"{comparison['treatment']} vs {comparison['baseline']}: "
                     f"{100 * comparison['mean_difference']:+.1f} points{interval}; {test}")
    return "\n".join(lines)


def trial_results(results: Mapping[str, Mapping[int, float]], baseline: str | None,
                  planned: int, lecture: Mapping[str, tuple[float, float]] | None = None,
                  num_classes: int | None = None) -> dict:
    """The JSON fields every script writes about its trials.

    Args:
        results: accuracy per seed of each option, finished trials only.
        baseline: the option the others are compared with (None: the caller makes
            its own comparisons).
        planned: how many trials the whole run has.
        lecture: option name -> the lecture's (min, max) as fractions. Given, each
            option's summary gets "lecture_verdict" (`lecture_verdict`: "within",
            "above", "below", or "" for an option the lecture does not report).
        num_classes: classes of the task. Given, each option's summary gets
            "at_chance" (`at_chance`: True when the run did not learn).
    """
    finished = sum(len(values) for values in results.values())
    summary = stats.summarize_options(results)
    for name, row in summary.items():
        if lecture is not None:
            row["lecture_verdict"] = lecture_verdict(row["mean"], lecture.get(name))
        if num_classes is not None:
            row["at_chance"] = at_chance(list(results[name].values()), num_classes)
    return {"accuracies": {name: list(values.values()) for name, values in results.items()},
            "trial_seeds": {name: list(values) for name, values in results.items()},
            "summary": summary,
            "comparisons": stats.comparisons(results, baseline) if baseline else [],
            "complete": finished == planned}


def environment() -> dict:
    """Versions that a result depends on."""
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "keras": keras.__version__, "backend": keras.backend.backend(),
                "platform": platform.platform()}
    if "tensorflow" in sys.modules or keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    return versions


def write_json(path: str, payload: dict) -> None:
    """Writes results as indented JSON, atomically (NaN is written as null)."""
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(item) for item in value]
        return value

    atomic_write_text(path, json.dumps(clean(payload), indent=2) + "\n")


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
            `trials.train_and_test(..., validate=True)` gives them (accuracies as fractions, losses as cross-entropy). Optionally
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

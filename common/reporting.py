"""The summary table, JSON results and plots (the statistics are in `common.stats`).

matplotlib is imported inside the plotting function only, so that importing this
module (and every script's `--help`) stays fast.
"""

import json
import math
import platform
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import keras

from common import stats, training
from common.checkpoints import atomic_write_text


def percent_range(low: float, high: float) -> str:
    return f"{100 * low:.1f}–{100 * high:.1f}%"


def summary_table(rows: Mapping[str, dict], lecture: Mapping[str, tuple[float, float]]) -> str:
    """A plain-text table: one row per option, our statistics beside the lecture's range.

    Args:
        rows: option name -> `stats.summarize` output (accuracies as fractions).
        lecture: option name -> the lecture's (min, max), as fractions.
    """
    if not rows:
        return "(no trial has finished yet)"
    width = max(len(name) for name in rows) + 2
    lines = [f"{'':<{width}}{'trials':>7}  {'min–max':>13}  {'mean ± std':>14}  "
             f"{'95% CI of mean':>15}  {'lecture':>13}"]
    for name, summary in rows.items():
        ours = percent_range(summary["min"], summary["max"])
        spread = (f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}%"
                  if summary["std"] is not None else f"{100 * summary['mean']:.1f}%")
        interval = percent_range(*summary["ci95"]) if summary.get("ci95") else "—"
        theirs = percent_range(*lecture[name]) if name in lecture else "—"
        lines.append(f"{name:<{width}}{summary['n']:>7}  {ours:>13}  {spread:>14}  "
                     f"{interval:>15}  {theirs:>13}")
    return "\n".join(lines)


def training_line(config: Any) -> str:
    """The training options of a run (`cli.TrainingOptions`), for the summary."""
    first, second = training.learning_rates(config.optimizer, config.lr, config.fine_tune_lr)
    parts = [f"{config.optimizer}, learning rate {first:g}"
             + (" (the lecture's)" if config.optimizer == "adam" and config.lr is None else "")]
    if config.fine_tune != "0":
        which = (f"last {config.fine_tune} layer(s)" if config.fine_tune.isdigit()
                 else f"{config.fine_tune}* layers")
        parts.append(f"then the pretrained part's {which} fine-tuned for "
                     f"{config.fine_tune_epochs} epochs at learning rate {second:g}")
    parts.append("augmented training images" if config.augment else "no augmentation")
    return "training: " + "; ".join(parts)


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
                  planned: int) -> dict:
    """The JSON fields every script writes about its trials.

    Args:
        results: accuracy per seed of each option, finished trials only.
        baseline: the option the others are compared with (None: the caller makes
            its own comparisons).
        planned: how many trials the whole run has.
    """
    finished = sum(len(values) for values in results.values())
    return {"accuracies": {name: list(values.values()) for name, values in results.items()},
            "trial_seeds": {name: list(values) for name, values in results.items()},
            "summary": stats.summarize_options(results),
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


def plot_histories(path: str, histories: Mapping[str, Sequence[dict]], title: str) -> None:
    """Training (dashed) and test (solid) accuracy per epoch, one colour per run.

    Each line is the mean over the run's trials; the gap between a run's two lines is
    its overfitting.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    for colour, (name, runs) in enumerate(histories.items()):
        for key, style in (("accuracy", "--"), ("val_accuracy", "-")):
            curve = 100 * np.mean([run[key] for run in runs], axis=0)
            epochs = np.arange(1, len(curve) + 1)
            label = f"{name} ({'training' if key == 'accuracy' else 'test'})"
            axes.plot(epochs, curve, style, color=f"C{colour}", label=label)
    axes.set_xlabel("epoch")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_ylabel("accuracy (%)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)

"""The summary table, the verdicts against the lecture, and the JSON results (the
statistics are in `common.runs.stats`, the plots in `common.runs.plots`).

Neither Keras nor TensorFlow is loaded here, so `report.py` reads results in a blink.
"""

import platform
import sys
from collections.abc import Mapping, Sequence

import numpy as np

from common.lesson.settings import FineTune, FitSettings
from common.runs import cpu, stats


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
    """Versions that a result depends on (Keras is loaded by then: the run trained)."""
    import keras

    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "keras": keras.__version__, "backend": keras.backend.backend(),
                "platform": platform.platform(), "cpu": cpu.cpu_description()}
    if "tensorflow" in sys.modules or keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    return versions


def training_line(fit: FitSettings | None, fine_tune: FineTune | None = None,
                  augment: bool = False, noise: float = 0.0, plain: bool = False) -> str:
    """How a run's target task trained, for the summary: optimizer, learning rate, the
    fine-tuning stage, augmentation, and which path trained (None: classic classifiers
    only)."""
    if fit is None:
        return "training: classic classifiers (scikit-learn) on the frozen features"
    parts = [f"{fit.optimizer}, learning rate {fit.rate:g}"
             + (" (the lecture's)" if fit.optimizer == "adam" and fit.learning_rate is None
                else "")]
    if fine_tune:
        parts.append(f"then the pretrained part's {fine_tune.which} fine-tuned for "
                     f"{fine_tune.fit.epochs} epochs at learning rate {fine_tune.fit.rate:g}")
    parts.append(("augmented training images" + (f" with Gaussian noise (std {noise:g})"
                                                  if noise else ""))
                 if augment else "no augmentation")
    parts.append("plain Keras, one trial after another (--plain)" if plain
                 else "trials side by side (the fast engine)")
    return "training: " + "; ".join(parts)

"""Statistics over trials: is a difference between two options real?

The lecture gives only the min–max of 15 trials. With so few trials an instructor
also needs the uncertainty of each mean (a 95% confidence interval from Student's t)
and, for two options, a test that suits small samples: Welch's t-test, which does not
assume equal variances, and Cohen's d as the effect size (the difference of the means
in pooled standard deviations; 0.8 and more counts as large).

Trials of two options that share a seed share their small training set, so they are
also compared pair by pair: how many pairs the treatment wins, and the paired t-test
(sharper than Welch's, which ignores the pairing).
"""

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95


def t_quantile(df: float) -> float:
    """Student's t value that leaves (1 - CONFIDENCE) / 2 in the upper tail."""
    return float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, df))


def mean_interval(values: Sequence[float]) -> list[float] | None:
    """The 95% confidence interval of the mean, [low, high]; None for fewer than 2 values."""
    array = np.asarray(values, dtype=float)
    if array.size < 2:
        return None
    half = t_quantile(array.size - 1) * array.std(ddof=1) / math.sqrt(array.size)
    return [float(array.mean() - half), float(array.mean() + half)]


def summarize(values: Sequence[float]) -> dict:
    """n, min, max, mean, sample standard deviation (ddof=1) and ci95 (None for one value)."""
    array = np.asarray(values, dtype=float)
    return {"n": int(array.size), "min": float(array.min()), "max": float(array.max()),
            "mean": float(array.mean()),
            "std": float(array.std(ddof=1)) if array.size > 1 else None,
            "ci95": mean_interval(array)}


def welch_test(baseline: Sequence[float], treatment: Sequence[float]) -> dict:
    """Welch's two-sample t-test of treatment against baseline.

    Returns:
        mean_difference (treatment - baseline), its 95% interval `ci95`, `welch_t`,
        `welch_df` (Welch–Satterthwaite) and the two-sided `p_value`. Everything but
        the difference is None when a side has fewer than 2 values or both have no
        spread (the test is undefined then).
    """
    a, b = np.asarray(baseline, dtype=float), np.asarray(treatment, dtype=float)
    result = {"mean_difference": float(b.mean() - a.mean()), "ci95": None, "welch_t": None,
              "welch_df": None, "p_value": None}
    if a.size < 2 or b.size < 2:
        return result
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # (var() of equal floats can be 1e-35, not 0)
        return result
    var_a, var_b = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    standard_error = math.sqrt(var_a + var_b)
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (a.size - 1) + var_b ** 2 / (b.size - 1))
    t = result["mean_difference"] / standard_error
    half = t_quantile(df) * standard_error
    result.update(ci95=[result["mean_difference"] - half, result["mean_difference"] + half],
                  welch_t=float(t), welch_df=float(df),
                  p_value=float(2 * scipy_stats.t.sf(abs(t), df)))
    return result


def cohens_d(baseline: Sequence[float], treatment: Sequence[float]) -> float | None:
    """(mean(treatment) - mean(baseline)) / pooled standard deviation; None if undefined."""
    a, b = np.asarray(baseline, dtype=float), np.asarray(treatment, dtype=float)
    if a.size + b.size < 3 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return None
    pooled = ((a.size - 1) * a.var(ddof=1 if a.size > 1 else 0)
              + (b.size - 1) * b.var(ddof=1 if b.size > 1 else 0)) / (a.size + b.size - 2)
    return float((b.mean() - a.mean()) / math.sqrt(pooled))


def paired_test(differences: Sequence[float]) -> float | None:
    """Two-sided p of the paired t-test (mean of the differences against 0); None if undefined."""
    array = np.asarray(differences, dtype=float)
    if array.size < 2 or np.ptp(array) == 0:
        return None
    t = array.mean() / (array.std(ddof=1) / math.sqrt(array.size))
    return float(2 * scipy_stats.t.sf(abs(t), array.size - 1))


def compare(baseline_name: str, treatment_name: str, baseline: Mapping[int, float],
            treatment: Mapping[int, float]) -> dict:
    """Everything the summary says about treatment against baseline.

    Args:
        baseline, treatment: accuracy per trial seed. Seeds in both are pairs (the
            same small training set and test set).

    Returns:
        Welch's test on all trials (`ci95`, `welch_t`, `welch_df`, `p_value`; it
        ignores the pairing, so it is the cautious one), `cohens_d`, the sizes; and
        over the seed pairs: `paired_trials`, `trials_ahead` / `trials_tied` (how many
        the treatment wins / draws) and `paired_p_value` (the paired t-test, which uses
        the pairing and is the sharper test when every trial has its pair).
    """
    paired = sorted(set(baseline) & set(treatment))
    a, b = list(baseline.values()), list(treatment.values())
    differences = [treatment[seed] - baseline[seed] for seed in paired]
    return {"baseline": baseline_name, "treatment": treatment_name, "n_baseline": len(a),
            "n_treatment": len(b), **welch_test(a, b), "cohens_d": cohens_d(a, b),
            "paired_trials": len(paired),
            "trials_ahead": sum(difference > 0 for difference in differences),
            "trials_tied": sum(difference == 0 for difference in differences),
            "paired_p_value": paired_test(differences)}


def comparisons(results: Mapping[str, Mapping[int, float]], baseline: str) -> list[dict]:
    """`compare` of every other option with `baseline` (none if it has no trials)."""
    if not results.get(baseline):
        return []
    return [compare(baseline, name, results[baseline], values)
            for name, values in results.items() if name != baseline and values]


def format_p(p: float | None) -> str:
    """A p-value as people write it: 0.021, 3.1e-09; '—' when undefined."""
    if p is None:
        return "—"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def summarize_options(results: Mapping[str, Mapping[int, float]]) -> dict[str, dict]:
    """`summarize` of each option that has finished trials (accuracy per seed)."""
    return {name: summarize(list(values.values())) for name, values in results.items() if values}

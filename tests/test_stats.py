"""Statistics against known values: published examples and scipy's reference tests."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from common.runs import tables, stats

# The first worked example of Welch's t-test on Wikipedia ("Welch's t-test", Examples):
# t = -2.46, df = 24.99, p = 0.021.
WELCH_A = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
WELCH_B = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]


def test_welch_test_matches_the_published_example_and_scipy():
    result = stats.welch_test(WELCH_B, WELCH_A)  # t of A against B, as the example writes it
    assert result["welch_t"] == pytest.approx(-2.46, abs=0.005)
    assert result["welch_df"] == pytest.approx(24.99, abs=0.005)
    assert result["p_value"] == pytest.approx(0.021, abs=0.0005)
    reference = scipy_stats.ttest_ind(WELCH_A, WELCH_B, equal_var=False)
    assert result["welch_t"] == pytest.approx(reference.statistic, rel=1e-12)
    assert result["p_value"] == pytest.approx(reference.pvalue, rel=1e-10)
    assert result["mean_difference"] == pytest.approx(np.mean(WELCH_A) - np.mean(WELCH_B))


def test_welch_interval_holds_the_difference_with_the_t_quantile():
    result = stats.welch_test(WELCH_A, WELCH_B)
    half = scipy_stats.t.ppf(0.975, result["welch_df"]) * math.sqrt(
        np.var(WELCH_A, ddof=1) / 15 + np.var(WELCH_B, ddof=1) / 15)
    low, high = result["ci95"]
    assert (low + high) / 2 == pytest.approx(result["mean_difference"])
    assert (high - low) / 2 == pytest.approx(half)
    assert low > 0  # p < 0.05 two-sided: the 95% interval excludes 0


def test_mean_interval_is_the_textbook_t_interval():
    # mean 3, s = 1.5811, t(0.975, 4) = 2.7764: 3 ± 1.9632
    low, high = stats.mean_interval([1, 2, 3, 4, 5])
    assert low == pytest.approx(1.0368, abs=1e-4) and high == pytest.approx(4.9632, abs=1e-4)
    assert (low, high) == pytest.approx(scipy_stats.t.interval(
        0.95, 4, loc=3, scale=scipy_stats.sem([1, 2, 3, 4, 5])))


def test_summarize_gives_every_statistic():
    summary = stats.summarize([0.9, 0.92, 0.94])
    assert summary["n"] == 3 and summary["min"] == 0.9 and summary["max"] == 0.94
    assert summary["mean"] == pytest.approx(0.92) and summary["std"] == pytest.approx(0.02)
    assert summary["ci95"] == pytest.approx([0.92 - 4.302653 * 0.02 / math.sqrt(3),
                                             0.92 + 4.302653 * 0.02 / math.sqrt(3)], abs=1e-6)
    single = stats.summarize([0.5])
    assert single["std"] is None and single["ci95"] is None  # one trial has no spread to show


def test_cohens_d_uses_the_pooled_standard_deviation():
    # both samples have s = 1.5811; the means differ by 2: d = 2 / 1.5811 = 1.2649
    assert stats.cohens_d([1, 2, 3, 4, 5], [3, 4, 5, 6, 7]) == pytest.approx(1.2649, abs=1e-4)
    a, b = [0.84, 0.86, 0.85, 0.87], [0.91, 0.92, 0.93]
    pooled = math.sqrt((3 * np.var(a, ddof=1) + 2 * np.var(b, ddof=1)) / 5)
    assert stats.cohens_d(a, b) == pytest.approx((np.mean(b) - np.mean(a)) / pooled)


def test_undefined_tests_are_none_not_nan():
    flat = stats.welch_test([0.1, 0.1, 0.1], [0.1, 0.1, 0.1])
    assert flat["mean_difference"] == 0 and flat["p_value"] is None and flat["welch_t"] is None
    assert stats.welch_test([0.5], [0.6, 0.7])["p_value"] is None
    assert stats.cohens_d([0.1, 0.1], [0.1, 0.1]) is None


def test_compare_pairs_trials_by_seed():
    baseline = {0: 0.90, 1: 0.93, 2: 0.91, 4: 0.80}
    treatment = {0: 0.95, 1: 0.92, 3: 0.97, 4: 0.80}  # seed 2 unfinished, 3 has no partner
    result = stats.compare("no transfer", "transfer", baseline, treatment)
    assert result["paired_trials"] == 3 and result["trials_ahead"] == 1
    assert result["trials_tied"] == 1
    reference = scipy_stats.ttest_rel([0.95, 0.92, 0.80], [0.90, 0.93, 0.80])
    assert result["paired_p_value"] == pytest.approx(reference.pvalue)
    assert result["n_baseline"] == result["n_treatment"] == 4
    reference = scipy_stats.ttest_ind(list(treatment.values()), list(baseline.values()),
                                      equal_var=False)
    assert result["p_value"] == pytest.approx(reference.pvalue)


def test_comparisons_are_against_the_baseline_and_skip_empty_options():
    results = {"a": {0: 0.5, 1: 0.6}, "b": {0: 0.7, 1: 0.8}, "c": {}}
    pairs = [(c["baseline"], c["treatment"]) for c in stats.comparisons(results, "a")]
    assert pairs == [("a", "b")]
    assert stats.comparisons({"a": {}, "b": {0: 0.7}}, "a") == []


@pytest.mark.parametrize("p, text", [(0.021378, "0.021"), (3.1e-9, "3.1e-09"), (None, "—")])
def test_p_values_read_as_people_write_them(p, text):
    assert stats.format_p(p) == text


def test_summary_table_and_comparison_lines_show_the_statistics():
    results = {"no transfer": dict(enumerate(WELCH_A)), "transfer": dict(enumerate(WELCH_B))}
    summary = stats.summarize_options({k: {s: v / 100 for s, v in r.items()}
                                       for k, r in results.items()})
    table = tables.summary_table(summary, {"transfer": (0.2, 0.3)})
    assert "95% CI of mean" in table and "20.8 ± 2.8%" in table and "20.0–30.0%" in table
    line = tables.comparison_lines(stats.comparisons(
        {k: {s: v / 100 for s, v in r.items()} for k, r in results.items()}, "no transfer"))
    assert "transfer vs no transfer: +2.2 points (95% CI +0.3 to +4.0)" in line
    assert "Welch t = 2.46, df = 25.0, p = 0.021" in line and "Cohen's d = 0.90" in line
    assert "ahead in 10 of 15 paired trials, paired t-test p = " in line
    assert tables.summary_table({}, {}) == "(no trial has finished yet)"

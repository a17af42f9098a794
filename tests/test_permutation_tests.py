import numpy as np
import pandas as pd
import pytest
from lifelines.statistics import multivariate_logrank_test
from scipy import stats

from stratomics.permutation_tests import anova_f, chi_square, kruskal_h, logrank, permutation_p


def labelled_cohort(n_groups: int, seed: int = 41, n: int = 300):
    rng = np.random.default_rng(seed)
    labels = rng.choice([f"S{g + 1}" for g in range(n_groups)], n, p=np.linspace(2, 1, n_groups) / np.linspace(2, 1, n_groups).sum())
    shift = (labels == "S1") * 0.4
    time = np.ceil(rng.exponential(200 * np.exp(-shift)) / 7) * 7  # weekly visits: tied times
    event = (rng.random(n) < 0.7).astype(float)
    binary = (rng.random(n) < 0.3 + 0.2 * shift).astype(float)
    score = np.round(rng.normal(shift, 1), 1)  # tied values
    return labels, time, event, binary, score


def indicators(label_rows, levels):
    return (np.asarray(label_rows)[:, :, None] == levels).astype(float)


@pytest.mark.parametrize("n_groups", [2, 4])
def test_batched_statistics_equal_lifelines_and_scipy(n_groups):
    labels, time, event, binary, score = labelled_cohort(n_groups)
    levels = np.unique(labels)
    rng = np.random.default_rng(1)
    rows = [labels, *(rng.permutation(labels) for _ in range(5))]
    batched = {name: function(indicators(rows, levels)) for name, function in (
        ("logrank", logrank(time, event)), ("chi_square", chi_square(binary)), ("anova", anova_f(score)),
        ("kruskal", kruskal_h(score)))}  # fmt: skip
    for b, row in enumerate(rows):
        groups = [row == level for level in levels]
        expected = {
            "logrank": multivariate_logrank_test(time, row, event).test_statistic,
            "chi_square": stats.chi2_contingency(pd.crosstab(row, binary))[0],
            "anova": stats.f_oneway(*(score[g] for g in groups)).statistic,
            "kruskal": stats.kruskal(*(score[g] for g in groups)).statistic,
        }
        for name, value in expected.items():
            assert batched[name][b] == pytest.approx(value, rel=1e-9), (name, b)


def test_permutation_p_equals_the_loop_over_library_statistics():
    labels, time, event, _, _ = labelled_cohort(3, seed=42, n=120)
    labels = np.random.default_rng(0).permutation(labels)  # no effect left
    rng = np.random.default_rng(7)
    observed = multivariate_logrank_test(time, labels, event).test_statistic
    exceed = sum(multivariate_logrank_test(time, rng.permutation(labels), event).test_statistic >= observed
                 for _ in range(200))  # fmt: skip
    ours = permutation_p(logrank(time, event), labels, n_permutations=200, seed=7)
    assert ours == (1 + exceed) / 201
    assert 0.05 < ours < 1  # no effect: not significant, and exceeded by some permutations


def test_permutations_are_batched_without_changing_the_p_value(monkeypatch):
    import stratomics.permutation_tests as permutation_tests

    labels, _, _, binary, _ = labelled_cohort(3, seed=43, n=200)
    whole = permutation_p(chi_square(binary), labels, n_permutations=300, seed=3)
    monkeypatch.setattr(permutation_tests, "BATCH_VALUES", 200 * 3 * 7)  # seven permutations per batch
    assert permutation_p(chi_square(binary), labels, n_permutations=300, seed=3) == whole


def test_an_outcome_without_variation_has_no_permutation_p_value():
    labels = np.repeat(["S1", "S2", "S3"], 20)
    assert np.isnan(permutation_p(kruskal_h(np.full(60, 2.0)), labels, n_permutations=50, seed=0))
    assert np.isnan(permutation_p(anova_f(np.full(60, 1.0)), labels, n_permutations=50, seed=0))

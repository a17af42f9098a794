"""Subgroups against outcomes: known effects recovered, tests wired to their references."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from stratomics.outcomes import kaplan_meier_table, subgroup_outcomes, table_one


@pytest.fixture(scope="module")
def cohort():
    rng = np.random.default_rng(4)
    n = 1500
    subgroup = pd.Categorical(rng.choice(["S1", "S2", "S3"], n, p=[0.5, 0.3, 0.2]), categories=["S1", "S2", "S3"])
    age = rng.normal(50, 10, n)
    log_hazard = np.log(2.0) * (subgroup == "S2") + 0.02 * (age - 50)  # S2: hazard ratio 2, S3: 1
    time = np.ceil(rng.exponential(500 * np.exp(-log_hazard)))
    logit = np.log(3.0) * (subgroup == "S3") - 0.5  # S3: odds ratio 3, S2: 1
    return pd.DataFrame({
        "subgroup": subgroup, "age": age, "sex": rng.choice(["F", "M"], n),
        "days": time, "event": (rng.random(n) < 0.8).astype(int),
        "failure": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
    })  # fmt: skip


OUTCOMES = {"switch": {"type": "survival", "time": "days", "event": "event"},
            "failure": {"type": "binary"}}  # fmt: skip


def test_known_hazard_and_odds_ratios_are_recovered(cohort):
    table = subgroup_outcomes(cohort, OUTCOMES, ["age", "sex"], n_permutations=99).set_index(["outcome", "term"])
    hr = table.loc[("switch", "subgroup[S2]")]
    assert hr["ci_low"] < np.log(2) < hr["ci_high"] and hr["p_value"] < 1e-6
    no_effect = table.loc[("switch", "subgroup[S3]")]
    assert abs(no_effect["estimate"]) < 3 * no_effect["std_error"]
    odds = table.loc[("failure", "subgroup[S3]")]
    assert odds["ci_low"] < np.log(3) < odds["ci_high"] and odds["ratio"] == pytest.approx(np.exp(odds["estimate"]))
    assert (table["permutation_p_value"] == 0.01).all()  # nothing in 99 permutations reaches the observed


def test_likelihood_ratio_test_equals_statsmodels_without_covariates(cohort):
    table = subgroup_outcomes(cohort, {"failure": {"type": "binary"}}, [], n_permutations=9)
    design = sm.add_constant(pd.get_dummies(cohort["subgroup"], drop_first=True, dtype=float))
    reference = sm.Logit(cohort["failure"], design).fit(disp=0)
    assert table["test_p_value"].iloc[0] == pytest.approx(reference.llr_pvalue, rel=1e-8)
    np.testing.assert_allclose(table["estimate"], reference.params.iloc[1:], rtol=1e-6)


def test_permutation_p_is_not_small_without_an_association(cohort):
    null = cohort.assign(subgroup=pd.Categorical(np.random.default_rng(0).permutation(cohort["subgroup"])))
    table = subgroup_outcomes(null, OUTCOMES, [], n_permutations=199, seed=1)
    assert (table["permutation_p_value"] > 0.05).all()
    assert table.groupby("outcome")["permutation_p_value"].first().sub(
        table.groupby("outcome")["test_p_value"].first()).abs().max() < 0.15  # agrees with the asymptotic test


def test_kaplan_meier_starts_at_one_and_counts_patients_at_risk(cohort):
    curves = kaplan_meier_table(cohort, "days", "event")
    first = curves.groupby("subgroup").first()
    assert (first["survival"] == 1).all()
    assert first["at_risk"].to_dict() == cohort["subgroup"].value_counts().to_dict()
    assert (curves.groupby("subgroup")["survival"].apply(lambda s: s.is_monotonic_decreasing)).all()


def test_table_one_uses_kruskal_wallis_and_chi_square(cohort):
    table = table_one(cohort, ["age", "sex"])
    age = table[table["characteristic"] == "age"].iloc[0]
    expected = stats.kruskal(*[cohort.loc[cohort["subgroup"] == g, "age"] for g in ["S1", "S2", "S3"]]).pvalue
    assert age["p_value"] == pytest.approx(expected)
    sex = table[(table["characteristic"] == "sex") & (table["level"] == "F")].iloc[0]
    count = ((cohort["subgroup"] == "S2") & (cohort["sex"] == "F")).sum()
    assert sex["S2"].startswith(f"{count} (")
    expected = stats.chi2_contingency(pd.crosstab(cohort["sex"], cohort["subgroup"]))[1]
    assert sex["p_value"] == pytest.approx(expected)
    assert table.iloc[0]["S1"] == str((cohort["subgroup"] == "S1").sum())


def test_table_one_shows_a_zero_one_outcome_as_one_row_of_ones_with_its_missing_count(cohort):
    with_missing = cohort.assign(failure=cohort["failure"].astype(float).mask(cohort.index % 10 == 0))
    table = table_one(with_missing, ["failure", "sex"])
    rows = table[table["characteristic"] == "failure"]
    assert list(rows["level"]) == ["1"] and rows["missing"].item() == str(with_missing["failure"].isna().sum())
    known = with_missing.dropna(subset=["failure"])
    s3 = known[known["subgroup"] == "S3"]["failure"]
    assert rows["S3"].item() == f"{int(s3.sum())} ({100 * s3.mean():.1f})"
    assert rows["all"].item() == f"{int(known['failure'].sum())} ({100 * known['failure'].mean():.1f})"
    expected = stats.chi2_contingency(pd.crosstab(known["failure"], known["subgroup"]))[1]
    assert rows["p_value"].item() == pytest.approx(expected)


def test_table_one_tests_a_characteristic_once_and_counts_every_level(cohort):
    three_levels = cohort.assign(site=np.random.default_rng(1).choice(["BE", "DE", "FR"], len(cohort)))
    rows = table_one(three_levels, ["site"]).query("characteristic == 'site'")
    assert list(rows["level"]) == ["BE", "DE", "FR"]
    assert rows["p_value"].notna().tolist() == [True, False, False] and list(rows["test"]) == ["Chi-squared", "", ""]
    assert rows["all"].str.split(" ").str[0].astype(int).sum() == len(cohort)


def test_table_one_summarises_a_survival_outcome_by_events_person_time_and_reverse_km(cohort):
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import multivariate_logrank_test

    table = table_one(cohort, ["age"], survival={"switch": ("days", "event")})
    rows = table[table["characteristic"] == "switch"].set_index("level")
    s2 = cohort[cohort["subgroup"] == "S2"]
    assert rows.loc["events / person-time (days)", "S2"] == f"{s2['event'].sum()} / {s2['days'].sum():.4g}"
    reverse = KaplanMeierFitter().fit(s2["days"], 1 - s2["event"]).median_survival_time_
    assert rows.loc["median follow-up (reverse Kaplan-Meier)", "S2"] == f"{reverse:.4g}"
    expected = multivariate_logrank_test(cohort["days"], cohort["subgroup"].astype(str), cohort["event"]).p_value
    assert list(rows["test"]) == ["log-rank", ""] and rows["p_value"].iloc[0] == pytest.approx(expected)
    assert rows.loc["events / person-time (days)", "all"] == f"{cohort['event'].sum()} / {cohort['days'].sum():.4g}"
    assert "days" not in set(table["characteristic"])  # no median of censored times


def test_table_one_word_document_holds_the_tsv_cells_and_is_identical_on_rerun(cohort, tmp_path):
    from docx import Document

    from stratomics.tables import write_word_table

    table = table_one(cohort, ["age", "sex", "failure"], survival={"switch": ("days", "event")})
    write_word_table(table, tmp_path / "a.docx", title="Table 1", note="note")
    write_word_table(table, tmp_path / "b.docx", title="Table 1", note="note")
    assert (tmp_path / "a.docx").read_bytes() == (tmp_path / "b.docx").read_bytes()
    grid = Document(tmp_path / "a.docx").tables[0]
    cells = [[cell.text for cell in row.cells] for row in grid.rows]
    assert cells[0][:4] == ["characteristic", "level", "missing", "all"] and len(cells) == len(table) + 1
    age = next(row for row in cells if row[0] == "age")
    p_value = table.set_index("characteristic").loc["age", "p_value"]
    assert age[3] == table.set_index("characteristic").loc["age", "all"] and age[-1] == f"{p_value:.2g}"


def test_table_one_with_one_subgroup_or_an_empty_column_describes_without_a_test(cohort):
    one_group = cohort.assign(subgroup=pd.Categorical(["S1"] * len(cohort)), bmi=np.nan)
    table = table_one(one_group, ["age", "bmi"]).set_index("characteristic")
    assert table["p_value"].isna().all() and (table["test"] == "").all()
    assert table.loc["age", "all"] == table.loc["age", "S1"]
    assert table.loc["bmi", "level"] == "no known value" and table.loc["bmi", "missing"] == str(len(cohort))

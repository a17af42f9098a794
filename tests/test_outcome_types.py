"""The outcome-type registry: every step finds its function by the type's model, a new type is one entry."""

import copy

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import demo_config
from scipy import stats

from stratomics.associate import PREDICTOR_TABLES, outcome_biomarkers, outcome_data
from stratomics.cohort import read_sample_sheet
from stratomics.config import load_schema, resolve, validate_config
from stratomics.errors import StratomicsInputError
from stratomics.federated import subgroup_counts
from stratomics.outcome_types import OUTCOME_TYPES, OutcomeType, check_numeric
from stratomics.outcomes import SUBGROUP_TESTS, subgroup_outcomes
from stratomics.predict import PREDICTION_TARGETS


def test_every_registered_type_has_a_function_in_each_step_and_is_in_the_schema():
    schema = load_schema()["properties"]["cohort"]["properties"]["outcomes"]["additionalProperties"]
    assert schema["properties"]["type"]["enum"] == list(OUTCOME_TYPES)
    for otype in OUTCOME_TYPES.values():
        assert otype.model in PREDICTOR_TABLES and otype.model in SUBGROUP_TESTS
        assert len(otype.checks) == len(otype.roles)
        assert otype.predictable == (otype.model in PREDICTION_TARGETS)


@pytest.fixture(scope="module")
def cohort():
    """600 patients in 3 subgroups; a continuous score 1.5 higher in S2 (SD 2), adjusted for age."""
    rng = np.random.default_rng(11)
    n = 600
    subgroup = pd.Categorical(rng.choice(["S1", "S2", "S3"], n, p=[0.5, 0.3, 0.2]), categories=["S1", "S2", "S3"])
    age = rng.normal(50, 10, n)
    score = 1.5 * (subgroup == "S2") + 0.05 * (age - 50) + rng.normal(0, 2, n)
    return pd.DataFrame({"subgroup": subgroup, "age": age, "score": score},
                        index=pd.Index([f"P{i}" for i in range(n)], name="patient_id"))  # fmt: skip


def test_continuous_outcome_against_subgroups_equals_statsmodels_ols(cohort):
    table = subgroup_outcomes(cohort, {"score": {"type": "continuous"}}, ["age"], n_permutations=99)
    design = sm.add_constant(pd.concat([cohort[["age"]], pd.get_dummies(cohort["subgroup"], drop_first=True,
                                                                        dtype=float)], axis=1))  # fmt: skip
    reference = sm.OLS(cohort["score"], design).fit()
    np.testing.assert_allclose(table["estimate"], reference.params[["S2", "S3"]], rtol=1e-8)
    np.testing.assert_allclose(table["std_error"], reference.bse[["S2", "S3"]], rtol=1e-8)
    f_test = reference.f_test("S2 = 0, S3 = 0")
    assert table["test_p_value"].iloc[0] == pytest.approx(float(f_test.pvalue), rel=1e-8)
    s2 = table.set_index("term").loc["subgroup[S2]"]
    assert s2["ci_low"] < 1.5 < s2["ci_high"] and s2["p_value"] < 1e-10
    assert table["model"].eq("linear").all() and table["ratio"].isna().all() and table["n_events"].isna().all()
    assert table["test"].iloc[0] == "F" and table["permutation_p_value"].iloc[0] == 0.01


def test_continuous_permutation_p_agrees_with_anova_under_the_null(cohort):
    null = cohort.assign(subgroup=pd.Categorical(np.random.default_rng(2).permutation(cohort["subgroup"])))
    table = subgroup_outcomes(null, {"score": {"type": "continuous"}}, [], n_permutations=199, seed=3)
    anova = stats.f_oneway(*(g["score"] for _, g in null.groupby("subgroup", observed=True)))
    assert table["test_p_value"].iloc[0] == pytest.approx(anova.pvalue, rel=1e-8)
    assert abs(table["permutation_p_value"].iloc[0] - anova.pvalue) < 0.1


def test_federated_counts_do_not_sum_a_continuous_outcome(cohort):
    counts = subgroup_counts(cohort, cohort["subgroup"], {"score": {"type": "continuous"}})
    assert list(counts.columns) == ["subgroup", "n_patients"]  # the sum of scores would be released otherwise
    assert counts.set_index("subgroup").loc["all", "n_patients"] == len(cohort)


def test_survival_events_must_be_coded_0_1(cohort):
    obs = cohort.assign(days=np.arange(len(cohort)) + 1.0, event=np.where(cohort["score"] > 0, 2.0, 1.0))
    with pytest.raises(StratomicsInputError, match=r"events must be coded 0/1, found 1, 2"):
        outcome_data(obs, "switch", {"type": "survival", "time": "days", "event": "event"}, covariates=[])


def test_text_in_a_continuous_outcome_is_named_with_its_patients(small_demo, tmp_path):
    folder, _ = small_demo
    sheet = pd.read_csv(folder / "samples.csv")
    sheet["das28"] = np.linspace(2, 6, len(sheet)).round(2).astype(str)
    sheet.loc[[3, 7], "das28"] = ["high", "n/a?"]
    sheet.to_csv(tmp_path / "samples.csv", index=False)
    config = copy.deepcopy(demo_config(folder))
    config["cohort"]["samples"] = str(tmp_path / "samples.csv")
    config["cohort"]["outcomes"] = {"das28": {"type": "continuous"}}
    with pytest.raises(StratomicsInputError, match=rf"'das28' is not numeric: 'high' \(patient {sheet.loc[3, 'patient_id']}\), 'n/a\?'"):
        read_sample_sheet(validate_config(config))


def test_a_new_outcome_type_is_one_registry_entry(small_demo, monkeypatch):
    """A log-scale score modelled by least squares: validation, ingest checks, biomarkers, subgroup test."""
    folder, _ = small_demo
    monkeypatch.setitem(OUTCOME_TYPES, "score", OutcomeType("score", ("column",), (check_numeric,), model="linear",
                                                            event_role=None, predictable=False))  # fmt: skip
    config = copy.deepcopy(demo_config(folder))
    config["cohort"]["outcomes"] = {"age_score": {"type": "score", "column": "age"}}
    validated = validate_config(config)
    assert resolve(validated)["predict_outcomes"] == [] and "age" in resolve(validated)["table1_columns"]
    sheet = read_sample_sheet(validated)
    features = pd.DataFrame({"f": sheet["age"] * 2 + np.random.default_rng(0).normal(size=len(sheet))}, index=sheet.index)
    table = outcome_biomarkers(ad.AnnData(features), sheet, "age_score", spec={"type": "score", "column": "age"}, covariates=[],
                               assay="a")  # fmt: skip
    assert table["model"].iloc[0] == "linear" and table["p_value"].iloc[0] < 1e-10
    groups = pd.Categorical(np.where(sheet["age"] > sheet["age"].median(), "S2", "S1"))
    effects = subgroup_outcomes(sheet.assign(subgroup=groups), validated["cohort"]["outcomes"], [], n_permutations=9)
    assert effects["estimate"].iloc[0] > 0 and effects["outcome"].iloc[0] == "age_score"
    config["cohort"]["outcomes"] = {"age_score": {"type": "scores"}}
    with pytest.raises(StratomicsInputError, match="scores"):
        validate_config(config)

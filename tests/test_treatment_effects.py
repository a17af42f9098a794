"""Treatment effects within subgroups: weighted models against hand computations and lifelines,
recovery of a planted subgroup x treatment interaction, the null level, and bad input."""

import numpy as np
import pandas as pd
import pytest

from stratomics.errors import StratomicsInputError
from stratomics.treatment_effects import (compare_treatments, fit_outcome_model, propensity_scores,
                                          stabilised_weights, treatment_heterogeneity)  # fmt: skip


def _cohort(n: int, seed: int, interaction: float) -> pd.DataFrame:
    """Three subgroups; older patients and S2 get anti-IL6R more often (confounding by age); the
    outcome depends on age, and anti-TNF raises failure by ``interaction`` (log odds/hazard) in S2 only."""
    rng = np.random.default_rng(seed)
    subgroup = rng.choice(["S1", "S2", "S3"], n)
    age = rng.normal(50, 10, n)
    propensity = 1 / (1 + np.exp(-(0.05 * (age - 50) + 0.5 * (subgroup == "S2"))))
    treatment = np.where(rng.random(n) < propensity, "anti-IL6R", "anti-TNF")
    linear = -0.5 + 0.04 * (age - 50) + interaction * ((treatment == "anti-TNF") & (subgroup == "S2"))
    failure = (rng.random(n) < 1 / (1 + np.exp(-linear))).astype(float)
    event_time, censoring = rng.exponential(1 / np.exp(linear + 0.5)), rng.uniform(0, 3, n)
    return pd.DataFrame({"subgroup": subgroup, "age": age, "treatment": treatment, "failure": failure,
                         "time": np.minimum(event_time, censoring), "switched": (event_time <= censoring).astype(int)},
                        index=[f"P{i}" for i in range(n)])  # fmt: skip


OUTCOMES = {"failure": {"type": "binary"}, "switch": {"type": "survival", "time": "time", "event": "switched"}}


def test_a_planted_subgroup_by_treatment_interaction_is_recovered_by_both_models():
    effects, overlap, propensity = treatment_heterogeneity(_cohort(1500, 0, interaction=1.2), OUTCOMES, ["age"],
                                                           treatment="treatment", reference="anti-TNF")  # fmt: skip
    assert set(effects["model"]) == {"iptw", "adjusted"} and set(effects["outcome"]) == {"failure", "switch"}
    for _, rows in effects.groupby(["outcome", "model"]):
        rows = rows.set_index("subgroup")
        assert rows["interaction_p_value"].iloc[0] < 1e-4 and (rows["interaction_df"] == 2).all()
        assert rows.at["S2", "ci_high"] < 0  # anti-IL6R fails less than anti-TNF in S2 only
        assert rows.at["S1", "ci_low"] < 0 < rows.at["S1", "ci_high"]
        assert rows.at["S3", "ci_low"] < 0 < rows.at["S3", "ci_high"]
    # the ratio type follows the outcome; positivity rows cover both arms of every subgroup
    assert set(effects.loc[effects["outcome"] == "switch", "ratio_type"]) == {"hazard ratio"}
    for outcome in OUTCOMES:  # each outcome's propensities (its own complete cases)
        assert len(overlap[overlap["outcome"] == outcome]) == 6
        assert overlap.loc[overlap["outcome"] == outcome, "n"].sum() == 1500 == (propensity["outcome"] == outcome).sum()


def test_the_interaction_test_keeps_its_level_without_an_interaction():
    p_values = []
    for seed in range(200):
        data = _cohort(300, seed, interaction=0.0)
        effects, _, _ = treatment_heterogeneity(data, {"failure": {"type": "binary"}}, ["age"], treatment="treatment",
                                                reference="anti-TNF")  # fmt: skip
        p_values.append(effects.query("model == 'iptw'")["interaction_p_value"].iloc[0])
    assert 0.02 <= np.mean(np.array(p_values) < 0.05) <= 0.09


def _weighted_logistic_by_hand(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted logistic regression by Newton's method and its HC0 sandwich covariance."""
    beta = np.zeros(X.shape[1])
    for _ in range(50):
        mu = 1 / (1 + np.exp(-X @ beta))
        beta += np.linalg.solve(X.T @ (X * (w * mu * (1 - mu))[:, None]), X.T @ (w * (y - mu)))
    mu = 1 / (1 + np.exp(-X @ beta))
    bread = np.linalg.inv(X.T @ (X * (w * mu * (1 - mu))[:, None]))
    scores = X * (w * (y - mu))[:, None]
    return beta, bread @ (scores.T @ scores) @ bread


def test_the_weighted_subgroup_effects_equal_a_hand_computed_sandwich():
    data = _cohort(400, 3, interaction=0.8)
    frame = pd.DataFrame({"y": data["failure"], "treated": (data["treatment"] == "anti-IL6R").astype(int),
                          "subgroup": pd.Categorical(data["subgroup"], categories=["S1", "S2", "S3"])})  # fmt: skip
    covariates = data[["age"]]
    effects, patients = compare_treatments(frame, covariates, model="logistic", trim=0.0)
    dummies = pd.get_dummies(frame["subgroup"], drop_first=True, dtype=float)
    propensity = propensity_scores(pd.concat([covariates, dummies], axis=1), frame["treated"].to_numpy())
    weights = stabilised_weights(frame["treated"].to_numpy(), propensity)
    np.testing.assert_allclose(patients["weight"], weights)
    t = frame["treated"].to_numpy(float)
    X = np.column_stack([np.ones(len(t)), t, dummies, t[:, None] * dummies.to_numpy()])
    beta, covariance = _weighted_logistic_by_hand(X, frame["y"].to_numpy(), weights)
    iptw = effects.query("model == 'iptw'").set_index("subgroup")
    np.testing.assert_allclose(iptw.at["S1", "estimate"], beta[1], rtol=1e-6)
    np.testing.assert_allclose(iptw.at["S3", "estimate"], beta[1] + beta[5], rtol=1e-6)
    np.testing.assert_allclose(iptw.at["S3", "std_error"], np.sqrt(covariance[np.ix_([1, 5], [1, 5])].sum()), rtol=1e-5)
    wald = beta[4:6] @ np.linalg.solve(covariance[4:6, 4:6], beta[4:6])
    from scipy import stats

    np.testing.assert_allclose(iptw["interaction_p_value"].iloc[0], stats.chi2.sf(wald, 2), rtol=1e-4)


def test_weighted_cox_and_its_robust_covariance_equal_statsmodels_on_replicated_patients():
    """Integer weights are copies: the weighted fit equals statsmodels' PHReg (Breslow) on the copied rows,
    and its robust covariance equals PHReg's covariance clustered on the original patient."""
    import warnings

    from lifelines import CoxPHFitter
    from statsmodels.duration.hazard_regression import PHReg

    data = _cohort(300, 4, interaction=0.5)
    frame = data.rename(columns={"switched": "event"})[["time", "event"]]
    design = pd.DataFrame({"treated": (data["treatment"] == "anti-IL6R").astype(float), "age": data["age"]})
    copies = np.random.default_rng(0).integers(1, 4, len(data))
    params, covariance = fit_outcome_model("cox", frame, design, weights=copies.astype(float))
    rows = np.repeat(np.arange(len(data)), copies)
    reference = PHReg(frame["time"].to_numpy()[rows], design.to_numpy()[rows], status=frame["event"].to_numpy()[rows],
                      ties="breslow").fit(groups=rows)  # fmt: skip
    np.testing.assert_allclose(params, reference.params, rtol=1e-4)
    np.testing.assert_allclose(covariance, reference.cov_params(), rtol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lifelines_fit = CoxPHFitter().fit(pd.concat([frame, design], axis=1).assign(w=copies.astype(float)), "time",
                                          "event", weights_col="w", robust=True)  # fmt: skip
    np.testing.assert_allclose(np.sqrt(np.diag(covariance)), lifelines_fit.standard_errors_, rtol=1e-6)


def test_a_treatment_with_one_patient_in_a_subgroup_is_not_estimable_there_and_named(caplog):
    data = _cohort(600, 5, interaction=0.0)
    in_s3 = data.index[(data["subgroup"] == "S3") & (data["treatment"] == "anti-IL6R")]
    data.loc[in_s3[1:], "treatment"] = "anti-TNF"  # one anti-IL6R patient left in S3
    effects, _, _ = treatment_heterogeneity(data, {"failure": {"type": "binary"}}, ["age"], treatment="treatment",
                                            reference="anti-TNF")  # fmt: skip
    s3 = effects[effects["subgroup"] == "S3"]
    assert s3["estimate"].isna().all() and (s3["n_treatment"] == 0).all()  # the one patient has no match
    assert s3["note"].str.contains("0 patient\\(s\\) on the treatment within the propensity overlap \\(1 trimmed\\)").all()
    assert effects.loc[effects["subgroup"] != "S3", "estimate"].notna().all()
    assert (effects.loc[effects["subgroup"] != "S3", "interaction_df"] == 1).all()  # S2 vs S1 only
    assert "failure, anti-IL6R vs anti-TNF: not estimable in S3" in caplog.text


def test_no_overlap_between_treatments_is_reported_not_estimated():
    data = _cohort(400, 6, interaction=0.0)
    data["centre"] = np.where(data["treatment"] == "anti-TNF", "A", "B")  # each centre gives one treatment
    effects, overlap, _ = treatment_heterogeneity(data, {"failure": {"type": "binary"}}, ["age", "centre"],
                                                  treatment="treatment", reference="anti-TNF")  # fmt: skip
    assert effects["estimate"].isna().all() and effects["note"].str.startswith("not estimable").all()
    assert (overlap["n_trimmed"] == overlap["n"]).all()


def test_an_unknown_reference_treatment_is_an_input_error():
    with pytest.raises(StratomicsInputError, match="reference 'anti-IL17' is not a value of column 'treatment'"):
        treatment_heterogeneity(_cohort(50, 0, 0.0), OUTCOMES, ["age"], treatment="treatment", reference="anti-IL17")


def test_the_demo_cohorts_planted_anti_tnf_by_endotype_interaction_is_recovered(tmp_path):
    """The demo generator makes anti-TNF fail more often in endotype E1 only; with the true endotypes as
    subgroups, every other treatment beats anti-TNF in E1 and the interaction test sees it."""
    from stratomics.simulate import TREATMENT_ENDOTYPE_RISK, simulate_cohort

    assert TREATMENT_ENDOTYPE_RISK == {("anti-TNF", "E1"): 0.8}
    paths = simulate_cohort(tmp_path, n_patients=3000, n_snps=500, n_genes=100, seed=0)
    sheet = pd.read_csv(paths["samples"]).set_index("patient_id")
    truth = pd.read_csv(paths["endotypes"], sep="\t").set_index("patient_id")["endotype"]
    sheet["subgroup"] = truth.str.replace("E", "S")
    outcomes = {"time_to_switch": {"type": "survival", "time": "time_to_switch_days", "event": "switched"}}
    effects, _, _ = treatment_heterogeneity(sheet, outcomes, ["age", "sex", "site", "disease"], treatment="treatment",
                                            reference="anti-TNF")  # fmt: skip
    weighted = effects[effects["model"] == "iptw"].set_index(["treatment", "subgroup"])
    for treatment in ("anti-integrin", "anti-CD20"):
        rows = weighted.loc[treatment]
        assert rows.at["S1", "ci_high"] < 0, treatment  # better than anti-TNF in E1
        assert (rows.drop(index="S1")["ci_high"] > 0).all(), treatment  # not shown elsewhere
        assert rows["interaction_p_value"].iloc[0] < 0.05, treatment

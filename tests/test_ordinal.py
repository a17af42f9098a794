"""Ordinal outcomes: the batched proportional-odds fits and the subgroup test against statsmodels OrderedModel."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.miscmodels.ordinal_model import OrderedModel

from stratomics.associate import outcome_biomarkers
from stratomics.associate.ordinal import fit_ordinal_predictor
from stratomics.errors import StratomicsInputError
from stratomics.outcome_types import check_ordinal, ordinal_codes
from stratomics.outcomes import subgroup_outcomes


def _cohort(n: int = 400, seed: int = 1):
    """Covariates, 5 features (10% missing; the first shifts the outcome) and a 4-category outcome."""
    rng = np.random.default_rng(seed)
    covariates = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n)])
    features = rng.normal(size=(n, 5))
    latent = 0.6 * features[:, 0] + 0.5 * covariates[:, 0] - 0.4 * covariates[:, 1] + rng.logistic(size=n)
    features[rng.random((n, 5)) < 0.1] = np.nan
    return covariates, features, np.digitize(latent, [-1, 0.5, 2])


def test_batched_fits_equal_statsmodels_ordered_model():
    covariates, features, codes = _cohort()
    table = fit_ordinal_predictor(codes, features, covariates).table([f"f{j}" for j in range(5)])
    for j in range(5):
        kept = ~np.isnan(features[:, j])
        reference = OrderedModel(codes[kept], np.column_stack([features[kept, j], covariates[kept]]),
                                 distr="logit").fit(method="newton", disp=0, maxiter=200)  # fmt: skip
        row = table.iloc[j]
        assert row["estimate"] == pytest.approx(reference.params[0], rel=1e-6, abs=1e-8)
        assert row["std_error"] == pytest.approx(reference.bse[0], rel=1e-5)
        assert row["p_value"] == pytest.approx(reference.pvalues[0], rel=1e-4, abs=1e-12)
        assert row["n"] == kept.sum() and row["converged"]
    assert table["p_value"].iloc[0] < 1e-6 and (table["p_value"].iloc[1:] > 1e-3).all()


def test_a_constant_feature_is_not_estimable_and_the_others_still_are():
    covariates, features, codes = _cohort(n=200)
    features[:, 2] = 1.0
    table = fit_ordinal_predictor(codes, features, covariates).table(list("abcde"))
    assert table.loc["c", "note"] != "" and np.isnan(table.loc["c", "std_error"])
    assert (table.drop(index="c")["note"] == "").all()


def test_biomarker_tests_read_text_levels_in_their_configured_order():
    import anndata as ad

    covariates, features, codes = _cohort()
    names = np.array(["remission", "mild", "moderate", "severe"])
    obs = pd.DataFrame({"activity": names[codes], "age": covariates[:, 0], "smoker": covariates[:, 1]},
                       index=[f"P{i}" for i in range(len(codes))])  # fmt: skip
    adata = ad.AnnData(np.nan_to_num(features[:, :1], nan=0.0), obs=obs[[]])
    spec = {"type": "ordinal", "levels": ["remission", "mild", "moderate", "severe"]}
    table = outcome_biomarkers(adata, obs, "activity", spec=spec, covariates=["age", "smoker"], assay="x")
    standardised = (adata.X[:, 0] - adata.X[:, 0].mean()) / adata.X[:, 0].std(ddof=1)
    reference = OrderedModel(codes, np.column_stack([standardised, covariates]), distr="logit").fit(method="newton", disp=0)
    assert table["estimate"].iloc[0] == pytest.approx(reference.params[0], rel=1e-5)
    assert table["model"].iloc[0] == "ordinal" and table["effect"].iloc[0].startswith("log cumulative odds ratio")
    reversed_order = {**spec, "levels": spec["levels"][::-1]}
    flipped = outcome_biomarkers(adata, obs, "activity", spec=reversed_order, covariates=["age", "smoker"], assay="x")
    assert flipped["estimate"].iloc[0] == pytest.approx(-reference.params[0], rel=1e-5)


def test_subgroup_test_equals_a_direct_ordered_model_and_the_feature_fit():
    covariates, _, codes = _cohort(n=300, seed=4)
    rng = np.random.default_rng(4)
    group = np.where(rng.random(300) < 0.5, "S1", "S2")
    obs = pd.DataFrame({"activity": codes, "age": covariates[:, 0], "subgroup": group})
    table = subgroup_outcomes(obs, {"activity": {"type": "ordinal"}}, ["age"], n_permutations=99)
    indicator = (group == "S2").astype(float)
    direct = fit_ordinal_predictor(codes, indicator[:, None], covariates[:, :1]).table(["S2"])
    assert table["estimate"].iloc[0] == pytest.approx(direct["estimate"].iloc[0], rel=1e-4)
    assert table["std_error"].iloc[0] == pytest.approx(direct["std_error"].iloc[0], rel=1e-4)
    wald_p = direct["p_value"].iloc[0]
    assert table["test_p_value"].iloc[0] == pytest.approx(wald_p, rel=0.2)  # likelihood ratio close to Wald
    assert table["ratio"].iloc[0] == pytest.approx(np.exp(table["estimate"].iloc[0]))


def test_ordinal_outcome_checks_name_the_bad_values():
    text = pd.Series(["mild", "severe", "sever"], index=["P1", "P2", "P3"], name="activity")
    with pytest.raises(StratomicsInputError, match="'sever' \\(patient P3\\)"):
        check_ordinal(text, "activity", "sample sheet", levels=["remission", "mild", "severe"])
    with pytest.raises(StratomicsInputError, match="levels"):
        check_ordinal(text, "activity", "sample sheet")
    with pytest.raises(StratomicsInputError, match="fewer than two"):
        check_ordinal(pd.Series([2.0, 2.0, np.nan], name="activity"), "activity", "sample sheet")
    assert ordinal_codes(pd.Series([3.0, 1.0, np.nan, 7.0])).tolist()[:2] == [1.0, 0.0]
    assert ordinal_codes(pd.Series(["b", "c", "b"]), levels=["a", "b", "c"]).tolist() == [0.0, 1.0, 0.0]


def test_the_demo_disease_activity_recovers_its_planted_log_odds(tmp_path):
    from stratomics.simulate import ACTIVITY_EFFECT, ACTIVITY_LEVELS, simulate_cohort

    paths = simulate_cohort(tmp_path, n_patients=2000, n_snps=100, n_genes=50, seed=5, scenario="realistic")
    sheet = pd.read_csv(paths["samples"], keep_default_na=False).set_index("patient_id")
    risk = pd.read_csv(paths["endotypes"], sep="\t").set_index("patient_id")["risk_factor"]
    codes = ordinal_codes(sheet["activity_12m"].replace("", np.nan), levels=list(ACTIVITY_LEVELS))
    kept = codes.notna()
    assert 0.01 < 1 - kept.mean() < 0.06  # about 3% unknown
    fit = fit_ordinal_predictor(codes[kept].to_numpy(), risk[kept.index[kept]].to_numpy()[:, None], np.empty((kept.sum(), 0)))
    estimate, std_error = fit.coef[0, 0], np.sqrt(fit.covariance[0, 0, 0])
    assert abs(estimate - ACTIVITY_EFFECT) < 3 * std_error


def test_an_assay_whose_covariates_are_collinear_among_its_patients_gets_notes_not_a_crash(caplog):
    import anndata as ad

    from stratomics.associate import assay_biomarkers

    covariates, features, codes = _cohort(n=40)
    site = np.where(np.arange(40) % 2, "A", "B")
    disease = np.where(np.arange(40) < 12, site, np.roll(site, 1))  # the assay's 12 patients: one disease per site
    obs = pd.DataFrame({"activity": codes, "site": site, "disease": disease, "age": covariates[:, 0]},
                       index=[f"P{i}" for i in range(40)])  # fmt: skip
    few = ad.AnnData(np.nan_to_num(features[:12]), obs=pd.DataFrame(index=obs.index[:12]))
    few.var_names = [f"f{j}" for j in range(5)]
    outcomes = {"activity": {"type": "ordinal"}, "failure": {"type": "binary", "column": "failed"}}
    obs["failed"] = np.tile([0.0, 1.0], 20)
    table = assay_biomarkers(few, obs.loc[few.obs_names], outcomes, covariates=["site", "disease", "age"], assay="few")
    assert len(table) == 10 and table["p_value"].isna().all()
    assert table["note"].str.startswith("not tested: ").all() and table["n"].eq(12).all()
    assert "biomarkers: assay 'few', outcome 'activity' not tested on its 12 patients" in caplog.text
    from stratomics.associate import markers_of_groups

    obs["group"] = np.tile(["G1", "G2", "G3"], 14)[:40]
    markers = markers_of_groups(few, obs.loc[few.obs_names], ["group"], covariates=["site", "disease"], assay="few")
    assert markers.empty and "markers of group in few: not tested on its 12 patients" in caplog.text

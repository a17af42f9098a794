"""Subgroup space: factors adjusted for covariates as statsmodels would, Gaussian factors dropped."""

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from sklearn.metrics import adjusted_rand_score

from stratomics.errors import StratomicsInputError
from stratomics.subgroup_space import fit_subgroup_space
from stratomics.subgroups import assign_patients, integrate_and_stratify, subgroup_table

md.set_options(pull_on_update=False)


def covariates(n, rng):
    return pd.DataFrame({"age": rng.normal(50, 12, n), "sex": rng.choice(["F", "M"], n),
                         "site": rng.choice(["A", "B", "C"], n)}, index=[f"p{i}" for i in range(n)])  # fmt: skip


def test_adjustment_gives_the_ols_residuals_and_r2_of_statsmodels():
    rng = np.random.default_rng(0)
    obs = covariates(200, rng)
    scores = np.column_stack([0.05 * obs["age"] + (obs["site"] == "B") * 2 + rng.normal(size=200),
                              rng.normal(size=200)])  # fmt: skip
    space, table = fit_subgroup_space(scores, obs, ["age", "sex", "site"], select=False)
    for j in range(2):
        fit = smf.ols("y ~ age + C(sex) + C(site)", data=obs.assign(y=scores[:, j])).fit()
        np.testing.assert_allclose(space.transform(scores, obs)[:, j], fit.resid, atol=1e-10)
        assert table.loc[j, "covariate_r2"] == pytest.approx(fit.rsquared, abs=1e-10)
    assert table["kept"].all()


def test_gaussian_and_covariate_driven_factors_are_dropped_and_a_mixture_is_kept():
    rng = np.random.default_rng(1)
    obs = covariates(400, rng)
    groups = rng.random(400) < 0.3
    mixture = np.where(groups, 2.5, 0.0) + rng.normal(size=400)
    by_sex = np.where(obs["sex"] == "F", 3.0, -3.0) + rng.normal(size=400)  # bimodal, but explained by sex
    scores = np.column_stack([rng.normal(size=400), mixture, by_sex])
    _, table = fit_subgroup_space(scores, obs, ["age", "sex", "site"])
    assert table["kept"].tolist() == [False, True, False]
    _, unadjusted = fit_subgroup_space(scores, obs, [])
    assert unadjusted["kept"].tolist() == [False, True, True]


def test_all_factors_are_kept_when_none_has_structure():
    rng = np.random.default_rng(2)
    obs = covariates(300, rng)
    space, table = fit_subgroup_space(rng.normal(size=(300, 4)), obs, ["age"])
    assert table["kept"].all() and space.kept.tolist() == [0, 1, 2, 3]


def test_new_patients_need_the_covariates_and_unseen_levels_count_as_missing(caplog):
    rng = np.random.default_rng(3)
    obs = covariates(100, rng)
    scores = rng.normal(size=(100, 2))
    space, _ = fit_subgroup_space(scores, obs, ["age", "site"], select=False)
    with pytest.raises(StratomicsInputError, match="covariate 'site'.*stratify.adjust_for"):
        space.transform(scores, obs.drop(columns="site"))
    new = obs.iloc[[0, 0, 0]].assign(site=["B", "Z", None])  # one patient, three site values
    adjusted = space.transform(np.repeat(scores[:1], 3, axis=0), new)
    assert "level of 'site'" in caplog.text
    np.testing.assert_allclose(adjusted[1], adjusted[2])
    assert not np.allclose(adjusted[0], adjusted[1])


def test_subgroups_beyond_a_dominant_site_effect_are_found_when_the_site_is_adjusted_for():
    rng = np.random.default_rng(4)
    n = 300
    patients = pd.Index([f"p{i}" for i in range(n)])
    site = rng.choice(["A", "B"], n)
    endotype = rng.random(n) < 0.4
    modalities = {}
    for name, n_features in (("proteins", 200), ("cytokines", 30)):
        site_shift = rng.normal(0, 2.5, n_features)
        endotype_shift = np.where(rng.random(n_features) < 0.3, 1.2, 0.0)
        values = np.outer(site == "B", site_shift) + np.outer(endotype, endotype_shift) + rng.normal(size=(n, n_features))
        modalities[name] = ad.AnnData(values, obs=pd.DataFrame(index=patients),
                                      var=pd.DataFrame(index=[f"{name}{j}" for j in range(n_features)]))  # fmt: skip
    clinical = ad.AnnData(obs=pd.DataFrame({"site": site}, index=patients))
    ari = {}
    for adjust_for in ([], ["site"]):
        mdata = md.MuData({"clinical": clinical, **modalities})
        mdata.obs["site"] = site
        model, _ = integrate_and_stratify(mdata, ["proteins", "cytokines"], integrate_options={"method": "mfa"},
                                          stratify_options={"n_resamples": 10, "k": 2, "k_values": [2]},
                                          adjust_for=adjust_for)  # fmt: skip
        groups = subgroup_table(mdata).set_index("patient_id")["subgroup"]
        ari[str(adjust_for)] = adjusted_rand_score(endotype, groups[patients])
    assert ari["['site']"] > 0.9 and ari["[]"] < 0.1, ari
    reassigned = assign_patients(model, mdata).set_index("patient_id")["subgroup"]
    assert (reassigned[patients] == groups[patients].astype(str)).mean() > 0.98

"""What the factors mean: feature correlations against pandas, associations against scipy, lifelines and
statsmodels, method weights against the factor scores they produce."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from lifelines import CoxPHFitter
from lifelines.utils import concordance_index
from scipy import stats
from test_stratify import planted_cohort

from stratomics.factor_annotation import factor_associations, factor_features, masked_correlation, method_weights
from stratomics.integrate import fit_integration


def test_masked_correlation_agrees_with_pairwise_complete_pandas():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(80, 3))
    values = scores @ rng.normal(size=(3, 12)) + rng.normal(size=(80, 12))
    values[rng.random(values.shape) < 0.3] = np.nan
    values[:, 0] = 1.0  # no spread
    values[2:, 1], values[:2, 1] = np.nan, [0.5, 1.5]  # two pairs only
    correlation, n = masked_correlation(values, scores)
    expected = pd.concat([pd.DataFrame(values), pd.DataFrame(scores, columns=["a", "b", "c"])], axis=1).corr()
    np.testing.assert_allclose(correlation[2:], expected.loc[2:11, ["a", "b", "c"]].to_numpy(), rtol=1e-10)
    assert np.isnan(correlation[:2]).all()
    assert list(n[:2]) == [80, 2] and n[2] == (~np.isnan(values[:, 2])).sum()


@pytest.mark.parametrize("method", ["mfa", "concat_pca"])
def test_projection_weights_reproduce_the_scoring_of_patients(method):
    mdata, _ = planted_cohort(n=150, missing=0)
    frames = {name: mdata[name].to_df() for name in ("big", "mid", "small")}
    model, _ = fit_integration(frames, mdata.obs_names, method=method, n_factors=3)
    scores, weights = model.transform(frames, mdata.obs_names), method_weights(model)
    projected = sum(((frame - frame.mean()) / frame.std(ddof=1)).to_numpy() @ weights[name].to_numpy()
                    for name, frame in frames.items())  # fmt: skip
    np.testing.assert_allclose(projected - projected.mean(axis=0), scores - scores.mean(axis=0), atol=1e-8)


def test_top_features_of_the_leading_factor_carry_the_planted_groups():
    mdata, _ = planted_cohort(n=200, missing=0.2)
    mdata["big"].var["gene_name"] = [f"GENE{j}" for j in range(mdata["big"].n_vars)]
    frames = {name: mdata[name].to_df() for name in ("big", "mid", "small")}
    model, scores = fit_integration(frames, mdata.obs_names, method="mofa", seed=1)
    table = factor_features(mdata, scores, ["big", "mid", "small"], weights=method_weights(model))
    assert len(table) == scores.shape[1] * (1000 + 60 + 12)
    top = table[(table["factor"] == 1) & (table["rank"] <= 30)]
    signal = top["feature"].str.extract(r"(\d+)$")[0].astype(int) < top["assay"].map({"big": 333, "mid": 20, "small": 4})
    assert signal.all()  # only the first third of each assay's features carries the groups
    assert (np.sign(top["weight"]) == np.sign(top["correlation"])).mean() > 0.9
    assert top.loc[top["assay"] == "big", "feature_name"].str.startswith("GENE").all()
    assert table.groupby("factor")["correlation"].apply(lambda c: c.abs().is_monotonic_decreasing).all()
    assert table.loc[table["assay"] == "big", "n"].max() == mdata["big"].n_obs


def test_associations_agree_with_scipy_statsmodels_and_lifelines():
    rng = np.random.default_rng(4)
    n = 300
    scores = rng.normal(size=(n, 2))
    scores[:5] = np.nan  # patients without any assay
    obs = pd.DataFrame({
        "crp": np.exp(scores[:, 0] + rng.normal(size=n)),
        "sex": rng.choice(["F", "M"], size=n),
        "site": pd.Categorical(rng.choice(["A", "B", "C"], size=n)),
        "rare": ["x"] * n,
        "response": (scores[:, 1] + rng.normal(size=n) > 0).astype(float),
        "time": rng.exponential(np.exp(-np.nan_to_num(scores[:, 0]))),
        "event": rng.random(n) < 0.7,
    })  # fmt: skip
    obs.loc[obs.index[10:20], "crp"] = np.nan
    outcomes = {"response": {"type": "binary"}, "switch": {"type": "survival", "time": "time", "event": "event"}}
    table = factor_associations(obs, scores, characteristics=["crp", "sex", "site", "rare", "absent", "time"],
                                outcomes=outcomes).set_index(["variable", "factor"])  # fmt: skip
    known = ~np.isnan(scores[:, 0]) & obs["crp"].notna().to_numpy()
    rho = stats.spearmanr(obs["crp"][known], scores[known, 0])
    assert table.loc[("crp", 1), "association"] == pytest.approx(rho.statistic, rel=1e-12)
    assert table.loc[("crp", 1), "n"] == n - 15 and table.loc[("crp", 1), "q_value"] < 1e-10
    male = obs["sex"].eq("M").to_numpy(float)[5:]
    assert table.loc[("sex (M vs F)", 2), "association"] == pytest.approx(stats.spearmanr(male, scores[5:, 1])[0])
    anova = smf.ols("factor ~ C(site)", data=obs.iloc[5:].assign(factor=scores[5:, 0])).fit()
    assert table.loc[("site", 1), "association"] == pytest.approx(np.sqrt(anova.rsquared), rel=1e-10)
    assert table.loc[("site", 1), "p_value"] == pytest.approx(anova.f_pvalue, rel=1e-8)
    assert np.isnan(table.loc[("rare", 1), "association"]) and "1 distinct" in table.loc[("rare", 1), "note"]
    assert ("absent", 1) not in table.index and ("time", 1) not in table.index  # outcome columns are outcomes
    assert table.loc[("response", 2), "association"] > 0.4 and abs(table.loc[("response", 1), "association"]) < 0.2
    data = pd.DataFrame({"time": obs["time"], "event": obs["event"].astype(float), "factor": scores[:, 0]}).iloc[5:]
    harrell = concordance_index(data["time"], -data["factor"], data["event"])
    assert table.loc[("switch", 1), "association"] == pytest.approx(2 * harrell - 1, rel=1e-12)
    assert table.loc[("switch", 1), "association"] > 0.2  # a higher factor 1: earlier events
    cox = CoxPHFitter().fit(data, duration_col="time", event_col="event")
    assert table.loc[("switch", 1), "p_value"] == pytest.approx(cox.summary.loc["factor", "p"], rel=1e-6)

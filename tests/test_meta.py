"""Meta-analysis against statsmodels' combine_effects (fixed effect and DerSimonian-Laird)."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.meta_analysis import combine_effects

from stratomics.meta import meta_analyse


@pytest.fixture
def site_estimates():
    rng = np.random.default_rng(0)
    rows = []
    for feature in range(40):
        true, spread = rng.normal(0, 0.3), [0.0, 0.25][feature % 2]  # odd features: heterogeneous
        for site in ["BEL", "DEU", "FRA", "LUX"][: 2 + feature % 3]:
            se = rng.uniform(0.05, 0.3)
            rows.append({"feature": f"f{feature}", "outcome_or_contrast": "failure", "site": site,
                         "estimate": true + rng.normal(0, spread) + rng.normal(0, se), "std_error": se,
                         "n": int(rng.integers(50, 300))})  # fmt: skip
    return pd.DataFrame(rows)


def test_fixed_and_random_effects_agree_with_statsmodels(site_estimates):
    table = meta_analyse(site_estimates, ["feature", "outcome_or_contrast"]).set_index("feature")
    for feature, rows in site_estimates.groupby("feature"):
        reference = combine_effects(rows["estimate"].to_numpy(), rows["std_error"].to_numpy() ** 2, method_re="chi2")
        ours = table.loc[feature]
        assert ours["estimate_fixed"] == pytest.approx(reference.mean_effect_fe, rel=1e-10)
        assert ours["std_error_fixed"] == pytest.approx(reference.sd_eff_w_fe, rel=1e-10)
        assert ours["q_statistic"] == pytest.approx(reference.q, rel=1e-10, abs=1e-12)
        if reference.tau2 < 0:  # statsmodels' "chi2" does not truncate tau^2 at 0; DerSimonian-Laird does
            assert ours["tau2"] == 0 and ours["i2"] == 0
            assert ours["estimate_random"] == pytest.approx(ours["estimate_fixed"], rel=1e-12)
            continue
        assert ours["estimate_random"] == pytest.approx(reference.mean_effect_re, rel=1e-10)
        assert ours["std_error_random"] == pytest.approx(reference.sd_eff_w_re, rel=1e-10)
        assert ours["tau2"] == pytest.approx(reference.tau2, rel=1e-10, abs=1e-14)
        assert ours["i2"] == pytest.approx(reference.i2, rel=1e-10, abs=1e-12)
        assert ours["n"] == rows["n"].sum() and ours["n_sites"] == len(rows)
    compared = sum(combine_effects(r["estimate"], r["std_error"] ** 2, method_re="chi2").tau2 >= 0
                   for _, r in site_estimates.groupby("feature"))  # fmt: skip
    assert compared >= 10  # enough features with tau^2 > 0 compared in full


def test_suppressed_rows_are_left_out_and_one_site_gives_its_own_estimate(site_estimates):
    estimates = site_estimates.copy()
    estimates.loc[estimates["feature"] == "f0", "estimate"] = np.nan  # suppressed everywhere
    single = pd.DataFrame([{"feature": "alone", "outcome_or_contrast": "failure", "site": "LUX", "estimate": 0.4,
                            "std_error": 0.3, "n": 80}])  # fmt: skip
    table = meta_analyse(pd.concat([estimates, single]), ["feature", "outcome_or_contrast"]).set_index("feature")
    assert "f0" not in table.index
    alone = table.loc["alone"]
    assert alone["estimate_random"] == pytest.approx(0.4) and alone["std_error_random"] == pytest.approx(0.3)
    assert alone["i2"] == 0 and alone["tau2"] == 0 and np.isnan(alone["q_p_value"])
    assert table["q_value"].between(0, 1).all()


def test_no_estimate_at_any_site_gives_an_empty_table_with_its_columns(caplog):
    # one subgroup everywhere: the site exports hold no subgroup effect, read back as empty objects
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in ["outcome_or_contrast", "model", "term", "site",
                                                               "estimate", "std_error", "n"]})  # fmt: skip
    table = meta_analyse(empty, ["outcome_or_contrast", "model", "term"])
    assert table.empty and {"estimate_random", "q_value", "term"} <= set(table.columns)
    assert "no site has an estimate" in caplog.text


def test_implausible_site_inputs_are_rejected_by_site_and_feature(site_estimates, caplog):
    honest = site_estimates[site_estimates["feature"] == "f2"]  # four sites
    expected = meta_analyse(honest, ["feature", "outcome_or_contrast"]).iloc[0]
    forged = pd.concat([honest, pd.DataFrame([
        {"feature": "f2", "outcome_or_contrast": "failure", "site": "EVIL", "estimate": 5.0, "std_error": 1e-6, "n": 40},
        {"feature": "f2", "outcome_or_contrast": "failure", "site": "INF", "estimate": np.inf, "std_error": 0.1, "n": 90},
        {"feature": "f2", "outcome_or_contrast": "failure", "site": "ZERO", "estimate": 0.2, "std_error": 0.0, "n": 90},
        {"feature": "f2", "outcome_or_contrast": "failure", "site": "HALF", "estimate": 0.2, "std_error": 0.2, "n": 2.5},
    ])])  # fmt: skip
    table = meta_analyse(forged, ["feature", "outcome_or_contrast"]).iloc[0]
    assert table["estimate_random"] == pytest.approx(expected["estimate_random"], rel=1e-12)
    assert table["n_sites"] == 4
    assert "site EVIL, f2, failure: rejected for a standard error too small for its n" in caplog.text
    assert "site INF, f2, failure: rejected for a non-finite estimate or SE" in caplog.text
    assert "site ZERO, f2, failure: rejected for a standard error that is not positive" in caplog.text
    assert "site HALF, f2, failure: rejected for n that is not a positive whole number" in caplog.text

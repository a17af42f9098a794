"""Random-intercept mixed models over all features, checked against statsmodels MixedLM (REML)."""

import logging
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from conftest import demo_config
from stratomics.associate.mixed import fit_random_intercept
from stratomics.cohort import build_cohort
from stratomics.config import validate_config
from stratomics.errors import StratomicsInputError
from stratomics.longitudinal import add_interaction_q, longitudinal_tests, visit_tests
from stratomics.simulate import simulate_cohort

VISITS = ["baseline", "week14", "week52"]


def _statsmodels_fit(y, x, patients):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # boundary (zero patient variance) and convergence notes
        return sm.MixedLM(y, x, groups=patients).fit(reml=True)


def test_random_intercept_fit_equals_statsmodels_mixedlm():
    rng = np.random.default_rng(1)
    n_patients = 120
    patients = np.repeat(np.arange(n_patients), rng.integers(1, 4, n_patients))  # 1 to 3 visits, unbalanced
    visit = np.concatenate([np.arange(k) for k in np.bincount(patients)])
    group = rng.integers(0, 2, n_patients)[patients]
    age = rng.normal(50, 10, n_patients)[patients]
    x = np.column_stack([np.ones(len(patients)), visit == 1, visit == 2, group, (visit == 1) * group,
                         (visit == 2) * group, age]).astype(float)  # fmt: skip
    patient_sd = np.array([1.0, 0.5, 2.0, 0.0, 1.0, 0.2])
    y = x @ rng.normal(0, 0.5, (7, 6)) + rng.normal(size=(n_patients, 6))[patients] * patient_sd
    y += rng.normal(size=y.shape)
    y[rng.random(len(patients)) < 0.1, 4] = np.nan  # one feature with its own missing samples
    fit = fit_random_intercept(y, x, patients)
    for j in range(y.shape[1]):
        rows = np.isfinite(y[:, j])
        reference = _statsmodels_fit(y[rows, j], x[rows], patients[rows])
        np.testing.assert_allclose(fit.coefficients[j], reference.fe_params, atol=1e-5)
        np.testing.assert_allclose(fit.residual_variance[j], reference.scale, rtol=1e-4)
        np.testing.assert_allclose(fit.patient_variance[j], np.asarray(reference.cov_re)[0, 0], atol=1e-4)
        # the GLS covariance sigma^2 (X'V^-1X)^-1 at statsmodels' variance estimates (as lme4 and nlme report)
        v = reference.scale * np.eye(rows.sum()) + np.asarray(reference.cov_re)[0, 0] * (
            patients[rows][:, None] == patients[rows][None, :])  # fmt: skip
        gls = np.linalg.inv(x[rows].T @ np.linalg.solve(v, x[rows]))
        np.testing.assert_allclose(fit.covariance[j], gls, rtol=1e-3, atol=1e-8)
        # statsmodels' own standard errors come from the observed Hessian: within 1%
        np.testing.assert_allclose(np.sqrt(np.diag(fit.covariance[j])), reference.bse_fe, rtol=0.01)
        assert fit.n_observations[j] == rows.sum()


def _trajectory_cohort(seed=2, n_patients=150):
    """Responders (failure 0) whose marker A falls by 1 after baseline; B changes alike in both groups."""
    rng = np.random.default_rng(seed)
    patients = pd.DataFrame({"failure_12m": rng.integers(0, 2, n_patients).astype(float),
                             "age": rng.normal(45, 12, n_patients).round(),
                             "sex": rng.choice(["F", "M"], n_patients)},
                            index=[f"P{i}" for i in range(n_patients)])  # fmt: skip
    patients.iloc[:5, 0] = np.nan  # outcome unknown: left out
    samples = [(p, v) for p in patients.index for v in VISITS[: int(rng.integers(1, 4))]]
    obs = pd.DataFrame(samples, columns=["patient_id", "visit"], index=[f"S{i}" for i in range(len(samples))])
    level = rng.normal(size=(n_patients, 2))[patients.index.get_indexer(obs["patient_id"])]
    responder = (patients.loc[obs["patient_id"], "failure_12m"] == 0).to_numpy()
    follow_up = (obs["visit"] != "baseline").to_numpy()
    values = level + rng.normal(0, 0.5, level.shape)
    values[:, 0] -= 1.0 * (responder & follow_up)
    values[:, 1] += 0.8 * follow_up
    adata = ad.AnnData(values, obs=obs, var=pd.DataFrame({"gene_name": ["A", "B"]}, index=["f_a", "f_b"]))
    return adata, patients


def test_longitudinal_tests_recover_a_planted_trajectory_and_match_statsmodels():
    adata, patients = _trajectory_cohort()
    table = longitudinal_tests(adata, patients, group_by="failure_12m", visits=VISITS, covariates=["age", "sex"],
                               assay="cytokines")  # fmt: skip
    table = add_interaction_q(table)
    row = table.set_index(["feature_name", "group", "visit"])
    assert row.loc[("A", "0", "week14"), "ci_low"] < -1.0 < row.loc[("A", "0", "week14"), "ci_high"]
    assert abs(row.loc[("A", "1", "week52"), "change"]) < 0.25
    assert row.loc[("A", "0", "week14"), "interaction_p"] < 1e-8 and row.loc[("B", "0", "week14"), "interaction_p"] > 1e-3
    assert row.loc[("B", "1", "week52"), "p_value"] < 1e-3  # the shared change is still found in each group
    assert set(table["group"]) == {"0", "1"} and len(table) == 2 * 2 * 2
    # the same model through statsmodels' formula interface, and the change of group 1 at week52 as a contrast
    data = adata.obs.join(patients, on="patient_id").assign(value=adata.X[:, 0]).dropna()
    data["group"] = data["failure_12m"].astype(int).astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = smf.mixedlm("value ~ C(visit, Treatment('baseline')) * group + age + C(sex)", data,
                                groups=data["patient_id"]).fit(reml=True)  # fmt: skip
    names = reference.fe_params.index
    contrast = (names.str.contains(r"\[T.week52\]") & ~names.str.contains("group")) | (
        names.str.contains(r"\[T.week52\]:group\[T.1\]"))  # fmt: skip
    np.testing.assert_allclose(row.loc[("A", "1", "week52"), "change"], reference.fe_params[contrast].sum(), atol=1e-5)
    np.testing.assert_allclose(row.loc[("A", "0", "week52"), "change"],
                               reference.fe_params[names.str.contains(r"\[T.week52\]$")].sum(), atol=1e-5)  # fmt: skip
    counted = adata.obs.join(patients, on="patient_id").query("visit == 'week14' and failure_12m == 0")
    assert row.loc[("A", "0", "week14"), "n_patients"] == counted["patient_id"].nunique()


def test_a_visit_with_too_few_patients_is_left_out_and_named(caplog):
    adata, patients = _trajectory_cohort(n_patients=40)
    late = adata.obs_names[(adata.obs["visit"] == "week52").to_numpy()]
    keep = ~adata.obs_names.isin(late[2:])  # two week-52 samples left
    with caplog.at_level(logging.WARNING, logger="stratomics"):
        table = longitudinal_tests(adata[keep].copy(), patients, group_by="failure_12m", visits=VISITS)
    assert set(table["visit"]) == {"week14"}
    assert "visit week52 left out" in caplog.text
    with pytest.raises(KeyError):
        longitudinal_tests(adata, patients, group_by="subgroup", visits=VISITS)


def test_the_demo_follow_up_visits_recover_the_planted_trajectories(tmp_path):
    simulate_cohort(tmp_path, n_patients=400, n_snps=200, n_genes=100, scenario="realistic", seed=5)
    config = demo_config(tmp_path)
    config["cohort"]["visits"] = VISITS
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Observation names are not unique")
        cohort = build_cohort(validate_config(config))
    assert list(cohort.visits.mod) == ["cytokines"]  # the only assay measured at follow-up
    assert set(cohort.visits["cytokines"].obs["visit"]) == set(VISITS)
    assert (cohort.report["status"] == "follow_up").sum() == (cohort.visits["cytokines"].obs["visit"] != "baseline").sum()
    table = visit_tests(cohort.visits, cohort.mdata.obs, assays=config["assays"], group_columns=["failure_12m"],
                        visit_order=VISITS, covariates=["age", "sex", "site", "disease"])  # fmt: skip
    planted = pd.read_csv(tmp_path / "ground_truth/planted_features.tsv", sep="\t")
    falling = set(planted.loc[planted["effect_on"].str.startswith("follow-up"), "feature"])
    per_feature = table.drop_duplicates("feature").set_index("feature")
    found = set(per_feature.index[per_feature["interaction_q"] < 0.05])
    assert falling <= found and len(found - falling) <= 1
    responders = table[(table["group"] == "0") & table["feature"].isin(falling) & (table["visit"] == "week14")]
    assert (responders["ci_high"] < 0).all()  # they fall in responders
    assert set(table["unit"]) == {"log2 concentration"}  # the cytokines' preprocessed scale
    from matplotlib import pyplot as plt

    from stratomics.figures import trajectories

    fig = trajectories(table, group_by="failure_12m", visits=VISITS)
    assert fig.axes[0].get_ylabel() == "Change from baseline (log2 concentration)"
    plt.close(fig)


def test_visits_without_any_sample_stop_with_a_clear_message(small_demo):
    _, config = small_demo
    config = {**config, "cohort": {**config["cohort"], "visits": ["baseline", "month6"]}}
    with pytest.raises(StratomicsInputError, match="no assay sample is at one of them.*week14"):
        build_cohort(config)

"""The association engine against statsmodels, limma, lifelines and plink2, coefficient by coefficient."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

from stratomics.associate import cluster_markers, feature_names, linear_association, outcome_biomarkers
from stratomics.associate.cox import fit_cox_predictor
from stratomics.associate.design import group_contrasts, group_design, model_design
from stratomics.associate.genetic import scan_snps
from stratomics.associate.linear import fit_features, moderate, contrast_test
from stratomics.associate.multiple import add_q_values, adjust_p
from stratomics.associate.predictor import fit_linear_predictor, fit_logistic_predictor
from stratomics.errors import StratomicsInputError

LIMMA = Path(__file__).parent / "data" / "limma"
RTOL = 1e-6


@pytest.fixture
def cohort_frame():
    rng = np.random.default_rng(11)
    n = 240
    obs = pd.DataFrame({
        "group": rng.choice(["g1", "g2", "g3"], n, p=[0.5, 0.3, 0.2]),
        "age": rng.normal(50, 12, n).round(),
        "sex": rng.choice(["F", "M"], n),
        "site": rng.choice(["LUX", "BEL", "DEU"], n),
    }, index=[f"p{i}" for i in range(n)])  # fmt: skip
    values = rng.normal(size=(n, 60)) + 0.02 * obs[["age"]].to_numpy()
    values[obs["group"].to_numpy() == "g2", :10] += 0.8
    values[rng.random(values.shape) < 0.08] = np.nan
    return obs, values


# --- linear models of features ---


def test_linear_fit_and_contrasts_equal_statsmodels_ols(cohort_frame):
    obs, values = cohort_frame
    design, levels = group_design(obs, "group", ["age", "sex", "site"])
    fit = fit_features(values, design)
    contrasts = group_contrasts(levels, design.shape[1], "one_vs_rest")
    overall = group_contrasts(levels, design.shape[1], "overall")["overall"]
    ours = contrast_test(fit, contrasts["g2 vs rest"])
    ours_f = contrast_test(fit, overall)
    for j in range(values.shape[1]):
        ok = np.isfinite(values[:, j])
        reference = sm.OLS(values[ok, j], design.to_numpy()[ok]).fit()
        t_test = reference.t_test(contrasts["g2 vs rest"])
        np.testing.assert_allclose(ours["estimate"].iloc[j], t_test.effect[0], rtol=RTOL)
        np.testing.assert_allclose(ours["std_error"].iloc[j], t_test.sd[0, 0], rtol=RTOL)
        np.testing.assert_allclose(ours["p_value"].iloc[j], t_test.pvalue, rtol=RTOL)
        f_test = reference.f_test(overall)
        np.testing.assert_allclose(ours_f["statistic"].iloc[j], f_test.fvalue, rtol=RTOL)
        np.testing.assert_allclose(ours_f["p_value"].iloc[j], f_test.pvalue, rtol=RTOL)
        assert ours["df"].iloc[j] == reference.df_resid and ours["n"].iloc[j] == ok.sum()


def test_masked_moments_equal_dense_sums_over_the_mask():
    from stratomics.associate.moments import BLOCK_ROWS, masked_moments

    rng = np.random.default_rng(21)
    n, m = 2 * BLOCK_ROWS + 37, 150  # a partial last block of patients
    x = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    values = rng.normal(size=(n, m))
    values[rng.random(values.shape) < 0.1] = np.nan
    values[:, 0] = np.nan  # nothing observed
    values[:, 1] = rng.normal(size=n)  # complete
    observed = np.isfinite(values)
    filled = np.where(observed, values, 0.0)
    outer = (x[:, :, None] * x[:, None, :]).reshape(n, -1)
    expected = (filled.T @ x, (filled**2).sum(axis=0), (~observed).sum(axis=0), (~observed).T.astype(float) @ outer)
    for threads, data in ((1, values), (3, values), (2, values.astype(np.float32)), (2, np.asfortranarray(values))):
        tolerance = 1e-5 if data.dtype == np.float32 else 1e-12
        for ours, reference in zip(masked_moments(data, x, threads=threads), expected):
            np.testing.assert_allclose(ours, reference, rtol=tolerance, atol=tolerance * n)


def test_linear_fit_of_mostly_missing_and_complete_features_equals_statsmodels(cohort_frame):
    obs, values = cohort_frame
    design = model_design(obs, "~ C(group) + age")
    rng = np.random.default_rng(22)
    values = values[:, :4].copy()
    values[:, 0] = np.where(rng.random(len(obs)) < 0.1, values[:, 0], np.nan)  # 10% observed: sum the rows it has
    values[:, 1] = rng.normal(size=len(obs))  # complete
    table = contrast_test(fit_features(values, design), [0, 1, 0, 0])
    for j in range(values.shape[1]):
        ok = np.isfinite(values[:, j])
        reference = sm.OLS(values[ok, j], design.to_numpy()[ok]).fit()
        np.testing.assert_allclose(table["estimate"].iloc[j], reference.params[1], rtol=RTOL)
        np.testing.assert_allclose(table["p_value"].iloc[j], reference.pvalues[1], rtol=RTOL)
        assert table["n"].iloc[j] == ok.sum()


@pytest.fixture(scope="module")
def limma_fit():
    values = pd.read_csv(LIMMA / "values.tsv", sep="\t", index_col=0)
    design = pd.read_csv(LIMMA / "design.tsv", sep="\t")
    reference = pd.read_csv(LIMMA / "limma_plain.tsv", sep="\t", index_col=0)
    return values, design, reference


def test_moderated_statistics_equal_limma(limma_fit):
    values, design, reference = limma_fit
    treatment = pd.DataFrame({"Intercept": 1.0, "B": design["B"], "C": design["C"], "age": design["age"]})
    fit = moderate(fit_features(values.T.to_numpy(), treatment, values.index))
    assert fit.df_prior == pytest.approx(reference["df_prior"].iloc[0], rel=1e-9)
    assert fit.s2_prior == pytest.approx(reference["s2_prior"].iloc[0], rel=1e-9)
    ours = contrast_test(fit, [0, 1, 0, 0], moderated=True)
    tested = reference["B_t"].notna()
    assert tested.sum() == 299 and ours["p_value"].notna().sum() == 299
    for column, theirs in (("estimate", "B_coef"), ("statistic", "B_t"), ("p_value", "B_p")):
        np.testing.assert_allclose(ours.loc[tested, column], reference.loc[tested, theirs], rtol=RTOL)
    np.testing.assert_allclose(fit.s2_post[tested.to_numpy()], reference.loc[tested, "s2_post"], rtol=RTOL)
    np.testing.assert_allclose(fit.df_total[tested.to_numpy()], reference.loc[tested, "df_total"], rtol=RTOL)


def test_moderated_contrasts_and_f_equal_limma_on_complete_features(limma_fit):
    values, design, reference = limma_fit
    fit = moderate(fit_features(values.T.to_numpy(), design, values.index))
    complete = values.notna().all(axis=1)
    b_vs_rest = contrast_test(fit, [-0.5, 1, -0.5, 0], moderated=True)
    joint = contrast_test(fit, np.array([[-0.5, 1, -0.5, 0], [-1, 0, 1, 0]]), moderated=True)
    np.testing.assert_allclose(b_vs_rest.loc[complete, "statistic"], reference.loc[complete, "BvsRest_t"], rtol=RTOL)
    np.testing.assert_allclose(b_vs_rest.loc[complete, "p_value"], reference.loc[complete, "BvsRest_p"], rtol=RTOL)
    np.testing.assert_allclose(joint.loc[complete, "statistic"], reference.loc[complete, "F"], rtol=RTOL)
    np.testing.assert_allclose(joint.loc[complete, "p_value"], reference.loc[complete, "F_p"], rtol=RTOL)


def test_degenerate_features_get_no_estimate(cohort_frame):
    obs, values = cohort_frame
    design = model_design(obs, "~ C(group) + age")
    values = values.copy()
    values[:, 0] = 3.0  # constant: no residual variance is fine, but the estimate is exactly 0
    values[:, 1] = np.nan
    values[:4, 1] = [1, 2, 3, 4]  # observed in fewer patients than coefficients
    values[obs["group"].to_numpy() != "g1", 2] = np.nan  # only one group observed: not estimable
    table = contrast_test(fit_features(values, design), [0, 1, 0, 0])
    assert table["estimate"].iloc[0] == pytest.approx(0, abs=1e-12)
    assert table.iloc[1:3]["p_value"].isna().all()
    assert table.iloc[3:]["p_value"].notna().all()


def test_collinear_covariate_is_an_error_naming_the_column(cohort_frame):
    obs, _ = cohort_frame
    obs = obs.assign(country=obs["site"].map({"LUX": "Luxembourg", "BEL": "Belgium", "DEU": "Germany"}))
    with pytest.raises(StratomicsInputError, match=r"column 'C\(country\).*collinear"):
        model_design(obs, "~ C(site) + C(country)")
    with pytest.raises(StratomicsInputError, match="nosuch. is not present"):
        model_design(obs, "~ age + nosuch")


# --- features as predictors ---


def test_logistic_equals_statsmodels_logit(cohort_frame):
    obs, values = cohort_frame
    rng = np.random.default_rng(5)
    design = model_design(obs, "~ age + C(sex) + C(site)")
    logit = 0.8 * np.nan_to_num(values[:, 0]) - 0.3
    y = (rng.random(len(obs)) < 1 / (1 + np.exp(-logit))).astype(float)
    table = fit_logistic_predictor(y, values, design.to_numpy()).table(range(values.shape[1]))
    for j in range(values.shape[1]):
        ok = np.isfinite(values[:, j])
        reference = sm.Logit(y[ok], np.column_stack([values[ok, j], design.to_numpy()[ok]])).fit(disp=0, tol=1e-12)
        np.testing.assert_allclose(table["estimate"].iloc[j], reference.params[0], rtol=RTOL)
        np.testing.assert_allclose(table["std_error"].iloc[j], reference.bse[0], rtol=RTOL)
        np.testing.assert_allclose(table["p_value"].iloc[j], reference.pvalues[0], rtol=RTOL)
        assert table["n"].iloc[j] == ok.sum() and table["n_events"].iloc[j] == y[ok].sum()


def test_logistic_reports_separation_instead_of_an_estimate():
    rng = np.random.default_rng(1)
    y = np.repeat([0.0, 1.0], 50)
    separating = np.where(y == 1, rng.uniform(1, 2, 100), rng.uniform(-2, -1, 100))
    ordinary = rng.normal(size=100)
    table = fit_logistic_predictor(y, np.column_stack([separating, ordinary]), np.ones((100, 1))).table(["s", "o"])
    assert np.isnan(table.loc["s", "estimate"]) and "separation" in table.loc["s", "note"]
    assert np.isfinite(table.loc["o", "estimate"]) and table.loc["o", "note"] == ""
    with pytest.warns(sm.tools.sm_exceptions.PerfectSeparationWarning):  # statsmodels agrees
        sm.Logit(y, np.column_stack([separating, np.ones(100)])).fit(disp=0, warn_convergence=False)


def test_logistic_flags_degenerate_features_and_fits_the_rest():
    rng = np.random.default_rng(11)
    n = 300
    age = rng.normal(size=n)
    design = np.column_stack([np.ones(n), age])
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.5 * age - 0.2)))).astype(float)
    ordinary = rng.normal(size=n)
    mostly_missing = np.where(np.arange(n) < 5, rng.normal(size=n), np.nan)
    values = np.column_stack([np.full(n, 2.0), 3 * age, mostly_missing, ordinary])
    table = fit_logistic_predictor(y, values, design).table(["constant", "age copy", "mostly missing", "ordinary"])
    for feature in ("constant", "age copy", "mostly missing"):
        assert np.isnan(table.loc[feature, "estimate"]) and table.loc[feature, "note"] != "", feature
    assert table.loc["constant", "note"] == "design not estimable on the observed patients"
    assert table.loc["mostly missing", "n"] == 5
    reference = sm.Logit(y, np.column_stack([ordinary, design])).fit(disp=0, tol=1e-12)
    np.testing.assert_allclose(table.loc["ordinary", ["estimate", "std_error", "p_value"]].to_numpy(float),
                               [reference.params[0], reference.bse[0], reference.pvalues[0]], rtol=RTOL)  # fmt: skip


def test_logistic_fits_do_not_depend_on_threads_layout_or_dtype():
    rng = np.random.default_rng(12)
    n, m = 200, 700  # three chunks of features
    design = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    values = rng.normal(size=(n, m)).astype(np.float32)
    values[:, 300:][rng.random((n, m - 300)) < 0.05] = np.nan  # complete features take a shortcut
    y = (rng.random(n) < 1 / (1 + np.exp(-values[:, 0].astype(float).clip(-5, 5)))).astype(float)
    one_thread = fit_logistic_predictor(y, values.astype(float), design, threads=1).table(range(m))
    for other in (fit_logistic_predictor(y, values, design, threads=3),
                  fit_logistic_predictor(y, np.asfortranarray(values.astype(float)), design, threads=2)):  # fmt: skip
        pd.testing.assert_frame_equal(other.table(range(m)), one_thread, check_exact=True)
    usable = np.flatnonzero(one_thread["p_value"].notna().to_numpy())
    assert len(usable) == m
    for j in usable[[0, 255, 256, 299, 300, 511, 512, -1]]:  # both sides of the chunk boundaries
        ok = np.isfinite(values[:, j])
        reference = sm.Logit(y[ok], np.column_stack([values[ok, j].astype(float), design[ok]])).fit(disp=0, tol=1e-12)
        np.testing.assert_allclose(one_thread["p_value"].iloc[j], reference.pvalues[0], rtol=RTOL)


def test_thread_count_follows_omp_num_threads(monkeypatch):
    from stratomics.associate.moments import available_threads

    for setting, expected in (("3", 3), ("4,2", 4), ("", len(os.sched_getaffinity(0))), ("many", len(os.sched_getaffinity(0)))):
        monkeypatch.setenv("OMP_NUM_THREADS", setting)
        assert available_threads() == expected


def test_compiled_exp_agrees_with_numpy_to_the_last_bits():
    from stratomics.associate.newton import exp_into

    x = np.concatenate([np.linspace(-720, 720, 200_001), np.random.default_rng(13).normal(scale=3, size=10_000)])
    out, scratch = np.empty_like(x), np.empty(len(x), dtype=np.int64)
    exp_into(x, out, scratch)
    inside = np.abs(x) <= 700
    assert np.max(np.abs(out[inside] / np.exp(x[inside]) - 1)) <= 4.5e-16
    np.testing.assert_allclose(out[~inside], np.exp(np.clip(x[~inside], -700, 700)), rtol=1e-15)


def test_linear_predictor_equals_statsmodels_ols(cohort_frame):
    obs, values = cohort_frame
    design = model_design(obs, "~ age + C(site)")
    noise = np.random.default_rng(2).normal(size=len(obs))
    y = obs["age"].to_numpy() * 0.1 + np.nan_to_num(values[:, 3]) + noise
    fit = fit_linear_predictor(y, values, design.to_numpy())
    table = fit.table(range(values.shape[1]), distribution="t", df=fit.n - design.shape[1] - 1)
    for j in (0, 3, 7):
        ok = np.isfinite(values[:, j])
        reference = sm.OLS(y[ok], np.column_stack([values[ok, j], design.to_numpy()[ok]])).fit()
        np.testing.assert_allclose(table[["estimate", "std_error", "p_value"]].iloc[j],
                                   [reference.params[0], reference.bse[0], reference.pvalues[0]], rtol=RTOL)  # fmt: skip
        np.testing.assert_allclose(table[["ci_low", "ci_high"]].iloc[j], reference.conf_int()[0], rtol=RTOL)


def test_linear_predictor_from_one_pass_equals_statsmodels_for_every_kind_of_feature():
    rng = np.random.default_rng(21)
    n = 700
    covariates = np.column_stack([np.ones(n), rng.normal(50, 10, n), rng.integers(0, 2, n)])
    features = rng.binomial(2, 0.3, size=(n, 6)).astype(np.float32)  # dosages, read as float32
    features[rng.random((n, 6)) < 0.03] = np.nan
    features[:, 1] = rng.normal(size=n)  # complete
    features[rng.random(n) < 0.8, 2] = np.nan  # mostly missing: summed directly
    y = 1e4 + 0.5 * np.nan_to_num(features[:, 0]) + 0.02 * covariates[:, 1] + rng.normal(size=n)
    features[:, 3] = (y - 1e4) * 3 + 1  # a perfect fit: the residual sum of squares cancels
    for threads in (1, 2):
        fit = fit_linear_predictor(y, features, covariates, threads=threads)
        table = fit.table(range(6), distribution="t", df=fit.n - 4)
        for j in (0, 1, 2, 4, 5):
            ok = np.isfinite(features[:, j])
            reference = sm.OLS(y[ok], np.column_stack([features[ok, j].astype(float), covariates[ok]])).fit()
            np.testing.assert_allclose(table[["estimate", "std_error", "p_value"]].iloc[j],
                                       [reference.params[0], reference.bse[0], reference.pvalues[0]], rtol=1e-8)  # fmt: skip
            assert table["n"].iloc[j] == ok.sum()
        assert table["estimate"].iloc[3] == pytest.approx(1 / 3, rel=1e-9) and table["std_error"].iloc[3] < 1e-6


def test_cox_equals_lifelines_with_ties_and_covariates(cohort_frame):
    from lifelines import CoxPHFitter

    obs, values = cohort_frame
    rng = np.random.default_rng(9)
    hazard = np.exp(0.6 * np.nan_to_num(values[:, 0]) + 0.02 * (obs["age"].to_numpy() - 50))
    time = np.ceil(rng.exponential(200 / hazard) / 7)  # weeks: many tied event times
    event = (rng.random(len(obs)) < 0.75).astype(int)
    design = model_design(obs, "~ age + C(sex)").drop(columns="Intercept")
    table = fit_cox_predictor(time, event, values, covariates=design.to_numpy()).table(range(values.shape[1]))
    for j in (0, 1, 5, 20):
        ok = np.isfinite(values[:, j])
        frame = pd.DataFrame(np.column_stack([values[ok, j], design.to_numpy()[ok]]), columns=["f", "age", "sex"])
        frame["time"], frame["event"] = time[ok], event[ok]
        reference = CoxPHFitter().fit(frame, "time", "event", fit_options={"precision": 1e-14, "max_steps": 100})
        np.testing.assert_allclose(table["estimate"].iloc[j], reference.params_["f"], rtol=RTOL)
        np.testing.assert_allclose(table["std_error"].iloc[j], reference.standard_errors_["f"], rtol=RTOL)
        np.testing.assert_allclose(table["p_value"].iloc[j], reference.summary.loc["f", "p"], rtol=RTOL)
        assert table["n_events"].iloc[j] == event[ok].sum()


# --- multiple testing ---


def test_fdr_and_bonferroni_equal_statsmodels_multipletests():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=200), rng.uniform(0, 1e-3, 20), [np.nan] * 5])
    tested = np.isfinite(p)
    for method in ("fdr_bh", "bonferroni"):
        ours = adjust_p(p, method)
        np.testing.assert_allclose(ours[tested], multipletests(p[tested], method=method)[1], rtol=1e-12)
        assert np.isnan(ours[~tested]).all()
    table = pd.DataFrame({"assay": ["a"] * 3 + ["b"] * 2, "model": "logistic", "p_value": [0.01, 0.04, 0.03, 0.02, 0.5]})
    across = add_q_values(table, family=["model"])
    per_assay = add_q_values(table, family=["assay", "model"])
    np.testing.assert_allclose(across["q_value"], multipletests(table["p_value"], method="fdr_bh")[1])
    np.testing.assert_allclose(per_assay["q_value"].iloc[:3], multipletests([0.01, 0.04, 0.03], method="fdr_bh")[1])


# --- genetic scan against plink2 ---


def write_plink_case(folder: Path, n=400, m=300, seed=4):
    from bed_reader import to_bed

    rng = np.random.default_rng(seed)
    dosages = rng.binomial(2, rng.uniform(0.05, 0.5, m), size=(n, m)).astype(np.float32)
    dosages[rng.random(dosages.shape) < 0.02] = np.nan
    covariates = pd.DataFrame({"age": rng.normal(50, 10, n).round(1), "pc1": rng.normal(size=n)})
    quantitative = 0.3 * np.nan_to_num(dosages[:, 0]) + 0.02 * covariates["age"] + rng.normal(size=n)
    binary = (rng.random(n) < 1 / (1 + np.exp(-(0.5 * np.nan_to_num(dosages[:, 1]) - 0.7)))).astype(int)
    iids = [f"s{i}" for i in range(n)]
    sids = [f"rs{i}" for i in range(m)]
    to_bed(folder / "g.bed", dosages, properties={"iid": iids, "fid": iids, "sid": sids,
                                                  "chromosome": ["1"] * m, "bp_position": np.arange(1, m + 1) * 1000})  # fmt: skip
    pheno = pd.DataFrame({"#FID": iids, "IID": iids, "quant": quantitative.round(6), "case": binary + 1})
    pheno.to_csv(folder / "pheno.txt", sep="\t", index=False)
    covariates.assign(**{"#FID": iids, "IID": iids})[["#FID", "IID", "age", "pc1"]].to_csv(
        folder / "covar.txt", sep="\t", index=False)  # fmt: skip
    return dosages, pheno, covariates, sids


@pytest.mark.skipif(shutil.which("plink2") is None, reason="plink2 not installed (CI installs it)")
def test_genetic_scan_agrees_with_plink2_glm(tmp_path):
    dosages, pheno, covariates, sids = write_plink_case(tmp_path)
    subprocess.run(["plink2", "--bfile", str(tmp_path / "g"), "--pheno", str(tmp_path / "pheno.txt"),
                    "--covar", str(tmp_path / "covar.txt"), "--glm", "hide-covar", "no-firth",
                    "--threads", "1", "--out", str(tmp_path / "out")], check=True, capture_output=True)  # fmt: skip
    design = np.column_stack([np.ones(len(covariates)), covariates.to_numpy()])
    for phenotype, model, suffix in (("quant", "linear", "glm.linear"), ("case", "logistic", "glm.logistic")):
        plink = pd.read_csv(tmp_path / f"out.{phenotype}.{suffix}", sep="\t").set_index("ID")
        y = pheno[phenotype].to_numpy(float) - (1 if model == "logistic" else 0)
        ours = scan_snps(lambda chunk: dosages[:, chunk], pd.Index(sids), y, covariates=design, model=model, chunk_size=128)
        plink = plink[plink["P"].notna()]
        sign = np.where(plink["A1"] == plink["ALT"], 1, -1)  # plink2 counts ALT = the .bim A1 allele
        estimate = plink["BETA"] if model == "linear" else np.log(plink["OR"])
        # plink2 prints 6 significant digits (of the OR for logistic models)
        np.testing.assert_allclose(ours.loc[plink.index, "estimate"] * sign, estimate, rtol=1e-4, atol=1e-5)
        standard_error = plink["SE"] if model == "linear" else plink["LOG(OR)_SE"]
        np.testing.assert_allclose(ours.loc[plink.index, "std_error"], standard_error, rtol=1e-5)
        log_difference = np.abs(np.log10(ours.loc[plink.index, "p_value"]) - np.log10(plink["P"]))
        assert log_difference.max() < 1e-4, (model, log_difference.max())
        assert (ours.loc[plink.index, "n"] == plink["OBS_CT"]).all()


# --- high-level tables on the demo cohort ---


@pytest.fixture(scope="module")
def demo_mdata(small_demo):
    from stratomics.cohort import build_cohort
    from stratomics.preprocess import preprocess_cohort

    folder, config = small_demo
    mdata = preprocess_cohort(build_cohort(config).mdata, config)
    truth = pd.read_csv(folder / "ground_truth/endotypes.tsv", sep="\t", index_col=0)
    mdata.obs["endotype"] = truth.loc[mdata.obs_names, "endotype"]
    return mdata, config


def test_outcome_biomarkers_give_tidy_rows_for_every_feature(demo_mdata):
    mdata, config = demo_mdata
    outcomes = config["cohort"]["outcomes"]
    for name, spec in outcomes.items():
        table = outcome_biomarkers(mdata["cytokines"], mdata.obs, name, spec=spec, covariates=["age", "sex"], assay="cytokines")
        assert len(table) == mdata["cytokines"].n_vars and table["feature"].is_unique
        assert (table["model"] == {"binary": "logistic", "survival": "cox", "ordinal": "ordinal"}[spec["type"]]).all()
        usable = table["p_value"].notna()
        assert ((table.loc[usable, "ci_low"] < table.loc[usable, "estimate"])
                & (table.loc[usable, "estimate"] < table.loc[usable, "ci_high"])).all()  # fmt: skip


def test_cluster_markers_find_the_planted_endotype_markers(demo_mdata, small_demo):
    mdata, _ = demo_mdata
    planted = pd.read_csv(small_demo[0] / "ground_truth/planted_features.tsv", sep="\t")
    table = cluster_markers(mdata["cytokines"], mdata.obs, "endotype", covariates=["age"], assay="cytokines")
    e1 = table[table["outcome_or_contrast"] == "endotype: E1 vs rest"]
    top = set(e1.nsmallest(3, "p_value")["feature"])
    expected = set(planted.loc[(planted["assay"] == "cytokines") & (planted["effect_on"] == "endotype E1"), "feature"])
    assert top <= expected


def test_features_with_a_large_mean_keep_their_precision():
    rng = np.random.default_rng(8)
    design = pd.DataFrame({"Intercept": 1.0, "x": rng.normal(size=100)})
    values = 1e6 + rng.normal(size=(100, 3)) * np.array([1e-3, 1.0, 1e3])  # y'y >> residual SS
    table = contrast_test(fit_features(values, design), [0, 1])
    for j in range(3):
        reference = sm.OLS(values[:, j], design).fit()
        np.testing.assert_allclose(table["p_value"].iloc[j], reference.pvalues["x"], rtol=1e-6)
        np.testing.assert_allclose(table["std_error"].iloc[j], reference.bse["x"], rtol=1e-6)


def test_robust_moderation_equals_limma_robust(limma_fit):
    values, design, _ = limma_fit
    reference = pd.read_csv(LIMMA / "limma_robust.tsv", sep="\t", index_col=0)
    treatment = pd.DataFrame({"Intercept": 1.0, "B": design["B"], "C": design["C"], "age": design["age"]})
    fit = moderate(fit_features(values.T.to_numpy(), treatment, values.index), robust=True)
    assert fit.s2_prior == pytest.approx(reference["s2_prior"].iloc[0], rel=1e-9)
    tested = reference["B_t"].notna()
    np.testing.assert_allclose(fit.df_prior[tested.to_numpy()], reference.loc[tested, "df_prior"], rtol=RTOL)
    assert len(set(np.round(fit.df_prior, 6))) > 1  # outlying variances get less prior weight
    ours = contrast_test(fit, [0, 1, 0, 0], moderated=True)
    np.testing.assert_allclose(ours.loc[tested, "statistic"], reference.loc[tested, "B_t"], rtol=RTOL)
    np.testing.assert_allclose(ours.loc[tested, "p_value"], reference.loc[tested, "B_p"], rtol=RTOL)


def test_linear_association_of_a_named_coefficient_equals_statsmodels_formula(demo_mdata):
    import statsmodels.formula.api as smf

    mdata, _ = demo_mdata
    obs = mdata.obs.copy()
    formula = "~ failure_12m + age + C(sex) + C(site)"
    table = linear_association(mdata["flow"], obs, formula, coefficient="failure_12m", assay="flow", moderated=False)
    data = obs.loc[mdata["flow"].obs_names].copy()
    for j, feature in enumerate(mdata["flow"].var_names[:4]):
        data["y"] = mdata["flow"].X[:, j]
        reference = smf.ols("y " + formula, data.dropna(subset=["y", "failure_12m", "age", "sex"])).fit()
        row = table.set_index("feature").loc[feature]
        np.testing.assert_allclose([row["estimate"], row["std_error"], row["p_value"]],
                                   [reference.params["failure_12m"], reference.bse["failure_12m"],
                                    reference.pvalues["failure_12m"]], rtol=RTOL)  # fmt: skip
    with pytest.raises(StratomicsInputError, match="no column 'failure'"):
        linear_association(mdata["flow"], obs, formula, coefficient="failure", assay="flow")


def test_a_hessian_with_non_finite_entries_is_flagged_not_fatal():
    from stratomics.associate.linear import invert_stack

    gram = np.stack([np.eye(3) * 2.0, np.full((3, 3), np.nan), np.ones((3, 3))])
    inverse, usable = invert_stack(gram)
    assert usable.tolist() == [True, False, False]
    np.testing.assert_allclose(inverse[0], np.eye(3) / 2)
    assert np.isnan(inverse[1:]).all()


def test_association_tests_read_the_values_before_batch_correction():
    import anndata as ad

    from stratomics.associate import outcome_biomarkers

    rng = np.random.default_rng(2)
    patients = [f"p{i}" for i in range(80)]
    obs = pd.DataFrame({"age": rng.normal(50, 10, 80), "failure_12m": np.tile([0, 1], 40),
                        "site": np.repeat(["a", "b"], 40)}, index=patients)  # fmt: skip
    uncorrected = rng.normal(size=(80, 4))
    corrected = ad.AnnData(uncorrected + rng.normal(size=(80, 4)), obs=pd.DataFrame(index=patients))
    corrected.layers["uncorrected"] = uncorrected
    plain = ad.AnnData(uncorrected, obs=pd.DataFrame(index=patients))
    spec = {"type": "binary"}
    tested = outcome_biomarkers(corrected, obs, "failure_12m", spec=spec, covariates=["age", "site"], assay="x")
    expected = outcome_biomarkers(plain, obs, "failure_12m", spec=spec, covariates=["age", "site"], assay="x")
    pd.testing.assert_frame_equal(tested, expected)


def test_subgroup_markers_of_an_integrated_assay_are_labelled_descriptive_and_one_group_is_skipped(caplog):
    import anndata as ad

    from stratomics.associate import DESCRIPTIVE, markers_of_groups

    rng = np.random.default_rng(5)
    patients = [f"p{i}" for i in range(40)]
    obs = pd.DataFrame({"subgroup": np.repeat(["S1", "S2"], 20), "single": "A", "age": rng.normal(50, 9, 40)},
                       index=patients)  # fmt: skip
    adata = ad.AnnData(rng.normal(size=(40, 3)), obs=pd.DataFrame(index=patients))
    table = markers_of_groups(adata, obs, ["subgroup", "single"], covariates=["age"], assay="x", defined_on=("subgroup",))
    assert set(table["outcome_or_contrast"].str.split(":").str[0]) == {"subgroup"}
    assert (table["note"] == DESCRIPTIVE).all()
    assert "markers of single in x: 1 group(s), nothing to compare" in caplog.text


def test_covariate_names_are_column_names_never_code_and_a_single_valued_one_is_named(tmp_path, caplog):
    import anndata as ad

    rng = np.random.default_rng(5)
    patients = [f"p{i}" for i in range(90)]
    marker = tmp_path / "ran"
    code_name = f"__import__('pathlib').Path('{marker}').touch()"
    plain = pd.DataFrame({"crp": rng.gamma(2, 3, 90), "dose": rng.normal(size=90), "sex": rng.choice(["F", "M"], 90),
                          "score": rng.normal(size=90)}, index=patients)  # fmt: skip
    awkward = plain.rename(columns={"crp": "crp (mg/L)", "dose": code_name, "sex": "sex at birth"})
    awkward["site"] = "LUX"  # one site: cannot be adjusted for
    adata = ad.AnnData(rng.normal(size=(90, 5)) + 0.1 * plain[["crp"]].to_numpy(), obs=pd.DataFrame(index=patients))
    spec = {"type": "continuous"}
    expected = outcome_biomarkers(adata, plain, "score", spec=spec, covariates=["crp", "dose", "sex"], assay="x")
    with caplog.at_level("WARNING"):
        tested = outcome_biomarkers(adata, awkward, "score", spec=spec, covariates=["crp (mg/L)", code_name, "sex at birth", "site"],
                                    assay="x")  # fmt: skip
    pd.testing.assert_frame_equal(tested, expected)
    assert not marker.exists()
    assert "covariate 'site' has a single value (LUX)" in caplog.text and "not adjusted for it" in caplog.text


def test_result_tables_carry_each_features_human_name_next_to_its_id():
    import anndata as ad

    rng = np.random.default_rng(0)
    var = pd.DataFrame({"gene_name": ["IL6", " ", None], "biotype": "protein_coding"}, index=["ENSG1", "ENSG2", "ENSG3"])
    adata = ad.AnnData(rng.normal(size=(60, 3)), var=var, obs=pd.DataFrame(index=[f"p{i}" for i in range(60)]))
    obs = pd.DataFrame({"failure": np.tile([0.0, 1.0], 30)}, index=adata.obs_names)
    assert feature_names(adata).to_dict() == {"ENSG1": "IL6", "ENSG2": "ENSG2", "ENSG3": "ENSG3"}  # blank: the ID
    table = outcome_biomarkers(adata, obs, "failure", spec={"type": "binary"}, covariates=[], assay="rna")
    assert table["feature_name"].tolist() == ["IL6", "ENSG2", "ENSG3"] and table["feature"].tolist() == list(var.index)
    olink = ad.AnnData(adata.X, obs=adata.obs, var=pd.DataFrame({"Assay": ["CXCL9", "TNF", "IL10"]}, index=["OID1", "OID2", "OID3"]))
    assert feature_names(olink).tolist() == ["CXCL9", "TNF", "IL10"]
    unnamed = ad.AnnData(adata.X, obs=adata.obs, var=pd.DataFrame(index=["CD4+", "CD8+", "B"]))
    assert feature_names(unnamed).tolist() == ["CD4+", "CD8+", "B"]

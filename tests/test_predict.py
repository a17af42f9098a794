"""Prediction of treatment failure: no leakage, planted signal found, metrics against their references."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from stratomics.cohort import assemble
from stratomics.predict import (
    Screen,
    build_predictors,
    cross_validated_risk,
    evaluate_outcome,
    fit_signatures,
    predict_patients,
)
from stratomics.prediction_metrics import auc, binary_metrics, calibration, net_benefit, survival_metrics

BINARY = {"type": "binary"}
SURVIVAL = {"type": "survival", "time": "days", "event": "switched"}


def cohort(n=300, n_features=400, planted=(), effect=1.2, missing=0.0, seed=0):
    """Clinical sheet (age, sex, site) and one assay of noise features; planted ones drive the outcomes."""
    rng = np.random.default_rng(seed)
    patients = pd.Index([f"P{i:04d}" for i in range(n)])
    values = rng.normal(size=(n, n_features))
    linear = effect * values[:, list(planted)].sum(axis=1) if planted else np.zeros(n)
    days = np.ceil(300 * rng.exponential(size=n) * np.exp(-linear))
    follow_up = rng.uniform(200, 900, n)
    obs = pd.DataFrame({
        "age": rng.normal(50, 12, n).round(), "sex": rng.choice(["F", "M"], n),
        "site": rng.choice(["A", "B", "C"], n), "subgroup": rng.choice(["S1", "S2"], n),
        "failure_12m": (rng.random(n) < 1 / (1 + np.exp(-linear))).astype(int),
        "days": np.minimum(days, follow_up), "switched": (days <= follow_up).astype(int),
    }, index=patients)  # fmt: skip
    present = rng.random(n) >= missing
    assay = ad.AnnData(values[present], obs=pd.DataFrame(index=patients[present]),
                       var=pd.DataFrame(index=[f"f{j}" for j in range(n_features)]))  # fmt: skip
    return assemble(obs, {"olink": assay})


def evaluate(mdata, spec, outcome="failure_12m", **options):
    predictors = build_predictors(mdata, clinical=["age", "sex"], assays=["olink"])
    settings = dict(models=["elastic_net"], n_repeats=2, n_bootstrap=50, n_features=20, site="site", seed=3)
    return predictors, evaluate_outcome(predictors, mdata.obs, outcome, spec=spec, **{**settings, **options})


def estimate(evaluation, feature_set, metric, validation="nested_cv"):
    table = evaluation.performance
    row = table[(table["feature_set"] == feature_set) & (table["metric"] == metric) & (table["validation"] == validation)]
    return row.iloc[0]


def test_no_signal_gives_chance_auc_and_screening_outside_the_folds_would_not():
    mdata = cohort(n=240, n_features=2000)
    predictors, evaluation = evaluate(mdata, BINARY, feature_sets=["clinical_biomarkers"])
    honest = estimate(evaluation, "clinical_biomarkers", "auc")
    assert abs(honest["estimate"] - 0.5) < 0.08 and honest["ci_low"] < 0.5 < honest["ci_high"]
    # The leak this guards against: choose the features on all patients, then cross-validate.
    X = predictors.table[predictors.columns("clinical_biomarkers")].fillna(0).to_numpy()
    y = mdata.obs["failure_12m"].to_numpy()
    leaked = X[:, Screen(np.r_[False, False, np.ones(X.shape[1] - 2, bool)], 20).fit(X, y).support_]
    risk, _, _ = cross_validated_risk(leaked, y, model="elastic_net", screened=np.zeros(leaked.shape[1], bool), n_repeats=1)
    assert auc(y, risk[0]) > 0.7


def test_large_cohort_switches_are_logged(monkeypatch, caplog):
    """Both scale switches say so in the log when they apply (thresholds lowered to this cohort)."""
    from stratomics import predict

    mdata = cohort(n=200, n_features=30)
    evaluate(mdata, BINARY, feature_sets=["clinical"])
    assert "choose their penalty" not in caplog.text and "normal 95% intervals" not in caplog.text
    monkeypatch.setattr(predict, "SEARCH_PATIENTS", 120)
    monkeypatch.setattr(predict, "LARGE_COHORT", 200)
    with caplog.at_level("INFO", logger="stratomics.predict"):
        evaluate(mdata, BINARY, feature_sets=["clinical"])
    largest = max(160, 200 - mdata.obs["site"].value_counts().min())  # 4 of 5 folds, or all but the smallest site
    assert f"training sets of up to {largest} patients: the elastic nets choose their penalty on 120" in caplog.text
    assert "200 patients: normal 95% intervals from 50 bootstrap resamples" in caplog.text


def test_planted_features_are_chosen_and_the_signature_scores_new_patients():
    mdata = cohort(planted=(3, 17, 42), missing=0.2)
    predictors, evaluation = evaluate(mdata, BINARY, feature_sets=["clinical", "all"])
    assert estimate(evaluation, "all", "auc")["estimate"] > 0.68
    gain = estimate(evaluation, "all", "auc_gain_over_clinical")
    assert gain["ci_low"] > 0.1  # the biomarkers add to the (uninformative) clinical columns
    assert estimate(evaluation, "all", "auc", "loso_pooled")["estimate"] > 0.68
    assert {"loso_A", "loso_B", "loso_C"} <= set(evaluation.performance["validation"])
    selected = evaluation.selection.query("feature_set == 'all'").set_index("predictor")["selection_frequency"]
    assert (selected[["olink:f3", "olink:f17", "olink:f42"]] == 1).all() and selected.drop(["olink:f3", "olink:f17", "olink:f42"]).median() < 0.2
    predictions = evaluation.predictions.query("validation == 'nested_cv' and feature_set == 'all'")
    assert len(predictions) == mdata.n_obs and predictions["risk"].notna().all()  # patients without the assay kept
    signatures, table = fit_signatures(mdata, {"failure_12m": BINARY}, clinical=["age", "sex"], assays=["olink"],
                                       feature_set="all", evaluations=[evaluation], n_features=20, seed=3)  # fmt: skip
    top = table.loc[table["term"] != "intercept"].sort_values("coefficient", key=abs, ascending=False)["term"].head(3)
    assert set(top) == {"olink:f3", "olink:f17", "olink:f42"}
    new = cohort(planted=(3, 17, 42), seed=9)
    risk = predict_patients(signatures, new)
    truth = new.obs["failure_12m"].to_numpy()
    assert len(risk) == new.n_obs and auc(truth, risk["risk_failure_12m"].to_numpy()) > 0.75


def test_survival_signal_is_found_by_the_elastic_net_cox_model_and_boosting():
    mdata = cohort(planted=(5, 8), effect=0.8)
    _, evaluation = evaluate(mdata, SURVIVAL, outcome="time", models=["elastic_net", "gradient_boosting"],
                             feature_sets=["clinical", "clinical_biomarkers"], horizons=(180,))  # fmt: skip
    evaluation_spec = estimate(evaluation, "clinical_biomarkers", "c_index")
    assert evaluation_spec["estimate"] > 0.7
    assert abs(estimate(evaluation, "clinical", "c_index")["estimate"] - 0.5) < 0.08
    boosted = evaluation.performance.query("model == 'gradient_boosting' and feature_set == 'clinical_biomarkers'")
    assert boosted.query("metric == 'c_index' and validation == 'nested_cv'")["estimate"].item() > 0.65
    assert estimate(evaluation, "clinical_biomarkers", "auc_180d")["estimate"] > 0.7


def test_results_are_reproducible_with_the_seed():
    mdata = cohort(n=150, n_features=100, planted=(1,))
    first = evaluate(mdata, BINARY, feature_sets=["all"], n_jobs=2, n_bootstrap=300)[1]  # 3 batches of resamples
    second = evaluate(mdata, BINARY, feature_sets=["all"], n_jobs=1, n_bootstrap=300)[1]
    pd.testing.assert_frame_equal(first.performance, second.performance)
    pd.testing.assert_frame_equal(first.predictions, second.predictions)


def test_binary_metrics_match_statsmodels_and_scikit_learn():
    from sklearn.metrics import brier_score_loss, roc_auc_score

    rng = np.random.default_rng(1)
    p = 1 / (1 + np.exp(-rng.normal(0, 1.5, 500)))
    y = (rng.random(500) < p**1.3).astype(int)  # miscalibrated on purpose
    metrics = binary_metrics(y, p)
    log_odds = np.log(p / (1 - p))
    slope = sm.GLM(y, sm.add_constant(log_odds), family=sm.families.Binomial()).fit().params[1]
    intercept = sm.GLM(y, np.ones(500), family=sm.families.Binomial(), offset=log_odds).fit().params[0]
    assert calibration(y, p) == pytest.approx((intercept, slope), rel=1e-8)
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    assert metrics["brier"] == pytest.approx(brier_score_loss(y, p), rel=1e-12)


def test_net_benefit_by_hand_and_survival_metrics_against_scikit_survival():
    from sksurv.metrics import concordance_index_censored

    y, p = np.array([1, 1, 0, 0, 1, 0]), np.array([0.9, 0.4, 0.35, 0.1, 0.2, 0.6])
    # threshold 0.3: treated 0.9, 0.4, 0.35, 0.6 -> TP 2, FP 2 of 6 patients
    assert net_benefit(y, p, np.array([0.3]))[0] == pytest.approx(2 / 6 - 2 / 6 * 0.3 / 0.7)
    rng = np.random.default_rng(2)
    risk = rng.normal(size=300)
    time = np.ceil(rng.exponential(400 * np.exp(-risk)))
    event = (rng.random(300) < 0.7).astype(int)
    metrics = survival_metrics(time, event, risk, horizons=[200])
    assert metrics["c_index"] == pytest.approx(concordance_index_censored(event.astype(bool), time, risk)[0], rel=1e-9)
    assert 0.6 < metrics["auc_200d"] < 0.9


def test_a_missing_clinical_column_or_a_non_binary_outcome_is_named():
    from stratomics.errors import StratomicsInputError
    from stratomics.predict import outcome_target

    mdata = cohort(n=40, n_features=5)
    with pytest.raises(StratomicsInputError, match="column 'agee' .*not in the sample sheet"):
        build_predictors(mdata, clinical=["agee"], assays=["olink"])
    obs = mdata.obs.assign(failure_12m=mdata.obs["failure_12m"] * 2)
    with pytest.raises(StratomicsInputError, match="'failure_12m' must be 0/1"):
        outcome_target(obs, "failure_12m", BINARY)


def test_survival_metrics_without_comparable_pairs_are_nan_not_an_error():
    time, risk = np.array([5.0, 10.0, 20.0]), np.array([0.3, 0.1, 0.2])
    metrics = survival_metrics(time, np.zeros(3, int), risk, horizons=[15])  # no event at all
    assert np.isnan(metrics["c_index"]) and np.isnan(metrics["auc_15d"])
    metrics = survival_metrics(time, np.array([0, 0, 1]), risk, horizons=[15])  # the only event is the last time
    assert np.isnan(metrics["c_index"])


def test_gradient_boosting_leaves_scale_with_small_training_sets():
    from stratomics.predict import min_samples_leaf

    assert [min_samples_leaf(n) for n in (40, 58, 300, 640, 5000)] == [5, 5, 15, 30, 30]


def test_a_fold_that_cannot_be_fitted_gives_nan_risk_and_a_warning(caplog):
    X = np.full((40, 3), np.inf)  # scikit-learn refuses infinite values: every fit fails
    y = np.tile([0, 1], 20)
    risk, _, _ = cross_validated_risk(X, y, model="elastic_net", screened=np.zeros(3, bool), n_repeats=1,
                                   label="failure_12m, elastic_net, all")  # fmt: skip
    assert np.isnan(risk).all()
    assert "predict failure_12m, elastic_net, all: 5 of 5 fits failed" in caplog.text


def test_a_penalty_whose_refit_overflows_falls_back_to_stronger_penalties(caplog):
    from sklearn.base import BaseEstimator
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from stratomics.predict import fit_quietly

    class OverflowsOnAllPatients(BaseEstimator):
        """Like Coxnet on a small cohort: small penalties overflow on the full training set only."""

        def __init__(self, alphas=(0.001,)):
            self.alphas = alphas

        def fit(self, X, y):
            if self.alphas[0] < 0.05 and len(X) == 30:
                raise ArithmeticError("Numerical error, because weights are too large.")
            return self

        def score(self, X, y):
            return -self.alphas[0]  # the inner CV prefers the weakest penalty

    search = GridSearchCV(Pipeline([("model", OverflowsOnAllPatients())]),
                          {"model__alphas": [[0.001], [0.01], [0.1], [1.0]]}, cv=3)  # fmt: skip
    pipeline = Pipeline([("fit", search)])
    fit_quietly(pipeline, np.zeros((30, 2)), np.zeros(30))
    assert search.best_params_ == {"model__alphas": [0.1]}  # the weakest penalty that can be fitted
    assert "could not be fitted" in caplog.text


def test_a_refit_with_non_finite_risks_is_rejected_like_an_overflow(caplog):
    from sklearn.base import BaseEstimator
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from stratomics.predict import fit_quietly

    class NaNCurvesAtWeakPenalties(BaseEstimator):
        """Like sksurv's Breslow baseline after an overflow: the fit succeeds, its predictions are NaN."""

        def __init__(self, alphas=(0.001,)):
            self.alphas = alphas

        def fit(self, X, y):
            self.fitted_ = True
            return self

        def predict(self, X):
            return np.full(len(X), np.nan if self.alphas[0] < 0.05 else 1.0)

        def score(self, X, y):
            return -self.alphas[0]

    def check(pipeline):
        if not np.isfinite(pipeline.predict(np.zeros((3, 2)))).all():
            raise FloatingPointError("risks are not finite")

    search = GridSearchCV(Pipeline([("model", NaNCurvesAtWeakPenalties())]),
                          {"model__alphas": [[0.001], [0.01], [0.1], [1.0]]}, cv=3)  # fmt: skip
    pipeline = Pipeline([("fit", search)])
    fit_quietly(pipeline, np.zeros((30, 2)), np.zeros(30), check=check)
    assert search.best_params_ == {"model__alphas": [0.1]}
    assert np.isfinite(pipeline.predict(np.zeros((3, 2)))).all()
    assert "risks are not finite" in caplog.text


def _explicit_resamples(n: int, seed: int, n_resamples: int = 12):
    """Index arrays of bootstrap resamples and the same resamples as patient weights."""
    from stratomics.prediction_metrics import bootstrap_counts

    weights = bootstrap_counts(n, n_bootstrap=n_resamples, seed=seed)
    rng = np.random.default_rng(seed)
    indices = [rng.integers(0, n, n) for _ in range(n_resamples)]
    return indices, weights


def test_resampled_survival_metrics_equal_lifelines_and_scikit_survival_on_each_resample():
    from lifelines.utils import concordance_index
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    rng = np.random.default_rng(5)
    n = 150
    risk = np.round(rng.normal(size=n), 1)  # tied risks
    time = np.ceil(rng.exponential(300 * np.exp(-risk)) / 20) * 20  # tied times, events tied with censorings
    event = rng.random(n) < 0.6
    indices, weights = _explicit_resamples(n, seed=3)
    resampled = survival_metrics(time, event.astype(int), risk, horizons=[100, 200, 400], weights=weights)
    for row, patients in enumerate(indices):
        t, e, r = time[patients], event[patients], risk[patients]
        assert resampled["c_index"][row] == concordance_index(t, -r, e)  # same comparable pairs: exactly equal
        outcome = Surv.from_arrays(e, t)
        for horizon in (100, 200, 400):
            expected = cumulative_dynamic_auc(outcome, outcome, r, [horizon])[0][0]
            assert resampled[f"auc_{horizon}d"][row] == pytest.approx(expected, abs=1e-12)


def test_resampled_binary_metrics_equal_scikit_learn_and_statsmodels_on_each_resample():
    from sklearn.metrics import brier_score_loss, roc_auc_score

    rng = np.random.default_rng(6)
    n = 120
    p = np.round(1 / (1 + np.exp(-rng.normal(0, 1.5, n))), 2)  # tied probabilities
    y = (rng.random(n) < p**1.3).astype(int)
    indices, weights = _explicit_resamples(n, seed=4)
    resampled = binary_metrics(y, p, weights)
    for row, patients in enumerate(indices):
        yy, pp = y[patients], p[patients]
        log_odds = np.log(pp / (1 - pp))
        slope = sm.GLM(yy, sm.add_constant(log_odds), family=sm.families.Binomial()).fit().params[1]
        intercept = sm.GLM(yy, np.ones(n), family=sm.families.Binomial(), offset=log_odds).fit().params[0]
        assert resampled["auc"][row] == pytest.approx(roc_auc_score(yy, pp), abs=1e-12)
        assert resampled["brier"][row] == pytest.approx(brier_score_loss(yy, pp), abs=1e-12)
        assert resampled["calibration_slope"][row] == pytest.approx(slope, rel=1e-7)
        assert resampled["calibration_intercept"][row] == pytest.approx(intercept, rel=1e-7, abs=1e-9)


def test_performance_table_uses_normal_intervals_from_fewer_resamples_in_large_cohorts(monkeypatch):
    """Below LARGE_COHORT: percentile intervals of predict.n_bootstrap resamples; from it on: the
    estimate -/+ 1.96 SD of LARGE_COHORT_RESAMPLES resamples (the first ones of the same stream)."""
    from sklearn.metrics import roc_auc_score

    from stratomics import predict
    from stratomics.prediction_metrics import bootstrap_counts

    rng = np.random.default_rng(40)
    n = 400
    y = (rng.random(n) < 0.4).astype(int)
    risks = {"clinical": (y + rng.normal(size=(2, n))) / 4 + 0.5}  # two repeats

    def resampled_auc(weights):  # AUC of the mean over repeats of each repeat's AUC, from explicit resamples
        draws = [[roc_auc_score(y[rows], risk[rows]) for risk in risks["clinical"]]
                 for rows in (np.repeat(np.arange(n), w.astype(int)) for w in weights)]  # fmt: skip
        return np.mean(draws, axis=1)

    small = predict.performance_table(y, risks, horizons=(365,), n_bootstrap=200, seed=2).set_index("metric")
    expected = resampled_auc(bootstrap_counts(n, n_bootstrap=200, seed=2))
    assert small.loc["auc", "ci_low"] == pytest.approx(np.quantile(expected, 0.025), abs=1e-12)
    monkeypatch.setattr(predict, "LARGE_COHORT", n)
    monkeypatch.setattr(predict, "LARGE_COHORT_RESAMPLES", 60)
    large = predict.performance_table(y, risks, horizons=(365,), n_bootstrap=200, seed=2).set_index("metric")
    spread = 1.959963984540054 * resampled_auc(bootstrap_counts(n, n_bootstrap=60, seed=2)).std(ddof=1)
    estimate = np.mean([roc_auc_score(y, risk) for risk in risks["clinical"]])
    assert large.loc["auc", "estimate"] == pytest.approx(estimate, abs=1e-12)
    assert large.loc["auc", "ci_low"] == pytest.approx(estimate - spread, abs=1e-12)
    assert large.loc["auc", "ci_high"] == pytest.approx(estimate + spread, abs=1e-12)


def test_time_dependent_auc_is_undefined_outside_the_follow_up_of_a_resample():
    time, risk = np.array([5.0, 10.0, 20.0, 30.0]), np.array([0.3, 0.1, 0.2, 0.4])
    event = np.array([1, 1, 0, 1])
    weights = np.array([[1.0, 1, 1, 1], [0, 0, 2, 2], [1, 0, 3, 0], [0, 2, 0, 0]])
    metrics = survival_metrics(time, event, risk, horizons=[15], weights=weights)
    assert metrics["auc_15d"][0] == pytest.approx(0.25)  # cases 5, 10 against controls 20, 30: only 0.3 > 0.2
    assert np.isnan(metrics["auc_15d"][1])  # no event before the horizon
    assert metrics["auc_15d"][2] == 1.0 and metrics["c_index"][2] == 1.0  # the case at 5 against 20 (drawn 3 times)
    assert np.isnan(metrics["c_index"][3]) and np.isnan(metrics["auc_15d"][3])  # one patient: no comparable pair


@pytest.mark.parametrize("large", [False, True])
def test_calibration_smoother_and_bins_recover_a_known_miscalibration(large, monkeypatch):
    """Percentile band of 200 resamples, or (a large cohort) the normal band of 100; both cover the truth."""
    from stratomics import predict

    if large:
        monkeypatch.setattr(predict, "LARGE_COHORT", 4000)
    rng = np.random.default_rng(4)
    predicted = rng.uniform(0.05, 0.9, 4000)
    observed = 0.05 + 0.8 * predicted  # over-confident at both ends, linear (lowess is unbiased there)
    y = (rng.random(4000) < observed).astype(int)
    curves = predict.risk_curves(y, predicted, seed=1)
    smooth = curves[curves["curve"] == "calibration_smooth"]
    truth = 0.05 + 0.8 * smooth["x"]
    assert np.abs(smooth["y"] - truth).max() < 0.04
    assert ((smooth["ci_low"] <= truth) & (truth <= smooth["ci_high"])).mean() >= 0.85
    assert (smooth["ci_high"] - smooth["ci_low"]).max() < 0.12
    centred = np.allclose(smooth["ci_high"] - smooth["y"], smooth["y"] - smooth["ci_low"])
    assert centred == large  # the normal band is symmetric around the curve, percentiles are not
    bins = curves[curves["curve"] == "calibration"]
    assert len(bins) == 10 and bins["n"].sum() == 4000
    bin_truth = 0.05 + 0.8 * bins["x"]
    assert ((bins["ci_low"] <= bin_truth) & (bin_truth <= bins["ci_high"])).sum() >= 8
    assert bins["y"].iloc[0] > bins["x"].iloc[0] and bins["y"].iloc[-1] < bins["x"].iloc[-1]
    histogram = curves[curves["curve"] == "risk_histogram"]
    counts = histogram.groupby("group")["n"].sum()
    assert counts["event"] == y.sum() and counts["no event"] == len(y) - y.sum()


@pytest.mark.parametrize("model", ["elastic_net", "gradient_boosting"])
def test_event_probability_equals_scikit_survival_curves(model):
    """1 - S(horizon | x) from the baseline and the risks at once, as each patient's own curve gives it
    (scikit-survival's StepFunctions), inside and beyond the follow-up."""
    from stratomics.predict import event_probability, fit_quietly, make_pipeline, screened_model

    X, target = _survival_cohort(400, 6, 41)
    pipeline = fit_quietly(make_pipeline(model, np.zeros(6, bool), survival=True, n_features=6, n_train=400, seed=1),
                           X, target)  # fmt: skip
    screen, fitted = screened_model(pipeline)
    predictors = screen.transform(pipeline[:-1].transform(X[:50]))
    if model == "elastic_net":
        curves = fitted.predict_survival_function(predictors)
    else:
        curves = fitted.baseline_.get_survival_function(fitted.predict(predictors))
    for horizon in (0.3, 1.0, 1e6):
        expected = [1 - curve(min(horizon, curve.x[-1])) for curve in curves]
        np.testing.assert_allclose(event_probability(pipeline, X[:50], horizon), expected, rtol=1e-12, atol=1e-15)
    assert np.ptp(event_probability(pipeline, X[:50], 1.0)) > 0.1


def test_survival_calibration_at_the_horizon_against_the_true_event_probability():
    from stratomics.predict import horizon_calibration

    rng = np.random.default_rng(2)
    n, horizon = 5000, 365
    hazard = np.exp(rng.normal(-6.5, 0.8, n))
    event_time = rng.exponential(1 / hazard)
    follow_up = rng.uniform(300, 900, n)
    time, event = np.minimum(event_time, follow_up), (event_time <= follow_up).astype(int)
    truth = 1 - np.exp(-hazard * horizon)
    table = horizon_calibration(time, event, truth, horizon=horizon)
    calibrated = table[table["curve"] == "calibration_horizon"]
    assert len(calibrated) == 5 and calibrated["n"].sum() == n
    assert np.abs(calibrated["y"] - calibrated["x"]).max() < 0.04
    assert ((calibrated["ci_low"] <= calibrated["x"]) & (calibrated["x"] <= calibrated["ci_high"])).sum() >= 4
    # twice the true probability: every group is over-predicted
    doubled = horizon_calibration(time, event, np.minimum(2 * truth, 1), horizon=horizon)
    doubled = doubled[doubled["curve"] == "calibration_horizon"]
    assert (doubled["x"] > doubled["ci_high"]).all()
    # follow-up that ends before the horizon: no observed value, not a carried-forward one
    short = horizon_calibration(np.minimum(time, 200), event * (time <= 200), truth, horizon=horizon)
    assert short.loc[short["curve"] == "calibration_horizon", "y"].isna().all()


def test_survival_evaluation_gives_event_probabilities_ordered_like_the_risk_and_calibration_rows():
    from scipy.stats import spearmanr

    mdata = cohort(planted=(5, 8), effect=0.8)
    _, evaluation = evaluate(mdata, SURVIVAL, outcome="time", feature_sets=["clinical_biomarkers"], horizons=(180,))
    predictions = evaluation.predictions.query("validation == 'nested_cv'")
    assert predictions["event_probability"].between(0, 1).all()
    assert spearmanr(predictions["risk"], predictions["event_probability"]).statistic > 0.95
    calibrated = evaluation.curves[evaluation.curves["curve"] == "calibration_horizon"]
    assert len(calibrated) == 5 and calibrated["n"].sum() == mdata.n_obs
    assert set(evaluation.curves["curve"]) == {"calibration_horizon", "risk_histogram"}


@pytest.mark.parametrize("survival", [False, True])
def test_penalty_search_chooses_and_refits_like_grid_search(survival):
    from sklearn.model_selection import GridSearchCV
    from sksurv.util import Surv

    from stratomics.predict import make_pipeline

    rng = np.random.default_rng(31)
    n, p = 300, 40
    X = rng.normal(size=(n, p))
    signal = 0.8 * X[:, 0] - 0.5 * X[:, 1] + 0.3 * X[:, 2]
    if survival:
        time, censor = rng.exponential(np.exp(-signal)), rng.exponential(1.5, n)
        target = Surv.from_arrays(time < censor, np.minimum(time, censor))
    else:
        target = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(int)
    screened = np.arange(p) >= 2  # two clinical columns, 38 screened
    ours = make_pipeline("elastic_net", screened, survival=survival, n_features=10, n_train=n, seed=3)
    search = ours["fit"]
    reference = GridSearchCV(search.estimator, search.param_grid, cv=search.cv,
                             scoring=None if survival else "neg_log_loss", error_score=np.nan)  # fmt: skip
    ours.fit(X, target)
    expected = ours[:-1].transform(X)
    reference.fit(expected, target)
    assert search.best_params_ == reference.best_params_
    ours_risk = search.predict(expected) if survival else search.predict_proba(expected)[:, 1]
    reference_risk = reference.predict(expected) if survival else reference.predict_proba(expected)[:, 1]
    np.testing.assert_allclose(ours_risk, reference_risk, rtol=1e-12, atol=1e-12)
    assert hasattr(ours, "predict_proba") != survival


@pytest.mark.parametrize("survival", [False, True])
def test_penalty_search_above_its_cap_searches_a_stratified_subsample_and_refits_on_all(survival):
    """Above max_patients: GridSearchCV's choice on the stratified subsample, refitted on everyone."""
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from sksurv.util import Surv

    from stratomics.predict import make_pipeline, search_subsample

    rng = np.random.default_rng(39)
    n, p = 500, 12
    X = rng.normal(size=(n, p))
    signal = 0.8 * X[:, 0] - 0.5 * X[:, 1]
    if survival:
        time, censor = rng.exponential(np.exp(-signal)), rng.exponential(1.5, n)
        target = Surv.from_arrays(time < censor, np.minimum(time, censor))
    else:
        target = (rng.random(n) < 1 / (1 + np.exp(-signal - 1))).astype(int)
    search = make_pipeline("elastic_net", np.arange(p) >= 2, survival=survival, n_features=5, n_train=n, seed=4)["fit"]
    search.set_params(max_patients=200).fit(X, target)
    searched = search_subsample(target, 200, seed=search.cv.random_state)
    events = target["event"] if survival else target
    assert len(searched) == 200 and len(np.unique(searched)) == 200
    assert abs(events[searched].mean() - events.mean()) <= 1 / 200  # stratified by the outcome / event
    reference = GridSearchCV(search.estimator, search.param_grid, cv=search.cv,
                             scoring=None if survival else "neg_log_loss", error_score=np.nan).fit(X[searched], target[searched])  # fmt: skip
    assert search.best_params_ == reference.best_params_
    refitted = clone(search.estimator).set_params(**search.best_params_).fit(X, target)
    np.testing.assert_allclose(search.predict(X), refitted.predict(X), rtol=1e-12, atol=1e-12)
    assert search_subsample(target, n, seed=0).tolist() == list(range(n))  # at or below the cap: everyone


def test_penalty_search_scores_each_penalty_alone_when_the_path_fails():
    from sklearn.base import BaseEstimator
    from sklearn.model_selection import KFold
    from sklearn.pipeline import Pipeline
    from sksurv.util import Surv

    from stratomics.predict import PenaltySearch, Screen

    class OverflowsAtSmallPenalties(BaseEstimator):
        """Like Coxnet on a small cohort: any path that reaches a small penalty overflows."""

        def __init__(self, alphas=(1.0,), *, fit_baseline_model=True):
            self.alphas = alphas
            self.fit_baseline_model = fit_baseline_model

        def fit(self, X, y):
            if min(self.alphas) < 0.05:
                raise ArithmeticError("Numerical error, because weights are too large.")
            self.sign_ = -1.0 if self.alphas[0] > 0.5 else 1.0  # the weaker penalty ranks correctly
            return self

        def predict(self, X):
            return self.sign_ * X[:, 0]

    rng = np.random.default_rng(32)
    X = rng.normal(size=(90, 2))
    target = Surv.from_arrays(np.ones(90, bool), np.exp(-X[:, 0]))
    search = PenaltySearch(Pipeline([("screen", Screen(np.zeros(2, bool))), ("model", OverflowsAtSmallPenalties())]),
                           {"model__alphas": [[0.01], [0.1], [1.0]]}, cv=KFold(3))  # fmt: skip
    search.fit(X, target)
    assert search.best_params_ == {"model__alphas": [0.1]}  # 0.01 fails in every fold, 1.0 ranks backwards


@pytest.mark.parametrize("tied", [False, True])
def test_cox_negative_gradient_equals_scikit_survival(tied):
    from sksurv.ensemble._coxph_loss import coxph_negative_gradient

    from stratomics.cox_boosting import CoxNegativeGradient

    rng = np.random.default_rng(33)
    n = 500
    time = rng.exponential(100, n)
    if tied:  # follow-up in 20-day steps: many tied event and censoring times
        time = np.round(time / 20) * 20 + 1
    event = (rng.random(n) < 0.6).astype(np.uint8)
    gradient = CoxNegativeGradient(event, time)
    for scale in (0.1, 2, 20):  # the last overflows exp() without the shift by the largest predictor
        eta = rng.normal(scale=scale, size=n)
        np.testing.assert_allclose(gradient(eta), coxph_negative_gradient(event, time, eta), rtol=1e-10, atol=1e-12)


def _survival_cohort(n, n_predictors, seed, *, discrete=False):
    """Predictors (integers 0-39 when ``discrete``) and a survival target with a non-linear risk."""
    from sksurv.util import Surv

    rng = np.random.default_rng(seed)
    X = rng.integers(0, 40, size=(n, n_predictors)) / 10 - 2 if discrete else rng.normal(size=(n, n_predictors))
    time, censor = rng.exponential(np.exp(-(0.7 * X[:, 0] - 0.4 * X[:, 1] * X[:, 2]))), rng.exponential(1.5, n)
    return X, Surv.from_arrays(time < censor, np.round(np.minimum(time, censor), 2))  # some ties


def test_histogram_cox_boosting_is_scikit_survival_on_binned_predictors():
    """Predictors with <= 256 distinct values, every patient in every tree: the same trees, so the same
    risks and survival curves as scikit-survival's exact splitter."""
    from sksurv.ensemble import GradientBoostingSurvivalAnalysis

    from stratomics.cox_boosting import HistogramCoxBoosting

    X, target = _survival_cohort(500, 6, 34, discrete=True)
    settings = {"learning_rate": 0.1, "n_estimators": 60, "max_depth": 2, "min_samples_leaf": 20, "random_state": 5}
    ours = HistogramCoxBoosting(**settings).fit(X, target)
    reference = GradientBoostingSurvivalAnalysis(**settings).fit(X, target)
    new = _survival_cohort(50, 6, 35, discrete=True)[0]
    np.testing.assert_allclose(ours.predict(new), reference.predict(new), rtol=1e-10, atol=1e-12)
    assert np.ptp(ours.predict(new)) > 0.5  # the trees split
    curves, reference_curves = ours.predict_cumulative_hazard_function(new[:5]), reference.predict_cumulative_hazard_function(new[:5])
    for curve, reference_curve in zip(curves, reference_curves):
        np.testing.assert_allclose(curve.x, reference_curve.x)
        np.testing.assert_allclose(curve.a * curve.y, reference_curve.a * reference_curve.y, rtol=1e-10)


@pytest.mark.parametrize("seed", [36, 37, 38])
def test_histogram_cox_boosting_held_out_c_index_as_scikit_survival(seed):
    """Continuous predictors (quantile bins), the workflow's settings with subsampling: the held-out
    C-index within 0.01 of scikit-survival's on the same split."""
    from sksurv.ensemble import GradientBoostingSurvivalAnalysis
    from sksurv.metrics import concordance_index_censored

    from stratomics.cox_boosting import HistogramCoxBoosting

    X, target = _survival_cohort(1500, 10, seed)
    settings = {"learning_rate": 0.03, "n_estimators": 100, "max_depth": 2, "min_samples_leaf": 30, "subsample": 0.8,
                "random_state": seed}  # fmt: skip
    train, test = slice(0, 1000), slice(1000, None)
    scores = [concordance_index_censored(target[test]["event"], target[test]["time"],
                                         model(**settings).fit(X[train], target[train]).predict(X[test]))[0]
              for model in (HistogramCoxBoosting, GradientBoostingSurvivalAnalysis)]  # fmt: skip
    assert scores[1] > 0.6  # the risk is learnable
    assert scores[0] == pytest.approx(scores[1], abs=0.01)


def test_histogram_cox_boosting_bins():
    from stratomics.cox_boosting import bin_codes, bin_thresholds

    X = np.column_stack([np.repeat([3.0, 1.0, 2.0], 4), np.arange(12.0)])
    thresholds = bin_thresholds(X, max_bins=4)
    np.testing.assert_array_equal(thresholds[0], [1.5, 2.5, np.inf])  # 3 distinct values: midpoints
    assert np.isfinite(thresholds[1]).sum() == 3  # 12 values in 4 quantile bins
    codes = bin_codes(X, thresholds)
    np.testing.assert_array_equal(codes[:, 0], np.repeat([2, 0, 1], 4))
    np.testing.assert_array_equal(np.bincount(codes[:, 1]), [3, 3, 3, 3])
    assert bin_codes(np.array([[1.5, -5.0], [9.0, 99.0]]), thresholds).tolist() == [[0, 0], [2, 3]]  # cut goes left


def test_best_split_is_the_first_largest_gain_of_every_allowed_split():
    """Against every split scored one by one, on histograms of the same patients with tied gains."""
    from stratomics.cox_boosting import best_split

    rng = np.random.default_rng(12)
    for _ in range(50):
        p, bins, smallest = rng.integers(1, 6), rng.integers(2, 12), int(rng.integers(1, 5))
        counts = np.tile(rng.integers(0, 4, bins), (p, 1))  # each predictor bins the same patients
        sums = np.round(rng.normal(size=(p, bins))) * (counts > 0)
        sums += sums[0].sum() / bins - sums.sum(axis=1, keepdims=True) / bins  # equal totals
        scored = {}
        for column in range(p):
            for cut in range(bins - 1):
                left, right = counts[column, : cut + 1].sum(), counts[column, cut + 1 :].sum()
                if left >= smallest and right >= smallest:
                    left_sum = sums[column, : cut + 1].sum()
                    scored[column, cut] = left_sum**2 / left + (sums[0].sum() - left_sum) ** 2 / right
        expected = max(scored, key=lambda split: (scored[split], -split[0], -split[1])) if scored else None
        found = best_split(sums, counts, smallest)
        assert found == expected or np.isclose(scored[found], scored[expected], rtol=1e-12, atol=0)


def test_histogram_cox_boosting_refuses_what_scikit_survival_refuses():
    """No predictors or missing values: a ValueError (a failed fold in the workflow), as scikit-survival."""
    from stratomics.cox_boosting import HistogramCoxBoosting

    X, target = _survival_cohort(100, 3, 42)
    with pytest.raises(ValueError, match="no predictors"):
        HistogramCoxBoosting().fit(X[:, :0], target)
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="impute"):
        HistogramCoxBoosting().fit(X, target)
    constant = HistogramCoxBoosting(n_estimators=5).fit(np.ones((100, 1)), target)  # no split: one leaf per tree
    assert np.ptp(constant.predict(np.array([[0.0], [5.0]]))) == 0


def test_median_imputer_equals_scikit_learn_simple_imputer():
    from sklearn.impute import SimpleImputer

    from stratomics.predict import MedianImputer

    rng = np.random.default_rng(35)
    train = rng.normal(size=(61, 6))
    train[rng.random(train.shape) < 0.2] = np.nan
    train[:, 2] = np.nan  # no value: filled with 0
    train[1:, 3] = np.nan  # one value
    train[:, 4] = np.round(train[:, 4])  # ties
    new = rng.normal(size=(9, 6))
    new[rng.random(new.shape) < 0.5] = np.nan
    ours = MedianImputer().fit(train)
    reference = SimpleImputer(strategy="median", keep_empty_features=True).fit(train)
    np.testing.assert_array_equal(ours.statistics_, reference.statistics_)
    np.testing.assert_array_equal(ours.transform(new), reference.transform(new))
    np.testing.assert_array_equal(ours.transform(train[:, :]), reference.transform(train))


def test_penalty_search_log_loss_equals_scikit_learns_including_certain_predictions():
    from sklearn.metrics import log_loss

    from stratomics import predict

    rng = np.random.default_rng(0)
    for n in (5, 40, 300):
        y = rng.integers(0, 2, n)
        p = rng.uniform(size=n)
        p[:2] = [0.0, 1.0]  # clipped, as scikit-learn clips them
        probabilities = np.column_stack([1 - p, p])
        assert predict._log_loss(y, probabilities) == log_loss(y, probabilities, labels=[0, 1])


@pytest.mark.parametrize("case", ["correlated", "separable"])
def test_logistic_path_equals_scikit_learns_elastic_net_at_every_penalty(case):
    """Each C: the coefficients of scikit-learn's saga run to a tight tolerance (1e-10), within the
    path's own tolerance; an all-zero fit's intercept is the logit of the outcome rate."""
    from sklearn.linear_model import LogisticRegression

    from stratomics.logistic_path import logistic_path
    from stratomics.predict import LOGISTIC_C

    rng = np.random.default_rng(8)
    n, p = (500, 25) if case == "correlated" else (120, 6)
    group = rng.integers(0, 2, n)
    X = rng.normal(size=(n, p)) + (np.outer(group, np.arange(p) < 10) if case == "correlated" else 0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    signal = 0.8 * group if case == "correlated" else 6 * X[:, 0]  # nearly separable: large weak-penalty coefficients
    y = (rng.random(n) < 1 / (1 + np.exp(0.5 - signal))).astype(int)
    candidates = list(LOGISTIC_C[::-1])  # any order: the results follow it
    intercepts, coefs, converged = logistic_path(X, y, candidates, l1_ratio=0.5)
    assert converged.all()
    for C, intercept, coef in zip(candidates, intercepts, coefs):
        reference = LogisticRegression(l1_ratio=0.5, solver="saga", C=C, tol=1e-10, max_iter=200_000).fit(X, y)
        np.testing.assert_allclose(coef, reference.coef_[0], atol=1e-4 * max(1, np.abs(coef).max()))
        if not coef.any():  # saga's intercept is inaccurate there
            assert intercept == pytest.approx(np.log(y.mean() / (1 - y.mean())), abs=1e-9)
        else:
            assert intercept == pytest.approx(reference.intercept_[0], abs=1e-4)
    assert not coefs[-1].any() and coefs[0].any()  # C = 0.001 keeps nothing, C = 10 keeps predictors


def test_logistic_path_scores_are_held_out_log_losses_of_the_fits():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    from stratomics.logistic_path import logistic_path
    from stratomics.predict import _logistic_path_scores

    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 30))
    y = (rng.random(400) < 1 / (1 + np.exp(-(X[:, 0] - 0.7 * X[:, 1])))).astype(int)
    candidates = [0.01, 1.0, 0.1]
    scores = _logistic_path_scores(LogisticRegression(l1_ratio=0.5), (X[:300], y[:300]), (X[300:], y[300:]), candidates)
    intercepts, coefs, _ = logistic_path(X[:300], y[:300], candidates, l1_ratio=0.5)
    for score, intercept, coef in zip(scores, intercepts, coefs):
        probability = 1 / (1 + np.exp(-(intercept + X[300:] @ coef)))
        assert score == pytest.approx(-log_loss(y[300:], probability), rel=1e-12)
    assert len(set(scores)) == 3


def test_logistic_path_refuses_what_scikit_learn_refuses():
    from stratomics.logistic_path import logistic_path

    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match="both classes"):
        logistic_path(X, np.ones(30), [1.0])
    X[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinite or missing"):
        logistic_path(X, np.tile([0, 1], 15), [1.0])


def test_logistic_path_scores_name_unconverged_fits_and_refuse_models_it_cannot_fit(monkeypatch, caplog):
    import stratomics.logistic_path
    from sklearn.linear_model import LogisticRegression

    from stratomics.predict import _logistic_path_scores

    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(60, 3)), np.tile([0, 1], 30)
    fit = stratomics.logistic_path.logistic_path

    def first_unconverged(*args, **kwargs):
        intercepts, coefs, converged = fit(*args, **kwargs)
        converged[0] = False
        return intercepts, coefs, converged

    monkeypatch.setattr(stratomics.logistic_path, "logistic_path", first_unconverged)
    with caplog.at_level("WARNING", logger="stratomics.predict"):
        scores = _logistic_path_scores(LogisticRegression(l1_ratio=0.5), (X[:40], y[:40]), (X[40:], y[40:]), [0.5, 2.0])
    assert np.isfinite(scores).all()  # still scored, as scikit-learn scores a fit that hit max_iter
    assert "C = 0.5 did not converge" in caplog.text and "C = 2 " not in caplog.text
    for model in (LogisticRegression(l1_ratio=0.5, class_weight="balanced"), LogisticRegression(l1_ratio=0.5, fit_intercept=False)):
        with pytest.raises(TypeError, match="unweighted models with an intercept"):
            _logistic_path_scores(model, (X[:40], y[:40]), (X[40:], y[40:]), [1.0])

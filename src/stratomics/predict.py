"""Prediction of early treatment failure from clinical data, subgroups and biomarkers.

Four predictor sets are compared: ``clinical`` (the configured clinical columns), ``clinical_subgroup``
(plus the subgroup), ``clinical_biomarkers`` (plus every feature of the chosen assays, screened
inside the folds) and ``all``. Models: elastic-net logistic regression (scikit-learn) or elastic-net
Cox (scikit-survival's Coxnet), and gradient boosting (scikit-learn / scikit-survival).

Everything learnt from data happens inside the training folds, in one scikit-learn pipeline: median
imputation of each feature (a patient without an assay gets the training median of its features
and an indicator ``has_<assay>`` = 0, so nobody is dropped), scaling to unit SD, screening of the
biomarkers (the ``n_features`` most correlated with the outcome: the outcome itself for binary
outcomes, the martingale residual of the null Cox model for survival), and the model, whose penalty
an inner cross-validation of screening and model together chooses. The subgroups
come from unsupervised clustering that never sees the outcome, so they are computed once.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.metaestimators import available_if
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold

from stratomics.errors import StratomicsInputError
from stratomics.outcome_types import OUTCOME_TYPES, outcome_type
from stratomics.parallel import in_processes
from stratomics.prediction_metrics import (binary_metrics, bootstrap_intervals, concordance_index, interval_bounds, net_benefit,
                                          survival_metrics)

log = logging.getLogger(__name__)

FEATURE_SETS = {
    "clinical": ("clinical",),
    "clinical_subgroup": ("clinical", "subgroup"),
    "clinical_biomarkers": ("clinical", "omics", "coverage"),
    "all": ("clinical", "subgroup", "omics", "coverage"),
}
MODELS = ("elastic_net", "gradient_boosting")
CURVE_COLUMNS = ["curve", "x", "y", "ci_low", "ci_high", "n", "group", "model", "feature_set", "outcome"]
#: Risk thresholds of the decision curves.
THRESHOLDS = np.arange(0.05, 0.61, 0.01)
#: Edges of the predicted-risk histograms (twentieths).
RISK_BINS = np.linspace(0, 1, 21)
#: Points of the calibration smoother and patient-bootstrap resamples of its 95% band.
SMOOTH_POINTS, SMOOTH_BOOTSTRAP = 40, 200


@dataclass
class Predictors:
    """Candidate predictors of every patient.

    Attributes
    ----------
    table
        Patients x predictors; NaN where a value or a whole assay is missing.
    block
        Predictor -> ``clinical``, ``subgroup``, ``omics`` or ``coverage``.
    categories
        Levels of each categorical clinical column and of the subgroup, to encode new patients alike.
    """

    table: pd.DataFrame
    block: pd.Series
    categories: dict = field(default_factory=dict)

    def columns(self, feature_set: str) -> list[str]:
        """The predictors of a feature set."""
        return self.block.index[self.block.isin(FEATURE_SETS[feature_set])].tolist()


def _encode(values: pd.Series, name: str, levels: list[str] | None) -> tuple[pd.DataFrame, list[str] | None]:
    """A column as numbers: numeric as is, text as indicators of all but the first level."""
    if pd.api.types.is_numeric_dtype(values) and levels is None:
        return values.astype(float).to_frame(name), None
    text = values.astype("string")
    levels = levels or sorted(text.dropna().unique())
    indicators = {f"{name}[{level}]": (text == level).astype(float).where(text.notna()) for level in levels[1:]}
    return pd.DataFrame(indicators, index=values.index), levels


def build_predictors(mdata, *, clinical: list[str], assays: list[str], subgroup: str | None = "subgroup",
                     categories: dict | None = None) -> Predictors:  # fmt: skip
    """Clinical columns, subgroup indicators, assay features and assay indicators of every patient.

    Parameters
    ----------
    mdata
        Cohort with the clinical columns (and the subgroup) in ``mdata.obs``.
    clinical, assays
        Clinical columns and assays to use.
    subgroup
        Column of ``mdata.obs`` with the subgroup, or None.
    categories
        Levels saved with a signature, so that new patients are encoded as the training cohort was.

    Returns
    -------
    The predictors of every patient of ``mdata.obs``.
    """
    obs, categories = mdata.obs, dict(categories or {})
    frames, blocks = [], []
    named = [(column, "clinical") for column in clinical] + ([(subgroup, "subgroup")] if subgroup else [])
    for column, block in named:
        if column not in obs:
            raise StratomicsInputError(f"predict: the column '{column}' ({block}) is not in the sample sheet; "
                                       f"available: {', '.join(map(str, obs.columns))}.")  # fmt: skip
        values = obs[column].astype("string").replace("", pd.NA) if block == "subgroup" else obs[column]
        encoded, levels = _encode(values, column, categories.get(column))
        if levels is not None:
            categories[column] = levels
        frames.append(encoded)
        blocks += [block] * encoded.shape[1]
    for assay in assays:
        values = mdata[assay].to_df().reindex(obs.index)
        frames.append(values.add_prefix(f"{assay}:"))
        blocks += ["omics"] * values.shape[1]
        frames.append(values.notna().any(axis=1).astype(float).to_frame(f"has_{assay}"))
        blocks.append("coverage")
    table = pd.concat(frames, axis=1)
    return Predictors(table, pd.Series(blocks, index=table.columns), categories)


def outcome_target(obs: pd.DataFrame, name: str, spec: dict):
    """The outcome as scikit-learn / scikit-survival want it, and which patients have it.

    Returns
    -------
    (target, known): a 0/1 array or a structured (event, time) array for the known patients, and
    the boolean mask of those patients in ``obs``.
    """
    otype = outcome_type(spec, name)
    if not otype.predictable:
        raise StratomicsInputError(f"predict: outcome '{name}' has type '{otype.name}'; predict takes "
                                   f"{', '.join(t.name for t in OUTCOME_TYPES.values() if t.predictable)} outcomes.")
    return PREDICTION_TARGETS[otype.model](obs, name, otype.columns(name, spec))


def _binary_target(obs: pd.DataFrame, name: str, columns: list[str]):
    values = pd.to_numeric(obs[columns[0]], errors="coerce")
    known = values.notna().to_numpy()
    if not values[known].isin([0, 1]).all():
        raise StratomicsInputError(f"predict: outcome '{name}' must be 0/1; found {sorted(values[known].unique())[:5]}.")
    return values[known].to_numpy(int), known


def _survival_target(obs: pd.DataFrame, name: str, columns: list[str]):
    from sksurv.util import Surv

    time, event = (pd.to_numeric(obs[column], errors="coerce") for column in columns)
    known = (time.notna() & event.notna() & (time > 0)).to_numpy()
    return Surv.from_arrays(event[known].astype(bool), time[known], name_event="event", name_time="time"), known


#: Prediction targets by an outcome type's model name (:mod:`stratomics.outcome_types`).
PREDICTION_TARGETS = {"logistic": _binary_target, "cox": _survival_target}


def _is_survival(target) -> bool:
    return target.dtype.names is not None


def _outcome_residual(target) -> np.ndarray:
    """Outcome minus its mean (binary), or martingale residual of the null Cox model (survival)."""
    if not _is_survival(target):
        return target - target.mean()
    from sksurv.nonparametric import nelson_aalen_estimator

    times, hazard = nelson_aalen_estimator(target["event"], target["time"])
    return target["event"] - hazard[np.searchsorted(times, target["time"], side="right") - 1]


class Screen(BaseEstimator, TransformerMixin):
    """Keep every unscreened column and the ``n_features`` screened ones most correlated with the outcome.

    Parameters
    ----------
    screened
        Boolean mask of the columns that compete (the biomarkers).
    n_features
        How many screened columns to keep.
    """

    def __init__(self, screened=None, n_features: int = 50):
        self.screened = screened
        self.n_features = n_features

    def fit(self, X, y):
        screened = np.asarray(self.screened, dtype=bool)
        residual = _outcome_residual(y)
        values = X[:, screened]
        centred = values - values.mean(axis=0)
        norms = np.sqrt((centred**2).sum(axis=0)) * np.linalg.norm(residual - residual.mean())
        score = np.abs(centred.T @ (residual - residual.mean())) / np.where(norms > 0, norms, np.inf)
        keep = np.flatnonzero(screened)[np.argsort(-score, kind="stable")[: self.n_features]]
        self.support_ = ~screened
        self.support_[keep] = True
        return self

    def transform(self, X):
        return X[:, self.support_]


class MedianImputer(BaseEstimator, TransformerMixin):
    """Missing values replaced by their column's training median, 0 in a column with no value.

    What scikit-learn's ``SimpleImputer(strategy="median", keep_empty_features=True)`` gives, from
    one sort of the training columns instead of masked arrays (about 9x faster at 640 x 300).
    """

    def fit(self, X, y=None):
        """Store each column's median over its observed values (``statistics_``)."""
        X = np.asarray(X, dtype=float)
        ordered = np.sort(X, axis=0)  # missing values last
        observed = (~np.isnan(X)).sum(axis=0)
        columns = np.arange(X.shape[1])
        middle = ordered[np.maximum((observed - 1) // 2, 0), columns] + ordered[np.maximum(observed // 2, 0), columns]
        self.statistics_ = np.where(observed > 0, middle / 2, 0.0)
        return self

    def transform(self, X):
        """A copy of ``X`` with the missing values filled."""
        X = np.asarray(X, dtype=float)
        return np.where(np.isnan(X), self.statistics_, X)


#: Penalties searched by the inner cross-validation: C of scikit-learn's logistic regression (inverse
#: penalty, summed loss) and alpha of Coxnet (penalty, mean loss), for standardised predictors.
LOGISTIC_C = np.logspace(-3, 1, 9)
COX_ALPHAS = np.logspace(-3, 0, 10)
#: Largest training set whose elastic-net penalty search uses every patient: above it (cohorts of
#: more than 12,500 patients) the inner cross-validation runs on this many (about 27 of the 28 fits
#: per outer fold), and the chosen penalty is refitted on the whole training set.
SEARCH_PATIENTS = 10_000
#: From this many patients on, the metrics' 95% intervals are normal intervals (estimate -/+ 1.96
#: bootstrap SD) from LARGE_COHORT_RESAMPLES resamples instead of percentile intervals from
#: ``predict.n_bootstrap``: each resample re-scores every repeat of every predictor set (O(n) to
#: O(n log n) each; 500 resamples took 5 minutes per model at 100,000 patients, on a loaded 2-core VM). The Monte Carlo
#: error of the bounds is about the same (0.14 against 0.12 standard deviations of the metric with
#: 500 percentile resamples), and at this size the metrics' sampling distributions are close to normal.
LARGE_COHORT = 20_000
LARGE_COHORT_RESAMPLES = 100


def interval_resamples(n_patients: int, n_bootstrap: int) -> int:
    """Bootstrap resamples behind the 95% intervals of ``n_patients``: ``n_bootstrap``, at most
    :data:`LARGE_COHORT_RESAMPLES` from :data:`LARGE_COHORT` patients on (normal intervals there)."""
    return min(n_bootstrap, LARGE_COHORT_RESAMPLES) if n_patients >= LARGE_COHORT else n_bootstrap


#: Gradient-boosting leaves hold this many training patients, or a 20th of them in smaller training
#: sets (at least 5), so that small cohorts still get splits instead of a constant model.
MIN_SAMPLES_LEAF = 30
#: Errors of a model fit on a degenerate training set (one class, Coxnet's numerical overflow, a
#: singular design): the fold gets no predictions and a warning instead of stopping the run.
FIT_ERRORS = (ArithmeticError, ValueError, np.linalg.LinAlgError)


def min_samples_leaf(n_train: int) -> int:
    """Smallest gradient-boosting leaf for ``n_train`` training patients (see MIN_SAMPLES_LEAF)."""
    return int(max(5, min(MIN_SAMPLES_LEAF, n_train // 20)))


def make_pipeline(model: str, screened: np.ndarray, *, survival: bool, n_features: int, n_train: int, seed: int):
    """Imputation, scaling, then screening and the model, all fitted inside each training fold.

    Gradient boosting has fixed, deliberately slow settings (shallow trees, small learning rate):
    on the demo they give calibration slopes near 1 where deeper, faster settings gave 0.5. Its
    smallest leaf scales with the ``n_train`` training patients (:func:`min_samples_leaf`).

    For the elastic nets, the penalty is chosen by an inner 3-fold cross-validation (log-loss for
    logistic, Harrell's C for Cox) of screening and model together, so that the inner folds do not
    judge features screened on their own outcomes.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    from stratomics.cox_boosting import HistogramCoxBoosting

    if model not in MODELS:
        raise StratomicsInputError(f"predict: model '{model}' is not one of {', '.join(MODELS)}.")
    leaf = min_samples_leaf(n_train)
    estimators = {
        (False, "elastic_net"): lambda: LogisticRegression(l1_ratio=0.5, solver="saga", max_iter=5000, random_state=seed),
        (False, "gradient_boosting"): lambda: HistGradientBoostingClassifier(
            learning_rate=0.03, max_iter=100, max_depth=2, min_samples_leaf=leaf, l2_regularization=1.0,
            early_stopping=False, random_state=seed),
        (True, "elastic_net"): lambda: CoxnetSurvivalAnalysis(l1_ratio=0.5, fit_baseline_model=True),
        (True, "gradient_boosting"): lambda: HistogramCoxBoosting(
            learning_rate=0.03, n_estimators=100, max_depth=2, min_samples_leaf=leaf, subsample=0.8, random_state=seed),
    }  # fmt: skip
    fitted = Pipeline([("screen", Screen(screened, n_features)), ("model", estimators[survival, model]())])
    if model == "elastic_net":
        grid = {"model__alphas": [[alpha] for alpha in COX_ALPHAS]} if survival else {"model__C": LOGISTIC_C}
        folds = (KFold if survival else StratifiedKFold)(3, shuffle=True, random_state=seed)
        fitted = PenaltySearch(fitted, grid, cv=folds, max_patients=SEARCH_PATIENTS)
    return Pipeline([
        ("impute", MedianImputer()),
        ("scale", StandardScaler()),
        ("fit", fitted),
    ])  # fmt: skip


class PenaltySearch(BaseEstimator):
    """The penalty of a (screen, model) pipeline chosen by an inner cross-validation, then refitted.

    What scikit-learn's GridSearchCV does with the same folds, scores and choice (log-loss for
    logistic regression, Harrell's C for Coxnet; the first best penalty; a failed fit scores NaN),
    but each inner fold screens once for all penalties, logistic regression fits its penalties as one
    path (:func:`_logistic_path_scores`), and Coxnet fits its whole penalty path in
    one go and is scored at every penalty of it (each penalty is fitted on its own only when the
    path fails, e.g. when a small penalty overflows).

    Parameters
    ----------
    estimator
        Pipeline of ``screen`` and ``model``.
    param_grid
        One entry: ``model__alphas`` (Coxnet, one-element lists) or ``model__C`` (logistic).
    cv
        The inner folds (stratified by the outcome when binary).
    max_patients
        Largest training set searched whole: above it the inner cross-validation runs on this many
        of the patients (a subsample stratified by the outcome or event, drawn with the folds' seed),
        and the chosen penalty is refitted on all of them (see :data:`SEARCH_PATIENTS`).
    """

    def __init__(self, estimator, param_grid: dict, cv, max_patients: int | None = None):
        self.estimator = estimator
        self.param_grid = param_grid
        self.cv = cv
        self.max_patients = max_patients

    def fit(self, X, y):
        from sklearn.base import clone

        key, candidates = next(iter(self.param_grid.items()))
        searched = search_subsample(y, self.max_patients, seed=self.cv.random_state)
        splits = self.cv.split(X[searched], None if _is_survival(y) else y[searched])
        scores = np.array([self._fold_scores(X[searched], y[searched], train, test, candidates) for train, test in splits])
        with np.errstate(invalid="ignore"):
            mean = scores.mean(axis=0)  # NaN when any fold failed, as GridSearchCV
        self.best_params_ = {key: candidates[int(np.nanargmax(mean)) if np.isfinite(mean).any() else 0]}
        self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_).fit(X, y)
        return self

    def _fold_scores(self, X, y, train, test, candidates) -> list[float]:
        from sklearn.base import clone

        screen = clone(self.estimator["screen"]).fit(X[train], y[train])
        train_x, test_x = screen.transform(X[train]), screen.transform(X[test])
        model = self.estimator["model"]
        if not _is_survival(y):
            return _logistic_path_scores(model, (train_x, y[train]), (test_x, y[test]), candidates)
        alphas = [alpha for (alpha,) in candidates]
        risk_only = {"fit_baseline_model": False}  # scored by its risk only: no Breslow baseline
        try:
            path = clone(model).set_params(alphas=sorted(alphas, reverse=True), **risk_only)  # strongest first
            path.fit(train_x, y[train])
            return [_concordance(y[test], path.predict(test_x, alpha=alpha)) for alpha in alphas]
        except FIT_ERRORS:
            pass
        scores = []
        for candidate in candidates:
            single = clone(model).set_params(alphas=candidate, **risk_only)
            try:
                scores.append(_concordance(y[test], single.fit(train_x, y[train]).predict(test_x)))
            except FIT_ERRORS:
                scores.append(np.nan)
        return scores

    def predict(self, X):
        """Risk (Coxnet) or class (logistic) from the refitted pipeline."""
        return self.best_estimator_.predict(X)

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from the refitted pipeline."""
        return self.best_estimator_.predict_proba(X)


def _logistic_path_scores(model, train: tuple, test: tuple, candidates) -> list[float]:
    """Test log-likelihoods (minus log-loss) of a logistic elastic net at each inverse penalty ``C``.

    The fits are :func:`stratomics.logistic_path.logistic_path` (``model``'s scikit-learn objective,
    solved along the path from the strongest penalty; 3-5x faster than saga). A fit whose
    probabilities are not finite, or a training fold it cannot fit, scores NaN.

    Parameters
    ----------
    model
        The unfitted scikit-learn logistic regression (its ``l1_ratio``).
    train, test
        (features, 0/1 outcomes) of the inner training and test fold.
    candidates
        The ``C`` values, in the order of the returned scores.
    """
    from scipy.special import expit

    from stratomics.logistic_path import MAX_OUTER, logistic_path

    if model.class_weight is not None or not model.fit_intercept:
        raise TypeError("the logistic path fits unweighted models with an intercept only; got "
                         f"class_weight={model.class_weight}, fit_intercept={model.fit_intercept}")  # fmt: skip
    try:
        intercepts, coefs, converged = logistic_path(train[0], train[1], candidates, l1_ratio=model.l1_ratio)
    except FIT_ERRORS:
        return [np.nan] * len(candidates)
    if not converged.all():
        log.warning("predict: the inner fit at C = %s did not converge in %d IRLS steps; scored as it stands",
                    ", ".join(f"{c:g}" for c in np.asarray(candidates)[~converged]), MAX_OUTER)  # fmt: skip
    probabilities = expit(intercepts + test[0] @ coefs.T)  # test patients x penalties
    return [-_log_loss(test[1], np.column_stack([1 - p, p])) if np.isfinite(p).all() else np.nan
            for p in probabilities.T]  # fmt: skip


def search_subsample(y, max_patients: int | None, *, seed: int | None) -> np.ndarray:
    """Positions of the patients an inner penalty search uses: all of them, or ``max_patients``
    drawn without replacement, stratified by the binary outcome or the survival event."""
    if max_patients is None or len(y) <= max_patients:
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    strata = y["event"] if _is_survival(y) else y
    chosen, _ = train_test_split(np.arange(len(y)), train_size=max_patients, stratify=strata, random_state=seed)
    return np.sort(chosen)


def _concordance(target, risk: np.ndarray) -> float:
    """Harrell's C (Coxnet's score, computed by :func:`prediction_metrics.concordance_index`); NaN
    when a risk is not finite."""
    if not np.isfinite(risk).all():
        return np.nan
    return concordance_index(target["time"], target["event"], risk, weights=np.ones((1, len(risk))))[0]


def _log_loss(y: np.ndarray, probabilities: np.ndarray) -> float:
    """scikit-learn's ``log_loss`` of 0/1 outcomes (same clipping and normalisation, same number), without
    its input checks, which took a tenth of a binary prediction job."""
    eps = np.finfo(probabilities.dtype).eps
    clipped = np.clip(probabilities, eps, 1 - eps)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return float(-np.log(clipped[np.arange(len(y)), np.asarray(y, dtype=int)]).mean())


def screened_model(pipeline):
    """The fitted (screen, model) of a pipeline from :func:`make_pipeline`."""
    fitted = pipeline["fit"]
    best = getattr(fitted, "best_estimator_", fitted)
    return best["screen"], best["model"]


def without_search(pipeline):
    """The pipeline with its penalty search replaced by the model refitted at the chosen penalty (what
    new patients need; a model file holds no search)."""
    from sklearn.pipeline import Pipeline

    fitted = pipeline["fit"]
    return Pipeline([*pipeline.steps[:-1], ("fit", getattr(fitted, "best_estimator_", fitted))])


def predicted_risk(pipeline, X: np.ndarray) -> np.ndarray:
    """Probability of the event (binary) or risk score (survival; higher means earlier event)."""
    return pipeline.predict_proba(X)[:, 1] if hasattr(pipeline, "predict_proba") else pipeline.predict(X)


def event_probability(pipeline, X: np.ndarray, horizon: float) -> np.ndarray:
    """Probability of the survival event by ``horizon`` (days) from a fitted survival pipeline of
    :func:`make_pipeline`; beyond the last training time, the probability at that time."""
    from sksurv.functions import StepFunction

    screen, model = screened_model(pipeline)
    predictors = screen.transform(pipeline[:-1].transform(X))
    hazard = model.predict_cumulative_hazard_function(predictors[:1])[0]  # its y: the baseline H0 at each time
    baseline_survival = StepFunction(hazard.x, np.exp(-hazard.y))  # scikit-survival's S0 = exp(-H0)
    return 1 - np.power(baseline_survival(min(horizon, hazard.x[-1])), np.exp(model.predict(predictors)))


def chosen_predictors(pipeline) -> np.ndarray:
    """Boolean mask of the input columns the fitted model uses (screened in, non-zero coefficient)."""
    screen, model = screened_model(pipeline)
    chosen = screen.support_.copy()
    coefficients = getattr(model, "coef_", None)
    if coefficients is not None:
        chosen[np.flatnonzero(chosen)] = np.ravel(coefficients) != 0
    return chosen


def fit_quietly(pipeline, X: np.ndarray, target, *, check=None):
    """Fit a pipeline; a penalty that removes every predictor is a valid candidate, not a warning.

    When the refit of the penalty chosen by the inner cross-validation fails numerically (Coxnet
    overflows at small penalties on small cohorts), the search is redone over the stronger penalties
    only, with a warning; the error is raised when no penalty is left. ``check(pipeline)``, when
    given, judges the refit and raises an ArithmeticError to reject it the same way (sksurv's
    baseline survival overflows with a warning only, and its curves are then NaN).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "all coefficients are zero")
        while True:
            try:
                pipeline.fit(X, target)
                if check is not None:
                    check(pipeline)
                return pipeline
            except FIT_ERRORS as err:
                search = pipeline["fit"]
                stronger = _stronger_penalties(search)
                if not stronger:
                    raise
                log.warning("predict: the chosen penalty %s could not be fitted (%s); trying stronger ones",
                            search.best_params_, str(err)[:120])  # fmt: skip
                search.param_grid = stronger


def _stronger_penalties(search) -> dict | None:
    """The part of a penalty grid more penalised than the refit that failed (None if there is none)."""
    if not hasattr(search, "best_params_"):
        return None
    key, values = next(iter(search.param_grid.items()))
    chosen = search.best_params_[key]
    if key == "model__alphas":  # Coxnet: larger alpha is stronger
        kept = [alpha for alpha in values if alpha[0] > chosen[0]]
    else:  # logistic C: smaller is stronger
        kept = [c for c in values if c < chosen]
    return {key: kept} if kept else None


def _fit_predict(X, target, train, test, survival, model, screened, n_features, seed, horizon):
    """Risk and probability of the event (by ``horizon`` for survival) of the test patients and the
    predictors used, or NaN risks and the error of a failed fit."""
    from sklearn import config_context

    pipeline = make_pipeline(model, screened, survival=survival, n_features=n_features, n_train=len(train), seed=seed)
    try:  # the settings are fixed and the data checked once: skip scikit-learn's checks in each of the many fits
        with config_context(assume_finite=True, skip_parameter_validation=True):
            fit_quietly(pipeline, X[train], target[train])
            risk = predicted_risk(pipeline, X[test])
            with np.errstate(over="ignore", invalid="ignore"):
                probability = event_probability(pipeline, X[test], horizon) if survival else risk
        return risk, probability, chosen_predictors(pipeline), ""
    except FIT_ERRORS as err:
        failed = np.full(len(test), np.nan)
        return failed, failed, np.zeros(X.shape[1], bool), f"{type(err).__name__}: {err}"


def _warn_failed_fits(errors: list[str], label: str) -> None:
    """One warning naming the model and the first error when some training folds could not be fitted."""
    failed = [error for error in errors if error]
    if failed:
        log.warning("predict %s: %d of %d fits failed (first: %s); their patients have no risk there and the "
                    "metrics use the others", label, len(failed), len(errors), failed[0][:200])  # fmt: skip


def cross_validated_risk(X: np.ndarray, target, *, model: str, screened: np.ndarray, n_splits: int = 5,
                         n_repeats: int = 5, n_features: int = 50, seed: int = 0, n_jobs: int = 1,
                         horizon: float = 365, label: str = ""):  # fmt: skip
    """Out-of-fold risk of every patient in each repeat of a stratified k-fold cross-validation.

    A fold whose model cannot be fitted leaves NaN risk for its patients, with a warning naming ``label``.

    Returns
    -------
    (risk, probability, selection): risk and probability are repeats x patients (the probability of
    the event, by ``horizon`` days for survival outcomes; for binary outcomes the risk itself);
    selection is, per column, the share of the outer training folds whose model used it.
    """
    from joblib import delayed

    survival = _is_survival(target)
    strata = target["event"] if survival else target
    splits = list(RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed).split(X, strata))
    fits = in_processes((delayed(_fit_predict)(X, target, train, test, survival, model, screened, n_features, seed + i,
                                               horizon) for i, (train, test) in enumerate(splits)), n_jobs)  # fmt: skip
    risk, probability = np.full((2, n_repeats, len(X)), np.nan)
    selection = np.zeros(X.shape[1])
    for i, ((_, test), (predicted, predicted_probability, chosen, _)) in enumerate(zip(splits, fits)):
        risk[i // n_splits, test], probability[i // n_splits, test] = predicted, predicted_probability
        selection += chosen
    _warn_failed_fits([error for *_, error in fits], label)
    return risk, probability, selection / len(splits)


def site_held_out_risk(X: np.ndarray, target, sites: np.ndarray, *, model: str, screened: np.ndarray,
                       n_features: int = 50, seed: int = 0, n_jobs: int = 1, horizon: float = 365,
                       label: str = "") -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Risk and probability of the event (as in :func:`cross_validated_risk`) of each site's patients
    from a model trained (with its inner CV) on the other sites."""
    from joblib import delayed

    survival = _is_survival(target)
    held_out = [np.flatnonzero(sites == site) for site in np.unique(sites)]
    fits = in_processes((delayed(_fit_predict)(X, target, np.flatnonzero(sites != sites[test[0]]), test, survival,
                                               model, screened, n_features, seed, horizon) for test in held_out), n_jobs)  # fmt: skip
    risk, probability = np.full((2, len(X)), np.nan)
    for test, (predicted, predicted_probability, _, _) in zip(held_out, fits):
        risk[test], probability[test] = predicted, predicted_probability
    _warn_failed_fits([error for *_, error in fits], f"{label}, leave one site out")
    return risk, probability


def _metrics(target, risk: np.ndarray, weights: np.ndarray, horizons) -> pd.DataFrame:
    """Metrics of one prediction for each row of patient weights (resamples x patients)."""

    finite = np.isfinite(risk)
    if not finite.all():  # patients of folds that could not be fitted (warned when it happened)
        target, risk, weights = target[finite], risk[finite], weights[:, finite]
    if _is_survival(target):
        return survival_metrics(target["time"], target["event"].astype(int), risk, horizons=horizons, weights=weights)
    return binary_metrics(target, risk, weights)


def performance_statistic(target, risks: dict[str, np.ndarray], horizons=(365,)):
    """Function of patient weights (resamples x patients) giving each feature set's metrics, averaged over repeats.

    For every feature set but ``clinical``, also its gain in AUC (binary) or C-index (survival) over
    ``clinical`` on the same patients, so that bootstrap intervals of the gain are paired.
    The function returns one row per resample, columns (feature_set, metric).
    """
    main = "c_index" if _is_survival(target) else "auc"

    def statistic(weights: np.ndarray) -> pd.DataFrame:
        values = {}
        for feature_set, risk in risks.items():
            per_repeat = [_metrics(target, repeat, weights, horizons) for repeat in risk]
            mean = pd.concat(per_repeat, keys=range(len(per_repeat))).groupby(level=1).mean()
            values.update({(feature_set, metric): mean[metric] for metric in mean.columns})
        for feature_set in risks:
            if feature_set != "clinical" and "clinical" in risks:
                values[feature_set, f"{main}_gain_over_clinical"] = values[feature_set, main] - values["clinical", main]
        return pd.DataFrame(values)

    return statistic


def performance_table(target, risks: dict[str, np.ndarray], *, horizons, n_bootstrap: int, seed: int,
                      threads: int = 1) -> pd.DataFrame:  # fmt: skip
    """Metrics with patient-bootstrap 95% intervals (scored in ``threads``): feature_set, metric, estimate,
    ci_low, ci_high, n, n_events. From :data:`LARGE_COHORT` patients on, normal intervals from
    :data:`LARGE_COHORT_RESAMPLES` resamples (see there)."""

    statistic = performance_statistic(target, risks, horizons)
    n = len(target)
    estimate = statistic(np.ones((1, n))).iloc[0].rename("estimate")
    intervals = bootstrap_intervals(statistic, n, n_bootstrap=interval_resamples(n, n_bootstrap), seed=seed,
                                    threads=threads, estimate=estimate if n >= LARGE_COHORT else None)  # fmt: skip
    table = pd.concat([estimate, intervals], axis=1).rename_axis(["feature_set", "metric"]).reset_index()
    events = target["event"] if _is_survival(target) else target
    return table.assign(n=n, n_events=int(events.sum()))


def calibration_bins(target: np.ndarray, risk: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Observed frequency of the outcome in tenths of predicted risk (Wilson 95% CI) against their
    mean predicted risk."""
    from statsmodels.stats.proportion import proportion_confint

    bins = pd.qcut(pd.Series(risk).rank(method="first"), n_bins, labels=False).to_numpy()
    table = pd.DataFrame({"x": risk, "y": target}).groupby(bins).agg(
        x=("x", "mean"), y=("y", "mean"), n=("y", "size"), events=("y", "sum"))  # fmt: skip
    low, high = proportion_confint(table["events"], table["n"], method="wilson")
    return table.drop(columns="events").assign(curve="calibration", ci_low=low, ci_high=high)


def calibration_smooth(target: np.ndarray, risk: np.ndarray, *, seed: int, n_bootstrap: int = SMOOTH_BOOTSTRAP):
    """Lowess of the outcome on predicted risk (span 2/3, no robustness iterations, as in rms'
    ``val.prob``) between the 1st and 99th percentiles of risk, with a patient-bootstrap 95% band
    (from :data:`LARGE_COHORT` patients on, a normal band from :data:`LARGE_COHORT_RESAMPLES` resamples)."""
    from statsmodels.nonparametric.smoothers_lowess import lowess

    grid = np.linspace(*np.quantile(risk, [0.01, 0.99]), SMOOTH_POINTS)

    def smooth(rows: np.ndarray) -> np.ndarray:
        return np.clip(lowess(target[rows], risk[rows], frac=2 / 3, it=0, xvals=grid), 0, 1)

    rng = np.random.default_rng(seed)
    resampled = pd.DataFrame([smooth(rng.integers(0, len(risk), len(risk)))
                              for _ in range(interval_resamples(len(risk), n_bootstrap))])  # fmt: skip
    curve = smooth(np.arange(len(risk)))
    bounds = interval_bounds(resampled, curve if len(risk) >= LARGE_COHORT else None).clip(0, 1)
    return pd.DataFrame({"curve": "calibration_smooth", "x": grid, "y": curve, "ci_low": bounds["ci_low"].to_numpy(),
                         "ci_high": bounds["ci_high"].to_numpy()})  # fmt: skip


def risk_histogram(probability: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
    """Patients per twentieth of predicted probability in each group: n, and y their share of the group."""
    tables = []
    for group in sorted(set(groups)):
        counts = np.histogram(probability[groups == group], RISK_BINS)[0]
        tables.append(pd.DataFrame({"curve": "risk_histogram", "x": (RISK_BINS[1:] + RISK_BINS[:-1]) / 2,
                                    "y": counts / counts.sum(), "n": counts, "group": group}))  # fmt: skip
    return pd.concat(tables, ignore_index=True)


def risk_curves(target: np.ndarray, risk: np.ndarray, thresholds=THRESHOLDS, *, seed: int = 0) -> pd.DataFrame:
    """ROC curve, calibration (tenths of risk and a smoother, with 95% CIs), the risk histogram of
    patients with and without the event, and the decision curve of one binary prediction.

    Returns
    -------
    Long table: curve (roc | calibration | calibration_smooth | risk_histogram | decision), x, y,
    ci_low, ci_high, n (calibration bins and histograms), group (histograms: event or no event).
    """
    from sklearn.metrics import roc_curve


    fpr, tpr, _ = roc_curve(target, risk)
    return pd.concat([
        pd.DataFrame({"curve": "roc", "x": fpr, "y": tpr}),
        calibration_bins(target, risk),
        calibration_smooth(target, risk, seed=seed),
        risk_histogram(risk, np.where(target == 1, "event", "no event")),
        pd.DataFrame({"curve": "decision", "x": thresholds, "y": net_benefit(target, risk, thresholds)}),
    ], ignore_index=True).reindex(columns=CURVE_COLUMNS[:7])  # fmt: skip


def horizon_calibration(time: np.ndarray, event: np.ndarray, probability: np.ndarray, *, horizon: float,
                        n_groups: int = 5) -> pd.DataFrame:  # fmt: skip
    """Calibration of a survival prediction at the horizon: in groups of equal size by predicted
    probability of the event by ``horizon``, the mean predicted probability against the Kaplan-Meier
    observed one (95% CI). A group whose follow-up ends before the horizon has no observed value.

    Returns
    -------
    Rows of curve ``calibration_horizon`` (x predicted, y observed, ci_low, ci_high, n), then the
    risk histogram of all patients (group ``all``).
    """
    from lifelines import KaplanMeierFitter

    groups = pd.qcut(pd.Series(probability).rank(method="first"), n_groups, labels=False).to_numpy()
    rows = []
    for group in range(n_groups):
        members = groups == group
        km = KaplanMeierFitter().fit(time[members], event[members])
        observed = np.full(3, np.nan)
        if time[members].max() >= horizon:
            at_horizon = km.survival_function_.join(km.confidence_interval_).loc[:horizon].iloc[-1].to_numpy()
            observed = 1 - at_horizon[[0, 2, 1]]  # event probability and its CI (bounds swap)
        rows.append([probability[members].mean(), *observed, members.sum()])
    table = pd.DataFrame(rows, columns=["x", "y", "ci_low", "ci_high", "n"]).assign(curve="calibration_horizon")
    return pd.concat([table, risk_histogram(probability, np.full(len(probability), "all"))],
                     ignore_index=True).reindex(columns=CURVE_COLUMNS[:7])  # fmt: skip


def outcome_curves(target, risk: np.ndarray, probability: np.ndarray, *, horizon: float, seed: int) -> pd.DataFrame:
    """The curves of one prediction (:func:`risk_curves` or :func:`horizon_calibration`), on the
    patients with a prediction; survival outcomes get at most 5 groups of at least 50 patients."""
    known = np.isfinite(risk) & np.isfinite(probability)
    target, risk, probability = target[known], risk[known], probability[known]
    if not _is_survival(target):
        return risk_curves(target, risk, seed=seed)
    n_groups = int(np.clip(len(risk) // 50, 1, 5))
    return horizon_calibration(target["time"], target["event"].astype(int), probability, horizon=horizon, n_groups=n_groups)


def treat_all_curve(target: np.ndarray, thresholds=THRESHOLDS) -> pd.DataFrame:
    """Net benefit of treating every patient (the reference line of a decision curve)."""

    return pd.DataFrame({"curve": "decision", "x": thresholds, "y": net_benefit(target, np.ones(len(target)), thresholds)})


@dataclass
class Evaluation:
    """What the evaluation of one outcome produced (tidy tables)."""

    performance: pd.DataFrame
    curves: pd.DataFrame
    predictions: pd.DataFrame
    selection: pd.DataFrame


def evaluate_outcome(predictors: Predictors, obs: pd.DataFrame, outcome: str, *, spec: dict, site: str | None,
                     models=MODELS, feature_sets=tuple(FEATURE_SETS), n_splits: int = 5, n_repeats: int = 5,
                     n_features: int = 50, n_bootstrap: int = 500, horizons=(365,), seed: int = 0,
                     n_jobs: int = 1) -> Evaluation:  # fmt: skip
    """Repeated nested cross-validation and leave-one-site-out validation of every model and feature set.

    Parameters
    ----------
    predictors, obs
        Candidate predictors and the clinical table (outcomes, site) of the same patients.
    outcome, spec
        Outcome name and its config entry (``type`` binary or survival).
    site
        Column of the sites for leave-one-site-out validation, or None.
    n_splits, n_repeats, n_features, n_bootstrap, horizons, seed, n_jobs
        Outer folds and repeats, biomarkers kept by screening, bootstrap resamples of the intervals,
        horizons (days) of the time-dependent AUC, seed, parallel jobs.

    Returns
    -------
    The performance (``validation`` = nested_cv or the held-out site, or loso_pooled), the curves
    (:func:`outcome_curves`; survival: calibration at the first horizon), the out-of-fold risks and
    probabilities of the event (nested CV, mean over repeats) and how often each predictor was used.
    """
    target, known = outcome_target(obs, outcome, spec)
    dropped = int((~known).sum())
    if dropped:
        log.info("predict %s: %d patients without a known outcome are not used", outcome, dropped)
    patients = obs.index[known]
    table = predictors.table.loc[patients]
    if site and obs.loc[patients, site].nunique() < 2:
        log.warning("predict %s: one site (%s), no leave-one-site-out validation", outcome, site)
        site = None
    sites = obs.loc[patients, site].astype(str).to_numpy() if site else None
    largest_training = max(len(patients) * (n_splits - 1) // n_splits,
                           len(patients) - (np.unique(sites, return_counts=True)[1].min() if site else len(patients)))  # fmt: skip
    if "elastic_net" in models and largest_training > SEARCH_PATIENTS:
        log.info("predict %s: training sets of up to %d patients: the elastic nets choose their penalty on %d of "
                 "them where there are more (inner cross-validation on a stratified subsample), then refit on all",
                 outcome, largest_training, SEARCH_PATIENTS)  # fmt: skip
    performance, curves, predictions, selection = [], [], [], []
    started, steps = time.perf_counter(), [(model, feature_set) for model in models for feature_set in feature_sets]
    for model in models:
        cv_risk, held_out = {}, {}
        for feature_set in feature_sets:
            step = steps.index((model, feature_set)) + 1
            log.info("predict %s: %s on %s (%d of %d): %d folds x %d repeats%s; %.0f s so far", outcome, model,
                     feature_set, step, len(steps), n_splits, n_repeats, ", then each site held out" if site else "",
                     time.perf_counter() - started)  # fmt: skip
            columns = predictors.columns(feature_set)
            X, screened = table[columns].to_numpy(float), (predictors.block[columns] == "omics").to_numpy()
            options = dict(model=model, screened=screened, n_features=n_features, seed=seed, n_jobs=n_jobs,
                           horizon=horizons[0], label=f"{outcome}, {model}, {feature_set}")  # fmt: skip
            risk, probability, used = cross_validated_risk(X, target, n_splits=n_splits, n_repeats=n_repeats, **options)
            cv_risk[feature_set] = risk
            selection.append(pd.DataFrame({"model": model, "feature_set": feature_set, "predictor": columns,
                                           "selection_frequency": used}))  # fmt: skip
            mean_risk, mean_probability = risk.mean(axis=0), probability.mean(axis=0)
            _warn_constant(mean_risk, options["label"])
            predictions.append(pd.DataFrame({"patient_id": patients, "model": model, "feature_set": feature_set,
                                             "validation": "nested_cv", "risk": mean_risk,
                                             "event_probability": mean_probability}))  # fmt: skip
            curves.append(outcome_curves(target, mean_risk, mean_probability, horizon=horizons[0], seed=seed).assign(
                model=model, feature_set=feature_set))  # fmt: skip
            if site:
                held_out[feature_set], held_out_probability = site_held_out_risk(X, target, sites, **options)
                predictions.append(predictions[-1].assign(validation="leave_one_site_out", risk=held_out[feature_set],
                                                          event_probability=held_out_probability))  # fmt: skip
        options = dict(horizons=horizons, n_bootstrap=n_bootstrap, seed=seed, threads=n_jobs)
        if len(patients) >= LARGE_COHORT:
            log.info("predict %s: %s: %d patients: normal 95%% intervals from %d bootstrap resamples of the metrics "
                     "(percentile intervals from %d below %d patients)", outcome, model, len(patients),
                     interval_resamples(len(patients), n_bootstrap), n_bootstrap, LARGE_COHORT)  # fmt: skip
        else:
            log.info("predict %s: %s: %d bootstrap resamples of the metrics", outcome, model, n_bootstrap)
        performance.append(performance_table(target, cv_risk, **options).assign(model=model, validation="nested_cv"))
        if site:
            performance += _site_performance(target, held_out, sites, model, options)
    if not _is_survival(target):
        curves.append(treat_all_curve(target).assign(model="reference", feature_set="treat_all"))
    columns = ["model", "feature_set", "validation", "metric", "estimate", "ci_low", "ci_high", "n", "n_events"]
    return Evaluation(
        performance=pd.concat(performance, ignore_index=True)[columns].assign(outcome=outcome),
        curves=pd.concat(curves, ignore_index=True).assign(outcome=outcome)[CURVE_COLUMNS],
        predictions=pd.concat(predictions, ignore_index=True).assign(outcome=outcome),
        selection=pd.concat(selection, ignore_index=True).assign(outcome=outcome),
    )


def _warn_constant(risk: np.ndarray, label: str) -> None:
    """Warn when cross-validated predictions do not vary: the model learnt nothing from its predictors."""
    finite = risk[np.isfinite(risk)]
    if len(finite) and np.ptp(finite) <= 1e-12 * max(1.0, np.abs(finite).max()):
        log.warning("predict %s: the model predicts the same risk for every patient (nothing learnt from the "
                    "predictors); its metrics are those of a constant", label)  # fmt: skip


def _site_performance(target, held_out: dict[str, np.ndarray], sites: np.ndarray, model: str, options: dict) -> list:
    """Performance on each held-out site, and on all held-out predictions together."""
    tables = []
    for site in [*np.unique(sites), None]:
        members = np.ones(len(sites), bool) if site is None else sites == site
        risks = {feature_set: risk[members][None, :] for feature_set, risk in held_out.items()}
        table = performance_table(target[members], risks, **options)
        tables.append(table.assign(model=model, validation="loso_pooled" if site is None else f"loso_{site}"))
    return tables


@dataclass
class Signature:
    """A prediction model refitted on every patient, ready for new patients."""

    outcome: str
    spec: dict
    feature_set: str
    columns: list[str]
    pipeline: object
    horizon: float


@dataclass
class Signatures:
    """The signature of each outcome, with what is needed to encode new patients alike."""

    signatures: dict[str, Signature]
    clinical: list[str]
    assays: list[str]
    categories: dict
    uses_subgroup: bool
    versions: dict


def fit_signatures(mdata, outcomes: dict, *, clinical: list[str], assays: list[str], feature_set: str = "all",
                   evaluations=(), n_features: int = 50, horizon: float = 365, seed: int = 0):  # fmt: skip
    """Refit the elastic-net model of each outcome on every patient with the outcome.

    Parameters
    ----------
    mdata
        The cohort (with ``obs["subgroup"]`` when the feature set uses it).
    outcomes
        Outcome name -> config entry (binary or survival).
    clinical, assays, feature_set, n_features, seed
        As in :func:`evaluate_outcome`.
    evaluations
        Evaluations of the same outcomes, for the selection frequency of each term in the outer folds.
    horizon
        Days at which the risk of a survival outcome is given for new patients.

    Returns
    -------
    (signatures, table): the fitted :class:`Signatures` and one row per term with a non-zero
    coefficient (per SD of the predictor), its odds or hazard ratio and selection frequency.
    """
    from importlib.metadata import version

    uses_subgroup = "subgroup" in FEATURE_SETS[feature_set]
    predictors = build_predictors(mdata, clinical=clinical, assays=assays, subgroup="subgroup" if uses_subgroup else None)
    columns = predictors.columns(feature_set)
    screened = (predictors.block[columns] == "omics").to_numpy()
    selection = pd.concat([e.selection for e in evaluations]) if evaluations else pd.DataFrame(
        columns=["outcome", "model", "feature_set", "predictor", "selection_frequency"])  # fmt: skip
    fitted, tables = {}, []
    for outcome, spec in outcomes.items():
        target, known = outcome_target(mdata.obs, outcome, spec)
        survival = _is_survival(target)
        pipeline = make_pipeline("elastic_net", screened, survival=survival, n_features=n_features,
                                 n_train=int(known.sum()), seed=seed)
        X = predictors.table.loc[known, columns].to_numpy(float)
        try:
            fit_quietly(pipeline, X, target, check=_finite_risk_check(outcome, spec, X, horizon))
        except FIT_ERRORS as err:
            log.warning("predict %s: no signature, the elastic net cannot be fitted on these %d patients at any "
                        "penalty (%s)", outcome, int(known.sum()), str(err)[:200])  # fmt: skip
            continue
        fitted[outcome] = Signature(outcome, spec, feature_set, columns, without_search(pipeline), horizon)
        frequency = selection.query("outcome == @outcome and model == 'elastic_net' and feature_set == @feature_set")
        tables.append(_signature_table(pipeline, columns, predictors.block, survival=survival).assign(outcome=outcome).merge(
            frequency[["predictor", "selection_frequency"]].rename(columns={"predictor": "term"}), on="term", how="left"))
    versions = {name: version(name) for name in ("stratomics", "scikit-learn", "scikit-survival", "numpy")}
    signatures = Signatures(fitted, clinical, assays, predictors.categories, uses_subgroup, versions)
    columns = ["outcome", "term", "block", "coefficient", "ratio", "ratio_type", "selection_frequency"]
    table = (pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)).assign(
        feature_set=feature_set, model="elastic_net")  # fmt: skip
    return signatures, table[["outcome", "feature_set", "model", "term", "block", "coefficient", "ratio", "ratio_type",
                              "selection_frequency"]]  # fmt: skip


def _finite_risk_check(outcome: str, spec: dict, X: np.ndarray, horizon: float):
    """A check for :func:`fit_quietly`: the signature's risks of its training patients are all finite."""

    def check(pipeline):
        with np.errstate(over="ignore", invalid="ignore"):
            risk = _risk(Signature(outcome, spec, "", [], without_search(pipeline), horizon), X)
        if not np.isfinite(risk).all():
            raise FloatingPointError(f"{int((~np.isfinite(risk)).sum())} of {len(risk)} risks are not finite")

    return check


def _signature_table(pipeline, columns: list[str], block: pd.Series, *, survival: bool) -> pd.DataFrame:
    """Non-zero coefficients of a fitted elastic-net pipeline, largest first, after the intercept."""
    screen, model = screened_model(pipeline)
    table = pd.DataFrame({"term": np.asarray(columns)[screen.support_], "coefficient": np.ravel(model.coef_)})
    table = table[table["coefficient"] != 0].sort_values("coefficient", key=np.abs, ascending=False, kind="stable")
    if not survival:
        intercept = pd.DataFrame({"term": ["intercept"], "coefficient": [float(model.intercept_[0])]})
        table = pd.concat([intercept, table], ignore_index=True)
    return table.assign(block=table["term"].map(block).fillna("intercept"), ratio=np.exp(table["coefficient"]),
                        ratio_type="hazard ratio per SD" if survival else "odds ratio per SD")  # fmt: skip


def predict_patients(signatures: Signatures, mdata, subgroup_model=None) -> pd.DataFrame:
    """Risk of each outcome for the patients of a (preprocessed) cohort.

    Parameters
    ----------
    signatures
        From :func:`fit_signatures`.
    mdata
        The new patients; missing assays and values are imputed as in training.
    subgroup_model
        Saved subgroup model, to place the patients when the signature uses subgroups and
        ``mdata.obs`` has none.

    Returns
    -------
    One row per patient: patient_id and ``risk_<outcome>``, the probability of the binary outcome or of
    the survival event within the signature's horizon.
    """
    if signatures.uses_subgroup and "subgroup" not in mdata.obs:
        if subgroup_model is None:
            raise StratomicsInputError("predict: the signature uses the subgroups; give the subgroup model "
                                       "(--subgroups results/stratify/model.zip) to place the new patients.")  # fmt: skip
        from stratomics.subgroups import assign_patients

        mdata.obs["subgroup"] = assign_patients(subgroup_model, mdata).set_index("patient_id")["subgroup"]
    missing = [assay for assay in signatures.assays if assay not in mdata.mod]
    if missing:
        log.warning("predict: the cohort has no %s; those features are imputed for every patient", ", ".join(missing))
    present = [assay for assay in signatures.assays if assay in mdata.mod]
    predictors = build_predictors(mdata, clinical=signatures.clinical, assays=present,
                                  subgroup="subgroup" if signatures.uses_subgroup else None,
                                  categories=signatures.categories)  # fmt: skip
    table = pd.DataFrame({"patient_id": mdata.obs_names})
    for outcome, signature in signatures.signatures.items():
        absent = {f"has_{assay}": 0.0 for assay in missing}
        X = predictors.table.reindex(columns=signature.columns).fillna(absent).to_numpy(float)
        table[f"risk_{outcome}"] = _risk(signature, X)
    return table


def _risk(signature: Signature, X: np.ndarray) -> np.ndarray:
    """Probability of the binary outcome, or of the survival event by the horizon."""
    if not outcome_type(signature.spec).time_to_event:
        return signature.pipeline.predict_proba(X)[:, 1]
    return event_probability(signature.pipeline, X, signature.horizon)

"""Performance measures of risk predictions, and patient-bootstrap confidence intervals.

Binary outcomes: AUC, Brier score, calibration intercept (calibration-in-the-large: logistic model
of the outcome with the predicted log-odds as offset) and calibration slope (logistic model of the
outcome on the predicted log-odds), decision-curve net benefit. Survival outcomes: Harrell's
C-index and the cumulative/dynamic time-dependent AUC (Uno's inverse-probability-of-censoring
weights, scikit-survival).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

EPSILON = 1e-6


def auc(y: np.ndarray, risk: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half)."""
    ranks = stats.rankdata(risk)
    n_cases = y.sum()
    n_controls = len(y) - n_cases
    if n_cases == 0 or n_controls == 0:
        return np.nan
    return (ranks[y == 1].sum() - n_cases * (n_cases + 1) / 2) / (n_cases * n_controls)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPSILON, 1 - EPSILON)
    return np.log(p / (1 - p))


def calibration(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration intercept (with the log-odds as offset) and slope (on the log-odds)."""
    from stratomics.associate.predictor import logistic_fit

    log_odds = _logit(p)
    ones = np.ones((len(y), 1))
    intercept = logistic_fit(y, ones, offset=log_odds)[0]
    slope = logistic_fit(y, np.column_stack([ones, log_odds]))[1]
    return intercept, slope


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, Brier score, calibration intercept and slope of predicted probabilities (NaN without patients)."""
    if len(y) == 0:
        return {"auc": np.nan, "brier": np.nan, "calibration_intercept": np.nan, "calibration_slope": np.nan}
    intercept, slope = calibration(y, p)
    return {"auc": auc(y, p), "brier": float(np.mean((p - y) ** 2)), "calibration_intercept": intercept,
            "calibration_slope": slope}  # fmt: skip


def survival_metrics(time: np.ndarray, event: np.ndarray, risk: np.ndarray, *, horizons) -> dict[str, float]:
    """Harrell's C-index and the time-dependent AUC at each horizon (days) inside the follow-up."""
    from lifelines.utils import concordance_index
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    metrics = {"c_index": np.nan, **{f"auc_{horizon:g}d": np.nan for horizon in horizons}}
    if not event.any():  # no comparable pair (e.g. no event in a small resample or site)
        return metrics
    try:
        metrics["c_index"] = concordance_index(time, -risk, event)
    except ZeroDivisionError:  # events only after the last censoring: still no comparable pair
        return metrics
    outcome = Surv.from_arrays(event.astype(bool), time)
    for horizon in horizons:
        if time[event.astype(bool)].min() < horizon < time.max():
            try:
                metrics[f"auc_{horizon:g}d"] = cumulative_dynamic_auc(outcome, outcome, risk, [horizon])[0][0]
            except ValueError:  # nobody left uncensored at the horizon in this (resampled) cohort
                pass
    return metrics


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Net benefit of treating patients with risk >= threshold: TP/n - FP/n * t / (1 - t)."""
    treated = p[None, :] >= thresholds[:, None]
    true_positive = (treated & (y == 1)).sum(axis=1) / len(y)
    false_positive = (treated & (y == 0)).sum(axis=1) / len(y)
    return true_positive - false_positive * thresholds / (1 - thresholds)


def bootstrap_intervals(statistic, n_patients: int, *, n_bootstrap: int, seed: int) -> pd.DataFrame:
    """Percentile 95% intervals of a statistic of resampled patients.

    Parameters
    ----------
    statistic
        Function of an index array of patients, returning a dict of named numbers.
    n_patients, n_bootstrap, seed
        Patients to resample with replacement, resamples, random seed.

    Returns
    -------
    One row per name: ci_low, ci_high (NaN-robust over resamples).
    """
    rng = np.random.default_rng(seed)
    draws = pd.DataFrame([statistic(rng.integers(0, n_patients, n_patients)) for _ in range(n_bootstrap)])
    return pd.DataFrame({"ci_low": draws.quantile(0.025), "ci_high": draws.quantile(0.975)})

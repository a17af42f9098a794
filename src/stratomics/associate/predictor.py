"""Models with each feature as a predictor of one outcome: linear, logistic and Cox, batched.

For every feature j the model is outcome ~ feature_j + covariates, fitted on the patients where
feature_j is observed. The normal equations (and Newton steps) of all features are formed together
from matrix products over the observed-value mask, so no Python loop runs over features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from stratomics.associate.linear import _invert


@dataclass
class PredictorFit:
    """Per-feature fits of outcome ~ feature + covariates; the feature's coefficient comes first.

    Attributes
    ----------
    coef
        Features x (1 + covariates) coefficients.
    covariance
        Features x p x p covariance of the coefficients.
    n, n_events
        Patients (and events or cases) used per feature.
    converged
        Whether the fit converged.
    note
        Why a feature has no estimate ("" when it has one).
    """

    coef: np.ndarray
    covariance: np.ndarray
    n: np.ndarray
    n_events: np.ndarray
    converged: np.ndarray
    note: np.ndarray

    def table(self, features, *, distribution: str = "normal", df=None) -> pd.DataFrame:
        """Estimate, standard error, Wald statistic and p-value of the feature coefficient."""
        estimate = self.coef[:, 0]
        std_error = np.sqrt(self.covariance[:, 0, 0])
        statistic = estimate / std_error
        if distribution == "t":
            p_value = 2 * stats.t.sf(np.abs(statistic), df)
            critical = stats.t.ppf(0.975, df)
        else:
            p_value = 2 * stats.norm.sf(np.abs(statistic))
            critical = stats.norm.ppf(0.975)
        return pd.DataFrame(
            {"estimate": estimate, "std_error": std_error,
             "ci_low": estimate - critical * std_error, "ci_high": estimate + critical * std_error,
             "statistic": statistic, "p_value": p_value, "n": self.n, "n_events": self.n_events,
             "converged": self.converged, "note": self.note},
            index=pd.Index(features),
        )  # fmt: skip


def _blocks(weights: np.ndarray, features: np.ndarray, covariates: np.ndarray) -> np.ndarray:
    """X'WX of every feature's design [feature, covariates]: features x p x p."""
    n, q = covariates.shape
    m = features.shape[1]
    gram = np.empty((m, q + 1, q + 1))
    gram[:, 0, 0] = (weights * features**2).sum(axis=0)
    cross = (weights * features).T @ covariates
    gram[:, 0, 1:], gram[:, 1:, 0] = cross, cross
    outer = (covariates[:, :, None] * covariates[:, None, :]).reshape(n, q * q)
    gram[:, 1:, 1:] = (weights.T @ outer).reshape(m, q, q)
    return gram


def _cross(vector: np.ndarray, features: np.ndarray, covariates: np.ndarray) -> np.ndarray:
    """X'v of every feature's design for per-feature vectors v (patients x features)."""
    return np.column_stack([(vector * features).sum(axis=0), *(vector.T @ covariates).T])


def fit_linear_predictor(y: np.ndarray, features: np.ndarray, covariates: np.ndarray) -> PredictorFit:
    """Least squares of y on [feature_j, covariates] for every feature j.

    Parameters
    ----------
    y
        Outcome per patient (no missing values).
    features
        Patients x features, NaN where missing.
    covariates
        Patients x q covariates, intercept included (no missing values).

    Returns
    -------
    The fits; ``table(..., distribution="t", df=n - p)`` gives t-tests.
    """
    observed = np.isfinite(features)
    weights = observed.astype(float)
    values = np.where(observed, features, 0.0)
    inverse, usable = _invert(_blocks(weights, values, covariates))
    beta = np.einsum("jkl,jl->jk", inverse, _cross(weights * y[:, None], values, covariates))
    fitted = values * beta[:, 0] + covariates @ beta[:, 1:].T
    n = observed.sum(axis=0)
    df = n - beta.shape[1]
    rss = (weights * (y[:, None] - fitted) ** 2).sum(axis=0)
    usable &= df > 0
    sigma2 = np.where(usable, rss / np.maximum(df, 1), np.nan)
    return _result(beta, inverse * sigma2[:, None, None], usable, n, np.zeros_like(n), np.ones_like(usable))


def fit_logistic_predictor(
    y: np.ndarray, features: np.ndarray, covariates: np.ndarray, *, max_iter: int = 50, tol: float = 1e-10
) -> PredictorFit:
    """Logistic regression of a 0/1 outcome on [feature_j, covariates] for every feature j (Newton).

    Features whose fit does not converge, or whose fitted probabilities reach 0 or 1 (complete or
    quasi-complete separation), get no estimate and a note saying why.

    Returns
    -------
    The fits (Wald z-tests).
    """
    observed = np.isfinite(features)
    mask = observed.astype(float)
    values = np.where(observed, features, 0.0)
    m, p = values.shape[1], covariates.shape[1] + 1
    beta = np.zeros((m, p))
    active = np.ones(m, dtype=bool)
    converged = np.zeros(m, dtype=bool)
    for _ in range(max_iter):
        if not active.any():
            break
        cols = np.flatnonzero(active)
        eta = values[:, cols] * beta[cols, 0] + covariates @ beta[cols, 1:].T
        mu = 1 / (1 + np.exp(-eta))
        weight = mask[:, cols] * mu * (1 - mu)
        gradient = _cross(mask[:, cols] * (y[:, None] - mu), values[:, cols], covariates)
        inverse, usable = _invert(_blocks(weight, values[:, cols], covariates))
        step = np.einsum("jkl,jl->jk", np.nan_to_num(inverse), gradient)
        beta[cols] += np.where(usable[:, None], step, 0.0)
        done = np.abs(step).max(axis=1) < tol * (1 + np.abs(beta[cols]).max(axis=1))
        converged[cols[done & usable]] = True
        active[cols[done | ~usable]] = False
    eta = values * beta[:, 0] + covariates @ beta[:, 1:].T
    mu = 1 / (1 + np.exp(-eta))
    separated = (observed & ((mu < 1e-8) | (mu > 1 - 1e-8))).any(axis=0) | (np.abs(beta) > 30).any(axis=1)
    inverse, usable = _invert(_blocks(mask * mu * (1 - mu), values, covariates))
    n = observed.sum(axis=0)
    cases = (observed * y[:, None]).sum(axis=0)
    note = np.where(separated, "complete or quasi-complete separation",
                    np.where(~converged, "did not converge", ""))  # fmt: skip
    return _result(beta, inverse, usable & converged & ~separated, n, cases, converged, note)


def _result(beta, covariance, usable, n, events, converged, note=None) -> PredictorFit:
    """A PredictorFit with NaN estimates where a fit is unusable."""
    note = np.where(usable, "", "design not estimable on the observed patients") if note is None else note
    note = np.where(usable | (note != ""), note, "design not estimable on the observed patients")
    return PredictorFit(
        coef=np.where(usable[:, None], beta, np.nan),
        covariance=np.where(usable[:, None, None], covariance, np.nan),
        n=n, n_events=events, converged=converged, note=note,
    )  # fmt: skip

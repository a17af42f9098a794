"""Models with each feature as a predictor of one outcome: linear, logistic and Cox, batched.

For every feature j the model is outcome ~ feature_j + covariates, fitted on the patients where
feature_j is observed. The normal equations (and Newton steps) of all features are formed together
from matrix products over the observed-value mask, so no Python loop runs over features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

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
    return np.column_stack([(vector * features).sum(axis=0), vector.T @ covariates])


#: Features fitted together; small enough for the working arrays to stay in cache.
CHUNK_FEATURES = 256


def in_chunks(fit, features: np.ndarray, *args, size: int = CHUNK_FEATURES, **kwargs) -> PredictorFit:
    """Apply ``fit(features_chunk, *args, **kwargs)`` to chunks of features and join the fits."""
    fits = [fit(features[:, start : start + size], *args, **kwargs) for start in range(0, features.shape[1], size)]
    return PredictorFit(*(np.concatenate([getattr(f, name) for f in fits]) for name in PredictorFit.__dataclass_fields__))


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
    return in_chunks(_fit_linear_chunk, features, y, covariates)


def _fit_linear_chunk(features, y, covariates) -> PredictorFit:
    """:func:`fit_linear_predictor` on one chunk of features."""
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

    Every fit starts from the covariates-only model (feature coefficient 0), a few Newton steps
    from the answer. Features whose fit does not converge, or whose fitted probabilities reach 0 or
    1 (complete or quasi-complete separation), get no estimate and a note saying why.

    Returns
    -------
    The fits (Wald z-tests).
    """
    start = logistic_fit(y, covariates, max_iter=max_iter)
    return in_chunks(_fit_logistic_chunk, features, y, covariates, start, max_iter=max_iter, tol=tol)


def _fit_logistic_chunk(features, y, covariates, start, *, max_iter, tol) -> PredictorFit:
    """:func:`fit_logistic_predictor` on one chunk of features."""
    observed = np.isfinite(features)
    complete = observed.all()
    values = features if complete else np.where(observed, features, 0.0)
    m, p = values.shape[1], covariates.shape[1] + 1
    beta = np.tile(np.concatenate([[0.0], start]), (m, 1))
    covariance = np.full((m, p, p), np.nan)
    usable = np.zeros(m, dtype=bool)
    converged = np.zeros(m, dtype=bool)
    extreme = np.zeros(m, dtype=bool)
    active = np.arange(m)
    for _ in range(max_iter):
        if not len(active):
            break
        feature = values[:, active]
        mu = special.expit(feature * beta[active, 0] + covariates @ beta[active, 1:].T)
        weight, residual = mu * (1 - mu), y[:, None] - mu
        if not complete:
            weight *= observed[:, active]
            residual *= observed[:, active]
        inverse, ok = _invert(_blocks(weight, feature, covariates))
        step = np.einsum("jkl,jl->jk", np.nan_to_num(inverse), _cross(residual, feature, covariates))
        beta[active] += np.where(ok[:, None], step, 0.0)
        # the information matrix of a step below tol serves as the covariance
        done = np.abs(step).max(axis=1) < tol * (1 + np.abs(beta[active]).max(axis=1))
        finished = done | ~ok
        covariance[active[finished]], usable[active[finished]] = inverse[finished], ok[finished]
        converged[active[done & ok]] = True
        extreme[active] |= (weight < 1e-10).any(axis=0) if complete else ((weight < 1e-10) & observed[:, active]).any(axis=0)
        active = active[~finished]
    separated = extreme | (np.abs(beta) > 30).any(axis=1)
    n = observed.sum(axis=0)
    cases = (observed * y[:, None]).sum(axis=0)
    note = np.where(separated, "complete or quasi-complete separation",
                    np.where(~converged, "did not converge", ""))  # fmt: skip
    return _result(beta, covariance, usable & converged & ~separated, n, cases, converged, note)


def logistic_fit(y: np.ndarray, design: np.ndarray, *, offset: np.ndarray | None = None, max_iter: int = 50) -> np.ndarray:
    """Maximum-likelihood coefficients of one logistic model (Newton), with an optional offset."""
    offset = np.zeros(len(y)) if offset is None else offset
    beta = np.zeros(design.shape[1])
    for _ in range(max_iter):
        mu = special.expit(offset + design @ beta)
        step = np.linalg.lstsq((design * (mu * (1 - mu))[:, None]).T @ design,
                               design.T @ (y - mu), rcond=None)[0]  # fmt: skip
        beta += step
        if np.abs(step).max() < 1e-12 * (1 + np.abs(beta).max()):
            break
    return beta


def _result(beta, covariance, usable, n, events, converged, note=None) -> PredictorFit:
    """A PredictorFit with NaN estimates where a fit is unusable."""
    note = np.full(len(usable), "") if note is None else note
    note = np.where(usable | (note != ""), note, "design not estimable on the observed patients")
    return PredictorFit(
        coef=np.where(usable[:, None], beta, np.nan),
        covariance=np.where(usable[:, None, None], covariance, np.nan),
        n=n, n_events=events, converged=converged, note=note,
    )  # fmt: skip

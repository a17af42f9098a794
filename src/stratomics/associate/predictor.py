"""Models with each feature as a predictor of one outcome: linear, logistic and Cox, batched.

For every feature j the model is outcome ~ feature_j + covariates, fitted on the patients where
feature_j is observed. No Python loop runs over features: the normal equations (linear) and
Newton steps (Cox) of a chunk of features are formed together from matrix products over the
observed-value mask, and the logistic fits run in the compiled loops of :mod:`.newton`. Chunks of
features are shared out to threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats
from threadpoolctl import threadpool_limits

from stratomics.associate import newton
from stratomics.associate.linear import SINGULAR_TOLERANCE, invert_stack
from stratomics.associate.moments import available_threads, float_values, masked_moments, outer_rows


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


def weighted_gram(weights: np.ndarray, features: np.ndarray, covariates: np.ndarray) -> np.ndarray:
    """X'WX of every feature's design [feature, covariates]: features x p x p."""
    q = covariates.shape[1]
    m = features.shape[1]
    gram = np.empty((m, q + 1, q + 1))
    gram[:, 0, 0] = (weights * features**2).sum(axis=0)
    cross = (weights * features).T @ covariates
    gram[:, 0, 1:], gram[:, 1:, 0] = cross, cross
    gram[:, 1:, 1:] = (weights.T @ outer_rows(covariates)).reshape(m, q, q)
    return gram


def feature_cross(vector: np.ndarray, features: np.ndarray, covariates: np.ndarray) -> np.ndarray:
    """X'v of every feature's design for per-feature vectors v (patients x features)."""
    return np.column_stack([(vector * features).sum(axis=0), vector.T @ covariates])


NOT_ESTIMABLE = "design not estimable on the observed patients"

#: Features fitted together; small enough for the working arrays to stay in cache.
CHUNK_FEATURES = 256


def in_chunks(fit, features: np.ndarray, *args, size: int = CHUNK_FEATURES, threads: int | None = None, **kwargs) -> PredictorFit:
    """Apply ``fit(features_chunk, *args, **kwargs)`` to chunks of features and join the fits.

    The chunks are shared out in contiguous runs to ``threads`` worker threads, each with
    single-threaded BLAS, so a chunk's result does not depend on the thread count.
    """
    starts = np.arange(0, features.shape[1], size)
    shares = [share for share in np.array_split(starts, threads or available_threads()) if len(share)]

    def run(share):
        return [fit(features[:, start : start + size], *args, **kwargs) for start in share]

    with threadpool_limits(1), ThreadPoolExecutor(max(len(shares), 1)) as pool:
        fits = [fit for part in pool.map(run, shares) for fit in part]
    if not fits:
        return fit(features, *args, **kwargs)
    return PredictorFit(*(np.concatenate([getattr(f, name) for f in fits]) for name in PredictorFit.__dataclass_fields__))


def fit_linear_predictor(y: np.ndarray, features: np.ndarray, covariates: np.ndarray, *, threads: int | None = None) -> PredictorFit:
    """Least squares of y on [feature_j, covariates] for every feature j.

    One pass over the features (:func:`masked_moments` of [covariates, y]) gives every sum: a feature's
    sums over its observed patients are the complete-data sums less those over its missing patients.
    Features missing in more than half of the patients, or whose residual sum of squares cancels, are
    fitted from their observed rows directly.

    Parameters
    ----------
    y
        Outcome per patient (no missing values).
    features
        Patients x features, NaN where missing (float32 dosages are read as they are).
    covariates
        Patients x q covariates, intercept included (no missing values).
    threads
        Worker threads (default :func:`available_threads`); the results do not depend on it.

    Returns
    -------
    The fits; ``table(..., distribution="t", df=n - p)`` gives t-tests.
    """
    features = float_values(features)
    n, q = covariates.shape
    design = np.column_stack([covariates, y]).astype(float)
    xty, yty, n_missing, missing_gram = masked_moments(features, design, threads=threads)
    sums = (design.T @ design)[None] - missing_gram.reshape(-1, q + 1, q + 1)  # [C y]'[C y] over observed rows
    gram = np.empty((len(yty), q + 1, q + 1))
    gram[:, 0, 0] = yty
    gram[:, 0, 1:], gram[:, 1:, 0] = xty[:, :q], xty[:, :q]
    gram[:, 1:, 1:] = sums[:, :q, :q]
    cross = np.column_stack([xty[:, q], sums[:, :q, q]])
    inverse, usable = invert_stack(gram)
    beta = np.einsum("jkl,jl->jk", inverse, cross)
    rss = sums[:, q, q] - np.einsum("jk,jk->j", beta, cross)
    used = n - n_missing
    df = used - (q + 1)
    usable &= df > 0
    sigma2 = np.where(usable, rss / np.maximum(df, 1), np.nan)
    fit = predictor_fit(beta, inverse * sigma2[:, None, None], usable, n=used, events=np.zeros_like(used),
                        converged=np.ones_like(usable))  # fmt: skip
    direct = np.flatnonzero((n_missing > n / 2) | ~(rss > 1e-6 * sums[:, q, q]))
    if len(direct):
        refit = in_chunks(_fit_linear_chunk, features[:, direct], y, covariates, threads=threads)
        for name in PredictorFit.__dataclass_fields__:
            getattr(fit, name)[direct] = getattr(refit, name)
    return fit


def _fit_linear_chunk(features, y, covariates) -> PredictorFit:
    """:func:`fit_linear_predictor` on one chunk of features from its observed rows (normal equations over the mask)."""
    observed = np.isfinite(features)
    weights = observed.astype(float)
    values = np.where(observed, features, 0.0)
    inverse, usable = invert_stack(weighted_gram(weights, values, covariates))
    beta = np.einsum("jkl,jl->jk", inverse, feature_cross(weights * y[:, None], values, covariates))
    fitted = values * beta[:, 0] + covariates @ beta[:, 1:].T
    n = observed.sum(axis=0)
    df = n - beta.shape[1]
    rss = (weights * (y[:, None] - fitted) ** 2).sum(axis=0)
    usable &= df > 0
    sigma2 = np.where(usable, rss / np.maximum(df, 1), np.nan)
    return predictor_fit(beta, inverse * sigma2[:, None, None], usable, n=n, events=np.zeros_like(n),
                         converged=np.ones_like(usable))


def fit_logistic_predictor(
    y: np.ndarray,
    features: np.ndarray,
    covariates: np.ndarray,
    *,
    max_iter: int = 50,
    tol: float = 1e-10,
    threads: int | None = None,
) -> PredictorFit:
    """Logistic regression of a 0/1 outcome on [feature_j, covariates] for every feature j (Newton).

    Every fit starts from the covariates-only model (feature coefficient 0), where all features
    share the fitted probabilities, so the first Newton step needs no per-feature exponential.
    Features whose fit does not converge, or whose fitted probabilities reach 0 or 1 (complete or
    quasi-complete separation), get no estimate and a note saying why.

    Parameters
    ----------
    y, features, covariates
        As for :func:`fit_linear_predictor`; ``y`` is 0/1. Feature columns are read in place;
        column-major (Fortran) arrays, as bed-reader returns dosages, read fastest.
    max_iter, tol
        Newton iterations at most; convergence when no coefficient moves by more than
        ``tol * (1 + largest |coefficient|)``.
    threads
        Worker threads (default :func:`available_threads`); the results do not depend on it.

    Returns
    -------
    The fits (Wald z-tests).
    """
    start = logistic_fit(y, covariates, max_iter=max_iter)
    covariates_t = np.ascontiguousarray(covariates.T)
    upper = np.triu_indices(len(covariates_t))
    pairs = covariates_t[upper[0]] * covariates_t[upper[1]]
    return in_chunks(_fit_logistic_chunk, features, y, covariates_t, pairs, start, max_iter=max_iter, tol=tol,
                     threads=threads)  # fmt: skip


def _fit_logistic_chunk(features, y, covariates_t, pairs, start, *, max_iter, tol) -> PredictorFit:
    """:func:`fit_logistic_predictor` on one chunk of features (compiled in :mod:`.newton`).

    ``covariates_t`` is q x patients and ``pairs`` the products of its row pairs (upper triangle).
    """
    m, p = features.shape[1], len(covariates_t) + 1
    coef, covariance = np.empty((m, p)), np.full((m, p, p), np.nan)
    status = np.zeros((m, len(newton.STATUS)), dtype=np.int64)
    features = np.asfortranarray(features, dtype=float)  # one layout, one compiled signature; each feature contiguous
    newton.fit_logistic_features(features, y, covariates_t, pairs, start, max_iter, tol, SINGULAR_TOLERANCE, coef,
                                 covariance, status)  # fmt: skip
    converged, singular, near_bound = status[:, 2:].T.astype(bool)
    separated = near_bound | (np.abs(coef) > 30).any(axis=1)
    note = np.select([separated, singular, ~converged],
                     ["complete or quasi-complete separation", NOT_ESTIMABLE, "did not converge"], "")  # fmt: skip
    return predictor_fit(coef, covariance, converged & ~separated, n=status[:, 0], events=status[:, 1],
                         converged=converged, note=note)


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


def predictor_fit(beta, covariance, usable, *, n, events, converged, note=None) -> PredictorFit:
    """A PredictorFit with NaN estimates where a fit is unusable."""
    note = np.full(len(usable), "") if note is None else note
    note = np.where(usable | (note != ""), note, NOT_ESTIMABLE)
    return PredictorFit(
        coef=np.where(usable[:, None], beta, np.nan),
        covariance=np.where(usable[:, None, None], covariance, np.nan),
        n=n, n_events=events, converged=converged, note=note,
    )  # fmt: skip

"""Models with each feature as a predictor of one outcome: linear, logistic and Cox, batched.

For every feature j the model is outcome ~ feature_j + covariates, fitted on the patients where
feature_j is observed. The normal equations (and Newton steps) of all features are formed together
from matrix products over the observed-value mask, so no Python loop runs over features.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats
from threadpoolctl import threadpool_limits

from stratomics.associate import newton
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


NOT_ESTIMABLE = "design not estimable on the observed patients"

#: Features fitted together; small enough for the working arrays to stay in cache.
CHUNK_FEATURES = 256


def available_threads() -> int:
    """Threads to use: OMP_NUM_THREADS when set (Snakemake sets it to a job's threads), else the CPUs."""
    return int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0)))


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


def _thread_buffers(count: int, size: int) -> np.ndarray:
    """``count`` x ``size`` scratch array kept for the calling thread's next chunks (first-touch
    page faults on fresh arrays would cost as much as the arithmetic)."""
    buffers = getattr(_scratch, "buffers", None)
    if buffers is None or buffers.shape[0] != count or buffers.shape[1] < size:
        buffers = _scratch.buffers = np.empty((count, size))
    return buffers


_scratch = threading.local()


def fit_linear_predictor(y: np.ndarray, features: np.ndarray, covariates: np.ndarray, *, threads: int | None = None) -> PredictorFit:
    """Least squares of y on [feature_j, covariates] for every feature j.

    Parameters
    ----------
    y
        Outcome per patient (no missing values).
    features
        Patients x features, NaN where missing.
    covariates
        Patients x q covariates, intercept included (no missing values).
    threads
        Worker threads (default :func:`available_threads`); the results do not depend on it.

    Returns
    -------
    The fits; ``table(..., distribution="t", df=n - p)`` gives t-tests.
    """
    return in_chunks(_fit_linear_chunk, features, y, covariates, threads=threads)


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
        As for :func:`fit_linear_predictor`; ``y`` is 0/1. The fit works on features x patients
        copies of chunks, made fastest from column-major (Fortran) ``features``.
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
    # about 2 MiB per working array: a chunk's arrays stay in the cache
    size = int(np.clip(2**18 // len(y), 16, CHUNK_FEATURES))
    return in_chunks(_fit_logistic_chunk, features, y, covariates, start, max_iter=max_iter, tol=tol, size=size,
                     threads=threads)  # fmt: skip


def _fit_logistic_chunk(features, y, covariates, start, *, max_iter, tol) -> PredictorFit:
    """:func:`fit_logistic_predictor` on one chunk of features (compiled kernels of :mod:`.newton`).

    The chunk is held features x patients in per-thread scratch space; features leave it once
    their step falls below ``tol`` (or their information matrix is singular).
    """
    (n, m), p = features.shape, covariates.shape[1] + 1
    covariates_t = np.ascontiguousarray(covariates.T)
    upper = np.triu_indices(p - 1)
    pairs_t = covariates_t[upper[0]] * covariates_t[upper[1]]
    scratch = _thread_buffers(3, n * m)
    working, spare = _view(scratch[0], (m, n)), scratch[1]
    np.copyto(working, features.T)  # float32 dosages become float64
    observed = np.isfinite(working)
    coef = np.tile(np.concatenate([[0.0], start])[:, None], (1, m))
    covariance = np.full((m, p, p), np.nan)
    usable, converged, extreme, singular = (np.zeros(m, dtype=bool) for _ in range(4))
    active = np.arange(m)
    for iteration in range(max_iter):
        if iteration == 0:
            score, information, near_bound = _start_sums(working, observed, y, covariates, start, (scratch[2], spare))
        else:
            score, information, near_bound = _newton_sums(working, coef[:, active], y, covariates_t, pairs_t, scratch[2])
        step, inverse, ok = _newton_steps(score, information)
        coef[:, active] += step
        extreme[active] |= near_bound > 0
        # the information matrix of a step below tol serves as the covariance
        done = np.abs(step).max(axis=0) < tol * (1 + np.abs(coef[:, active]).max(axis=0))
        finished = done | ~ok
        covariance[active[finished]], usable[active[finished]] = inverse[finished], ok[finished]
        converged[active[done & ok]] = True
        singular[active[~ok]] = True
        if finished.all():
            break
        if finished.any():
            active, held = active[~finished], working
            working = np.compress(~finished, held, axis=0, out=_view(spare, (len(active), n)))
            spare = held.reshape(-1)
    separated = extreme | (np.abs(coef) > 30).any(axis=0)
    note = np.select([separated, singular, ~converged],
                     ["complete or quasi-complete separation", NOT_ESTIMABLE, "did not converge"], "")  # fmt: skip
    return _result(coef.T, covariance, usable & converged & ~separated, observed.sum(axis=1), observed @ y,
                   converged, note)  # fmt: skip


def _start_sums(values, observed, y, covariates, start, buffers):
    """Score, information (upper triangle) and near-0/1 count of every feature at the start.

    With the feature coefficient at 0, every feature shares the covariates-only fit's
    probabilities: no per-feature exponential is needed, the feature's sums are products with
    shared vectors, and the covariate blocks are products with the observed-value mask (plain
    sums when nothing is missing). ``values`` is features x patients; ``buffers`` two scratch rows.
    """
    mu = special.expit(covariates @ start)
    weight, residual = mu * (1 - mu), y - mu
    filled, squares = (_view(buffer, values.shape) for buffer in buffers)
    np.copyto(filled, values)
    complete = observed.all()
    if not complete:
        filled[~observed] = 0.0
    feature_sums = filled @ np.column_stack([residual, covariates * weight[:, None]])
    upper = np.triu_indices(covariates.shape[1])
    shared = np.column_stack([covariates * residual[:, None], covariates[:, upper[0]] * covariates[:, upper[1]] * weight[:, None],
                              weight < 1e-10])  # fmt: skip
    masked = np.repeat(shared.sum(axis=0)[:, None], len(values), axis=1) if complete else (observed @ shared).T
    q = covariates.shape[1]
    score = np.vstack([feature_sums[:, 0], masked[:q]])
    information = np.vstack([np.multiply(filled, filled, out=squares) @ weight, feature_sums[:, 1:].T, masked[q:-1]])
    return score, information, masked[-1]


def _newton_sums(values, coef, y, covariates_t, pairs_t, buffer):
    """Score, information (upper triangle) and near-0/1 count of every feature at ``coef``."""
    exponent = _view(buffer, values.shape)
    np.matmul(-coef[1:].T, covariates_t, out=exponent)
    newton.subtract_feature_term(values, coef[0], exponent)
    m, p = values.shape[0], coef.shape[0]
    score, information, near_bound = np.empty((p, m)), np.empty((p * (p + 1) // 2, m)), np.empty(m)
    newton.score_and_information(values, np.exp(exponent, out=exponent), y, covariates_t, pairs_t,
                                 score, information, near_bound)  # fmt: skip
    return score, information, near_bound


def _view(buffer: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The start of a flat scratch buffer as a C-contiguous array of ``shape``."""
    return buffer[: shape[0] * shape[1]].reshape(shape)


def _newton_steps(score: np.ndarray, information: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newton steps (p x features), inverse information and solvability, as :func:`_invert` judges it.

    The compiled solver settles almost every feature by a cheap bound; the rest (near-singular
    designs) get the exact eigenvalue check.
    """
    step, inverse, ok = newton.newton_steps(score, information, 1e-10)
    if not ok.all():
        unsure = np.flatnonzero(~ok)
        p = score.shape[0]
        upper = np.triu_indices(p)
        matrices = np.zeros((len(unsure), p, p))
        matrices[:, upper[0], upper[1]] = information[:, unsure].T
        matrices[:, upper[1], upper[0]] = information[:, unsure].T
        inverse[unsure], ok[unsure] = _invert(matrices)
        step[:, unsure] = np.where(ok[unsure], np.einsum("jkl,lj->kj", np.nan_to_num(inverse[unsure]), score[:, unsure]), 0.0)
    return step, inverse, ok


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
    note = np.where(usable | (note != ""), note, NOT_ESTIMABLE)
    return PredictorFit(
        coef=np.where(usable[:, None], beta, np.nan),
        covariance=np.where(usable[:, None, None], covariance, np.nan),
        n=n, n_events=events, converged=converged, note=note,
    )  # fmt: skip

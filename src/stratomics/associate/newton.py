"""Compiled Newton-Raphson fits of y ~ feature + covariates, one logistic regression per feature.

A compiled loop fits each feature to convergence before it moves to the next: the feature's values,
IRLS weights and residuals are patient-length rows that stay in the L1 cache, every sum over
patients is a loop the compiler vectorises, and exp(-eta) is computed in such a loop too
(:func:`exp_into`), so no patients x features intermediate array is ever written. Every fit starts
from the covariates-only model, where all features share the fitted probabilities, so its first
step needs no exponential.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Sums over patients may be reordered into SIMD lanes (deterministic for a given machine).
_COMPILE = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": {"reassoc", "contract"}}
#: Cody-Waite split of log(2) (fdlibm's constants): k * _LN2_HIGH is exact for |k| < 2048.
_LN2_HIGH, _LN2_LOW = 6.93147180369123816490e-01, 1.90821492927058770002e-10
#: Taylor coefficients 1/k! of exp on |r| <= log(2)/2, highest first (truncation error < 1e-17).
_EXP_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(13, -1, -1))
#: Status columns written by :func:`fit_logistic_features`.
STATUS = ("n", "cases", "converged", "singular", "near_bound")


@numba.njit(**_COMPILE)
def exp_into(x: np.ndarray, out: np.ndarray, exponent_bits: np.ndarray) -> None:
    """``out = exp(x)`` (to 1 ulp) with x clipped to [-700, 700], in loops that vectorise.

    x = k log(2) + r with |r| <= log(2)/2; exp(r) by its Taylor series and 2^k by writing k into
    the exponent bits of a double (``exponent_bits``: int64 scratch of x's length).
    """
    for i in range(x.shape[0]):
        t = x[i]
        t = t if t > -700.0 else -700.0
        t = t if t < 700.0 else 700.0
        k = np.floor(t * 1.4426950408889634 + 0.5)
        r = (t - k * _LN2_HIGH) - k * _LN2_LOW
        series = _EXP_TAYLOR[0]
        for coefficient in _EXP_TAYLOR[1:]:
            series = series * r + coefficient
        out[i] = series
        exponent_bits[i] = (np.int64(k) + 1023) << 52
    power = exponent_bits.view(np.float64)
    for i in range(x.shape[0]):
        out[i] *= power[i]


@numba.njit(**_COMPILE)
def fit_logistic_features(values, y, covariates, pairs, start, max_iter, tol, tolerance, coef, covariance, status):
    """Fit y ~ values[:, j] + covariates by Newton's method for every feature j.

    Parameters
    ----------
    values
        Patients x features, NaN where missing (patients with a missing value leave that fit).
    y
        0/1 outcome per patient.
    covariates
        q x patients covariates, intercept row included.
    pairs
        q(q+1)/2 x patients products of covariate pairs (upper triangle, row by row).
    start
        The q coefficients of the covariates-only fit: every fit starts there, feature's at 0.
    max_iter, tol
        Newton iterations at most; convergence when no coefficient moves by more than
        ``tol * (1 + largest |coefficient|)``.
    tolerance
        An information matrix is singular when its equilibrated form's smallest over largest
        eigenvalue is at most this.
    coef, covariance, status
        Outputs: features x p coefficients (the feature's first), features x p x p inverse
        information at convergence (left as given otherwise), and features x :data:`STATUS`.
    """
    n, q = y.shape[0], covariates.shape[0]
    p = q + 1
    minus_eta = np.zeros(n)
    for k in range(q):
        for i in range(n):
            minus_eta[i] -= start[k] * covariates[k, i]
    shared_exp, exponent_bits = np.empty(n), np.empty(n, dtype=np.int64)
    exp_into(minus_eta, shared_exp, exponent_bits)
    x, observed, exp_minus_eta = np.empty(n), np.empty(n), np.empty(n)
    weight, residual, weighted_feature = np.empty(n), np.empty(n), np.empty(n)
    score, information, step = np.empty(p), np.empty(p * (p + 1) // 2), np.empty(p)
    inverse, lower, inverse_lower = np.empty((p, p)), np.zeros((p, p)), np.zeros((p, p))
    for j in range(values.shape[1]):
        status[j, 0], status[j, 1] = _gather(values[:, j], y, x, observed)
        beta = coef[j]
        beta[0] = 0.0
        beta[1:] = start
        for iteration in range(max_iter):
            if iteration == 0:
                exp_minus_eta[:] = shared_exp
            else:
                _minus_linear_predictor(x, covariates, beta, minus_eta)
                exp_into(minus_eta, exp_minus_eta, exponent_bits)
            if _score_and_information(x, observed, exp_minus_eta, y, covariates, pairs,
                                      weight, residual, weighted_feature, score, information):  # fmt: skip
                status[j, 4] = 1
            if not _newton_step(score, information, tolerance, step, inverse, lower, inverse_lower):
                status[j, 3] = 1
                break
            largest = 0.0
            for k in range(p):
                beta[k] += step[k]
                largest = max(largest, abs(beta[k]))
            if np.max(np.abs(step)) < tol * (1.0 + largest):
                covariance[j] = inverse  # the information matrix of a step below tol
                status[j, 2] = 1
                break


@numba.njit(**_COMPILE)
def _gather(column, y, x, observed) -> tuple[int, int]:
    """Copy a feature column into ``x`` (0 where missing) and ``observed`` (1.0 or 0.0).

    Returns the numbers of observed patients and of cases among them.
    """
    count, cases = 0.0, 0.0
    for i in range(column.shape[0]):
        value = column[i]
        present = value == value
        x[i] = value if present else 0.0
        observed[i] = 1.0 if present else 0.0
        count += observed[i]
        cases += observed[i] * y[i]
    return int(count), int(cases)


@numba.njit(**_COMPILE)
def _minus_linear_predictor(x, covariates, beta, out) -> None:
    """``out = -(beta[0] x + beta[1:] @ covariates)``."""
    for i in range(x.shape[0]):
        out[i] = -beta[0] * x[i]
    for k in range(covariates.shape[0]):
        covariate, slope = covariates[k], beta[k + 1]
        for i in range(x.shape[0]):
            out[i] -= slope * covariate[i]


@numba.njit(**_COMPILE)
def _score_and_information(x, observed, exp_minus_eta, y, covariates, pairs, weight, residual, weighted_feature,
                           score, information) -> bool:  # fmt: skip
    """Score X'(y - mu) and the upper triangle of X'WX (row by row) of the design [x, covariates].

    Returns whether an observed patient's fitted probability is within 1e-10 of 0 or 1.
    """
    n, q = x.shape[0], covariates.shape[0]
    feature_score, feature_information, near_bound = 0.0, 0.0, 0.0
    for i in range(n):
        mu = 1.0 / (1.0 + exp_minus_eta[i])
        variance = mu * (1.0 - mu)
        weight[i] = observed[i] * variance
        residual[i] = observed[i] * (y[i] - mu)
        weighted_feature[i] = weight[i] * x[i]
        feature_score += x[i] * residual[i]
        feature_information += weighted_feature[i] * x[i]
        near_bound += observed[i] if variance < 1e-10 else 0.0
    score[0], information[0] = feature_score, feature_information
    for k in range(q):
        covariate = covariates[k]
        covariate_score, cross_information = 0.0, 0.0
        for i in range(n):
            covariate_score += covariate[i] * residual[i]
            cross_information += covariate[i] * weighted_feature[i]
        score[k + 1], information[k + 1] = covariate_score, cross_information
    _weighted_sums(pairs, weight, information[q + 1 :])
    return near_bound > 0


@numba.njit(**_COMPILE)
def _weighted_sums(rows: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
    """``out[t] = rows[t] @ weight``, three rows per pass so that each weight loaded serves three sums."""
    t = 0
    while t + 2 < rows.shape[0]:
        first, second, third = rows[t], rows[t + 1], rows[t + 2]
        a, b, c = 0.0, 0.0, 0.0
        for i in range(weight.shape[0]):
            a += first[i] * weight[i]
            b += second[i] * weight[i]
            c += third[i] * weight[i]
        out[t], out[t + 1], out[t + 2] = a, b, c
        t += 3
    for t in range(t, rows.shape[0]):
        out[t] = np.sum(rows[t] * weight)


@numba.njit(**_COMPILE)
def _newton_step(score, information, tolerance, step, inverse, lower, inverse_lower) -> bool:
    """Solve information @ step = score; ``inverse`` receives the inverse information.

    The information is equilibrated (unit diagonal) and inverted by Cholesky factorisation; when a
    cheap bound, 1 / (p * Frobenius norm of the inverse), does not show the smallest over largest
    eigenvalue above ``tolerance``, the eigenvalues are computed. Returns False if singular.
    """
    p = score.shape[0]
    scale = np.empty(p)
    entry = 0
    for k in range(p):
        for l in range(k, p):
            inverse[k, l] = inverse[l, k] = information[entry]
            entry += 1
    for k in range(p):
        scale[k] = np.sqrt(inverse[k, k]) if inverse[k, k] > 0 else np.nan
    for k in range(p):
        for l in range(p):
            inverse[k, l] /= scale[k] * scale[l]
    if not np.all(np.isfinite(inverse)):
        return False
    equilibrated = inverse.copy()
    if not (_invert_cholesky(inverse, lower, inverse_lower) and 1.0 / (p * np.sqrt(np.sum(inverse**2))) > tolerance):
        eigenvalues = np.linalg.eigvalsh(equilibrated)
        if not eigenvalues[0] > tolerance * eigenvalues[-1]:
            return False
        inverse[:] = np.linalg.inv(equilibrated)
    for k in range(p):
        step[k] = 0.0
        for l in range(p):
            inverse[k, l] /= scale[k] * scale[l]
            step[k] += inverse[k, l] * score[l]
    return True


@numba.njit(**_COMPILE)
def _invert_cholesky(matrix: np.ndarray, lower: np.ndarray, inverse_lower: np.ndarray) -> bool:
    """Replace a small symmetric matrix by its inverse via Cholesky; False if not positive definite.

    ``lower`` and ``inverse_lower`` are p x p work arrays whose upper triangles are zero.
    """
    p = matrix.shape[0]
    for k in range(p):
        for r in range(k, p):
            total = matrix[r, k]
            for t in range(k):
                total -= lower[r, t] * lower[k, t]
            if r == k:
                if not total > 0:
                    return False
                lower[k, k] = np.sqrt(total)
            else:
                lower[r, k] = total / lower[k, k]
    for k in range(p):
        inverse_lower[k, k] = 1.0 / lower[k, k]
        for r in range(k + 1, p):
            total = 0.0
            for t in range(k, r):
                total -= lower[r, t] * inverse_lower[t, k]
            inverse_lower[r, k] = total / lower[r, r]
    for k in range(p):
        for l in range(k, p):
            total = 0.0
            for t in range(l, p):
                total += inverse_lower[t, k] * inverse_lower[t, l]
            matrix[k, l] = matrix[l, k] = total
    return True

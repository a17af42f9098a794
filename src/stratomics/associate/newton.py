"""Compiled Newton-Raphson fits of y ~ feature + covariates, one logistic regression per feature.

A compiled loop fits a group of four features to convergence before it moves to the next group:
their values, IRLS weights and residuals are patient-length rows that stay in the cache, every sum
over patients is a loop the compiler vectorises (in register blocks, so that each covariate value
loaded serves the four fits), and exp(-eta) is computed in such a loop too (:func:`exp_into`), so
no patients x features intermediate array is ever written. Every fit starts from the
covariates-only model, where all features share the fitted probabilities, so its first step needs
no exponential.
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
#: Features fitted together in lockstep (:func:`_block_sums` is written for four).
GROUP = 4
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

    Features are fitted :data:`GROUP` at a time in lockstep, so that each covariate value read from
    memory serves that many fits; a fit that has converged waits for the others of its group.

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
        An information matrix is singular when a lower bound of its equilibrated form's smallest
        over largest eigenvalue is at most this (see :func:`_newton_step`).
    coef, covariance, status
        Outputs: features x p coefficients (the feature's first), features x p x p inverse
        information at convergence (left as given otherwise), and features x :data:`STATUS`.
    """
    n, q, m = y.shape[0], covariates.shape[0], values.shape[1]
    p = q + 1
    minus_eta = np.zeros(n)
    for k in range(q):
        for i in range(n):
            minus_eta[i] -= start[k] * covariates[k, i]
    shared_exp, exponent_bits = np.empty(n), np.empty(n, dtype=np.int64)
    exp_into(minus_eta, shared_exp, exponent_bits)
    # what the first step of a feature without missing values shares with every other such feature
    start_mu = 1.0 / (1.0 + shared_exp)
    start_score, start_information = covariates @ (y - start_mu), pairs @ (start_mu * (1.0 - start_mu))
    x, observed, exp_minus_eta = np.empty((GROUP, n)), np.empty((GROUP, n)), np.empty((GROUP, n))
    weight, residual, weighted_feature = np.empty((GROUP, n)), np.empty((GROUP, n)), np.empty((GROUP, n))
    beta, score, information = np.empty((GROUP, p)), np.empty((GROUP, p)), np.empty((GROUP, p * (p + 1) // 2))
    near_bound, active = np.zeros(GROUP, dtype=np.bool_), np.zeros(GROUP, dtype=np.bool_)
    step, scale, inverse, lower, inverse_lower = np.empty(p), np.empty(p), np.empty((p, p)), np.zeros((p, p)), np.zeros((p, p))
    for first in range(0, m, GROUP):
        members = min(GROUP, m - first)
        for g in range(GROUP):  # a short last group repeats its last feature
            j = first + min(g, members - 1)
            status[j, 0], status[j, 1] = _gather(values[:, j], y, x[g], observed[g])
            beta[g, 0], beta[g, 1:] = 0.0, start
            exp_minus_eta[g] = shared_exp
            active[g] = g < members
        complete = np.all(status[first : first + members, 0] == n)
        for iteration in range(max_iter):
            for g in range(GROUP):
                if iteration > 0 and active[g]:
                    _minus_linear_predictor(x[g], covariates, beta[g], minus_eta)
                    exp_into(minus_eta, exp_minus_eta[g], exponent_bits)
            shared = iteration == 0 and complete
            _score_and_information(x, observed, exp_minus_eta, y, covariates, pairs, weight, residual,
                                   weighted_feature, score, information, near_bound, not shared)  # fmt: skip
            if shared:
                score[:, 1:], information[:, p:] = start_score, start_information
            for g in range(members):
                if not active[g]:
                    continue
                j = first + g
                status[j, 4] |= near_bound[g]
                if not _newton_step(score[g], information[g], tolerance, step, inverse, lower, inverse_lower, scale):
                    status[j, 3], active[g] = 1, False
                    continue
                beta[g] += step
                if np.max(np.abs(step)) < tol * (1.0 + np.max(np.abs(beta[g]))):
                    covariance[j] = inverse  # the information matrix of a step below tol
                    status[j, 2], active[g] = 1, False
            if not active.any():
                break
        coef[first : first + members] = beta[:members]


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
                           score, information, near_bound, covariate_sums) -> None:  # fmt: skip
    """Score X'(y - mu) and the upper triangle of X'WX (row by row) of each design [x[g], covariates].

    All arrays but ``y``, ``covariates`` and ``pairs`` have one row per feature of the group;
    ``near_bound[g]`` tells whether an observed patient's fitted probability is within 1e-10 of 0
    or 1. With ``covariate_sums`` False, the sums that involve the covariates alone are left out.
    """
    q = covariates.shape[0]
    p = q + 1
    for g in range(GROUP):
        feature_score, feature_information, near = 0.0, 0.0, 0.0
        for i in range(y.shape[0]):
            mu = 1.0 / (1.0 + exp_minus_eta[g, i])
            variance = mu * (1.0 - mu)
            weight[g, i] = observed[g, i] * variance
            residual[g, i] = observed[g, i] * (y[i] - mu)
            weighted_feature[g, i] = weight[g, i] * x[g, i]
            feature_score += x[g, i] * residual[g, i]
            feature_information += weighted_feature[g, i] * x[g, i]
            near += observed[g, i] if variance < 1e-10 else 0.0
        score[g, 0], information[g, 0], near_bound[g] = feature_score, feature_information, near > 0
    block = np.empty((3, GROUP))
    for k in range(0, q, 3):
        _block_sums(covariates, k, weighted_feature, block)
        information[:, k + 1 : min(k + 4, p)] = block[: min(3, q - k)].T
        if covariate_sums:
            _block_sums(covariates, k, residual, block)
            score[:, k + 1 : min(k + 4, p)] = block[: min(3, q - k)].T
    for t in range(0, pairs.shape[0] if covariate_sums else 0, 3):
        _block_sums(pairs, t, weight, block)
        information[:, p + t : p + min(t + 3, pairs.shape[0])] = block[: min(3, pairs.shape[0] - t)].T


@numba.njit(**_COMPILE)
def _block_sums(shared: np.ndarray, start: int, rows: np.ndarray, out: np.ndarray) -> None:
    """``out[r, g] = shared[start + r] @ rows[g]`` for three shared rows and the :data:`GROUP` = 4 rows.

    The twelve sums share their loads (seven per patient), as in a matrix product's register block;
    shared rows past the end repeat the last one.
    """
    last = shared.shape[0] - 1
    u, v, w = shared[start], shared[min(start + 1, last)], shared[min(start + 2, last)]
    r0, r1, r2, r3 = rows[0], rows[1], rows[2], rows[3]
    u0 = u1 = u2 = u3 = v0 = v1 = v2 = v3 = w0 = w1 = w2 = w3 = 0.0
    for i in range(u.shape[0]):
        a, b, c, d = r0[i], r1[i], r2[i], r3[i]
        u0 += u[i] * a
        u1 += u[i] * b
        u2 += u[i] * c
        u3 += u[i] * d
        v0 += v[i] * a
        v1 += v[i] * b
        v2 += v[i] * c
        v3 += v[i] * d
        w0 += w[i] * a
        w1 += w[i] * b
        w2 += w[i] * c
        w3 += w[i] * d
    out[0, 0], out[0, 1], out[0, 2], out[0, 3] = u0, u1, u2, u3
    out[1, 0], out[1, 1], out[1, 2], out[1, 3] = v0, v1, v2, v3
    out[2, 0], out[2, 1], out[2, 2], out[2, 3] = w0, w1, w2, w3


@numba.njit(**_COMPILE)
def _newton_step(score, information, tolerance, step, inverse, lower, inverse_lower, scale) -> bool:
    """Solve information @ step = score; ``inverse`` receives the inverse information.

    The information is equilibrated (unit diagonal) and inverted by Cholesky factorisation. It
    counts as singular unless that succeeds and 1 / (p * Frobenius norm of the inverse), a lower
    bound of the smallest over the largest eigenvalue (within a factor p^1.5 of it), exceeds
    ``tolerance``. ``lower``, ``inverse_lower`` (p x p, upper triangles zero) and ``scale`` (p)
    are work arrays. Returns False if singular.
    """
    p = score.shape[0]
    if not (_equilibrate(information, inverse, scale) and _invert_cholesky(inverse, lower, inverse_lower)):
        return False
    squares = 0.0
    for k in range(p):
        for m in range(p):
            squares += inverse[k, m] ** 2
    if not 1.0 / (p * np.sqrt(squares)) > tolerance:
        return False
    for k in range(p):
        step[k] = 0.0
        for m in range(p):
            inverse[k, m] *= scale[k] * scale[m]
            step[k] += inverse[k, m] * score[m]
    return True


@numba.njit(**_COMPILE)
def _equilibrate(information, matrix, scale) -> bool:
    """Unpack an upper triangle into ``matrix`` scaled to a unit diagonal (``scale``: 1/sqrt(diagonal)).

    Returns False if a diagonal element is not positive or an entry is not finite.
    """
    p = matrix.shape[0]
    entry = 0
    for k in range(p):
        for m in range(k, p):
            matrix[k, m] = matrix[m, k] = information[entry]
            entry += 1
    for k in range(p):
        scale[k] = 1.0 / np.sqrt(matrix[k, k]) if matrix[k, k] > 0 else np.nan
    finite = True
    for k in range(p):
        for m in range(p):
            matrix[k, m] *= scale[k] * scale[m]
            finite &= np.abs(matrix[k, m]) < np.inf
    return finite


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
        for m in range(k, p):
            total = 0.0
            for t in range(m, p):
                total += inverse_lower[t, k] * inverse_lower[t, m]
            matrix[k, m] = matrix[m, k] = total
    return True

"""Compiled kernels for the batched logistic Newton of :mod:`stratomics.associate.predictor`.

Every feature j has the design [x_j, covariates] and coefficients ``coef[:, j]`` (feature first).
The kernels take features x patients arrays (NaN where missing), so that every sum over patients
runs over contiguous memory and vectorises. One Newton iteration over a chunk of features:
a BLAS product with the covariates and :func:`subtract_feature_term` form -eta, numpy's SIMD
exp turns it into exp(-eta),
:func:`score_and_information` forms each feature's IRLS weights and residuals in a
patient-length scratch row and sums its score and information matrix from them, and
:func:`newton_steps` solves each feature's p x p system.
"""

from __future__ import annotations

import numba
import numpy as np

_COMPILE = {"cache": True, "nogil": True, "error_model": "numpy"}
#: Sums over patients may be reordered (into SIMD lanes); results stay deterministic per machine.
_SUMS = {**_COMPILE, "fastmath": {"reassoc", "contract"}}


@numba.njit(**_COMPILE)
def subtract_feature_term(values: np.ndarray, slope: np.ndarray, out: np.ndarray) -> None:
    """``out[j] -= values[j] * slope[j]`` for features x patients arrays (NaN stays NaN)."""
    for j in range(values.shape[0]):
        row, value_row, feature_slope = out[j], values[j], slope[j]
        for i in range(row.shape[0]):
            row[i] -= value_row[i] * feature_slope


@numba.njit(**_SUMS)
def score_and_information(values, exp_minus_eta, y, covariates, pairs, score, information, extreme) -> None:
    """Score X'(y - mu) and information X'WX of every feature's design [x_j, covariates].

    Parameters
    ----------
    values, exp_minus_eta
        Features x patients: the feature (NaN where missing) and exp(-eta) at the current
        coefficients.
    y
        0/1 outcome per patient.
    covariates
        q x patients covariates (intercept included).
    pairs
        q(q+1)/2 x patients products of covariate pairs (upper triangle, row by row).
    score
        p x features output (p = q + 1, the feature first).
    information
        p(p+1)/2 x features output: the upper triangle of X'WX, row by row.
    extreme
        Per feature output: how many observed patients have a fitted probability within 1e-10 of
        0 or 1 (complete or quasi-complete separation).
    """
    n, q = y.shape[0], covariates.shape[0]
    weight, residual, weighted_feature = np.empty(n), np.empty(n), np.empty(n)
    for j in range(values.shape[0]):
        value_row, exp_row = values[j], exp_minus_eta[j]
        feature_score, feature_information, near_bound = 0.0, 0.0, 0.0
        for i in range(n):
            x = value_row[i]
            observed = x == x
            mu = 1.0 / (1.0 + exp_row[i])
            w = mu * (1.0 - mu) if observed else 0.0
            x = x if observed else 0.0
            r = y[i] - mu if observed else 0.0
            weight[i], residual[i], weighted_feature[i] = w, r, w * x
            feature_score += x * r
            feature_information += w * x * x
            near_bound += 1.0 if observed and w < 1e-10 else 0.0
        score[0, j], information[0, j], extreme[j] = feature_score, feature_information, near_bound
        for k in range(q):
            covariate = covariates[k]
            covariate_score, cross_information = 0.0, 0.0
            for i in range(n):
                covariate_score += covariate[i] * residual[i]
                cross_information += covariate[i] * weighted_feature[i]
            score[k + 1, j], information[k + 1, j] = covariate_score, cross_information
        _weighted_sums(pairs, weight, information[q + 1 :, j])


@numba.njit(**_SUMS)
def _weighted_sums(rows: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
    """``out[t] = rows[t] @ weight``, three rows per pass so that each weight loaded serves three sums."""
    t = 0
    while t < rows.shape[0]:
        first, second, third = rows[t], rows[min(t + 1, rows.shape[0] - 1)], rows[min(t + 2, rows.shape[0] - 1)]
        a, b, c = 0.0, 0.0, 0.0
        for i in range(weight.shape[0]):
            a += first[i] * weight[i]
            b += second[i] * weight[i]
            c += third[i] * weight[i]
        for offset, total in ((0, a), (1, b), (2, c)):
            if t + offset < rows.shape[0]:
                out[t + offset] = total
        t += 3


@numba.njit(**_COMPILE)
def newton_steps(score: np.ndarray, information: np.ndarray, tolerance: float):
    """Solve each feature's Newton system by Cholesky factorisation of the equilibrated information.

    Parameters
    ----------
    score
        p x features.
    information
        p(p+1)/2 x features: the upper triangle of each information matrix, row by row.
    tolerance
        A system counts as solvable when a lower bound of the smallest over the largest eigenvalue
        of its equilibrated information, 1 / (p * Frobenius norm of its inverse), exceeds this.

    Returns
    -------
    step
        p x features Newton steps (0 where not solvable).
    inverse
        features x p x p inverse information (the covariance at convergence; NaN if not solvable).
    solvable
        Per feature, whether the bound held; the others need an exact check.
    """
    p, m = score.shape
    step = np.zeros((p, m))
    inverse = np.full((m, p, p), np.nan)
    solvable = np.zeros(m, dtype=np.bool_)
    matrix, lower, inverse_lower, scale = np.empty((p, p)), np.zeros((p, p)), np.zeros((p, p)), np.empty(p)
    for j in range(m):
        entry = 0
        for k in range(p):
            for l in range(k, p):
                matrix[k, l] = matrix[l, k] = information[entry, j]
                entry += 1
        for k in range(p):
            scale[k] = np.sqrt(matrix[k, k]) if matrix[k, k] > 0 else np.nan
        finite = True
        for k in range(p):
            for l in range(p):
                matrix[k, l] /= scale[k] * scale[l]
                finite &= np.abs(matrix[k, l]) < np.inf
        if not finite or not _invert_cholesky(matrix, lower, inverse_lower):
            continue
        squares = 0.0
        for k in range(p):
            for l in range(p):
                squares += matrix[k, l] ** 2
        if 1.0 / (p * np.sqrt(squares)) <= tolerance:
            continue
        solvable[j] = True
        for k in range(p):
            for l in range(p):
                inverse[j, k, l] = matrix[k, l] / (scale[k] * scale[l])
                step[k, j] += inverse[j, k, l] * score[l, j]
    return step, inverse, solvable


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

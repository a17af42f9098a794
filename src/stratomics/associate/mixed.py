"""Linear mixed models with a random intercept per patient, fitted by REML for every feature at once.

For feature values y = X beta + b_patient + e, with b ~ N(0, lambda sigma^2) and e ~ N(0, sigma^2), the
covariance is sigma^2 H with H = I + lambda Z Z'. Within a patient with n_i observations
H_i^-1 = I - c_i J with c_i = lambda / (1 + n_i lambda), so every quantity REML needs is a sum over
patients of per-patient column sums, and patients with the same number of observations share c_i.
The restricted log-likelihood, profiled over sigma^2, is then maximised over log lambda for all
features together (a grid, then golden-section search). Features are fitted in blocks that share
their pattern of missing values. The same model as statsmodels ``MixedLM(y, X, groups).fit(reml=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Search range of log(patient variance / residual variance).
LOG_RATIO_RANGE = (-12.0, 8.0)
GOLDEN = (np.sqrt(5) - 1) / 2


@dataclass
class MixedFit:
    """REML fits of one design to many features.

    Attributes
    ----------
    coefficients
        Features x design columns.
    covariance
        Features x columns x columns: the covariance of the coefficients.
    residual_variance, patient_variance
        sigma^2 and the random-intercept variance, per feature.
    n_observations, n_patients
        Observations and patients that entered each feature's fit.
    """

    coefficients: np.ndarray
    covariance: np.ndarray
    residual_variance: np.ndarray
    patient_variance: np.ndarray
    n_observations: np.ndarray
    n_patients: np.ndarray


def fit_random_intercept(values: np.ndarray, design: np.ndarray, patients: np.ndarray) -> MixedFit:
    """Fit y ~ design + (1 | patient) by REML for every column of ``values``.

    Parameters
    ----------
    values
        Observations x features; NaN where a feature was not measured.
    design
        Observations x columns, full column rank on every feature's observed rows.
    patients
        The patient of each observation.

    Returns
    -------
    The :class:`MixedFit`; a feature with no more observations than columns gets NaN.
    """
    values = np.asarray(values, dtype=float)
    codes = np.unique(np.asarray(patients), return_inverse=True)[1]
    n_features, n_columns = values.shape[1], design.shape[1]
    fit = MixedFit(
        coefficients=np.full((n_features, n_columns), np.nan),
        covariance=np.full((n_features, n_columns, n_columns), np.nan),
        residual_variance=np.full(n_features, np.nan),
        patient_variance=np.full(n_features, np.nan),
        n_observations=np.zeros(n_features, dtype=int),
        n_patients=np.zeros(n_features, dtype=int),
    )
    observed = np.isfinite(values)
    patterns, block_of = np.unique(observed.T, axis=0, return_inverse=True)
    for block, rows in enumerate(patterns):
        features = np.flatnonzero(block_of.ravel() == block)
        if rows.sum() > n_columns + 1:
            _fit_block(fit, features, values[np.ix_(rows, features)], design[rows], codes[rows])
    return fit


def _fit_block(fit: MixedFit, features, values, design, codes) -> None:
    """Fit the features of one missingness pattern and write them into ``fit``."""
    sums = _PatientSums(values, design, codes)
    log_ratio = _maximise(sums)
    coefficients, inverse, residual = sums.solve(log_ratio)
    n, p = design.shape
    sigma2 = residual / (n - p)
    fit.coefficients[features] = coefficients
    fit.covariance[features] = sigma2[:, None, None] * inverse
    fit.residual_variance[features] = sigma2
    fit.patient_variance[features] = np.exp(log_ratio) * sigma2
    fit.n_observations[features] = n
    fit.n_patients[features] = len(np.unique(codes))


class _PatientSums:
    """Per-patient sums grouped by the patient's number of observations, and the REML pieces from them."""

    def __init__(self, values, design, codes):
        counts = np.bincount(codes)
        present = counts > 0
        x_sums = np.zeros((len(counts), design.shape[1]))
        y_sums = np.zeros((len(counts), values.shape[1]))
        np.add.at(x_sums, codes, design)
        np.add.at(y_sums, codes, values)
        counts, x_sums, y_sums = counts[present], x_sums[present], y_sums[present]
        self.sizes = np.unique(counts)
        by_size = [counts == size for size in self.sizes]
        self.xzzx = np.stack([x_sums[m].T @ x_sums[m] for m in by_size])  # sizes x p x p
        self.xzzy = np.stack([x_sums[m].T @ y_sums[m] for m in by_size])  # sizes x p x features
        self.yzzy = np.stack([(y_sums[m] ** 2).sum(axis=0) for m in by_size])  # sizes x features
        self.counts = counts
        self.xtx, self.xty, self.yty = design.T @ design, design.T @ values, (values**2).sum(axis=0)
        self.n, self.p = design.shape

    def _pieces(self, log_ratio):
        ratio = np.exp(log_ratio)[:, None]  # features x 1
        c = ratio / (1 + self.sizes[None, :] * ratio)  # features x sizes
        a = self.xtx[None] - np.einsum("fs,spq->fpq", c, self.xzzx)
        b = self.xty.T - np.einsum("fs,spf->fp", c, self.xzzy)
        yhy = self.yty - np.einsum("fs,sf->f", c, self.yzzy)
        return a, b, yhy, ratio[:, 0]

    def restricted_loglik(self, log_ratio):
        """REML log-likelihood (up to a constant), sigma^2 profiled out, per feature."""
        a, b, yhy, ratio = self._pieces(log_ratio)
        solved = np.linalg.solve(a, b[..., None])[..., 0]
        residual = np.maximum(yhy - (b * solved).sum(axis=1), 1e-300)
        log_det_h = np.log1p(np.outer(ratio, self.counts)).sum(axis=1)
        log_det_a = np.linalg.slogdet(a)[1]
        dof = self.n - self.p
        return -0.5 * (dof * np.log(residual / dof) + log_det_h + log_det_a)

    def solve(self, log_ratio):
        """Coefficients, (X'H^-1X)^-1 and the weighted residual sum of squares at ``log_ratio``."""
        a, b, yhy, _ = self._pieces(log_ratio)
        inverse = np.linalg.inv(a)
        coefficients = np.einsum("fpq,fq->fp", inverse, b)
        return coefficients, inverse, yhy - (b * coefficients).sum(axis=1)


def _maximise(sums: _PatientSums) -> np.ndarray:
    """The log variance ratio that maximises each feature's REML likelihood: grid, then golden section."""
    low, high = LOG_RATIO_RANGE
    grid = np.arange(low, high + 1e-9, 0.5)
    n_features = sums.xty.shape[1]
    likelihoods = np.stack([sums.restricted_loglik(np.full(n_features, g)) for g in grid])
    best = likelihoods.argmax(axis=0)
    left, right = grid[np.maximum(best - 1, 0)], grid[np.minimum(best + 1, len(grid) - 1)]
    for _ in range(40):
        inner_left = right - GOLDEN * (right - left)
        inner_right = left + GOLDEN * (right - left)
        move_right = sums.restricted_loglik(inner_right) > sums.restricted_loglik(inner_left)
        left = np.where(move_right, inner_left, left)
        right = np.where(move_right, right, inner_right)
    return (left + right) / 2

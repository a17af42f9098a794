"""ComBat batch correction (Johnson, Li & Rabinovic, Biostatistics 2007), as ``sva::ComBat``.

Parametric empirical Bayes, location and scale, with protected covariates. The numbers match R's
``sva::ComBat(dat, batch, mod, par.prior = TRUE)`` to 1e-6 (tests/data/combat). scanpy's ComBat
differs from sva in its variance denominators (up to 0.008 on the reference data) and builds a
singular design as soon as a categorical covariate is protected (scverse/scanpy#1606), hence this
module.

1. Fit every feature on the design [batch indicators | protected covariates] by least squares;
   standardise with the pooled residual variance (divided by n) around the grand mean plus the
   covariate effects.
2. Per batch, the standardised means (gamma) and variances (delta, n - 1) of every feature get a
   normal and an inverse-gamma prior estimated across features; their posterior values are found by
   the fixed-point iteration of sva's ``it.sol`` (relative change below 1e-4).
3. Remove gamma* and divide by sqrt(delta*), then undo the standardisation.
"""

from __future__ import annotations

import numpy as np

CONVERGENCE = 1e-4


def combat_correct(values: np.ndarray, batches: np.ndarray, covariates: np.ndarray | None = None) -> np.ndarray:
    """Batch-corrected values.

    Parameters
    ----------
    values
        Samples x features, no missing values.
    batches
        Batch label of each sample (every batch with at least two samples).
    covariates
        Samples x protected covariates, numeric and without an intercept column (categories
        reference-coded), or None.

    Returns
    -------
    The corrected samples x features. Features constant within some batch are returned unchanged.
    """
    levels, codes = np.unique(batches, return_inverse=True)
    indicators = np.eye(len(levels))[codes]
    protected = np.zeros((len(values), 0)) if covariates is None else np.asarray(covariates, float)
    design = np.hstack([indicators, protected])
    constant = np.zeros(values.shape[1], bool)
    for batch in range(len(levels)):
        constant |= np.ptp(values[codes == batch], axis=0) == 0
    data = values[:, ~constant]
    coefficients = np.linalg.solve(design.T @ design, design.T @ data)
    sizes = indicators.sum(axis=0)
    grand_mean = sizes / len(values) @ coefficients[: len(levels)]
    pooled_sd = np.sqrt(((data - design @ coefficients) ** 2).mean(axis=0))
    location = grand_mean + protected @ coefficients[len(levels) :]
    standardised = (data - location) / pooled_sd
    corrected = np.empty_like(standardised)
    for batch in range(len(levels)):
        rows = codes == batch
        gamma, delta = _posterior(standardised[rows])
        corrected[rows] = (standardised[rows] - gamma) / np.sqrt(delta)
    result = values.astype(float, copy=True)
    result[:, ~constant] = corrected * pooled_sd + location
    return result


def _posterior(standardised: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical-Bayes location (gamma*) and scale (delta*) of one batch's standardised features."""
    gamma_hat = standardised.mean(axis=0)
    delta_hat = standardised.var(axis=0, ddof=1)
    gamma_bar, tau2 = gamma_hat.mean(), gamma_hat.var(ddof=1)
    mean, variance = delta_hat.mean(), delta_hat.var(ddof=1)
    a_prior = (2 * variance + mean**2) / variance
    b_prior = (mean * variance + mean**3) / variance
    n = len(standardised)
    gamma, delta = gamma_hat, delta_hat
    while True:
        gamma_new = (tau2 * n * gamma_hat + delta * gamma_bar) / (tau2 * n + delta)
        squares = ((standardised - gamma_new) ** 2).sum(axis=0)
        delta_new = (0.5 * squares + b_prior) / (n / 2 + a_prior - 1)
        change = max(np.max(np.abs(gamma_new - gamma) / gamma), np.max(np.abs(delta_new - delta) / delta))
        gamma, delta = gamma_new, delta_new
        if change <= CONVERGENCE:
            return gamma, delta

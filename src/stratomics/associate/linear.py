"""Linear models of every feature on one design at once, with limma's empirical-Bayes moderation.

Each feature is fitted on the patients where it is observed (like limma's lmFit with missing
values): the normal equations of all features are formed with one matrix product over the
observed-value mask, so features with different missingness need no loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from stratomics.associate.moments import masked_moments, outer_rows
from stratomics.associate.prior import fit_f_distribution, fit_f_distribution_robustly

@dataclass
class FeatureFit:
    """Per-feature least-squares fits of ``feature ~ design``.

    Attributes
    ----------
    coef
        Coefficients, features x design columns (NaN where not estimable).
    unscaled
        (X'X)^-1 over each feature's observed patients, features x p x p.
    sigma2
        Residual variance per feature.
    df_residual
        Residual degrees of freedom per feature.
    n
        Patients used per feature.
    columns
        Design column names.
    features
        Feature names.
    df_prior, s2_prior, s2_post, df_total
        Set by :func:`moderate` (limma's eBayes); absent before. ``df_prior`` is one number, or
        one per feature after the robust fit.
    """

    coef: np.ndarray
    unscaled: np.ndarray
    sigma2: np.ndarray
    df_residual: np.ndarray
    n: np.ndarray
    columns: list[str]
    features: pd.Index
    df_prior: float | np.ndarray | None = None
    s2_prior: float | None = None
    s2_post: np.ndarray | None = None
    df_total: np.ndarray | None = None


def fit_features(values: np.ndarray, design: pd.DataFrame, features=None) -> FeatureFit:
    """Least squares of every feature (column of ``values``) on the design, missing values skipped.

    Parameters
    ----------
    values
        Patients x features, NaN where missing; rows aligned with ``design``.
    design
        Patients x p design (full column rank).
    features
        Feature names (default 0..m-1).

    Returns
    -------
    The fit. A feature whose observed patients leave the design rank-deficient or no residual
    degree of freedom gets NaN estimates.
    """
    x = design.to_numpy(dtype=float)
    values = np.asarray(values)  # float32 (dosages) is read as it is
    n, m = values.shape
    p = x.shape[1]
    xty, yty, n_missing, missing_gram = masked_moments(values, x)
    full_gram = x.T @ x
    inverse, usable = invert_stack(full_gram[None])  # complete features share it
    inverse, usable = np.repeat(inverse, m, axis=0), np.repeat(usable, m)
    incomplete = np.flatnonzero(n_missing > 0)
    grams = full_gram.reshape(1, p * p) - missing_gram[incomplete]
    mostly = n_missing[incomplete] > n / 2  # few rows left: sum them rather than subtract nearly everything
    if mostly.any():
        observed = np.isfinite(values[:, incomplete[mostly]]).T.astype(float)
        grams[mostly] = observed @ outer_rows(x)
    inverse[incomplete], usable[incomplete] = invert_stack(grams.reshape(-1, p, p))
    beta = np.einsum("jkl,jl->jk", inverse, xty)
    rss = _residual_sum_of_squares(values, x, beta, xty, yty)
    n_used = n - n_missing
    df = n_used - p
    usable &= df > 0
    coef, unscaled = np.full((m, p), np.nan), np.full((m, p, p), np.nan)
    sigma2 = np.full(m, np.nan)
    coef[usable], unscaled[usable] = beta[usable], inverse[usable]
    sigma2[usable] = rss[usable] / df[usable]
    df_residual = np.where(usable, df, np.nan)
    features = pd.Index(features if features is not None else range(m))
    return FeatureFit(coef, unscaled, sigma2, df_residual, n_used, list(design.columns), features)


def _residual_sum_of_squares(values, x, beta, xty, yty) -> np.ndarray:
    """Residual sums of squares as y'y - b'X'y, recomputed from residuals where that cancels badly.

    ``xty`` and ``yty`` count missing values as zero; the identity holds for each feature's own fit.
    """
    rss = yty - np.einsum("jk,jk->j", beta, xty)
    unstable = ~(rss > 1e-6 * yty)  # cancellation (or a perfect fit): compute it directly
    if unstable.any():
        y = values[:, unstable]
        residuals = np.where(np.isnan(y), 0.0, y - x @ beta[unstable].T)
        rss[unstable] = np.einsum("ij,ij->j", residuals, residuals)
    return rss


#: A matrix is singular when its equilibrated form's smallest over largest eigenvalue is at most this.
SINGULAR_TOLERANCE = 1e-10


def invert_stack(gram: np.ndarray, tolerance: float = SINGULAR_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """Invert a stack of symmetric matrices; flag those that are numerically singular or not finite."""
    finite = np.isfinite(gram).all(axis=(1, 2))
    gram = np.where(finite[:, None, None], gram, np.eye(gram.shape[1]))
    scale = np.sqrt(np.abs(np.einsum("jkk->jk", gram)))
    scale = np.where(scale > 0, scale, 1.0)
    scaled = gram / scale[:, :, None] / scale[:, None, :]  # equilibrate before judging the rank
    eigenvalues = np.linalg.eigvalsh(scaled)  # ascending; the matrices are symmetric
    usable = finite & (eigenvalues[:, 0] > tolerance * eigenvalues[:, -1])
    inverse = np.full_like(gram, np.nan)
    if usable.any():
        inverse[usable] = np.linalg.inv(scaled[usable]) / scale[usable, :, None] / scale[usable, None, :]
    return inverse, usable


def moderate(fit: FeatureFit, *, robust: bool = False) -> FeatureFit:
    """limma's eBayes: shrink each residual variance towards a common prior.

    The posterior variance is (d0 s0^2 + d s^2) / (d0 + d); moderated statistics use it with
    d0 + d degrees of freedom, capped at the pooled residual degrees of freedom as limma does.

    Parameters
    ----------
    fit
        A :func:`fit_features` result.
    robust
        Estimate the prior robustly to features with outlying variances, which then get a smaller
        prior df of their own (limma's ``robust = TRUE``; Phipson et al. 2016).

    Returns
    -------
    The same fit with ``s2_prior``, ``df_prior`` (per feature when robust), ``s2_post`` and
    ``df_total`` set.
    """
    if robust:
        s2_prior, _, df_prior = fit_f_distribution_robustly(fit.sigma2, fit.df_residual)
    else:
        s2_prior, df_prior = fit_f_distribution(fit.sigma2, fit.df_residual)
    d = fit.df_residual
    with np.errstate(invalid="ignore"):
        s2_post = np.where(np.isinf(df_prior), s2_prior,
                           (df_prior * s2_prior + d * fit.sigma2) / (df_prior + d))  # fmt: skip
    fit.s2_prior, fit.df_prior = s2_prior, df_prior
    fit.s2_post = np.where(np.isfinite(fit.sigma2), s2_post, np.nan)
    fit.df_total = np.where(np.isfinite(d), np.minimum(d + df_prior, np.nansum(d)), np.nan)
    return fit


def contrast_test(fit: FeatureFit, contrast: np.ndarray, *, moderated: bool = False) -> pd.DataFrame:
    """Test a contrast of the coefficients for every feature.

    Parameters
    ----------
    fit
        A :func:`fit_features` result (passed through :func:`moderate` for moderated tests).
    contrast
        One row (t-test of a linear combination) or several rows (F-test that all are zero), each
        with one weight per design column.
    moderated
        Use limma's moderated variances and degrees of freedom.

    Returns
    -------
    One row per feature: estimate, std_error, statistic (t or F), df, p_value, n. For an F-test
    estimate and std_error are NaN.
    """
    contrast = np.atleast_2d(np.asarray(contrast, dtype=float))
    if moderated and fit.s2_post is None:
        raise ValueError("call moderate(fit) before a moderated test")
    s2, df = (fit.s2_post, fit.df_total) if moderated else (fit.sigma2, fit.df_residual)
    estimate = fit.coef @ contrast.T
    covariance = contrast @ fit.unscaled @ contrast.T
    if contrast.shape[0] == 1:
        std_error = np.sqrt(s2 * covariance[:, 0, 0])
        statistic = estimate[:, 0] / std_error
        p_value = 2 * stats.t.sf(np.abs(statistic), df)
        estimate = estimate[:, 0]
    else:
        q = contrast.shape[0]
        usable = np.isfinite(covariance).all(axis=(1, 2))
        statistic = np.full(len(s2), np.nan)
        solved = np.linalg.solve(covariance[usable], estimate[usable][:, :, None])[:, :, 0]
        statistic[usable] = (estimate[usable] * solved).sum(axis=1) / (q * s2[usable])
        p_value = stats.f.sf(statistic, q, df)
        estimate = std_error = np.full(len(s2), np.nan)
    return pd.DataFrame(
        {"estimate": estimate, "std_error": std_error, "statistic": statistic, "df": df,
         "p_value": p_value, "n": fit.n},
        index=fit.features,
    )  # fmt: skip

"""Empirical-Bayes priors for residual variances, as limma's eBayes: the plain moment estimate (Smyth
2004, :func:`fit_f_distribution`) and the robust one (Phipson, Lee, Majewski, Alexander & Smyth,
Ann. Appl. Stat. 2016; limma's ``robust = TRUE``, :func:`fit_f_distribution_robustly`).

For the robust prior, the prior scale and degrees of freedom are estimated from Winsorized moments of the log variances,
so that a few genes with outlying variances neither inflate the prior scale nor shrink the prior
degrees of freedom; those outlying genes then get less prior weight (smaller prior df) of their own.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special, stats

#: Gauss-Legendre nodes and weights on [0, 1] for the Winsorized moments.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(128)
_NODES, _WEIGHTS = (_NODES + 1) / 2, _WEIGHTS / 2


def _trigamma_inverse(x: float) -> float:
    """Solve trigamma(y) = x by Newton's method (as limma's trigammaInverse)."""
    if x > 1e7:
        return 1 / np.sqrt(x)
    if x < 1e-6:
        return 1 / x
    y = 0.5 + 1 / x
    for _ in range(50):
        tri = special.polygamma(1, y)
        delta = tri * (1 - tri / x) / special.polygamma(2, y)
        y += delta
        if -delta / y < 1e-8:
            break
    return y


def fit_f_distribution(variances: np.ndarray, df: np.ndarray) -> tuple[float, float]:
    """Moment estimates of the prior of limma's hierarchical model (Smyth 2004).

    Parameters
    ----------
    variances
        Residual variances.
    df
        Their degrees of freedom.

    Returns
    -------
    The prior variance s0^2 and prior degrees of freedom d0 (inf when the variances vary no more
    than sampling explains).
    """
    ok = np.isfinite(variances) & np.isfinite(df) & (df > 1e-15)
    x, d = np.maximum(variances[ok], 0), df[ok]
    median = np.median(x)
    x = np.maximum(x, 1e-5 * (median if median > 0 else 1))
    e = np.log(x) - special.digamma(d / 2) + np.log(d / 2)
    e_mean = e.mean()
    e_var = ((e - e_mean) ** 2).sum() / (len(e) - 1) - special.polygamma(1, d / 2).mean()
    if e_var > 0:
        d0 = 2 * _trigamma_inverse(e_var)
        return float(np.exp(e_mean + special.digamma(d0 / 2) - np.log(d0 / 2))), float(d0)
    return float(x.mean()), float(np.inf)


def _f_quantile(p, df1, df2):
    return stats.chi2.ppf(p, df1) / df1 if np.isinf(df2) else stats.f.ppf(p, df1, df2)


def _f_density(x, df1, df2):
    return df1 * stats.chi2.pdf(df1 * x, df1) if np.isinf(df2) else stats.f.pdf(x, df1, df2)


def _log_f_tail(x, df1, df2):
    """log P(F > x) of the F(df1, df2) distribution (chi-square/df1 when df2 is infinite)."""
    return stats.chi2.logsf(df1 * x, df1) if np.isinf(df2) else stats.f.logsf(x, df1, df2)


def winsorized_moments(df1: float, df2: float, tails: tuple[float, float]) -> tuple[float, float]:
    """Mean and variance of log F(df1, df2) Winsorized at the given lower and upper tail probabilities."""
    f_limits = np.array([_f_quantile(tails[0], df1, df2), _f_quantile(1 - tails[1], df1, df2)])
    z_limits = np.log(f_limits)
    q = f_limits / (1 + f_limits)  # integrate over q = F / (1 + F), which lies in [0, 1)
    width = q[1] - q[0]
    nodes = q[0] + width * _NODES
    f_nodes = nodes / (1 - nodes)
    density = _f_density(f_nodes, df1, df2) / (1 - nodes) ** 2
    tail_weights = np.array(tails)
    mean = width * np.sum(_WEIGHTS * density * np.log(f_nodes)) + np.sum(z_limits * tail_weights)
    variance = width * np.sum(_WEIGHTS * density * (np.log(f_nodes) - mean) ** 2) + np.sum(
        (z_limits - mean) ** 2 * tail_weights
    )
    return mean, variance


def fit_f_distribution_robustly(
    variances: np.ndarray, df: np.ndarray, tails: tuple[float, float] = (0.05, 0.1)
) -> tuple[float, float, np.ndarray]:
    """Robust prior scale s0^2, prior df d0 and per-feature shrunk prior df.

    Parameters
    ----------
    variances, df
        Residual variances and their degrees of freedom (NaN where not estimable).
    tails
        Lower and upper Winsorization tail probabilities.

    Returns
    -------
    (s0^2, d0, prior df per feature): features with outlying variances get a smaller prior df;
    features without a variance get d0.
    """
    ok = np.isfinite(variances) & np.isfinite(df) & (df > 1e-6)
    shrunk = np.full(len(variances), np.nan)
    x, d = variances[ok].astype(float), df[ok].astype(float)
    n = len(x)
    x = np.maximum(x, np.median(x) * 1e-12)
    scale0, df_prior0 = fit_f_distribution(x, d)
    if np.all(np.array(tails) < 1 / n) or np.isinf(df_prior0):
        shrunk[ok | ~ok] = df_prior0
        return scale0, df_prior0, shrunk
    df1 = d.max()
    smaller = d < df1 - 1e-14
    if smaller.any():  # map variances to the largest df by matching F tail probabilities
        f = x[smaller] / scale0
        upper = stats.f.logsf(f, d[smaller], df_prior0)
        lower = stats.f.logcdf(f, d[smaller], df_prior0)
        use_upper = upper < lower
        f = np.where(use_upper, stats.f.isf(np.exp(upper), df1, df_prior0), stats.f.ppf(np.exp(lower), df1, df_prior0))
        x[smaller] = f * scale0
    z = np.log(x)
    trend = stats.trim_mean(z, tails[1])
    residual = z - trend
    low, high = np.quantile(residual, [tails[0], 1 - tails[1]])
    winsorized = np.clip(residual, low, high)
    w_mean = winsorized.mean()
    w_var = np.mean((winsorized - w_mean) ** 2) * n / (n - 1)

    def mismatch(link):  # log of observed over theoretical Winsorized variance, df2 = link / (1 - link)
        return np.log(w_var / winsorized_moments(df1, link / (1 - link), tails)[1])

    at_infinity = np.log(w_var / winsorized_moments(df1, np.inf, tails)[1])
    if at_infinity <= 0:
        df_prior = np.inf
    else:
        lower_link = df_prior0 / (1 + df_prior0)
        at_lower = mismatch(lower_link)
        df_prior = df_prior0 if at_lower >= 0 else (
            lambda root: root / (1 - root))(optimize.brentq(mismatch, lower_link, 1 - 1e-12, xtol=1e-8))  # fmt: skip
    mean = winsorized_moments(df1, df_prior, tails)[0]
    corrected_trend = trend + w_mean - mean
    scale = float(np.exp(corrected_trend))
    shrunk[ok] = _shrunk_prior_df(np.exp(z - corrected_trend), df1, df_prior)
    shrunk[~ok] = df_prior
    return scale, float(df_prior), shrunk


def _shrunk_prior_df(f_stat: np.ndarray, df1: float, df_prior: float) -> np.ndarray:
    """Per-feature prior df: reduced by the probability that a variance is an outlier."""
    n = len(f_stat)
    log_tail = _log_f_tail(f_stat, df1, df_prior)
    rank = stats.rankdata(f_stat)
    log_not_outlier = np.minimum(log_tail - (np.log(n - rank + 0.5) - np.log(n)), 0)
    if np.isinf(df_prior):
        shrunk = np.full(n, np.inf)
        outlying = log_not_outlier < 0
        if outlying.any():
            shrunk[outlying] = np.exp(log_not_outlier[outlying]) * n * df1
            order = np.argsort(log_tail, kind="stable")
            shrunk[order] = np.maximum.accumulate(shrunk[order])
        return shrunk
    if not (log_not_outlier < 0).any():
        return np.full(n, df_prior)
    not_outlier = np.exp(log_not_outlier)
    min_log_tail = log_tail.min()
    if np.isinf(min_log_tail):
        shrunk = not_outlier * df_prior
    else:  # the outlier df that puts the largest F at the median of its distribution
        df_outlier = np.log(0.5) / min_log_tail * df_prior
        df_outlier = np.log(0.5) / _log_f_tail(f_stat.max(), df1, df_outlier) * df_outlier
        shrunk = not_outlier * df_prior - np.expm1(log_not_outlier) * df_outlier
    order = np.argsort(log_tail, kind="stable")
    ordered = shrunk[order]
    running_mean = np.cumsum(ordered) / np.arange(1, n + 1)
    lowest = int(np.argmin(running_mean))
    ordered[: lowest + 1] = running_mean[lowest]
    shrunk[order] = np.maximum.accumulate(ordered)
    return shrunk

"""Proportional-odds models with each feature as a predictor of an ordinal outcome, batched.

For every feature j: P(y <= k) = logistic(theta_k - feature_j * beta - covariates' gamma), the
cumulative logit model of statsmodels' ``OrderedModel(distr="logit")`` (a positive beta shifts
patients to higher categories). Newton's method runs on a chunk of features at once: the score and
the information of every feature's fit are formed together over the observed-value mask, and a
step that does not increase a fit's log-likelihood (or leaves its thresholds out of order) is
halved for that fit alone. The covariance is the inverse observed information, as in statsmodels.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from stratomics.associate.linear import invert_stack
from stratomics.associate.predictor import NOT_ESTIMABLE, PredictorFit, feature_cross, in_chunks, weighted_gram

MAX_ITER, TOLERANCE, MAX_HALVINGS = 50, 1e-8, 30


def fit_ordinal_predictor(codes: np.ndarray, features: np.ndarray, covariates: np.ndarray, *,
                          threads: int | None = None) -> PredictorFit:  # fmt: skip
    """Proportional-odds fit of codes ~ feature_j + covariates for every feature j.

    Parameters
    ----------
    codes
        Ordered category per patient as 0..K-1 (every category observed, no missing values).
    features
        Patients x features, NaN where missing (such patients leave that feature's fit).
    covariates
        Patients x q covariates without intercept (the thresholds play its part).
    threads
        Worker threads; the results do not depend on it.

    Returns
    -------
    The fits (the feature's coefficient first, then the covariates', then the K-1 thresholds).
    """
    return in_chunks(_fit_chunk, features, np.asarray(codes, dtype=int), covariates, threads=threads)


def _fit_chunk(features, codes, covariates) -> PredictorFit:
    """Newton's method with per-fit step halving on one chunk of features."""
    observed = ~np.isnan(features)
    values = np.where(observed, features, 0.0)
    weights = observed.astype(float)
    m, p = values.shape[1], covariates.shape[1] + 1
    params = np.zeros((m, p + codes.max()))
    shares = np.cumsum(np.bincount(codes))[:-1] / len(codes)
    params[:, p:] = special.logit(shares)  # thresholds of the model without predictors
    loglik = _loglik(params, values, weights, codes, covariates)
    converged = np.zeros(m, bool)
    for _ in range(MAX_ITER):
        score, information = _score_information(params, values, weights, codes, covariates)
        inverse, usable = invert_stack(information)
        step = np.where(usable[:, None], np.einsum("jkl,jl->jk", inverse, score), 0.0)
        step[converged] = 0.0
        params, loglik = _halve_until_better(params, step, loglik, values, weights, codes, covariates)
        converged |= np.abs(step).max(axis=1) < TOLERANCE * (1 + np.abs(params).max(axis=1))
        if converged.all():
            break
    _, information = _score_information(params, values, weights, codes, covariates)
    covariance, usable = invert_stack(information)
    n = observed.sum(axis=0)
    note = np.where(usable, "", NOT_ESTIMABLE)
    return PredictorFit(coef=params, covariance=covariance, n=n, n_events=np.full(m, np.nan),
                        converged=converged & usable, note=note)  # fmt: skip


def _cumulative(params, values, codes, covariates, p):
    """logistic(theta - eta) at each patient's upper and lower thresholds (1 and 0 beyond the ends)."""
    eta = values * params[:, 0] + covariates @ params[:, 1:p].T
    thresholds = np.column_stack([np.full(len(params), -np.inf), params[:, p:], np.full(len(params), np.inf)])
    above = thresholds[:, codes + 1].T - eta
    below = thresholds[:, codes].T - eta
    return special.expit(above), special.expit(below)


def _loglik(params, values, weights, codes, covariates) -> np.ndarray:
    """Log-likelihood of every fit (-inf where its thresholds are out of order)."""
    p = covariates.shape[1] + 1
    high, low = _cumulative(params, values, codes, covariates, p)
    total = (weights * np.log(np.maximum(high - low, 1e-300))).sum(axis=0)
    ordered = (np.diff(params[:, p:], axis=1) > 0).all(axis=1)
    return np.where(ordered & np.isfinite(total), total, -np.inf)


def _score_information(params, values, weights, codes, covariates):
    """Score vector and observed information of every fit: features x P and features x P x P."""
    p = covariates.shape[1] + 1
    categories = np.eye(codes.max() + 1)[codes]
    upper, lower = categories[:, :-1], categories[:, 1:]  # the thresholds above and below each patient's category
    high, low = _cumulative(params, values, codes, covariates, p)
    prob = np.maximum(high - low, 1e-300)
    density_high, density_low = high * (1 - high), low * (1 - low)
    slope_high, slope_low = density_high * (1 - 2 * high), density_low * (1 - 2 * low)
    a, b = density_high / prob, density_low / prob  # d log p / d theta_upper and -d/d theta_lower
    h_eta = (slope_high - slope_low) / prob - (a - b) ** 2
    h_upper, h_lower = slope_high / prob - a**2, -slope_low / prob - b**2
    h_upper_eta, h_lower_eta = -slope_high / prob + a * (a - b), slope_low / prob - b * (a - b)
    score = np.column_stack([feature_cross(-weights * (a - b), values, covariates),
                             (upper.T @ (weights * a) - lower.T @ (weights * b)).T])  # fmt: skip
    k = upper.shape[1]
    information = np.empty((values.shape[1], p + k, p + k))
    information[:, :p, :p] = -weighted_gram(weights * h_eta, values, covariates)
    cross = np.stack([feature_cross(weights * (h_upper_eta * upper[:, [c]] + h_lower_eta * lower[:, [c]]), values, covariates)
                      for c in range(k)], axis=1)  # fmt: skip
    information[:, p:, :p], information[:, :p, p:] = -cross, -cross.transpose(0, 2, 1)
    information[:, p:, p:] = -(_pair_sums(upper, upper, weights * h_upper) + _pair_sums(lower, lower, weights * h_lower)
                               + _pair_sums(upper, lower, weights * a * b) + _pair_sums(lower, upper, weights * a * b))  # fmt: skip
    return score, information


def _pair_sums(left, right, per_fit):
    """sum_n left[n, k] right[n, l] per_fit[n, j] for every fit j (fits x K x L), as one matrix product."""
    pairs = (left[:, :, None] * right[:, None, :]).reshape(len(left), -1)
    return (pairs.T @ per_fit).T.reshape(per_fit.shape[1], left.shape[1], right.shape[1])


def _halve_until_better(params, step, loglik, values, weights, codes, covariates):
    """Take each fit's Newton step, halved until its log-likelihood does not fall; the new params and log-likelihoods."""
    scale = np.ones(len(params))
    for _ in range(MAX_HALVINGS):
        trial = params + scale[:, None] * step
        trial_loglik = _loglik(trial, values, weights, codes, covariates)
        worse = trial_loglik < loglik - 1e-12 * np.abs(loglik)
        if not worse.any():
            break
        scale[worse] /= 2
    keep = trial_loglik >= loglik - 1e-12 * np.abs(loglik)
    return np.where(keep[:, None], trial, params), np.where(keep, trial_loglik, loglik)

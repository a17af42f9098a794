"""Performance measures of risk predictions, and patient-bootstrap confidence intervals.

Binary outcomes: AUC, Brier score, calibration intercept (calibration-in-the-large: logistic model
of the outcome with the predicted log-odds as offset) and calibration slope (logistic model of the
outcome on the predicted log-odds), decision-curve net benefit. Survival outcomes: Harrell's
C-index and the cumulative/dynamic time-dependent AUC (Uno's inverse-probability-of-censoring
weights, as scikit-survival computes it).

Every measure is computed for many resamples at once: a resample is a row of patient weights (how
often each patient was drawn). The rank measures never form patient pairs: AUCs come from
cumulative weights of the sorted controls, Harrell's C from a Fenwick tree over risk ranks walked
in time order (O(n log n) per resample), so the bootstrap stays fast at 10,000 patients. Agreement with scikit-learn, statsmodels, lifelines and
scikit-survival on explicitly resampled data is tested.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
from scipy import stats

EPSILON = 1e-6


#: Risks closer than this count as tied in the time-dependent AUC (scikit-survival's tied_tol).
TIED_TOLERANCE = 1e-8


def _weighted_below(higher: np.ndarray, lower: np.ndarray, lower_weights: np.ndarray, tolerance: float = 0.0):
    """For every resample b and every i: the weight of the ``lower`` values below ``higher[i]``, ties
    (within ``tolerance``) counting one half: sum_j lower_weights[b, j] ([higher_i - lower_j > tolerance]
    + [|higher_i - lower_j| <= tolerance] / 2). From cumulative weights of the sorted ``lower``: resamples x i.
    """
    order = np.argsort(lower, kind="stable")
    ordered = lower[order]
    cumulative = np.concatenate([np.zeros((len(lower_weights), 1)), np.cumsum(lower_weights[:, order], axis=1)], axis=1)
    below = np.searchsorted(ordered, higher - tolerance, side="left")
    up_to = np.searchsorted(ordered, higher + tolerance, side="right")
    return cumulative[:, below] + 0.5 * (cumulative[:, up_to] - cumulative[:, below])


@numba.njit(cache=True, nogil=True)
def _harrell_sums(group_starts, censored_first, rank, weights, n_ranks):
    """Concordant and comparable weight sums of Harrell's C for every resample (row of ``weights``).

    Patients come sorted by decreasing time, and within each group of equal times censored ones
    first (``group_starts``: each group's first position; ``censored_first[k]``: position where
    the group's events begin). Each resample walks the groups with a Fenwick tree of the weights
    of the patients already passed (later times) by risk rank: a group's censored patients join
    the tree before its events are scored (a censored time equal to an event time counts as
    later), its events after (events at the same time are not comparable).
    """
    n_resamples, n = weights.shape
    concordant, pairs = np.zeros(n_resamples), np.zeros(n_resamples)
    for b in range(n_resamples):
        tree = np.zeros(n_ranks + 1)
        total = 0.0
        for k in range(len(group_starts)):
            start, events_from = group_starts[k], censored_first[k]
            stop = group_starts[k + 1] if k + 1 < len(group_starts) else n
            for i in range(start, events_from):
                total += _fenwick_add(tree, rank[i], weights[b, i])
            for i in range(events_from, stop):
                w = weights[b, i]
                if w > 0:
                    less = _fenwick_sum(tree, rank[i])  # ranks below rank[i]
                    equal = _fenwick_sum(tree, rank[i] + 1) - less
                    concordant[b] += w * (less + 0.5 * equal)
                    pairs[b] += w * total
            for i in range(events_from, stop):
                total += _fenwick_add(tree, rank[i], weights[b, i])
    return concordant, pairs


@numba.njit(cache=True, nogil=True)
def _fenwick_add(tree, position, value):
    """Add ``value`` at 0-based ``position``; returns ``value``."""
    index = position + 1
    while index < len(tree):
        tree[index] += value
        index += index & -index
    return value


@numba.njit(cache=True, nogil=True)
def _fenwick_sum(tree, count):
    """Sum of the values at positions 0 .. count - 1."""
    total = 0.0
    index = count
    while index > 0:
        total += tree[index]
        index -= index & -index
    return total


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is zero."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def auc(y: np.ndarray, risk: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | float:
    """Area under the ROC curve (Mann-Whitney, ties count one half), per row of patient ``weights``.

    Parameters
    ----------
    y, risk
        0/1 outcome and predicted risk of each patient.
    weights
        Resamples x patients (how often each patient is drawn); None: each patient once, and a float is returned.

    Returns
    -------
    The AUC of each resample (NaN without cases or without controls).
    """
    W = np.ones((1, len(y))) if weights is None else weights
    cases, controls = y == 1, y == 0
    concordant = np.sum(W[:, cases] * _weighted_below(risk[cases], risk[controls], W[:, controls]), axis=1)
    values = _ratio(concordant, W[:, cases].sum(axis=1) * W[:, controls].sum(axis=1))
    return values[0] if weights is None else values


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPSILON, 1 - EPSILON)
    return np.log(p / (1 - p))


@numba.njit(cache=True, nogil=True)
def _logistic_sums(y, design, weights, offset, beta):
    """Score and information of a logistic model at ``beta`` (resamples x terms) for each row of
    patient ``weights``, in one pass over the patients drawn: (resamples x terms, resamples x terms x terms)."""
    n_resamples, n_terms = beta.shape
    score = np.zeros((n_resamples, n_terms))
    information = np.zeros((n_resamples, n_terms, n_terms))
    for b in range(n_resamples):
        for i in range(len(y)):
            w = weights[b, i]
            if w == 0:
                continue
            eta = offset[i]
            for j in range(n_terms):
                eta += beta[b, j] * design[i, j]
            mu = 1.0 / (1.0 + np.exp(-eta))
            residual, curvature = w * (y[i] - mu), w * mu * (1.0 - mu)
            for j in range(n_terms):
                score[b, j] += residual * design[i, j]
                for k in range(n_terms):
                    information[b, j, k] += curvature * design[i, j] * design[i, k]
    return score, information


def _weighted_logistic(y: np.ndarray, design: np.ndarray, weights: np.ndarray, offset: np.ndarray,
                       start: np.ndarray | None = None, max_iter: int = 50) -> np.ndarray:  # fmt: skip
    """Maximum-likelihood logistic coefficients (Newton from ``start``, default 0) of each row of
    patient weights: resamples x terms."""
    y, design, offset = (np.ascontiguousarray(values, dtype=float) for values in (y, design, offset))
    beta = np.zeros((len(weights), design.shape[1])) + (0 if start is None else start)
    running = np.arange(len(weights))  # resamples not converged yet
    for _ in range(max_iter):
        score, information = _logistic_sums(y, design, np.ascontiguousarray(weights[running]), offset, beta[running])
        step = (np.linalg.pinv(information) @ score[..., None])[..., 0]
        beta[running] += step
        running = running[np.abs(step).max(axis=1) >= 1e-12 * (1 + np.abs(beta[running]).max(axis=1))]
        if not len(running):
            break
    return beta


def calibration(y: np.ndarray, p: np.ndarray, weights: np.ndarray | None = None):
    """Calibration intercept (with the log-odds as offset) and slope (on the log-odds).

    Returns
    -------
    (intercept, slope): floats, or arrays over the rows of ``weights`` (resamples x patients).
    """
    W = np.ones((1, len(y))) if weights is None else weights
    log_odds = _logit(p)
    ones, each_once = np.ones((len(y), 1)), np.ones((1, len(y)))
    fits = []
    for design, offset in [(ones, log_odds), (np.column_stack([ones, log_odds]), np.zeros(len(y)))]:
        whole_sample = _weighted_logistic(y, design, each_once, offset)  # a close start for every resample
        fits.append(_weighted_logistic(y, design, W, offset, start=whole_sample))
    intercept, slope = fits[0][:, 0], fits[1][:, 1]
    return (intercept[0], slope[0]) if weights is None else (intercept, slope)


def binary_metrics(y: np.ndarray, p: np.ndarray, weights: np.ndarray | None = None):
    """AUC, Brier score, calibration intercept and slope of predicted probabilities.

    Parameters
    ----------
    y, p
        0/1 outcome and predicted probability of each patient.
    weights
        Resamples x patients; None: each patient once.

    Returns
    -------
    A dict of floats (``weights`` None; NaN without patients) or a frame with one row per resample.
    """
    W = np.ones((1, len(y))) if weights is None else weights
    metrics = pd.DataFrame({"auc": np.nan, "brier": np.nan, "calibration_intercept": np.nan,
                            "calibration_slope": np.nan}, index=range(len(W)))  # fmt: skip
    if len(y):
        intercept, slope = calibration(y, p, W)
        metrics = metrics.assign(auc=auc(y, p, W), brier=_ratio(W @ (p - y) ** 2, W.sum(axis=1)),
                                 calibration_intercept=intercept, calibration_slope=slope)  # fmt: skip
    return metrics.iloc[0].to_dict() if weights is None else metrics


def concordance_index(time: np.ndarray, event: np.ndarray, risk: np.ndarray, *, weights: np.ndarray) -> np.ndarray:
    """Harrell's C of each row of patient weights, with lifelines' rules for ties.

    A pair is comparable when the earlier time is an event, or when a censored time equals an
    event time (censored counts as later); two events at the same time are not comparable.
    Tied risks count one half. NaN without a comparable pair.
    """
    event = event.astype(bool)
    order = np.lexsort((event, -time))  # decreasing time, censored before events within a time
    time, event = time[order], event[order]
    group_starts = np.flatnonzero(np.r_[True, time[1:] != time[:-1]])
    censored_first = group_starts + np.add.reduceat((~event).astype(int), group_starts) if len(time) else group_starts
    _, rank = np.unique(risk[order], return_inverse=True)
    concordant, pairs = _harrell_sums(group_starts, censored_first, rank, np.ascontiguousarray(weights[:, order]),
                                      rank.max() + 1 if len(rank) else 0)  # fmt: skip
    return _ratio(concordant, pairs)


def censoring_survival(time: np.ndarray, event: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Kaplan-Meier estimate of the censoring distribution G(t) at each patient's own time, per resample.

    As scikit-survival's ``CensoringDistributionEstimator``: events at a time leave the risk set
    before the censorings of that time, and G includes the drop at t.

    Returns
    -------
    Resamples x patients.
    """
    order = np.argsort(time, kind="mergesort")
    unique, first = np.unique(time[order], return_index=True)
    W = weights[:, order]
    total = np.add.reduceat(W, first, axis=1)
    events = np.add.reduceat(W * event[order], first, axis=1)
    at_risk = W.sum(axis=1, keepdims=True) - np.cumsum(total, axis=1) + total
    censored = total - events
    ratio = np.divide(censored, at_risk - events, out=np.zeros_like(censored), where=censored != 0)
    return np.cumprod(1 - ratio, axis=1)[:, np.searchsorted(unique, time)]


def time_dependent_auc(time: np.ndarray, event: np.ndarray, risk: np.ndarray, *, weights: np.ndarray,
                       horizons) -> np.ndarray:  # fmt: skip
    """Cumulative/dynamic AUC at each horizon with Uno's censoring weights, per row of patient weights.

    Cases had the event by the horizon (weighted by 1 / G(t)), controls are event-free after it
    (scikit-survival's ``cumulative_dynamic_auc`` with the same data for training and test).
    NaN where the horizon is not after the first event and before the last time, or where G is 0
    at an event time (scikit-survival refuses those). Returns resamples x horizons.
    """
    event = event.astype(bool)
    G = censoring_survival(time, event, weights)  # once for every horizon
    present_event = (weights > 0) & event
    first_event = np.where(present_event, time, np.inf).min(axis=1)
    last_time = np.where(weights > 0, time, -np.inf).max(axis=1)
    estimable = ~(present_event & (G == 0)).any(axis=1)
    case_weights = np.where(G > 0, weights / np.where(G > 0, G, 1), 0)
    columns = []
    for horizon in horizons:
        cases, controls = event & (time <= horizon), time > horizon
        below = _weighted_below(risk[cases], risk[controls], weights[:, controls], TIED_TOLERANCE)
        concordant = np.sum(case_weights[:, cases] * below, axis=1)
        values = _ratio(concordant, case_weights[:, cases].sum(axis=1) * weights[:, controls].sum(axis=1))
        columns.append(np.where((first_event < horizon) & (horizon < last_time) & estimable, values, np.nan))
    return np.column_stack(columns) if columns else np.zeros((len(weights), 0))


def survival_metrics(time: np.ndarray, event: np.ndarray, risk: np.ndarray, *, horizons, weights=None):
    """Harrell's C-index and the time-dependent AUC at each horizon (days) inside the follow-up.

    Parameters
    ----------
    time, event, risk
        Follow-up, event indicator and risk score (higher: earlier event) of each patient.
    horizons
        Days of the time-dependent AUCs.
    weights
        Resamples x patients; None: each patient once.

    Returns
    -------
    A dict of floats (``weights`` None) or a frame with one row per resample; every measure is
    NaN where no pair of patients is comparable.
    """
    W = np.ones((1, len(time))) if weights is None else weights
    c_index = concordance_index(time, event, risk, weights=W)
    metrics = pd.DataFrame({"c_index": c_index})
    aucs = time_dependent_auc(time, event, risk, weights=W, horizons=horizons)
    for column, horizon in enumerate(horizons):
        metrics[f"auc_{horizon:g}d"] = np.where(np.isnan(c_index), np.nan, aucs[:, column])
    return metrics.iloc[0].to_dict() if weights is None else metrics


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Net benefit of treating patients with risk >= threshold: TP/n - FP/n * t / (1 - t)."""
    treated = p[None, :] >= thresholds[:, None]
    true_positive = (treated & (y == 1)).sum(axis=1) / len(y)
    false_positive = (treated & (y == 0)).sum(axis=1) / len(y)
    return true_positive - false_positive * thresholds / (1 - thresholds)


def bootstrap_counts(n_patients: int, *, n_bootstrap: int, seed: int) -> np.ndarray:
    """Patient bootstrap resamples as weights: resamples x patients, how often each patient is drawn."""
    rng = np.random.default_rng(seed)
    return np.stack([np.bincount(rng.integers(0, n_patients, n_patients), minlength=n_patients)
                     for _ in range(n_bootstrap)]).astype(float)  # fmt: skip


def bootstrap_intervals(statistic, n_patients: int, *, n_bootstrap: int, seed: int, threads: int = 1,
                        estimate: pd.Series | None = None) -> pd.DataFrame:  # fmt: skip
    """Percentile 95% intervals of a statistic of resampled patients, or normal ones around ``estimate``.

    Parameters
    ----------
    statistic
        Function of patient weights (resamples x patients) returning a frame with one row per resample.
    n_patients, n_bootstrap, seed
        Patients to resample with replacement, resamples, random seed.
    threads
        Batches of 100 resamples scored at once (the numbers do not depend on it).
    estimate
        The statistic of the whole sample (indexed by its columns): when given, the intervals are
        estimate -/+ 1.96 bootstrap standard deviations (Efron's standard interval).

    Returns
    -------
    One row per column of the statistic: ci_low, ci_high (NaN-robust over resamples).
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    counts = bootstrap_counts(n_patients, n_bootstrap=n_bootstrap, seed=seed)
    batches = np.array_split(counts, max(1, len(counts) // 100))
    with threadpool_limits(1 if threads > 1 else None), ThreadPoolExecutor(threads) as pool:
        draws = pd.concat(list(pool.map(statistic, batches)), ignore_index=True)
    return interval_bounds(draws, estimate)


def interval_bounds(draws: pd.DataFrame, estimate=None) -> pd.DataFrame:
    """95% bounds of each column of resampled statistics (NaN-robust over the resamples).

    Parameters
    ----------
    draws
        One row per resample, one column per statistic.
    estimate
        The statistics of the whole sample (indexed like ``draws``' columns): when given, the bounds
        are estimate -/+ 1.96 resampling standard deviations; otherwise the 2.5th and 97.5th percentiles.

    Returns
    -------
    One row per column of ``draws``: ci_low, ci_high.
    """
    if estimate is not None:
        spread = stats.norm.ppf(0.975) * draws.std()
        return pd.DataFrame({"ci_low": estimate - spread, "ci_high": estimate + spread})
    return pd.DataFrame({"ci_low": draws.quantile(0.025), "ci_high": draws.quantile(0.975)})

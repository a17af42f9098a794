"""Cox proportional hazards of time to event on [feature_j, covariates] for every feature j.

Newton-Raphson on the partial likelihood with Efron's handling of tied event times, batched over
features: risk-set sums come from cumulative sums over patients sorted by time, for all features of
a chunk at once. Starts from the covariates-only fit, so a few steps suffice.
"""

from __future__ import annotations

import numba
import numpy as np

from stratomics.associate.linear import invert_stack
from stratomics.associate.predictor import PredictorFit, weighted_gram, predictor_fit, in_chunks

CHUNK_FEATURES = 128  # small chunks keep the working arrays in cache


@numba.njit(cache=True, nogil=True)
def _risk_set_sums(risk, feature, covariates, ends):
    """Sums over patients 0..ends[g] of risk_ij and of risk_ij x_ij, x = [feature_j, covariates].

    One pass over the patients with running sums (numpy's cumulative sum along patients was 5-20x
    slower here), storing them at the ends of the event groups only.

    Returns
    -------
    groups x features (risk) and groups x features x p (risk times the design).
    """
    n, m = risk.shape
    q = covariates.shape[1]
    total, weighted = np.zeros(m), np.zeros((m, q + 1))
    at_ends, weighted_at_ends = np.empty((len(ends), m)), np.empty((len(ends), m, q + 1))
    group = 0
    for i in range(n):
        for j in range(m):
            r = risk[i, j]
            total[j] += r
            weighted[j, 0] += r * feature[i, j]
            for k in range(q):
                weighted[j, k + 1] += r * covariates[i, k]
        while group < len(ends) and ends[group] == i:
            for j in range(m):  # element by element: slice assignment took most of the compile time
                at_ends[group, j] = total[j]
                for k in range(q + 1):
                    weighted_at_ends[group, j, k] = weighted[j, k]
            group += 1
    return at_ends, weighted_at_ends


def _efron_derivatives(order_data, beta, feature, covariates, present):
    """Log partial likelihood, gradient and Hessian (Efron ties) of [feature_j, covariates] models.

    The Hessian's second-moment term sum_g sum_l S2_gl / D_gl is computed as sum_i w_i x_i x_i' with
    per-patient weights (each patient's share of the risk sets it belongs to), by matrix products.

    Parameters
    ----------
    order_data
        (event indicator, end position of each tie group with an event) of patients sorted by
        decreasing time, events first within a tie.
    beta
        Features x p coefficients (feature first).
    feature
        Patients x features (sorted like ``order_data``), 0 where not present.
    covariates
        Patients x q covariates.
    present
        Patients x features: whether the patient counts for that feature.

    Returns
    -------
    loglik (features), gradient (features x p), hessian (features x p x p).
    """
    event, ends = order_data
    eta = feature * beta[:, 0] + covariates @ beta[:, 1:].T
    shift = eta.max(axis=0, where=present, initial=-np.inf)
    risk = np.where(present, np.exp(eta - shift), 0.0)
    dead = event[:, None] & present
    dead_risk = np.where(dead, risk, 0.0)

    def design_sums(weights, rows=slice(None)):  # w x per patient, x = [feature, covariates]
        return np.concatenate([(weights * feature[rows])[:, :, None],
                               weights[:, :, None] * covariates[rows][:, None, :]], axis=2)  # fmt: skip

    contiguous = np.ascontiguousarray  # one compiled signature for every caller
    s0, s1 = _risk_set_sums(contiguous(risk), contiguous(feature), contiguous(covariates), ends)
    starts = np.concatenate([[0], ends[:-1] + 1])  # each group's rows: censored ones after the previous group's
    counts = np.add.reduceat(dead.astype(np.int64), starts, axis=0)  # (rows after the last group have no event)
    e0, e1 = np.zeros_like(s0), np.zeros_like(s1)  # sums over each group's events: needed for ties only
    tied = np.flatnonzero(counts.max(axis=1) > 1)
    if len(tied):
        rows = np.concatenate([np.arange(a, b + 1) for a, b in zip(starts[tied], ends[tied])])
        offsets = np.searchsorted(rows, starts[tied])
        e0[tied] = np.add.reduceat(dead_risk[rows], offsets, axis=0)
        e1[tied] = np.add.reduceat(design_sums(dead_risk[rows], rows), offsets, axis=0)
    loglik = np.where(dead, eta, 0.0).sum(axis=0)
    gradient = np.column_stack([np.where(dead, feature, 0.0).sum(axis=0), dead.T @ covariates])
    hessian = np.zeros(beta.shape + (beta.shape[1],))
    share = np.zeros_like(s0)  # sum over tied terms of 1 / D_gl: weight of the whole risk set
    tied_share = np.zeros_like(s0)  # sum of (l / d) / D_gl: weight taken from the tied events
    most = counts.max(axis=1)
    for tie in range(int(most.max(initial=0))):  # the l-th tied event of every group with more than l
        groups = np.flatnonzero(most > tie)
        active = counts[groups] > tie
        fraction = np.where(active, tie / np.maximum(counts[groups], 1), 0.0)
        denominator = np.where(active, s0[groups] - fraction * e0[groups], 1.0)
        mean = np.where(active[..., None], (s1[groups] - fraction[..., None] * e1[groups]) / denominator[..., None], 0.0)
        loglik -= np.where(active, np.log(denominator) + shift, 0.0).sum(axis=0)
        gradient -= mean.sum(axis=0)
        hessian -= np.matmul(mean.transpose(1, 2, 0), mean.transpose(1, 0, 2))
        share[groups] += np.where(active, 1 / denominator, 0.0)
        tied_share[groups] += np.where(active, fraction / denominator, 0.0)
    # patient i belongs to the risk sets of the groups ending at or after its position
    first_group = np.searchsorted(ends, np.arange(len(event)))
    cumulative = np.vstack([np.cumsum(share[::-1], axis=0)[::-1], np.zeros((1, share.shape[1]))])
    weight = risk * cumulative[first_group] - dead_risk * tied_share[np.minimum(first_group, len(ends) - 1)]
    return loglik, gradient, hessian + weighted_gram(weight, feature, covariates)


def _sort_by_time(time: np.ndarray, event: np.ndarray):
    """Order patients by decreasing time (events first among equal times); end of each tie group
    that holds an event."""
    event = event.astype(bool)
    order = np.lexsort((~event, -time))
    sorted_time, sorted_event = time[order], event[order]
    last_of_tie = np.append(sorted_time[1:] != sorted_time[:-1], True)
    group = np.concatenate([[0], np.cumsum(last_of_tie[:-1])])
    has_event = np.zeros(group[-1] + 1, dtype=bool)
    has_event[group[sorted_event]] = True
    ends = np.flatnonzero(last_of_tie)[has_event]
    return order, (sorted_event, ends)


def fit_cox_predictor(
    time: np.ndarray,
    event: np.ndarray,
    features: np.ndarray,
    *,
    covariates: np.ndarray,
    max_iter: int = 30,
    tol: float = 1e-9,
    threads: int | None = None,
) -> PredictorFit:
    """Cox model of (time, event) on [feature_j, covariates] for every feature j, Efron ties.

    Parameters
    ----------
    time, event
        Follow-up time and event indicator (0/1) per patient, no missing values.
    features
        Patients x features, NaN where missing.
    covariates
        Patients x q covariates without intercept (may have zero columns).
    threads
        Worker threads (default: all available); the results do not depend on it.

    Returns
    -------
    The fits (Wald z-tests on the log hazard ratio).
    """
    order, order_data = _sort_by_time(np.asarray(time, float), np.asarray(event))
    features, covariates = features[order], covariates[order]
    start = _covariates_only_fit(order_data, covariates, max_iter, tol)
    return in_chunks(_fit_cox_chunk, features, order_data, covariates, start, max_iter=max_iter, tol=tol,
                     size=CHUNK_FEATURES, threads=threads)  # fmt: skip


def _fit_cox_chunk(features, order_data, covariates, start, *, max_iter, tol) -> PredictorFit:
    """:func:`fit_cox_predictor` on one chunk of features (patients sorted by time)."""
    present = np.isfinite(features)
    feature = np.where(present, features, 0.0)
    beta = np.tile(np.concatenate([[0.0], start]), (features.shape[1], 1))
    done = np.zeros(features.shape[1], dtype=bool)
    for _ in range(max_iter):
        _, gradient, hessian = _efron_derivatives(order_data, beta, feature, covariates, present)
        inverse, usable = invert_stack(hessian)
        delta = np.einsum("jkl,jl->jk", np.nan_to_num(inverse), gradient)
        beta += np.where((usable & ~done)[:, None], delta, 0.0)
        # the information matrix of a step below tol serves as the final covariance
        done |= np.abs(delta).max(axis=1) < tol * (1 + np.abs(beta).max(axis=1))
        if done.all():
            break
    coef, covariance, converged = beta, inverse, done & usable
    events = (present & order_data[0][:, None]).sum(axis=0)
    diverged = (np.abs(coef) > 20).any(axis=1)
    note = np.where(diverged, "monotone likelihood (separation): no finite estimate",
                    np.where(~converged, "did not converge", ""))  # fmt: skip
    return predictor_fit(coef, covariance, converged & ~diverged, n=present.sum(axis=0), events=events,
                         converged=converged, note=note)


def _covariates_only_fit(order_data, covariates: np.ndarray, max_iter: int, tol: float) -> np.ndarray:
    """Coefficients of the Cox model on the covariates alone (the starting point)."""
    q = covariates.shape[1]
    if q == 0:
        return np.zeros(0)
    # the covariates-only model is the [feature, covariates] model with the first covariate as
    # "feature" and the rest as covariates
    feature, rest = covariates[:, :1], covariates[:, 1:]
    present = np.ones_like(feature, dtype=bool)
    beta = np.zeros((1, q))
    for _ in range(max_iter):
        _, gradient, hessian = _efron_derivatives(order_data, beta, feature, rest, present)
        delta = np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
        beta += delta
        if np.abs(delta).max() < tol * (1 + np.abs(beta).max()):
            break
    return beta[0]

"""Permutation p-values of subgroup tests, with the test statistic of every permutation at once.

The subgroup labels of the permutations are one-hot indicators (permutations x patients x
subgroups); each statistic below is written with sums over patients of those indicators (events,
rank sums, risk sets), so that a batch of permutations costs a few array operations instead of one
call of scipy or lifelines per permutation. Each equals its library counterpart (tested):
log-rank (lifelines' ``multivariate_logrank_test``), chi-square (scipy's ``chi2_contingency``,
with Yates' correction on 2 x 2 tables), one-way ANOVA F (``f_oneway``) and Kruskal-Wallis H
(``kruskal``, tie-corrected).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

#: Indicator values held at once (permutations x patients x subgroups) when permutations are batched.
BATCH_VALUES = 4_000_000

Statistic = Callable[[np.ndarray], np.ndarray]


def permutation_p(statistic: Statistic, labels: np.ndarray, *, n_permutations: int, seed: int) -> float:
    """Share of label permutations whose statistic reaches the observed one (with the +1 correction).

    Parameters
    ----------
    statistic
        Maps indicators (batch x patients x subgroups) to one statistic per batch row.
    labels
        The subgroup of each patient.
    n_permutations, seed
        Permutations, drawn one after another with ``numpy.random.default_rng(seed).permutation``.

    Returns
    -------
    (1 + #{permuted >= observed}) / (1 + n_permutations); NaN when the observed statistic is not
    finite (no variation to test).
    """
    levels, codes = np.unique(labels, return_inverse=True)  # integer codes: permuted and compared fast
    rng = np.random.default_rng(seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = statistic(_indicators(codes[None], len(levels)))[0]
    if not np.isfinite(observed):  # e.g. an outcome without variation: no test, not p = 1 / (1 + n)
        return np.nan
    batch = max(1, BATCH_VALUES // (len(labels) * len(levels)))
    exceed, done = 0, 0
    while done < n_permutations:
        size = min(batch, n_permutations - done)
        permuted = np.array([rng.permutation(codes) for _ in range(size)])
        exceed += int((statistic(_indicators(permuted, len(levels))) >= observed).sum())
        done += size
    return (1 + exceed) / (1 + n_permutations)


def _indicators(codes: np.ndarray, n_levels: int) -> np.ndarray:
    """One-hot float indicators (rows x patients x levels) of integer subgroup codes."""
    return (codes[:, :, None] == np.arange(n_levels)).astype(float)


def chi_square(y: np.ndarray) -> Statistic:
    """Pearson's chi-square of subgroups x binary ``y`` (Yates' correction with two subgroups)."""
    y = np.asarray(y, dtype=float)

    def statistic(indicators):
        sizes = indicators.sum(axis=1)  # batch x subgroups
        events = np.einsum("bik,i->bk", indicators, y)
        observed = np.stack([sizes - events, events], axis=2)
        expected = sizes[:, :, None] * np.array([1 - y.mean(), y.mean()])
        difference = np.abs(observed - expected)
        if indicators.shape[2] == 2:  # one degree of freedom: Yates
            difference = np.maximum(difference - 0.5, 0.0)
        return (difference**2 / expected).sum(axis=(1, 2))

    return statistic


def anova_f(y: np.ndarray) -> Statistic:
    """One-way ANOVA F of ``y`` across subgroups."""
    y = np.asarray(y, dtype=float)
    n, total = len(y), ((y - y.mean()) ** 2).sum()

    def statistic(indicators):
        sizes = indicators.sum(axis=1)
        means = np.einsum("bik,i->bk", indicators, y) / sizes
        between = (sizes * (means - y.mean()) ** 2).sum(axis=1)
        k = indicators.shape[2]
        return (between / (k - 1)) / ((total - between) / (n - k))

    return statistic


def kruskal_h(y: np.ndarray) -> Statistic:
    """Kruskal-Wallis H of ``y`` across subgroups, corrected for ties."""
    ranks = stats.rankdata(y)
    n = len(y)
    _, ties = np.unique(y, return_counts=True)
    correction = 1 - (ties**3 - ties).sum() / (n**3 - n)

    def statistic(indicators):
        sizes = indicators.sum(axis=1)
        rank_sums = np.einsum("bik,i->bk", indicators, ranks)
        return (12 / (n * (n + 1)) * (rank_sums**2 / sizes).sum(axis=1) - 3 * (n + 1)) / correction

    return statistic


def logrank(time: np.ndarray, event: np.ndarray) -> Statistic:
    """Log-rank chi-square across subgroups (K - 1 degrees of freedom)."""
    order = np.argsort(time, kind="stable")
    time, event = np.asarray(time, dtype=float)[order], np.asarray(event, dtype=bool)[order]
    event_times = np.unique(time[event])
    first = np.searchsorted(time, event_times, side="left")  # risk set: every patient from here on
    last = np.searchsorted(time, event_times, side="right")
    at_risk_total = (len(time) - first).astype(float)
    events_before = np.concatenate([[0.0], np.cumsum(event)])
    deaths_total = events_before[last] - events_before[first]
    spread = np.where(at_risk_total > 1, deaths_total * (at_risk_total - deaths_total) / (at_risk_total - 1), 0.0)

    def statistic(indicators):
        indicators = indicators[:, order]
        after = np.cumsum(indicators[:, ::-1], axis=1)[:, ::-1]  # patients at or after each position
        at_risk = after[:, first] / at_risk_total[:, None]  # share of the risk set per subgroup
        died = np.cumsum(indicators * event[:, None], axis=1)
        died = np.concatenate([np.zeros_like(died[:, :1]), died], axis=1)
        deaths = died[:, last] - died[:, first]
        excess = (deaths - at_risk * deaths_total[:, None]).sum(axis=1)[:, :-1]
        shares = at_risk[:, :, :-1]
        diagonal = np.einsum("t,btk->bk", spread, shares)[:, :, None] * np.eye(shares.shape[2])
        variance = diagonal - np.einsum("t,btk,btl->bkl", spread, shares, shares)
        return np.einsum("bk,bk->b", excess, np.linalg.solve(variance, excess[:, :, None])[:, :, 0])

    return statistic

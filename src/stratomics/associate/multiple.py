"""Multiple-testing adjustment: Benjamini-Hochberg and Bonferroni, missing p-values ignored."""

from __future__ import annotations

import numpy as np
import pandas as pd

METHODS = ("fdr_bh", "bonferroni")


def adjust_p(p_values, method: str = "fdr_bh") -> np.ndarray:
    """Adjusted p-values (q-values for "fdr_bh"); NaN p-values stay NaN and are not counted.

    Parameters
    ----------
    p_values
        Raw p-values.
    method
        "fdr_bh" (Benjamini-Hochberg step-up) or "bonferroni".

    Returns
    -------
    The adjusted p-values, capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    tested = np.isfinite(p)
    m = int(tested.sum())
    if m == 0:
        return adjusted
    values = p[tested]
    if method == "bonferroni":
        adjusted[tested] = np.minimum(values * m, 1.0)
    elif method == "fdr_bh":
        order = np.argsort(values, kind="stable")
        ranked = values[order] * m / np.arange(1, m + 1)
        stepped = np.minimum.accumulate(ranked[::-1])[::-1]
        result = np.empty(m)
        result[order] = np.minimum(stepped, 1.0)
        adjusted[tested] = result
    else:
        raise ValueError(f"unknown adjustment method {method!r}; use one of {METHODS}")
    return adjusted


def add_q_values(table: pd.DataFrame, *, family: list[str], method: str = "fdr_bh") -> pd.DataFrame:
    """Add ``q_value`` adjusted within each family of tests (rows sharing the ``family`` columns).

    Parameters
    ----------
    table
        A tidy result table with a ``p_value`` column.
    family
        Columns defining a family (e.g. ["outcome_or_contrast", "model"] for one FDR across assays,
        add "assay" for a per-assay FDR).
    method
        See :func:`adjust_p`.

    Returns
    -------
    The table with ``q_value`` and ``adjustment`` columns.
    """
    table = table.copy()
    table["q_value"] = np.nan
    for _, rows in table.groupby(family, sort=False, dropna=False):
        table.loc[rows.index, "q_value"] = adjust_p(rows["p_value"].to_numpy(), method)
    table["adjustment"] = f"{method} within {'+'.join(family)}"
    return table


SORT_ORDER = ["outcome_or_contrast", "model", "p_value", "assay", "feature"]


def finalise(tables: list[pd.DataFrame], *, method: str = "fdr_bh", per_assay: bool = False) -> pd.DataFrame:
    """Gather result tables, adjust p-values within each outcome (and assay) and sort them.

    Parameters
    ----------
    tables
        Tidy result tables (:data:`stratomics.associate.RESULT_COLUMNS`).
    method
        See :func:`adjust_p`.
    per_assay
        Adjust within each assay instead of across all assays of an outcome.

    Returns
    -------
    One table, sorted by outcome, model, p-value, assay and feature (missing p-values last).
    """
    table = pd.concat(tables, ignore_index=True)
    family = ["outcome_or_contrast", "model"] + (["assay"] if per_assay else [])
    table = add_q_values(table, family=family, method=method)
    return table.sort_values(SORT_ORDER, kind="mergesort", na_position="last").reset_index(drop=True)


def genomic_inflation(p_values) -> float:
    """Genomic inflation factor lambda: median 1-df chi-square of the p-values over its null median.

    Parameters
    ----------
    p_values
        Two-sided p-values of a scan (NaN ignored).

    Returns
    -------
    Lambda (1 when the test statistics follow their null distribution).
    """
    from scipy.stats import chi2

    p = np.asarray(p_values, dtype=float)
    p = p[np.isfinite(p)]
    return float(np.median(chi2.isf(p, 1)) / chi2.ppf(0.5, 1))

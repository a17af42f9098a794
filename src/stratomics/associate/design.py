"""Design matrices from formulas over ``mdata.obs``, and contrasts between groups."""

from __future__ import annotations

import keyword
import logging
from itertools import combinations

import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError

log = logging.getLogger(__name__)


def adjustable_covariates(covariates: list[str], obs: pd.DataFrame, *, purpose: str = "model") -> list[str]:
    """The covariates with at least two values among ``obs``; each one left out is named in a warning
    (a single-valued covariate cannot be adjusted for, and a formula would drop it silently)."""
    kept = []
    for column in covariates:
        values = obs[column].dropna().unique()
        if len(values) < 2:
            log.warning("%s: covariate '%s' has a single value (%s) among the %d patients; the model is not "
                        "adjusted for it", purpose, column, ", ".join(map(str, values)) or "none", len(obs))  # fmt: skip
        else:
            kept.append(column)
    return kept


def covariate_formula(covariates: list[str], obs: pd.DataFrame, *, purpose: str = "model") -> str:
    """A formula term list for the :func:`adjustable_covariates`: numbers as they are, text as categories.

    Every name that is not a plain identifier is quoted, so that ``crp (mg/L)``, or a name that
    would be code to the formula parser, is read as a column name.

    Returns
    -------
    The terms joined by " + " ("" when none is left).
    """
    terms = []
    for column in adjustable_covariates(covariates, obs, purpose=purpose):
        name = column if column.isidentifier() and not keyword.iskeyword(column) else f"`{column}`"
        terms.append(f"C({name})" if obs[column].dtype.kind not in "biuf" else name)
    return " + ".join(terms)


def model_design(obs: pd.DataFrame, formula: str, *, purpose: str = "model") -> pd.DataFrame:
    """Build a design matrix from a formula, dropping (and reporting) rows with missing values.

    Parameters
    ----------
    obs
        One row per patient (e.g. ``mdata.obs``).
    formula
        A formulaic/patsy right-hand side, e.g. ``"~ failure_12m + age + C(sex) + C(site)"``.
    purpose
        What the design is for, named in messages.

    Returns
    -------
    The design (patients kept x columns), full column rank.
    """
    from formulaic import model_matrix

    obs = obs.apply(lambda c: c.cat.remove_unused_categories() if isinstance(c.dtype, pd.CategoricalDtype) else c)
    try:
        design = pd.DataFrame(model_matrix(formula, obs, na_action="drop"))
    except Exception as err:  # formulaic reports unknown columns and syntax errors in many types
        raise StratomicsInputError(
            f"{purpose}: cannot build a design from '{formula}': {err}. Use column names of the "
            f"sample sheet ({', '.join(map(str, obs.columns))})."
        ) from None
    dropped = len(obs) - len(design)
    if dropped:
        log.warning("%s: %d of %d patients left out for missing values in '%s'",
                    purpose, dropped, len(obs), formula)  # fmt: skip
    check_full_rank(design, purpose)
    return design.astype(float)


def check_full_rank(design: pd.DataFrame, purpose: str) -> None:
    """Fail naming the first column that is a linear combination of the columns before it."""
    values = design.to_numpy(dtype=float)
    if values.shape[0] <= values.shape[1]:
        raise StratomicsInputError(
            f"{purpose}: {values.shape[0]} patients for {values.shape[1]} model coefficients. "
            "Use fewer covariates or more patients."
        )
    scale = np.linalg.norm(values, axis=0)
    for k in range(1, values.shape[1] + 1):
        if np.linalg.matrix_rank(values[:, :k] / np.where(scale[:k] > 0, scale[:k], 1)) < k:
            raise StratomicsInputError(
                f"{purpose}: design column '{design.columns[k - 1]}' is constant or collinear with "
                f"the columns before it ({', '.join(map(str, design.columns[: k - 1]))}). Remove "
                "one of the collinear covariates (e.g. a site that holds a single disease)."
            )


def group_design(
    obs: pd.DataFrame, group: str, covariates: list[str], *, purpose: str = "markers"
) -> tuple[pd.DataFrame, list[str]]:
    """Cell-means design: one indicator per level of ``group`` plus covariates (no intercept).

    Returns
    -------
    The design and the group's levels, in the order of their columns.
    """
    columns = [group, *covariates]
    complete = obs[columns].dropna()
    if len(complete) < len(obs):
        log.warning("%s: %d of %d patients left out for missing %s", purpose,
                    len(obs) - len(complete), len(obs), " or ".join(columns))  # fmt: skip
    levels = sorted(complete[group].astype(str).unique())
    if len(levels) < 2:
        raise StratomicsInputError(f"{purpose}: column '{group}' has fewer than two groups ({levels}).")
    indicators = pd.DataFrame(
        {f"{group}[{level}]": (complete[group].astype(str) == level).astype(float) for level in levels},
        index=complete.index,
    )
    terms = covariate_formula(covariates, complete, purpose=purpose)
    if terms:
        rest = model_design(complete, "~ " + terms, purpose=purpose)
        indicators = indicators.join(rest.drop(columns="Intercept"))
    check_full_rank(indicators, purpose)
    return indicators, levels


def group_contrasts(levels: list[str], n_columns: int, kind: str = "one_vs_rest") -> dict[str, np.ndarray]:
    """Contrasts between group means of a cell-means design (group columns first).

    Parameters
    ----------
    levels
        The group levels, in design-column order.
    n_columns
        The number of design columns.
    kind
        "one_vs_rest": each level against the average of the other levels' means;
        "pairs": every pair of levels; "overall": one F-test that all group means are equal.

    Returns
    -------
    Contrast matrices (rows x design columns) by name.
    """
    k = len(levels)

    def row(weights: dict[int, float]) -> np.ndarray:
        vector = np.zeros((1, n_columns))
        for column, weight in weights.items():
            vector[0, column] = weight
        return vector

    if kind == "one_vs_rest":
        return {f"{level} vs rest": row({j: 1.0 if j == i else -1 / (k - 1) for j in range(k)})
                for i, level in enumerate(levels)}  # fmt: skip
    if kind == "pairs":
        return {f"{levels[i]} vs {levels[j]}": row({i: 1.0, j: -1.0}) for i, j in combinations(range(k), 2)}
    if kind == "overall":
        return {"overall": np.vstack([row({i: 1.0, 0: -1.0}) for i in range(1, k)])}
    raise ValueError(f"unknown contrast kind {kind!r}")

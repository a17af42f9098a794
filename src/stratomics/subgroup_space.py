"""The space in which subgroups are sought: integrated factors adjusted for known covariates, keeping
the factors with cluster structure.

Integration finds every strong axis of variation, and in a real cohort most of them are not
subgroups: disease, age, sex, site or plate, an inflammation axis, a modality's own nuisance. On the
benchmark suite (``benchmarks/stratify_quality.py``) clustering all factors recovered the planted
endotypes far worse than a naive concatenation, while the same factors adjusted for the
covariates and reduced to the non-Gaussian ones recovered them best. Two principled steps:

1. **Adjustment**: each factor is regressed on the ``adjust_for`` covariates (least squares on the
   patients that define the subgroups; categorical covariates dummy-coded against their first
   level, a missing value counts as the covariate's mean) and replaced by its residual. Subgroups
   are then sought beyond what the covariates already explain.
2. **Structure**: a factor that is one Gaussian cloud cannot separate subgroups; a mixture of
   groups departs from normality. The Shapiro-Wilk test (``scipy.stats.shapiro``, on at most
   5,000 evenly spaced patients) is run on each adjusted factor and the factors with a
   Bonferroni-significant departure are kept. Shapiro-Wilk rather than a moment test: a mixture of
   several groups can have near-Gaussian skewness and kurtosis (on a 4-group test cohort
   D'Agostino's K-squared gave p = 0.40 for a factor whose variance was 99% between groups;
   Shapiro-Wilk gave 2e-10). When no factor departs, all adjusted factors are kept and the
   Gaussian null reference of :mod:`stratomics.stratify` decides whether there is any structure.

The per-factor table (share of variance explained by the covariates, skewness, excess kurtosis,
normality p-value, kept) is written next to the subgroups so users can see what was used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from stratomics.errors import StratomicsInputError

log = logging.getLogger(__name__)

#: Family-wise level of the per-factor normality tests (Bonferroni over the factors).
STRUCTURE_ALPHA = 0.05
#: Shapiro-Wilk's p-values are exact up to this many patients; larger cohorts are thinned to it.
MAX_SHAPIRO_PATIENTS = 5000
#: Fewest patients for which the normality test is run (below it every factor is kept).
MIN_PATIENTS_FOR_TEST = 20


@dataclass
class SubgroupSpace:
    """How integrated factor scores become the coordinates that subgroups are found in."""

    covariates: list[str]
    levels: dict[str, list] = field(default_factory=dict)  # categorical covariate -> levels (first = reference)
    fill: np.ndarray = field(default_factory=lambda: np.zeros(0))  # design column means, for missing values
    coefficients: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (1 + design) x factors
    kept: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # indices of the kept factors

    def design(self, obs: pd.DataFrame) -> np.ndarray:
        """Intercept plus covariates of patients (rows of ``obs``), missing values at the fitted mean."""
        absent = [name for name in self.covariates if name not in obs.columns]
        if absent:
            raise StratomicsInputError(
                f"subgroups: covariate '{absent[0]}' (stratify.adjust_for) is not in the cohort's sample sheet "
                f"(columns: {', '.join(map(str, obs.columns))}); add it or remove it from stratify.adjust_for."
            )
        columns = [np.ones(len(obs))]
        for name in self.covariates:
            values = obs[name]
            if name in self.levels:
                unseen = values.notna() & ~values.isin(self.levels[name])
                if unseen.any():
                    log.warning("subgroups: %d patients have a level of '%s' the subgroups were not fitted on (%s); "
                                "it counts as missing", unseen.sum(), name, values[unseen].iloc[0])  # fmt: skip
                values = values.where(~unseen)
                columns += [np.where(values.isna(), np.nan, (values == level).astype(float))
                            for level in self.levels[name][1:]]  # fmt: skip
            else:
                columns.append(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float))
        design = np.column_stack(columns)
        if self.fill.size:
            design = np.where(np.isnan(design), self.fill, design)
        return design

    def transform(self, scores: np.ndarray, obs: pd.DataFrame) -> np.ndarray:
        """Adjusted, kept factors of patients (NaN rows stay NaN).

        Parameters
        ----------
        scores
            Patients x integrated factors.
        obs
            The patients' sample-sheet columns (same rows as ``scores``).

        Returns
        -------
        Patients x kept factors.
        """
        residuals = scores - self.design(obs) @ self.coefficients
        return residuals[:, self.kept]


def _categorical_levels(obs: pd.DataFrame, covariates: list[str]) -> dict[str, list]:
    """Sorted observed levels of the non-numeric covariates."""
    return {name: sorted(obs[name].dropna().unique(), key=str) for name in covariates
            if not pd.api.types.is_numeric_dtype(obs[name]) or pd.api.types.is_bool_dtype(obs[name])}  # fmt: skip


def fit_subgroup_space(scores: np.ndarray, obs: pd.DataFrame, covariates: list[str], *,
                       select: bool = True) -> tuple[SubgroupSpace, pd.DataFrame]:  # fmt: skip
    """Adjust factors for covariates and keep those with cluster structure.

    Parameters
    ----------
    scores
        Patients x factors of the patients that define the subgroups (no missing values).
    obs
        Their sample-sheet columns.
    covariates
        Columns of ``obs`` to adjust for (may be empty).
    select
        Keep only the factors whose adjusted scores depart from normality (see the module docstring);
        False keeps every factor.

    Returns
    -------
    The fitted space and one row per factor: factor, covariate_r2, skewness, excess_kurtosis,
    normality_p_value, kept.
    """
    space = SubgroupSpace(list(covariates), _categorical_levels(obs, covariates))
    design = space.design(obs)
    missing = np.isnan(design).any(axis=1)
    if missing.any():
        log.warning("subgroups: %d of %d patients miss a covariate of stratify.adjust_for; their missing values "
                    "count as the covariate's mean", missing.sum(), len(design))  # fmt: skip
    space.fill = np.where(np.isnan(np.nanmean(design, axis=0)), 0.0, np.nanmean(design, axis=0))
    design = np.where(np.isnan(design), space.fill, design)
    space.coefficients = np.linalg.lstsq(design, scores, rcond=None)[0]
    residuals = scores - design @ space.coefficients
    table = _factor_table(scores, residuals)
    testable = select and len(scores) >= MIN_PATIENTS_FOR_TEST and table["normality_p_value"].notna().any()
    kept = table["normality_p_value"] < STRUCTURE_ALPHA / len(table) if testable else np.ones(len(table), bool)
    if testable and not kept.any():
        log.warning("subgroups: no adjusted factor departs from a Gaussian (Shapiro-Wilk, Bonferroni %.2g); all "
                    "%d are kept and the null reference decides whether there is structure", STRUCTURE_ALPHA,
                    len(table))  # fmt: skip
        kept = np.ones(len(table), bool)
    table["kept"] = np.asarray(kept, dtype=bool)
    space.kept = np.flatnonzero(table["kept"].to_numpy())
    log.info("subgroups: %d of %d factors kept, adjusted for %s", len(space.kept), len(table),
             ", ".join(covariates) or "nothing")  # fmt: skip
    return space, table


def _factor_table(scores: np.ndarray, residuals: np.ndarray) -> pd.DataFrame:
    """Per factor: share of variance explained by the covariates and the normality of the residuals."""
    total = scores.var(axis=0)
    remaining = residuals.var(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        explained = np.where(total > 0, 1 - remaining / total, np.nan)
    p_values = np.full(residuals.shape[1], np.nan)
    if len(residuals) >= MIN_PATIENTS_FOR_TEST:
        thinned = residuals[np.linspace(0, len(residuals) - 1, min(len(residuals), MAX_SHAPIRO_PATIENTS)).astype(int)]
        for j in np.flatnonzero(remaining > 1e-12 * np.maximum(total, 1e-300)):
            p_values[j] = stats.shapiro(thinned[:, j]).pvalue
    return pd.DataFrame({
        "factor": [f"factor_{i + 1}" for i in range(scores.shape[1])],
        "covariate_r2": explained,
        "skewness": stats.skew(residuals, axis=0),
        "excess_kurtosis": stats.kurtosis(residuals, axis=0),
        "normality_p_value": p_values,
    })  # fmt: skip

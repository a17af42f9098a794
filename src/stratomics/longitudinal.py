"""Follow-up visits: how each feature changes from baseline, per group, with a mixed model.

Per feature: value ~ visit * group + covariates + (1 | patient), fitted by REML for all features at
once (:func:`stratomics.associate.mixed.fit_random_intercept`). The table gives, for each group and
follow-up visit, the change from baseline with its 95% CI and p (Wald, normal), and per feature the
joint Wald test of the visit x group interaction (do the groups change differently?) with its q-value.
"""

from __future__ import annotations

import logging

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
from scipy import stats

from stratomics.associate import feature_names
from stratomics.associate.design import covariate_formula, model_design
from stratomics.associate.mixed import fit_random_intercept
from stratomics.associate.multiple import adjust_p
from stratomics.preprocess import preprocess_assay

log = logging.getLogger(__name__)

COLUMNS = ["assay", "feature", "feature_name", "group_by", "group", "visit", "change", "unit", "std_error", "ci_low",
           "ci_high", "p_value", "n_patients", "interaction_chi2", "interaction_df", "interaction_p",
           "interaction_q"]  # fmt: skip
#: Fewest patients of a group at a visit for that visit to be analysed.
MIN_PATIENTS_PER_CELL = 3


def longitudinal_tests(
    adata: ad.AnnData, patients: pd.DataFrame, *, group_by: str, visits: list[str], covariates=(), assay: str = ""
) -> pd.DataFrame:
    """Change from baseline per group and visit, and the visit x group interaction, for every feature.

    Parameters
    ----------
    adata
        One assay, one observation per sample; ``obs`` holds ``patient_id`` and ``visit``.
    patients
        One row per patient (index = patient ID) with the ``group_by`` column and the covariates.
    group_by
        The grouping column (a subgroup or a binary outcome); patients without a value are left out.
    visits
        The visits in time order; the first is the baseline.
    covariates
        Patient-level adjustment covariates.
    assay
        The assay name, for the table and messages.

    Returns
    -------
    A tidy table (:data:`COLUMNS`), one row per feature x group x follow-up visit; empty when fewer
    than two groups have follow-up samples.
    """
    obs = _sample_table(adata, patients, group_by, list(covariates))
    analysed = _analysable_visits(obs, visits, assay=assay, group_by=group_by)
    obs = obs[obs["visit"].isin(analysed)]
    groups = sorted(obs["group"].unique())
    if len(analysed) < 2 or len(groups) < 2:
        return pd.DataFrame(columns=COLUMNS)
    design = _design(obs, analysed, groups, list(covariates), purpose=f"longitudinal {assay} by {group_by}")
    values = _values(adata)[adata.obs_names.get_indexer(design.index)]
    fitted = obs.loc[design.index]
    fit = fit_random_intercept(values, design.to_numpy(), fitted["patient_id"].to_numpy())
    interaction = _interaction_test(fit, design, adata.var_names.astype(str))
    cells = fitted.groupby(["group", "visit"])["patient_id"].nunique()
    names = feature_names(adata)
    tables = []
    for group in groups:
        for visit in analysed[1:]:
            contrast = _change_contrast(design.columns, visit, group, groups[0])
            estimate = fit.coefficients @ contrast
            se = np.sqrt(np.einsum("p,fpq,q->f", contrast, fit.covariance, contrast))
            tables.append(pd.DataFrame({
                "feature": adata.var_names.astype(str), "group": group, "visit": visit, "change": estimate,
                "std_error": se, "ci_low": estimate - 1.959964 * se, "ci_high": estimate + 1.959964 * se,
                "p_value": 2 * stats.norm.sf(np.abs(estimate / se)), "n_patients": cells.get((group, visit), 0),
            }))  # fmt: skip
    table = pd.concat(tables, ignore_index=True).merge(interaction, on="feature")
    table["feature_name"] = table["feature"].map(names)
    table["unit"] = adata.uns.get("preprocess", {}).get("unit", "")
    return table.assign(assay=assay, group_by=group_by, interaction_q=np.nan)[COLUMNS]


def _sample_table(adata, patients, group_by, covariates) -> pd.DataFrame:
    """Samples with their patient's group and covariates; samples without a group are left out (logged)."""
    obs = adata.obs[["patient_id", "visit"]].astype(str).join(patients[[group_by, *covariates]], on="patient_id")
    obs[group_by] = obs[group_by].replace("", np.nan)  # an unassigned patient has an empty subgroup
    grouped = obs[group_by].notna()
    if (~grouped).any():
        log.info("%d samples of patients without %s are left out of the longitudinal tests", (~grouped).sum(), group_by)
    obs = obs[grouped].copy()
    group = obs[group_by]
    obs["group"] = (group.astype(int) if group.dtype.kind == "f" else group).astype(str)
    return obs


def _analysable_visits(obs, visits, *, assay, group_by) -> list[str]:
    """The baseline and the follow-up visits where every group has enough patients (others are named)."""
    counts = obs.groupby(["visit", "group"])["patient_id"].nunique().unstack(fill_value=0)
    counts = counts.reindex(columns=sorted(obs["group"].unique()), fill_value=0)
    kept = []
    for visit in visits:
        smallest = int(counts.loc[visit].min()) if visit in counts.index else 0
        if smallest >= MIN_PATIENTS_PER_CELL:
            kept.append(visit)
        else:
            log.warning("longitudinal %s by %s: visit %s left out, a group has %d patients there (fewer than %d)",
                        assay, group_by, visit, smallest, MIN_PATIENTS_PER_CELL)  # fmt: skip
    return kept if kept and kept[0] == visits[0] else []


def _design(obs, visits, groups, covariates, *, purpose) -> pd.DataFrame:
    """Intercept, visit and group indicators (first level the reference), their products, covariates."""
    columns = {"Intercept": np.ones(len(obs))}
    for visit in visits[1:]:
        columns[f"visit[{visit}]"] = (obs["visit"] == visit).to_numpy(float)
    for group in groups[1:]:
        columns[f"group[{group}]"] = (obs["group"] == group).to_numpy(float)
    for visit in visits[1:]:
        for group in groups[1:]:
            columns[f"visit[{visit}]:group[{group}]"] = columns[f"visit[{visit}]"] * columns[f"group[{group}]"]
    design = pd.DataFrame(columns, index=obs.index)
    formula = covariate_formula(covariates, obs, purpose=purpose)
    if formula:
        adjusted = model_design(obs, f"~ {formula}", purpose=purpose).drop(columns="Intercept")
        design = design.loc[adjusted.index].join(adjusted)
    return design


def _values(adata: ad.AnnData) -> np.ndarray:
    """The assay's values as a dense float matrix."""
    values = adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X
    return np.asarray(values, dtype=float)


def _change_contrast(columns, visit: str, group: str, reference: str) -> np.ndarray:
    """The coefficients whose sum is the change from baseline to ``visit`` in ``group``."""
    contrast = (columns == f"visit[{visit}]").astype(float)
    if group != reference:
        contrast += columns == f"visit[{visit}]:group[{group}]"
    return np.asarray(contrast)


def _interaction_test(fit, design: pd.DataFrame, features) -> pd.DataFrame:
    """Joint Wald test of the visit x group coefficients, per feature."""
    terms = np.flatnonzero(design.columns.str.contains(":group[", regex=False))
    beta = fit.coefficients[:, terms]
    covariance = fit.covariance[:, terms][:, :, terms]
    finite = np.isfinite(beta).all(axis=1)
    chi2 = np.full(len(beta), np.nan)
    chi2[finite] = np.einsum("fp,fp->f", beta[finite], np.linalg.solve(covariance[finite], beta[finite][..., None])[..., 0])
    return pd.DataFrame({
        "feature": features, "interaction_chi2": chi2,
        "interaction_df": len(terms), "interaction_p": stats.chi2.sf(chi2, len(terms)),
    })  # fmt: skip


def add_interaction_q(table: pd.DataFrame) -> pd.DataFrame:
    """Benjamini-Hochberg q-values of the interaction test, one family per grouping across assays."""
    table = table.copy()
    for _, rows in table.groupby("group_by"):
        per_feature = rows.drop_duplicates(["assay", "feature"])
        q = pd.Series(adjust_p(per_feature["interaction_p"].to_numpy(), "fdr_bh"),
                      index=pd.MultiIndex.from_frame(per_feature[["assay", "feature"]]))  # fmt: skip
        table.loc[rows.index, "interaction_q"] = q.reindex(pd.MultiIndex.from_frame(rows[["assay", "feature"]])).to_numpy()
    return table


def visit_tests(visits: md.MuData, patients: pd.DataFrame, *, assays: dict, group_columns, visit_order, covariates=(),
                seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Preprocess every assay's visit samples by its kind and test each grouping (see :func:`longitudinal_tests`).

    Parameters
    ----------
    visits
        The samples of every visit (``results/cohort/visits.h5mu``).
    patients
        One row per patient with the group columns and covariates.
    assays
        The config's assay entries (kind and options), by name.
    group_columns
        The groupings (e.g. subgroup, failure_12m).
    visit_order
        The visits in time order, baseline first.
    covariates
        Patient-level adjustment covariates (batch included: the values are not batch-corrected).
    seed
        Seed of the preprocessing's QC PCA.

    Returns
    -------
    The tidy table of every assay and grouping, with the interaction q-values.
    """
    tables = []
    for name, adata in visits.mod.items():
        preprocessed = preprocess_assay(adata, name, assays[name], seed=seed)
        for group in group_columns:
            tables.append(longitudinal_tests(preprocessed, patients, group_by=group, visits=list(visit_order),
                                             covariates=covariates, assay=name))  # fmt: skip
    tables = [table for table in tables if len(table)]
    if not tables:
        log.warning("longitudinal tests: no assay has follow-up samples of at least two groups; nothing was tested")
        return pd.DataFrame(columns=COLUMNS)
    return add_interaction_q(pd.concat(tables, ignore_index=True)).sort_values(
        ["group_by", "interaction_p", "assay", "feature", "group", "visit"], kind="stable", ignore_index=True)

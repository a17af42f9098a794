"""Covariate-adjusted association tests over all features at once, as tidy tables.

- :func:`outcome_biomarkers`: each feature as a predictor of an outcome (logistic for binary,
  Cox for survival, linear for continuous), per SD of the feature.
- :func:`cluster_markers`: each feature as the response of a group design (limma-style, optionally
  with moderated variances), one-vs-rest, pairwise or overall contrasts.
- :func:`linear_association`: one coefficient of feature ~ formula, limma-style.
- :func:`genotype_scan`: each SNP's additive dosage as a predictor of an outcome, streamed in chunks.
- :func:`add_q_values`: one FDR within a family of tests.
"""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
from scipy import stats

from stratomics.associate.cox import fit_cox_predictor
from stratomics.associate.design import covariate_formula, group_contrasts, group_design, model_design
from stratomics.associate.genetic import scan_snps
from stratomics.associate.linear import fit_features, moderate, contrast_test
from stratomics.associate.multiple import add_q_values, adjust_p
from stratomics.associate.ordinal import fit_ordinal_predictor
from stratomics.associate.predictor import fit_linear_predictor, fit_logistic_predictor
from stratomics.errors import StratomicsInputError
from stratomics.kinds.genotypes import read_dosages
from stratomics.outcome_types import ordinal_codes, outcome_type
from stratomics.preprocess import UNCORRECTED

log = logging.getLogger(__name__)

RESULT_COLUMNS = [
    "assay", "feature", "feature_name", "outcome_or_contrast", "model", "effect", "estimate", "std_error",
    "ci_low", "ci_high", "statistic", "p_value", "q_value", "n", "n_events", "note",
]  # fmt: skip
EFFECTS = {
    "logistic": "log odds ratio",
    "cox": "log hazard ratio",
    "linear": "difference",
    "ordinal": "log cumulative odds ratio",
}

__all__ = ["NAME_COLUMNS", "RESULT_COLUMNS", "add_q_values", "adjust_p", "cluster_markers", "feature_names",
           "genotype_scan", "linear_association", "outcome_biomarkers", "outcome_data"]  # fmt: skip


def outcome_data(obs: pd.DataFrame, outcome: str, spec: dict, *, covariates: list[str]):
    """Outcome values and covariate design of the patients with complete data.

    Parameters
    ----------
    obs
        One row per patient (``mdata.obs``).
    outcome
        The outcome's name in the config.
    spec
        Its config entry (type and columns).
    covariates
        Covariate columns.

    Returns
    -------
    (response, design): the response (a Series, or a frame with time and event for survival) and
    the covariate design with intercept, both indexed by the patients kept.
    """
    otype = outcome_type(spec, outcome)
    columns = otype.columns(outcome, spec)
    purpose = f"outcome '{outcome}'"
    complete = obs.dropna(subset=columns)
    if len(complete) < len(obs):
        log.warning("%s: %d of %d patients have no value and are left out", purpose,
                    len(obs) - len(complete), len(obs))  # fmt: skip
    terms = covariate_formula(covariates, complete, purpose=purpose)
    formula = "~ 1" + (" + " + terms if terms else "")
    design = model_design(complete, formula, purpose=purpose)
    if otype.model == "ordinal":  # codes 0..K-1 of the categories observed among the patients kept
        response = ordinal_codes(complete.loc[design.index, columns[0]], spec.get("levels")).to_frame(columns[0])
        if response.iloc[:, 0].nunique() < 2:
            raise StratomicsInputError(f"{purpose}: an ordinal outcome needs two categories or more among the "
                                       f"{len(response)} patients with complete data.")  # fmt: skip
    else:
        response = complete.loc[design.index, columns].astype(float)
    if otype.event_role:
        levels = sorted(response[otype.event_column(outcome, spec)].unique())
        found = ", ".join(f"{level:g}" for level in levels)
        if not set(levels) <= {0.0, 1.0}:
            raise StratomicsInputError(f"{purpose}: events must be coded 0/1, found {found}.")
        if not otype.time_to_event and len(levels) < 2:
            raise StratomicsInputError(f"{purpose}: a binary outcome needs both 0 and 1, found only {found}.")
    return (response if otype.time_to_event else response.iloc[:, 0]), design


def _logistic_table(y: np.ndarray, values: np.ndarray, design: np.ndarray, names) -> pd.DataFrame:
    return fit_logistic_predictor(y, values, design).table(names)


def _cox_table(time_event: np.ndarray, values: np.ndarray, design: np.ndarray, names) -> pd.DataFrame:
    time, event = time_event.T
    return fit_cox_predictor(time, event, values, covariates=design[:, 1:]).table(names)


def _linear_table(y: np.ndarray, values: np.ndarray, design: np.ndarray, names) -> pd.DataFrame:
    fit = fit_linear_predictor(y, values, design)
    return fit.table(names, distribution="t", df=fit.n - design.shape[1] - 1)


def _ordinal_table(codes: np.ndarray, values: np.ndarray, design: np.ndarray, names) -> pd.DataFrame:
    return fit_ordinal_predictor(codes, values, design[:, 1:]).table(names)


#: Per-feature fitters by an outcome type's model name: (response, features, design with intercept,
#: feature names) -> one row per feature.
PREDICTOR_TABLES = {"logistic": _logistic_table, "cox": _cox_table, "linear": _linear_table, "ordinal": _ordinal_table}


def _standardise(values: np.ndarray) -> np.ndarray:
    """Scale each feature to mean 0 and SD 1 over its observed patients (so effects are per SD)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (values - np.nanmean(values, axis=0)) / np.nanstd(values, axis=0, ddof=1)


def tested_layer(adata: ad.AnnData) -> str | None:
    """The layer association tests read: the values before batch correction when the assay was corrected.

    Corrected values feed integration, clustering and prediction only; tests of corrected values
    without the batch in the model give too many false positives when batch and groups are
    confounded (Nygaard et al., Biostatistics 2016), so tests model the batch as a covariate instead.
    """
    return UNCORRECTED if UNCORRECTED in adata.layers else None


def _dense(adata: ad.AnnData, patients) -> np.ndarray:
    """The tested values (:func:`tested_layer`) of the given patients (all in the assay) as a float matrix."""
    subset = adata[patients]
    layer = tested_layer(adata)
    values = subset.layers[layer] if layer else subset.X
    return np.asarray(values.toarray() if hasattr(values, "toarray") else values, dtype=float)


def outcome_biomarkers(
    adata: ad.AnnData, obs: pd.DataFrame, outcome: str, *, spec: dict, covariates: list[str], assay: str,
    scale: pd.Series | None = None,
) -> pd.DataFrame:
    """Test every feature of an assay as a predictor of an outcome, adjusted for covariates.

    Binary outcomes: logistic regression; survival: Cox model (Efron ties); continuous: linear
    regression; ordinal: proportional odds (cumulative logit). Features are standardised, so estimates are per SD of the feature.

    Parameters
    ----------
    adata
        The preprocessed assay (obs = patients).
    obs
        Clinical columns of every patient (``mdata.obs``).
    outcome, spec
        The outcome's name and config entry.
    covariates
        Adjustment covariates.
    assay
        The assay name, written in the table.
    scale
        Feature SDs to scale by instead of the SDs of these patients (a site analysis uses the
        whole cohort's, so that site estimates are on one scale for the meta-analysis).

    Returns
    -------
    One row per feature with :data:`RESULT_COLUMNS` (q_value empty: set it across a family with
    :func:`add_q_values`).
    """
    response, design = outcome_data(obs.loc[adata.obs_names], outcome, spec, covariates=covariates)
    raw = _dense(adata, design.index)
    if scale is None:
        values = _standardise(raw)
    else:
        values = (raw - np.nanmean(raw, axis=0)) / scale.reindex(adata.var_names).to_numpy(dtype=float)
    model = outcome_type(spec, outcome).model
    table = PREDICTOR_TABLES[model](response.to_numpy(), values, design.to_numpy(), adata.var_names)
    return _tidy(table, names=feature_names(adata), assay=assay, label=outcome, model=model,
                 effect=f"{EFFECTS[model]} per SD")  # fmt: skip


def assay_biomarkers(adata: ad.AnnData, obs: pd.DataFrame, outcomes: dict, *, covariates: list[str], assay: str,
                     min_patients: int = 2) -> pd.DataFrame:  # fmt: skip
    """:func:`outcome_biomarkers` of every outcome; an assay measured on fewer than ``min_patients``
    patients is not tested (an empty table and a warning that names it).

    Parameters
    ----------
    outcomes
        Outcome names and their config entries.
    covariates, assay
        As in :func:`outcome_biomarkers`.

    Returns
    -------
    One row per feature and outcome with :data:`RESULT_COLUMNS`.
    """
    if not enough_patients(adata, assay=assay, min_patients=min_patients, purpose="biomarkers"):
        return pd.DataFrame(columns=RESULT_COLUMNS)
    return pd.concat([_biomarkers_or_why_not(adata, obs, name, spec=spec, covariates=covariates, assay=assay)
                      for name, spec in outcomes.items()])  # fmt: skip


def _biomarkers_or_why_not(adata, obs, outcome, *, spec, covariates, assay) -> pd.DataFrame:
    """:func:`outcome_biomarkers`; when the model cannot be set up on this assay's patients (e.g. a
    covariate constant among them), one row per feature without estimate whose note says why."""
    try:
        return outcome_biomarkers(adata, obs, outcome, spec=spec, covariates=covariates, assay=assay)
    except StratomicsInputError as error:
        log.warning("biomarkers: assay '%s', outcome '%s' not tested on its %d patients: %s", assay, outcome,
                    adata.n_obs, error)  # fmt: skip
        model = outcome_type(spec, outcome).model
        untested = pd.DataFrame({"estimate": np.nan, "std_error": np.nan, "statistic": np.nan, "p_value": np.nan,
                                 "n": adata.n_obs, "note": f"not tested: {error}"}, index=adata.var_names)  # fmt: skip
        return _tidy(untested, names=feature_names(adata), assay=assay, label=outcome, model=model,
                     effect=f"{EFFECTS[model]} per SD")  # fmt: skip


def enough_patients(adata: ad.AnnData, *, assay: str, min_patients: int, purpose: str) -> bool:
    """Whether an assay is measured on ``min_patients`` patients; warn naming it when it is not."""
    if adata.n_obs >= min_patients:
        return True
    log.warning("%s: assay '%s' is not tested: measured on %d patients, fewer than min_patients_per_assay (%d)",
                purpose, assay, adata.n_obs, min_patients)  # fmt: skip
    return False


#: ``var`` columns that hold a feature's human name (Olink's Assay, a gene symbol), first found first.
NAME_COLUMNS = ("Assay", "gene_name", "gene_symbol", "symbol")


def feature_names(adata: ad.AnnData) -> pd.Series:
    """The human name of each feature (from the first of :data:`NAME_COLUMNS` in ``var``; the ID
    where there is none), indexed by feature ID."""
    ids = pd.Series(adata.var_names.astype(str), index=adata.var_names.astype(str))
    for column in NAME_COLUMNS:
        if column in adata.var:
            names = adata.var[column].astype("string").str.strip().replace("", pd.NA)
            names = names.set_axis(ids.index).fillna(ids).astype(str)
            return names[~names.index.duplicated()]
    return ids[~ids.index.duplicated()]


def _tidy(table: pd.DataFrame, *, names: pd.Series, assay: str, label: str, model: str,
          effect: str) -> pd.DataFrame:  # fmt: skip
    """Put a per-feature result frame into the stable column order, with each feature's name."""
    table = table.rename_axis("feature").reset_index()
    table["feature"] = table["feature"].astype(str)
    table["feature_name"] = table["feature"].map(names)
    table = table.assign(assay=assay, outcome_or_contrast=label, model=model, effect=effect, q_value=np.nan)
    for column in ("ci_low", "ci_high", "n_events", "note"):
        if column not in table:
            table[column] = "" if column == "note" else np.nan
    return table[RESULT_COLUMNS]


def cluster_markers(
    adata: ad.AnnData,
    obs: pd.DataFrame,
    group: str,
    *,
    covariates: list[str],
    assay: str,
    kind: str = "one_vs_rest",
    moderated: bool = True,
    robust: bool = False,
) -> pd.DataFrame:
    """Differences of every feature between groups (e.g. subgroups), adjusted for covariates.

    Fits feature ~ group means + covariates for all features at once (limma's model, with its
    empirical-Bayes moderated variances when ``moderated``) and tests the contrasts of ``kind``
    (see :func:`stratomics.associate.design.group_contrasts`); ``robust`` uses limma's robust prior.

    Returns
    -------
    One row per feature and contrast with :data:`RESULT_COLUMNS`; for "overall" the statistic is
    the (moderated) F.
    """
    design, levels = group_design(obs.loc[adata.obs_names], group, covariates, purpose=f"markers of {group}")
    fit, model = _fit_linear(adata, design, moderated=moderated, robust=robust)
    tables, names = [], feature_names(adata)
    for label, contrast in group_contrasts(levels, design.shape[1], kind).items():
        table = _linear_rows(fit, contrast, moderated=moderated)
        effect = "F" if contrast.shape[0] > 1 else "difference in means"
        tables.append(_tidy(table, names=names, assay=assay, label=f"{group}: {label}", model=model, effect=effect))
    return pd.concat(tables, ignore_index=True)


#: Note on the markers of groups found from the same features: their p-values do not test anything.
DESCRIPTIVE = "descriptive: the groups were defined on this assay, so the p-value is not a test"


def markers_of_groups(adata: ad.AnnData, obs: pd.DataFrame, groups: list[str], *, covariates: list[str], assay: str,
                      defined_on: tuple = (), min_patients: int = 2, **options) -> pd.DataFrame:  # fmt: skip
    """:func:`cluster_markers` for each group column (adjusted for the covariates other than itself).

    An assay measured on fewer than ``min_patients`` patients, a column with fewer than two
    groups among the assay's patients (one subgroup: no structure found), and a model that cannot
    be set up on them (collinear covariates) have nothing to compare: they are skipped with a
    warning that says why. Rows of the groups in
    ``defined_on`` (the subgroups, when this assay was integrated) get the :data:`DESCRIPTIVE` note:
    features that made the groups separate them by construction.

    Returns
    -------
    One row per feature, group column and contrast with :data:`RESULT_COLUMNS`.
    """
    if not enough_patients(adata, assay=assay, min_patients=min_patients, purpose="markers"):
        return pd.DataFrame(columns=RESULT_COLUMNS)
    tables = []
    for group in groups:
        levels = obs.loc[adata.obs_names, group].dropna().unique()
        if len(levels) < 2:
            log.warning("markers of %s in %s: %d group(s), nothing to compare", group, assay, len(levels))
            continue
        try:
            table = cluster_markers(adata, obs, group, covariates=[c for c in covariates if c != group], assay=assay,
                                    **options)  # fmt: skip
        except StratomicsInputError as error:  # e.g. covariates collinear among this assay's patients
            log.warning("markers of %s in %s: not tested on its %d patients: %s", group, assay, adata.n_obs, error)
            continue
        if group in defined_on:
            table["note"] = table["note"].where(table["note"] != "", DESCRIPTIVE)
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=RESULT_COLUMNS)


def linear_association(
    adata: ad.AnnData,
    obs: pd.DataFrame,
    formula: str,
    *,
    coefficient: str,
    assay: str,
    moderated: bool = True,
    robust: bool = False,
) -> pd.DataFrame:
    """Test one coefficient of feature ~ formula for every feature (limma's lmFit + eBayes + topTable).

    Parameters
    ----------
    adata
        The preprocessed assay.
    obs
        Clinical columns of every patient.
    formula
        Right-hand side over ``obs``, e.g. ``"~ failure_12m + age + C(sex) + C(site)"``.
    coefficient
        The design column to test, e.g. ``"failure_12m"`` or ``"C(treatment)[T.anti-TNF]"``.
    assay
        The assay name, written in the table.
    moderated, robust
        limma's empirical-Bayes moderation, optionally with the robust prior.

    Returns
    -------
    One row per feature with :data:`RESULT_COLUMNS`.
    """
    design = model_design(obs.loc[adata.obs_names], formula, purpose=f"assay '{assay}'")
    if coefficient not in design.columns:
        raise StratomicsInputError(
            f"assay '{assay}': the design of '{formula}' has no column '{coefficient}' "
            f"(columns: {', '.join(design.columns)})."
        )
    fit, model = _fit_linear(adata, design, moderated=moderated, robust=robust)
    table = _linear_rows(fit, (design.columns == coefficient).astype(float), moderated=moderated)
    return _tidy(table, names=feature_names(adata), assay=assay, label=coefficient, model=model,
                 effect="coefficient")  # fmt: skip


def _fit_linear(adata: ad.AnnData, design: pd.DataFrame, *, moderated: bool, robust: bool):
    """Fit feature ~ design for every feature, moderated as asked; also the model's name."""
    fit = fit_features(_dense(adata, design.index), design, adata.var_names)
    if not moderated:
        return fit, "linear"
    return moderate(fit, robust=robust), "robust moderated linear" if robust else "moderated linear"


def _linear_rows(fit, contrast: np.ndarray, *, moderated: bool) -> pd.DataFrame:
    """Contrast test with a 95% t interval (one-row contrasts) and a note where nothing is estimable."""
    table = contrast_test(fit, contrast, moderated=moderated)
    if np.atleast_2d(contrast).shape[0] == 1:
        half_width = stats.t.ppf(0.975, table["df"]) * table["std_error"]
        table["ci_low"], table["ci_high"] = table["estimate"] - half_width, table["estimate"] + half_width
    table["note"] = np.where(table["p_value"].isna(), "not estimable on the observed patients", "")
    return table


def genotype_scan(
    adata: ad.AnnData,
    obs: pd.DataFrame,
    outcome: str,
    *,
    spec: dict,
    covariates: list[str],
    snps: slice = slice(None),
    chunk_size: int = 5000,
) -> pd.DataFrame:
    """Additive scan of the SNPs of a genotype AnnData (dosages in X or in its .bed, :func:`read_dosages`)
    against an outcome, reading ``chunk_size`` SNPs at a time.

    Binary outcomes: logistic; continuous: linear (as plink2 --glm); survival: Cox; ordinal:
    proportional odds. Estimates are
    per copy of allele A1.

    Returns
    -------
    One row per SNP with :data:`RESULT_COLUMNS` plus chrom, pos, a1, a2 and allele_frequency.
    """
    response, design = outcome_data(obs.loc[adata.obs_names], outcome, spec, covariates=covariates)
    rows = adata.obs_names.get_indexer(design.index)
    selected = adata.var_names[snps]
    offset = snps.start or 0

    model = outcome_type(spec, outcome).model

    def read_chunk(chunk: slice) -> np.ndarray:
        dosages = read_dosages(adata, slice(offset + chunk.start, offset + chunk.stop), rows,
                               order="C" if model == "linear" else "F")  # fmt: skip
        return dosages if model == "linear" else dosages.astype(float)

    if model in ("cox", "ordinal"):  # the SNP scan kernels are linear and logistic; the others run chunk by chunk
        table = pd.concat([
            PREDICTOR_TABLES[model](response.to_numpy(), read_chunk(chunk), design.to_numpy(), selected[chunk])
            for chunk in (slice(s, min(len(selected), s + chunk_size)) for s in range(0, len(selected), chunk_size))
        ])  # fmt: skip
    else:
        table = scan_snps(read_chunk, selected, response.to_numpy(), covariates=design.to_numpy(), model=model,
                          chunk_size=chunk_size)  # fmt: skip
    tidy = _tidy(table, names=feature_names(adata), assay="genotypes", label=outcome, model=model,
                 effect=f"{EFFECTS[model]} per allele")  # fmt: skip
    annotation = adata.var.loc[tidy["feature"], ["chrom", "pos", "a1", "a2"]].reset_index(drop=True)
    return pd.concat([tidy, annotation], axis=1)

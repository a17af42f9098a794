"""Preprocessing per assay kind, recording parameters and everything removed.

Each kind (:mod:`stratomics.kinds`) has one function taking the raw AnnData of an assay and returning the preprocessed one;
:func:`preprocess_assay` chains it with the removal of uninformative features, optional ComBat
batch correction and a two-component QC PCA. Every step writes its parameters to
``uns["preprocess"]``, per-feature QC metrics of all features (removed ones included) to
``uns["feature_qc"]``, and every removed feature or sample to ``uns["removed"]``.
"""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from stratomics.combat import combat_correct
from stratomics.errors import StratomicsInputError
from stratomics.kinds import KINDS
from stratomics.kinds.genotypes import read_dosages
from stratomics.kinds.table import zscore
from stratomics.qc_record import Record

log = logging.getLogger(__name__)
#: Layer holding an assay's values before batch correction (read by the association tests).
UNCORRECTED = "uncorrected"


def drop_uninformative(adata: ad.AnnData, record: Record, constant_in_file=()) -> ad.AnnData:
    """Remove features that are missing in all samples, observed in one sample, or constant, before
    or after the kind's transformation (a column filled down in a spreadsheet varies after CLR or
    library-size normalisation, yet holds no information).

    Parameters
    ----------
    adata
        The transformed assay.
    record
        Its preprocessing record.
    constant_in_file
        Names of the features whose values as read were all equal (:func:`constant_features`).
    """
    adata = record.drop(adata, np.isfinite(adata.X).sum(axis=0) == 0, "missing in every sample")
    adata = record.drop(adata, np.isfinite(adata.X).sum(axis=0) < 2, "observed in a single sample")
    spread = np.nanmax(adata.X, axis=0) - np.nanmin(adata.X, axis=0)
    adata = record.drop(adata, spread == 0, "constant across samples")
    return record.drop(adata, adata.var_names.isin(list(constant_in_file)), "constant in the file (every value equal)")


def constant_features(adata: ad.AnnData) -> list[str]:
    """The features observed in two or more samples whose values are all equal."""
    values = np.asarray(adata.X, dtype=float)
    observed = np.flatnonzero(np.isfinite(values).sum(axis=0) >= 2)
    spread = np.nanmax(values[:, observed], axis=0) - np.nanmin(values[:, observed], axis=0)
    return adata.var_names[observed[spread == 0]].tolist()


def combat(adata: ad.AnnData, batch: str, covariates=()) -> np.ndarray:
    """ComBat (:mod:`stratomics.combat`, as sva) on an assay with missing values, protecting ``covariates``.

    The design is sva's: one indicator per batch plus the covariates reference-coded (first level
    left out; numbers as they are). Missing values are filled with the feature's mean within its
    batch for the correction and missing again afterwards. Batches need at least two samples;
    covariates may not be missing or confounded with the batch.

    Returns
    -------
    The corrected matrix.
    """
    sizes = adata.obs[batch].value_counts()
    if (sizes < 2).any():
        raise StratomicsInputError(
            f"ComBat: batch '{sizes.idxmin()}' of column '{batch}' has {sizes.min()} sample(s) "
            "in this assay; ComBat needs at least two. Merge small batches or set batch_correction: none."
        )
    protected = combat_design(adata.obs, batch, covariates)
    missing = ~np.isfinite(adata.X)
    frame = pd.DataFrame(adata.X, index=adata.obs_names)
    filled = frame.groupby(adata.obs[batch].to_numpy()).transform("mean")
    frame = frame.fillna(filled).fillna(frame.mean())
    corrected = combat_correct(frame.to_numpy(dtype=float), adata.obs[batch].astype(str).to_numpy(),
                               protected.to_numpy())  # fmt: skip
    corrected[missing] = np.nan
    return corrected


def combat_design(obs: pd.DataFrame, batch: str, covariates=()) -> pd.DataFrame:
    """The protected covariates as numeric columns (categories reference-coded), checked against the batch.

    Raises
    ------
    StratomicsInputError
        When a covariate is missing for a sample, or the batches and covariates together are collinear
        (a covariate level found in one batch only, or a batch holding a single level), naming them.
    """
    columns = []
    for name in covariates:
        values = obs[name]
        if values.isna().any():
            raise StratomicsInputError(
                f"ComBat: protected covariate '{name}' is missing for {int(values.isna().sum())} sample(s) of "
                f"this assay (e.g. {values.index[values.isna()][0]}). Fill it in the sample sheet or remove it "
                "from preprocess.combat_covariates."
            )
        if pd.api.types.is_numeric_dtype(values) and values.nunique() > 2:
            columns.append(values.astype(float).rename(name))
            continue
        levels = sorted(values.astype(str).unique())
        columns += [(values.astype(str) == level).astype(float).rename(f"{name}={level}") for level in levels[1:]]
    design = pd.concat(columns, axis=1) if columns else pd.DataFrame(index=obs.index)
    indicators = pd.get_dummies(obs[batch].astype(str), dtype=float)
    full = np.hstack([indicators.to_numpy(), design.to_numpy()])
    if np.linalg.matrix_rank(full) < full.shape[1]:
        raise StratomicsInputError(
            f"ComBat: batch '{batch}' is confounded with the protected covariates {', '.join(covariates)} in "
            f"this assay ({_confounding(obs, batch, covariates)}): their effects cannot be told apart. "
            "Remove the covariate from preprocess.combat_covariates, or set batch_correction: none and keep the "
            "batch as a covariate."
        )
    return design


def _confounding(obs: pd.DataFrame, batch: str, covariates) -> str:
    """The batches that hold a single level of a covariate, the usual cause of a singular design."""
    for name in covariates:
        table = pd.crosstab(obs[batch].astype(str), obs[name].astype(str))
        single = table.index[(table > 0).sum(axis=1) == 1]
        if len(single):
            return "; ".join(f"batch '{b}' has only {name} = '{table.columns[table.loc[b] > 0][0]}'" for b in single)
    return "the design is singular"


def centre_batches(adata: ad.AnnData, batch: str) -> np.ndarray:
    """Remove each batch's mean from every feature and add back the overall mean (NaN-aware).

    The location-only batch correction: the least-squares fit of a feature on the batch alone.

    Returns
    -------
    The corrected matrix.
    """
    frame = pd.DataFrame(adata.X)
    batch_means = frame.groupby(adata.obs[batch].to_numpy()).transform("mean")
    return (frame - batch_means + frame.mean()).to_numpy()


def qc_pca(values: np.ndarray, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Two principal components of standardised features, missing values set to the mean.

    Returns
    -------
    The scores (samples x 2) and the share of the variance each component explains.
    """
    scaled = np.nan_to_num(zscore(values))
    pca = PCA(n_components=min(2, *scaled.shape), random_state=seed)
    return pca.fit_transform(scaled), [float(share) for share in pca.explained_variance_ratio_]


#: Features of the QC PCA of an assay whose values stay on disk (evenly spaced over the file, e.g. SNPs).
QC_PCA_FEATURES = 5000


def _store_qc_pca(adata: ad.AnnData, key: str, seed: int) -> None:
    """Put :func:`qc_pca` of ``adata.X`` (genotypes in a .bed: of :data:`QC_PCA_FEATURES` evenly spaced SNPs)
    in ``obsm[key]`` and its variance shares in ``uns["qc_pca_variance"]``."""
    if adata.X is None:
        snps = np.unique(np.linspace(0, adata.n_vars - 1, min(adata.n_vars, QC_PCA_FEATURES)).astype(int))
        values = read_dosages(adata, snps)
    else:
        values = adata.X
    values = np.asarray(values)  # float32 dosages stay float32 (4x faster, ample for a QC plot), the rest float64
    adata.obsm[key], shares = qc_pca(values.astype(np.promote_types(values.dtype, np.float32), copy=False), seed)
    adata.uns.setdefault("qc_pca_variance", {})[key] = shares


def preprocess_assay(
    adata: ad.AnnData,
    name: str,
    spec: dict,
    *,
    batch: str | None = None,
    batch_correction: str = "none",
    combat_covariates=(),
    seed: int = 0,
) -> ad.AnnData:
    """Preprocess one assay by its kind, then drop uninformative features and correct batches.

    Parameters
    ----------
    adata
        The raw assay (from :func:`stratomics.cohort.build_cohort`); obs must hold ``batch`` and
        ``combat_covariates`` when ComBat is asked for.
    name
        The assay name (for messages).
    spec
        The assay's config entry (kind and options).
    batch
        The batch column.
    batch_correction
        "combat" (ComBat as sva, :mod:`stratomics.combat`), "centre" (remove batch means) or "none"; the assay's own
        ``batch_correction`` option takes precedence. Genotypes are never batch-corrected.
    combat_covariates
        Categorical columns whose effects ComBat protects.
    seed
        Seed of the QC PCA.

    Returns
    -------
    The preprocessed assay, with each sample's missing share in ``obs["missing_fraction"]``,
    ``obsm["X_qc_pca"]`` and its variance shares in ``uns["qc_pca_variance"]`` (after a batch correction also
    ``X_qc_pca_uncorrected`` and the values before it in ``layers["uncorrected"]``, which the
    association tests read) and the record in ``uns``.
    """
    kind = KINDS[spec["kind"]]
    record = Record(name, kind.name)
    options = {key: spec[key] for key in kind.preprocess_options if key in spec}
    if kind.values_on_disk:
        result = kind.preprocess(adata, record, **options)
    else:
        constant_in_file = constant_features(adata)
        result = kind.preprocess(adata, record, **options)
        record.add_metrics(pd.DataFrame(
            {"missing_fraction": 1 - np.isfinite(result.X).mean(axis=0)}, index=result.var_names
        ))  # fmt: skip
        result = drop_uninformative(result, record, constant_in_file)
        result.obs["missing_fraction"] = 1 - np.isfinite(np.asarray(result.X, dtype=float)).mean(axis=1)
    correction = spec.get("batch_correction", batch_correction)
    _store_qc_pca(result, "X_qc_pca", seed)
    if batch and result.obs[batch].nunique() < 2:
        correction = "none"  # one batch (e.g. a single site): nothing to correct
        record.params.update(batch_correction="none (one batch)")
    if correction != "none" and "batch_correction" in kind.accepted_options and batch:
        result.obsm["X_qc_pca_uncorrected"] = result.obsm["X_qc_pca"]
        result.uns["qc_pca_variance"]["X_qc_pca_uncorrected"] = result.uns["qc_pca_variance"]["X_qc_pca"]
        result.layers[UNCORRECTED] = result.X.copy()
        if correction == "combat":
            result.X = combat(result, batch, combat_covariates)
            record.params.update(combat_covariates=list(combat_covariates))
        else:
            result.X = centre_batches(result, batch)
        _store_qc_pca(result, "X_qc_pca", seed)
        record.params.update(batch_correction=correction, batch=batch)
    record.store(result)
    result.uns["ingest"] = adata.uns.get("ingest", {})
    return result


def assay_with_clinical(adata: ad.AnnData, obs: pd.DataFrame, columns) -> ad.AnnData:
    """A copy of an assay whose obs also holds the given columns of the cohort's ``obs``."""
    adata = adata.copy()
    for column in columns:
        adata.obs[column] = obs.loc[adata.obs_names, column].to_numpy()
    return adata


def preprocess_options(config: dict) -> dict:
    """The cohort-wide keyword arguments of :func:`preprocess_assay` from a validated config."""
    settings = config["preprocess"]
    return {
        "batch": config["cohort"].get("batch"),
        "batch_correction": settings["batch_correction"],
        "combat_covariates": settings["combat_covariates"],
        "seed": config["seed"],
    }


def clinical_columns(config: dict) -> list[str]:
    """Sample-sheet columns each assay needs for preprocessing: the batch and ComBat covariates."""
    batch = config["cohort"].get("batch")
    return ([batch] if batch else []) + list(config["preprocess"]["combat_covariates"])


def preprocess_cohort(mdata, config: dict):
    """Preprocess every assay of a raw cohort (the in-process equivalent of the workflow's scatter).

    Parameters
    ----------
    mdata
        The raw cohort from :func:`stratomics.cohort.build_cohort`.
    config
        The validated config.

    Returns
    -------
    A new MuData with the preprocessed assays and the same ``obs``.
    """
    from stratomics.cohort import assemble

    modalities = {
        name: preprocess_assay(
            assay_with_clinical(mdata[name], mdata.obs, clinical_columns(config)), name, spec,
            **preprocess_options(config),
        )
        for name, spec in config["assays"].items()
    }  # fmt: skip
    return assemble(mdata.obs, modalities)


def removed_table(mdata) -> pd.DataFrame:
    """Every feature and sample removed during preprocessing, over all assays."""
    tables = [mdata[name].uns["removed"] for name in mdata.mod if "removed" in mdata[name].uns]
    columns = ["assay", "axis", "id", "reason"]
    return pd.concat(tables, ignore_index=True)[columns] if tables else pd.DataFrame(columns=columns)


def feature_qc_table(mdata) -> pd.DataFrame:
    """Per-feature QC metrics of every assay (removed features included), one row per feature."""
    tables = [mdata[name].uns["feature_qc"].assign(assay=name) for name in mdata.mod
              if "feature_qc" in mdata[name].uns]  # fmt: skip
    table = pd.concat(tables, ignore_index=True)
    return table[["assay", *[c for c in table.columns if c != "assay"]]]

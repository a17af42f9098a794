"""Preprocessing per assay kind, recording parameters and everything removed.

Each kind has one function taking the raw AnnData of an assay and returning the preprocessed one;
:func:`preprocess_assay` chains it with the removal of uninformative features, optional ComBat
batch correction and a two-component QC PCA. Every step writes its parameters to
``uns["preprocess"]``, per-feature QC metrics of all features (removed ones included) to
``uns["feature_qc"]``, and every removed feature or sample to ``uns["removed"]``.
"""

from __future__ import annotations

import logging
import warnings

import anndata as ad
import numpy as np
import pandas as pd
from scipy.special import gammaln
from sklearn.decomposition import PCA

from stratomics.combat import combat_correct
from stratomics.errors import StratomicsInputError

log = logging.getLogger(__name__)
#: Layer holding an assay's values before batch correction (read by the association tests).
UNCORRECTED = "uncorrected"


class Record:
    """Collects the parameters, feature QC metrics and removals of one assay's preprocessing."""

    def __init__(self, assay: str, kind: str):
        self.assay, self.kind = assay, kind
        self.params: dict = {"kind": kind}
        self.removed: list[dict] = []
        self.feature_qc = pd.DataFrame()

    def add_metrics(self, metrics: pd.DataFrame) -> None:
        """Add per-feature QC metrics (index = feature) computed before a filter."""
        self.feature_qc = metrics.combine_first(self.feature_qc)

    def drop(self, adata: ad.AnnData, drop: np.ndarray, reason: str, axis: str = "feature"):
        """Remove features (or samples) flagged in ``drop``, logging and recording them."""
        drop = np.asarray(drop, dtype=bool)
        names = adata.var_names if axis == "feature" else adata.obs_names
        if drop.any():
            log.warning("assay '%s': removed %d %ss: %s", self.assay, drop.sum(), axis, reason)
        self.removed += [{"assay": self.assay, "axis": axis, "id": i, "reason": reason}
                         for i in names[drop]]  # fmt: skip
        return adata[:, ~drop].copy() if axis == "feature" else adata[~drop].copy()

    def store(self, adata: ad.AnnData) -> None:
        """Write the record into ``adata.uns``."""
        removed = pd.DataFrame(self.removed, columns=["assay", "axis", "id", "reason"])
        qc = self.feature_qc.copy()
        qc["removed"] = qc.index.isin(removed.loc[removed["axis"] == "feature", "id"])
        qc.index.name = "feature"
        adata.uns["preprocess"] = self.params
        adata.uns["feature_qc"] = qc.reset_index()
        adata.uns["removed"] = removed


# --- Olink NPX ---------------------------------------------------------------------------------


def preprocess_olink(
    adata: ad.AnnData,
    record: Record,
    *,
    below_lod: str = "keep",
    plate_normalisation: str = "median",
    max_below_lod_fraction: float = 0.75,
) -> ad.AnnData:
    """Mask QC-warned values, normalise plates, handle values below LOD, drop mostly-undetected assays.

    Parameters
    ----------
    adata
        Raw NPX with layers ``lod`` and ``qc_warning`` and ``obs["plate"]``.
    record
        Where parameters and removals are recorded.
    below_lod
        "keep" the NPX (Olink's advice), replace it by the "lod", or set it "missing".
    plate_normalisation
        "median": subtract each plate's median of each assay and add the assay's overall median
        (intensity normalisation, for samples randomised over plates); "none".
    max_below_lod_fraction
        Assays with a larger fraction of values below LOD are removed.

    Returns
    -------
    The preprocessed AnnData (raw NPX kept in ``layers["npx_raw"]``).
    """
    npx = adata.X.copy()
    npx[adata.layers["qc_warning"] > 0] = np.nan
    lod = adata.layers["lod"].copy()
    if plate_normalisation == "median":
        offset = _plate_offsets(npx, adata.obs["plate"].to_numpy())
        npx, lod = npx - offset, lod - offset
    below = npx < lod
    fraction_below = below.sum(axis=0) / np.maximum(np.isfinite(npx).sum(axis=0), 1)
    if below_lod == "lod":
        npx = np.where(below, lod, npx)
    elif below_lod == "missing":
        npx = np.where(below, np.nan, npx)
    result = ad.AnnData(npx, obs=adata.obs.copy(), var=adata.var.copy())
    result.layers["npx_raw"] = adata.X.copy()
    result.var["below_lod_fraction"] = fraction_below
    record.add_metrics(result.var[["below_lod_fraction"]])
    record.params.update(
        below_lod=below_lod,
        plate_normalisation=plate_normalisation,
        max_below_lod_fraction=max_below_lod_fraction,
        n_values_qc_warning=int((adata.layers["qc_warning"] > 0).sum()),
    )
    return record.drop(
        result, fraction_below > max_below_lod_fraction,
        f"more than {max_below_lod_fraction:.0%} of values below LOD",
    )  # fmt: skip


def _plate_offsets(values: np.ndarray, plates: np.ndarray) -> np.ndarray:
    """Per-sample offsets: the plate's median of each feature minus the feature's overall median."""
    overall = np.nanmedian(values, axis=0)
    offsets = np.zeros_like(values)
    for plate in np.unique(plates):
        rows = plates == plate
        offsets[rows] = np.nanmedian(values[rows], axis=0) - overall
    return np.nan_to_num(offsets)


# --- Concentrations -----------------------------------------------------------------------------

_BELOW_LLOQ = {"half_lloq": 0.5, "lloq_sqrt2": 1 / np.sqrt(2), "lloq": 1.0}


def preprocess_concentration(
    adata: ad.AnnData,
    record: Record,
    *,
    below_lloq: str = "half_lloq",
    max_censored_fraction: float = 0.8,
) -> ad.AnnData:
    """Put censored concentrations at their limits, drop mostly-censored analytes, take log2.

    Parameters
    ----------
    adata
        Concentrations with ``layers["censored"]`` (-1 below LLOQ, +1 above ULOQ) and
        ``var["lloq"]``, ``var["uloq"]``. Measured values <= 0 count as below the LLOQ.
    record
        Where parameters and removals are recorded.
    below_lloq
        Value for results below the LLOQ: "half_lloq" (LLOQ/2), "lloq_sqrt2" (LLOQ/sqrt 2), "lloq".
    max_censored_fraction
        Analytes with a larger fraction of censored values are removed.

    Returns
    -------
    log2 concentrations, with the censoring flags kept in ``layers["censored"]``.
    """
    values = adata.X.copy()
    censored = adata.layers["censored"].copy()
    censored[values <= 0] = -1
    lloq = adata.var["lloq"].to_numpy() * _BELOW_LLOQ[below_lloq]
    values = np.where(censored < 0, lloq, np.where(censored > 0, adata.var["uloq"].to_numpy(), values))
    observed = np.isfinite(values)
    result = ad.AnnData(np.log2(values), obs=adata.obs.copy(), var=adata.var.copy())
    result.layers["censored"] = censored
    result.var["below_lloq_fraction"] = (censored < 0).sum(axis=0) / np.maximum(observed.sum(0), 1)
    result.var["above_uloq_fraction"] = (censored > 0).sum(axis=0) / np.maximum(observed.sum(0), 1)
    record.add_metrics(result.var[["below_lloq_fraction", "above_uloq_fraction"]])
    record.params.update(below_lloq=below_lloq, max_censored_fraction=max_censored_fraction,
                         transform="log2")  # fmt: skip
    fraction = result.var["below_lloq_fraction"] + result.var["above_uloq_fraction"]
    return record.drop(
        result, (fraction > max_censored_fraction).to_numpy(),
        f"more than {max_censored_fraction:.0%} of values outside the limits of quantification",
    )  # fmt: skip


# --- Cell frequencies ---------------------------------------------------------------------------


def clr_by_parent(frequencies: np.ndarray, parents: np.ndarray) -> tuple[np.ndarray, dict]:
    """Centred log-ratio of population frequencies within each parent population.

    The children of a parent, plus the remainder (100% minus their sum) when they do not cover
    the parent, form one composition. Zeros are replaced by half the smallest positive frequency.

    Parameters
    ----------
    frequencies
        Samples x populations, percent of parent.
    parents
        The parent of each population.

    Returns
    -------
    CLR values (same shape; NaN where a composition has a missing part) and, per parent, whether
    a remainder part was added.
    """
    pseudo = 0.5 * np.nanmin(np.where(frequencies > 0, frequencies, np.nan))
    clr = np.full_like(frequencies, np.nan, dtype=float)
    with_remainder = {}
    for parent in pd.unique(parents):
        columns = np.flatnonzero(parents == parent)
        parts = frequencies[:, columns]
        remainder = 100 - parts.sum(axis=1, keepdims=True)
        with_remainder[str(parent)] = bool(np.nanmedian(remainder) > 1)
        if with_remainder[str(parent)]:
            parts = np.hstack([parts, remainder])
        logs = np.log(np.maximum(parts, pseudo))
        clr[:, columns] = (logs - logs.mean(axis=1, keepdims=True))[:, : len(columns)]
    return clr, with_remainder


def preprocess_cell_frequency(adata: ad.AnnData, record: Record) -> ad.AnnData:
    """CLR-transform population frequencies within each parent (see :func:`clr_by_parent`)."""
    clr, with_remainder = clr_by_parent(adata.X, adata.var["parent"].to_numpy())
    result = ad.AnnData(clr, obs=adata.obs.copy(), var=adata.var.copy())
    result.layers["percent_of_parent"] = adata.X.copy()
    record.params.update(
        transform="clr within parent",
        parents_with_remainder_part=[parent for parent, added in with_remainder.items() if added],
    )
    return result


# --- RNA-seq counts -----------------------------------------------------------------------------


def median_of_ratios(counts: np.ndarray) -> np.ndarray:
    """DESeq2 size factors: per sample, the median ratio to the genes' geometric means.

    Parameters
    ----------
    counts
        Samples x genes, non-negative integers.

    Returns
    -------
    One size factor per sample. Only genes with a positive count in every sample are used.
    """
    with np.errstate(divide="ignore"):
        logs = np.log(counts)
    log_geo_mean = logs.mean(axis=0)
    usable = np.isfinite(log_geo_mean)
    if not usable.any():
        raise StratomicsInputError(
            "RNA counts: no gene has a positive count in every sample, so median-of-ratios size "
            "factors cannot be computed. Remove empty samples or filter the matrix."
        )
    return np.exp(np.median(logs[:, usable] - log_geo_mean[usable], axis=1))


def fit_dispersion_trend(normalised: np.ndarray, size_factors: np.ndarray) -> tuple[float, float]:
    """Fit DESeq2's parametric trend dispersion = a0 + a1 / mean to moment estimates.

    Per-gene dispersions are DESeq2's moment estimates (var - mean * mean(1/s)) / mean^2; the trend
    is a gamma GLM with identity link, refitted without genes whose ratio to the trend lies outside
    [1e-4, 15], as in DESeq2.

    Returns
    -------
    The asymptotic dispersion a0 and the extra-Poisson term a1.
    """
    import statsmodels.api as sm

    mean = normalised.mean(axis=0)
    variance = normalised.var(axis=0, ddof=1)
    dispersion = (variance - np.mean(1 / size_factors) * mean) / mean**2
    keep = (dispersion > 1e-8) & (mean > 0)
    coef = np.array([0.1, 1.0])
    for _ in range(10):
        design = np.column_stack([np.ones(keep.sum()), 1 / mean[keep]])
        family = sm.families.Gamma(link=sm.families.links.Identity())
        with warnings.catch_warnings():  # identity link: domain warning only
            warnings.simplefilter("ignore", sm.tools.sm_exceptions.DomainWarning)
            fit = sm.GLM(dispersion[keep], design, family=family).fit(start_params=coef)
        converged = np.allclose(fit.params, coef, rtol=1e-6)
        coef = fit.params
        ratio = dispersion / (coef[0] + coef[1] / np.maximum(mean, 1e-12))
        keep = (dispersion > 1e-8) & (mean > 0) & (ratio > 1e-4) & (ratio < 15)
        if converged:
            break
    if coef[0] <= 0 or coef[1] < 0:
        log.warning("RNA dispersion trend has a non-positive term %s; clipping it", coef)
    return float(max(coef[0], 1e-8)), float(max(coef[1], 0.0))


def variance_stabilise(normalised: np.ndarray, a0: float, a1: float) -> np.ndarray:
    """DESeq2's closed-form VST for the parametric trend (log2 scale for large counts)."""
    q = normalised
    return np.log2((1 + a1 + 2 * a0 * q + 2 * np.sqrt(a0 * q * (1 + a1 + a0 * q))) / (4 * a0))


def preprocess_rna(
    adata: ad.AnnData, record: Record, *, min_count: int = 10, min_samples: float = 0.1
) -> ad.AnnData:
    """Filter low-count genes, compute median-of-ratios size factors and the parametric VST.

    Parameters
    ----------
    adata
        Raw counts (samples x genes).
    record
        Where parameters and removals are recorded.
    min_count, min_samples
        Keep genes with at least ``min_count`` reads in at least ``min_samples`` samples (a
        fraction of the samples when below 1, at least 3).

    Returns
    -------
    VST values, counts in ``layers["counts"]``, ``obs["size_factor"]``, ``obs["library_size"]``.
    """
    counts = adata.X
    needed = max(3, int(np.ceil(min_samples * len(counts)))) if min_samples < 1 else int(min_samples)
    record.add_metrics(pd.DataFrame(
        {"total_count": counts.sum(axis=0), "samples_at_min_count": (counts >= min_count).sum(0)},
        index=adata.var_names,
    ))  # fmt: skip
    adata = record.drop(
        adata, (counts >= min_count).sum(axis=0) < needed,
        f"fewer than {needed} samples with >= {min_count} counts",
    )  # fmt: skip
    counts = adata.X
    size_factors = median_of_ratios(counts)
    normalised = counts / size_factors[:, None]
    a0, a1 = fit_dispersion_trend(normalised, size_factors)
    result = ad.AnnData(variance_stabilise(normalised, a0, a1), obs=adata.obs.copy(),
                        var=adata.var.copy())  # fmt: skip
    result.layers["counts"] = counts.copy()
    result.obs["library_size"] = counts.sum(axis=1)
    result.obs["size_factor"] = size_factors
    record.params.update(min_count=min_count, min_samples=needed, size_factors="median of ratios",
                         transform="DESeq2 parametric VST", dispersion_a0=a0, dispersion_a1=a1)  # fmt: skip
    return result


# --- Genotypes ----------------------------------------------------------------------------------


def hwe_exact_p(n_het: np.ndarray, n_hom1: np.ndarray, n_hom2: np.ndarray) -> np.ndarray:
    """Hardy-Weinberg exact test p-values (Wigginton et al. 2005), vectorised over SNPs.

    The p-value sums the probabilities of every heterozygote count no more likely than the observed
    one, given the number of genotyped samples and of minor alleles (relative tolerance 1e-7, as in
    PLINK).

    Parameters
    ----------
    n_het, n_hom1, n_hom2
        Genotype counts per SNP.

    Returns
    -------
    One p-value per SNP (1 for a monomorphic SNP).
    """
    n_het, n_hom1, n_hom2 = (np.asarray(a, dtype=np.int64) for a in (n_het, n_hom1, n_hom2))
    n = n_het + n_hom1 + n_hom2
    n_minor = np.minimum(2 * n_hom1 + n_het, 2 * n_hom2 + n_het)
    p_values = np.ones(len(n))
    keys = pd.DataFrame({"n": n, "minor": n_minor, "het": n_het})
    for (samples, minor), group in keys.groupby(["n", "minor"]):
        if minor == 0:
            continue
        het = np.arange(minor % 2, minor + 1, 2)
        hom_minor = (minor - het) // 2
        hom_major = samples - het - hom_minor
        valid = hom_major >= 0
        het, hom_minor, hom_major = het[valid], hom_minor[valid], hom_major[valid]
        log_prob = het * np.log(2) - gammaln(het + 1) - gammaln(hom_minor + 1) - gammaln(hom_major + 1)
        prob = np.exp(log_prob - log_prob.max())
        prob /= prob.sum()
        observed = prob[np.searchsorted(het, group["het"].to_numpy())]
        tail = prob[None, :] <= observed[:, None] * (1 + 1e-7)
        p_values[group.index] = np.minimum((tail * prob[None, :]).sum(axis=1), 1.0)
    return p_values


def genotype_metrics(dosages: np.ndarray, index) -> pd.DataFrame:
    """Per-SNP call rate, minor-allele frequency and HWE exact p from A1 dosages (NaN = missing)."""
    called = np.isfinite(dosages)
    counts = {g: (dosages == g).sum(axis=0) for g in (0, 1, 2)}
    n_called = called.sum(axis=0)
    a1_frequency = (counts[1] + 2 * counts[2]) / np.maximum(2 * n_called, 1)
    return pd.DataFrame(
        {
            "call_rate": n_called / len(dosages),
            "maf": np.minimum(a1_frequency, 1 - a1_frequency),
            "a1_frequency": a1_frequency,
            "hwe_p": hwe_exact_p(counts[1], counts[0], counts[2]),
        },
        index=index,
    )


def preprocess_genotypes(
    adata: ad.AnnData,
    record: Record,
    *,
    min_call_rate: float = 0.95,
    min_sample_call_rate: float = 0.9,
    min_maf: float = 0.01,
    min_hwe_p: float = 1e-6,
) -> ad.AnnData:
    """SNP call rate, sample call rate, MAF and HWE filters (in this order); additive A1 dosage.

    Returns
    -------
    Dosages of A1 (0/1/2, NaN missing) of the kept SNPs and samples, with QC metrics in var/obs.
    """
    metrics = genotype_metrics(adata.X, adata.var_names)
    record.add_metrics(metrics)
    adata = record.drop(adata, metrics["call_rate"].to_numpy() < min_call_rate,
                        f"SNP call rate below {min_call_rate}")  # fmt: skip
    sample_rate = np.isfinite(adata.X).mean(axis=1)
    adata.obs["call_rate"] = sample_rate
    adata = record.drop(adata, sample_rate < min_sample_call_rate,
                        f"sample call rate below {min_sample_call_rate}", axis="sample")  # fmt: skip
    metrics = genotype_metrics(adata.X, adata.var_names)
    adata = record.drop(adata, metrics["maf"].to_numpy() < min_maf, f"MAF below {min_maf}")
    metrics = genotype_metrics(adata.X, adata.var_names)
    adata = record.drop(adata, metrics["hwe_p"].to_numpy() < min_hwe_p,
                        f"HWE exact p below {min_hwe_p:g}")  # fmt: skip
    adata.var = adata.var.join(genotype_metrics(adata.X, adata.var_names))
    record.params.update(min_call_rate=min_call_rate, min_sample_call_rate=min_sample_call_rate,
                         min_maf=min_maf, min_hwe_p=min_hwe_p, coding="additive dosage of A1")  # fmt: skip
    return adata


# --- Generic table ------------------------------------------------------------------------------


#: Transforms of the ``table`` kind (``log2p1``: log2(x + 1), for counts or intensities with zeros).
TABLE_TRANSFORMS = {"none": None, "log2": np.log2, "log2p1": lambda x: np.log2(x + 1), "log10": np.log10}


def preprocess_table(adata: ad.AnnData, record: Record, *, transform: str = "none", scale: str = "zscore") -> ad.AnnData:
    """Optionally log-transform, then z-score every feature (missing values ignored), or leave the scale.

    Binary features (two observed values 0 and 1, e.g. mutations) stay 0/1 and are neither
    transformed nor scaled; a constant feature stays as it is (and is then removed as constant).
    Give ``scale: none`` for values that are already normalised (e.g. log-expression), so that the
    moderated tests see the data's own variances as limma would.

    Raises
    ------
    StratomicsInputError
        When a log transform meets a value it is not defined for, naming the feature and the value.
    """
    result = adata.copy()
    values = np.array(adata.X, dtype=float)
    binary = np.array([set(np.unique(column[np.isfinite(column)])) == {0.0, 1.0} for column in values.T], bool)
    continuous = values[:, ~binary]
    if TABLE_TRANSFORMS[transform] is not None:
        bad = np.isfinite(continuous) & (continuous <= (-1 if transform == "log2p1" else 0))
        if bad.any():
            row, column = np.argwhere(bad)[0]
            raise StratomicsInputError(
                f"assay '{record.assay}': transform {transform} is not defined for feature "
                f"'{adata.var_names[~binary][column]}', sample '{adata.obs_names[row]}', value {continuous[row, column]:g}. "
                "Use transform: none for values already on a log scale, or log2p1 for counts with zeros."
            )
        continuous = TABLE_TRANSFORMS[transform](continuous)
    if scale == "zscore":
        spread = np.nanstd(continuous, axis=0, ddof=1)
        varying = np.isfinite(spread) & (spread > 0)
        continuous[:, varying] = _zscore(continuous[:, varying])
    values[:, ~binary] = continuous
    result.X = values
    record.params.update(transform=transform, scale=scale, binary_features=int(binary.sum()))
    return result


def _zscore(values: np.ndarray) -> np.ndarray:
    """Centre and scale each column to unit SD, ignoring NaN."""
    return (values - np.nanmean(values, axis=0)) / np.nanstd(values, axis=0, ddof=1)


KIND_STEPS = {
    "olink_npx": (preprocess_olink, ("below_lod", "plate_normalisation", "max_below_lod_fraction")),
    "concentration": (preprocess_concentration, ("below_lloq", "max_censored_fraction")),
    "cell_frequency": (preprocess_cell_frequency, ()),
    "rna_counts": (preprocess_rna, ("min_count", "min_samples")),
    "genotypes": (preprocess_genotypes,
                  ("min_call_rate", "min_sample_call_rate", "min_maf", "min_hwe_p")),
    "table": (preprocess_table, ("transform", "scale")),
}  # fmt: skip


def drop_uninformative(adata: ad.AnnData, record: Record) -> ad.AnnData:
    """Remove features that are missing in all samples, observed in one sample, or constant."""
    adata = record.drop(adata, np.isfinite(adata.X).sum(axis=0) == 0, "missing in every sample")
    adata = record.drop(adata, np.isfinite(adata.X).sum(axis=0) < 2, "observed in a single sample")
    spread = np.nanmax(adata.X, axis=0) - np.nanmin(adata.X, axis=0)
    return record.drop(adata, spread == 0, "constant across samples")


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


def qc_pca(values: np.ndarray, seed: int = 0) -> np.ndarray:
    """Two principal components of standardised features, missing values set to the mean."""
    scaled = np.nan_to_num(_zscore(values))
    n_components = min(2, *scaled.shape)
    return PCA(n_components=n_components, random_state=seed).fit_transform(scaled)


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
    The preprocessed assay, with ``obsm["X_qc_pca"]`` (after a batch correction also
    ``X_qc_pca_uncorrected`` and the values before it in ``layers["uncorrected"]``, which the
    association tests read) and the record in ``uns``.
    """
    kind = spec["kind"]
    step, option_names = KIND_STEPS[kind]
    record = Record(name, kind)
    options = {key: spec[key] for key in option_names if key in spec}
    result = step(adata, record, **options)
    record.add_metrics(pd.DataFrame(
        {"missing_fraction": 1 - np.isfinite(result.X).mean(axis=0)}, index=result.var_names
    ))  # fmt: skip
    result = drop_uninformative(result, record)
    correction = spec.get("batch_correction", batch_correction)
    result.obsm["X_qc_pca"] = qc_pca(result.X, seed)
    if batch and result.obs[batch].nunique() < 2:
        correction = "none"  # one batch (e.g. a single site): nothing to correct
        record.params.update(batch_correction="none (one batch)")
    if correction != "none" and kind != "genotypes" and batch:
        result.obsm["X_qc_pca_uncorrected"] = result.obsm["X_qc_pca"]
        result.layers[UNCORRECTED] = result.X.copy()
        if correction == "combat":
            result.X = combat(result, batch, combat_covariates)
            record.params.update(combat_covariates=list(combat_covariates))
        else:
            result.X = centre_batches(result, batch)
        result.obsm["X_qc_pca"] = qc_pca(result.X, seed)
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

"""RNA-seq counts (kind ``rna_counts``): count checks, filtering, median-of-ratios size factors, variance stabilisation."""

from __future__ import annotations

import logging
import warnings

import anndata as ad
import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError
from stratomics.io import (AssayTable, read_wide,
                           wide_options)
from stratomics.kinds.base import AssayKind
from stratomics.plot import colours
from stratomics.qc_record import Record

log = logging.getLogger(__name__)


def read_rna_counts(path, *, source, known_ids, options) -> AssayTable:
    """Read an RNA-seq count matrix (kind ``rna_counts``; genes x samples or samples x genes)."""
    assay = read_wide(path, source=source, known_ids=known_ids, **wide_options(options))
    counts = assay.values.to_numpy()
    bad = (counts < 0) | (np.abs(counts - np.round(counts)) > 1e-9)
    if np.nan_to_num(bad, nan=False).any():
        row, col = (int(i[0]) for i in np.nonzero(np.nan_to_num(bad, nan=False)))
        raise StratomicsInputError(
            f"{source}: sample '{assay.values.index[row]}' gene '{assay.values.columns[col]}' has "
            f"count {counts[row, col]:g}; RNA-seq counts must be non-negative integers. Use raw "
            "counts (featureCounts/HTSeq), or round estimated counts (salmon/kallisto) first."
        )
    return assay


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
                         transform="DESeq2 parametric VST", unit="VST (log2 scale)", dispersion_a0=a0, dispersion_a1=a1)  # fmt: skip
    return result


def _library_panel(ax, *, adata, batch, **_):
    frame = adata.obs.assign(library_size=adata.obs["library_size"] / 1e6)
    if batch and batch in frame:
        batches = frame[batch].astype(str)
        order = sorted(batches.unique())
        jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(frame))  # seeded: the figure is the same on every run
        by_batch = dict(zip(order, colours(len(order))))
        ax.scatter(frame["library_size"], batches.map(order.index) + jitter, s=2, c=batches.map(by_batch).tolist())
        ax.set(yticks=range(len(order)), yticklabels=order)
        ax.invert_yaxis()
    else:
        ax.hist(frame["library_size"], bins=40, color=colours()[0])
    ax.set(title="Library sizes", xlabel="million reads", ylabel=batch or "samples")


def _size_factor_panel(ax, *, adata, **_):
    ax.scatter(adata.obs["library_size"] / 1e6, adata.obs["size_factor"], s=2,
               color=colours()[0])  # fmt: skip
    ax.set(title="Size factors", xlabel="million reads", ylabel="median-of-ratios size factor")


KIND = AssayKind(
    name="rna_counts",
    read=read_rna_counts,
    preprocess=preprocess_rna,
    options={
        "min_count": {"type": "integer", "minimum": 0, "description": "a gene is kept with at least this count ..."},
        "min_samples": {"type": "number", "minimum": 0, "description": "... in at least this many samples (a fraction if < 1)."},
    },
    preprocess_options=("min_count", "min_samples"),
    sample_qc_panels=(_library_panel, _size_factor_panel),
)  # fmt: skip

"""Additive genetic association scan, streamed over chunks of SNPs (as plink2 --glm)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from stratomics.associate.predictor import fit_linear_predictor, fit_logistic_predictor


def scan_snps(
    read_chunk: Callable[[slice], np.ndarray],
    snps: pd.Index,
    y: np.ndarray,
    *,
    covariates: np.ndarray,
    model: str = "linear",
    chunk_size: int = 5000,
) -> pd.DataFrame:
    """Test y ~ dosage + covariates for every SNP, reading a chunk of SNPs at a time.

    Parameters
    ----------
    read_chunk
        Returns the dosages (patients x SNPs of the chunk, NaN missing; float32 or float64, row-major
        reads fastest for the linear model, column-major for the logistic one) of a slice of SNPs;
        rows aligned with ``y``.
    snps
        SNP IDs, in file order.
    y
        Phenotype per patient (0/1 for the logistic model), no missing values.
    covariates
        Patients x q covariates with the intercept.
    model
        "linear" (t-tests, df = n - p) or "logistic" (Wald z-tests).
    chunk_size
        SNPs held in memory at once.

    Returns
    -------
    One row per SNP: estimate (per allele; log odds for logistic), std_error, CI, statistic,
    p_value, n, note, plus the allele frequency of the counted allele among the tested patients.
    """
    tables = []
    p = covariates.shape[1] + 1
    for start in range(0, len(snps), chunk_size):
        chunk = slice(start, min(len(snps), start + chunk_size))
        dosages = read_chunk(chunk)
        if model == "linear":  # one pass over the patients' rows (float32 read as it is)
            fit = fit_linear_predictor(y, np.ascontiguousarray(dosages), covariates)
            table = fit.table(snps[chunk], distribution="t", df=fit.n - p)
        else:
            table = fit_logistic_predictor(y, np.asarray(dosages, dtype=float), covariates).table(snps[chunk])
        table["allele_frequency"] = allele_frequency(dosages)
        tables.append(table)
    return pd.concat(tables)


def allele_frequency(dosages: np.ndarray) -> np.ndarray:
    """Frequency of the counted allele per SNP among the called patients (NaN where none is called)."""
    called = (dosages == dosages).sum(axis=0)  # NaN != NaN
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.fmax(dosages, 0).sum(axis=0, dtype=float) / (2 * called)  # fmax: NaN counts as 0

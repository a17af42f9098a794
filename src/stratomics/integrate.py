"""Multi-omics integration that keeps every patient with at least one assay.

The default method is a multiple factor analysis (MFA) with missing blocks:

1. each assay is reduced to its leading principal components (features standardised, missing values
   at the feature mean), so a 20,000-gene assay and a 20-cytokine assay enter as comparable blocks;
2. each block is divided by its first singular value (MFA weighting), so no block dominates;
3. the blocks are joined; a patient without an assay has that block missing, and the joint factors
   are found by iterative SVD imputation (EM-PCA): missing blocks are filled with their rank-k
   reconstruction until the factors stop changing.

Everything needed to place a new patient in the same space (means, scales, loadings, weights) is
kept in an :class:`IntegrationModel`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.utils.extmath import randomized_svd

log = logging.getLogger(__name__)


@dataclass
class BlockModel:
    """How one assay is turned into its block of the joint matrix."""

    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    loadings: np.ndarray  # features x block components
    weight: float  # 1 / first singular value of the block scores

    def transform(self, values: pd.DataFrame) -> np.ndarray:
        """Block scores of patients (rows), NaN rows for patients without any value."""
        values = values.reindex(columns=self.features).to_numpy(dtype=float)
        standardised = (values - self.mean) / self.scale
        empty = np.isnan(standardised).all(axis=1)
        scores = np.nan_to_num(standardised) @ self.loadings * self.weight
        scores[empty] = np.nan
        return scores


@dataclass
class IntegrationModel:
    """A fitted integration: per-assay blocks and the joint factor loadings."""

    blocks: dict[str, BlockModel]
    center: np.ndarray
    components: np.ndarray  # joint components x block columns
    singular_values: np.ndarray
    block_slices: dict[str, slice] = field(default_factory=dict)
    variance: pd.DataFrame = field(default_factory=pd.DataFrame)

    def joint_matrix(self, assays: dict[str, pd.DataFrame], patients: pd.Index) -> np.ndarray:
        """Patients x joint columns, NaN where a patient lacks an assay."""
        columns = []
        for name, block in self.blocks.items():
            values = assays.get(name, pd.DataFrame(index=patients)).reindex(patients)
            columns.append(block.transform(values))
        return np.hstack(columns)

    def transform(self, assays: dict[str, pd.DataFrame], patients: pd.Index) -> np.ndarray:
        """Factor scores of (new) patients: least squares on the blocks each patient has.

        Parameters
        ----------
        assays
            Preprocessed values per assay (patients x features), any subset of the assays.
        patients
            The patients to score.

        Returns
        -------
        Patients x factors, NaN rows for patients with none of the assays.
        """
        joint = self.joint_matrix(assays, patients) - self.center
        scores = np.full((len(patients), len(self.singular_values)), np.nan)
        observed = ~np.isnan(joint)
        basis = self.components.T  # joint columns x factors
        for pattern in np.unique(observed, axis=0):
            if not pattern.any():
                continue
            rows = (observed == pattern).all(axis=1)
            solution = np.linalg.lstsq(basis[pattern], joint[np.ix_(rows, pattern)].T, rcond=None)[0]
            scores[rows] = solution.T
        return scores


def _block(values: pd.DataFrame, n_components: int, seed: int) -> BlockModel:
    """Standardise an assay, take its leading components and the MFA weight."""
    matrix = values.to_numpy(dtype=float)
    mean = np.nanmean(matrix, axis=0)
    scale = np.nanstd(matrix, axis=0, ddof=1)
    keep = np.isfinite(scale) & (scale > 0)
    matrix, mean, scale = matrix[:, keep], mean[keep], scale[keep]
    standardised = np.nan_to_num((matrix - mean) / scale)
    k = max(1, min(n_components, *standardised.shape) - 1)
    _, singular, vt = randomized_svd(standardised, k, random_state=seed, n_iter=7)
    loadings = vt.T
    return BlockModel(list(values.columns[keep]), mean, scale, loadings, 1.0 / singular[0])


def fit_integration(
    assays: dict[str, pd.DataFrame],
    patients: pd.Index,
    *,
    n_factors: int = 10,
    block_components: int = 30,
    max_iter: int = 200,
    tol: float = 1e-6,
    seed: int = 0,
) -> tuple[IntegrationModel, np.ndarray]:
    """Fit the MFA with missing blocks and return the factor scores of ``patients``.

    Parameters
    ----------
    assays
        Preprocessed values per assay: patients (who have the assay) x features.
    patients
        All patients to integrate (those without any assay get NaN scores).
    n_factors
        Joint factors kept.
    block_components
        Principal components kept per assay before joining.
    max_iter, tol
        Iterations of the SVD imputation and the relative change of the reconstruction that stops it.
    seed
        Seed of the randomized SVDs.

    Returns
    -------
    The model and the patients x factors scores.
    """
    blocks = {name: _block(values, block_components, seed) for name, values in assays.items()}
    model = IntegrationModel(blocks, np.zeros(0), np.zeros((0, 0)), np.zeros(0))
    joint = model.joint_matrix(assays, patients)
    missing = np.isnan(joint)
    center = np.nanmean(joint, axis=0)
    filled = np.where(missing, center, joint)
    k = min(n_factors, min(filled.shape) - 1)
    previous = None
    for iteration in range(max_iter):
        mean = filled.mean(axis=0)
        u, singular, vt = randomized_svd(filled - mean, k, random_state=seed, n_iter=5)
        reconstruction = (u * singular) @ vt + mean
        change = np.sum((reconstruction[missing] - filled[missing]) ** 2) / max(np.sum(filled**2), 1e-300)
        filled[missing] = reconstruction[missing]
        if previous is not None and change < tol:
            break
        previous = change
    log.info("integration: %d patients, %d blocks, %d factors, %d imputation rounds",
             len(patients), len(blocks), k, iteration + 1)  # fmt: skip
    model.center, model.components, model.singular_values = mean, vt, singular
    start = 0
    for name, block in blocks.items():
        model.block_slices[name] = slice(start, start + block.loadings.shape[1])
        start += block.loadings.shape[1]
    model.variance = variance_explained(model, filled)
    scores = u * singular
    scores[missing.all(axis=1)] = np.nan
    return model, scores


def variance_explained(model: IntegrationModel, filled: np.ndarray) -> pd.DataFrame:
    """Share of each assay block's variance that each factor explains.

    Parameters
    ----------
    model
        The fitted model.
    filled
        The joint matrix with its missing blocks imputed (as fitted).

    Returns
    -------
    One row per factor and assay: factor, assay, variance_explained.
    """
    rows = []
    for name, columns in model.block_slices.items():
        total = np.sum((filled[:, columns] - model.center[columns]) ** 2)
        for factor, singular in enumerate(model.singular_values):
            part = singular**2 * np.sum(model.components[factor, columns] ** 2)
            rows.append({"factor": factor + 1, "assay": name, "variance_explained": part / total})
    return pd.DataFrame(rows)

"""Multiple factor analysis with missing blocks (method ``mfa``) and concatenated PCA (``concat_pca``).

The MFA:

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

    def feature_weights(self) -> dict[str, pd.DataFrame]:
        """Loadings of the standardised features on the joint factors, per assay (features x factors):
        each block's component loadings times its weight, mapped through the joint components."""
        return {name: pd.DataFrame(block.loadings @ self.components[:, self.block_slices[name]].T * block.weight,
                                   index=block.features)
                for name, block in self.blocks.items()}  # fmt: skip


def _block(values: pd.DataFrame, n_components: int, seed: int, *, weighted: bool = True) -> BlockModel:
    """Standardise an assay and take its leading components with the MFA weight.

    With ``weighted=False`` (concatenated PCA) the block is the standardised features themselves.
    """
    matrix = values.to_numpy(dtype=float)
    mean = np.nanmean(matrix, axis=0)
    scale = np.nanstd(matrix, axis=0, ddof=1)
    keep = np.isfinite(scale) & (scale > 0)
    matrix, mean, scale = matrix[:, keep], mean[keep], scale[keep]
    if not weighted:
        return BlockModel(list(values.columns[keep]), mean, scale, np.eye(keep.sum()), 1.0)
    standardised = np.nan_to_num((matrix - mean) / scale)
    k = max(1, min(n_components, *standardised.shape) - 1)
    _, singular, vt = randomized_svd(standardised, k, random_state=seed, n_iter=7)
    return BlockModel(list(values.columns[keep]), mean, scale, vt.T, 1.0 / singular[0])


def fit_mfa(assays: dict[str, pd.DataFrame], patients: pd.Index, *, n_factors: int | str = "auto",
            max_factors: int = 15, seed: int = 0, block_components: int = 20, max_iter: int = 200,
            tol: float = 1e-6):  # fmt: skip
    """Multiple factor analysis with missing blocks (see the module docstring).

    Parameters
    ----------
    assays, patients, n_factors, max_factors, seed
        See :func:`stratomics.integrate.fit_integration`. "auto" factors: those whose singular
        value exceeds the largest one of the same rank in 10 column-permuted copies of the joint
        matrix (parallel analysis), between 2 and ``max_factors``.
    block_components
        Principal components kept per assay before joining.
    max_iter, tol
        Iterations of the SVD imputation and the relative change of the imputed values that stops it.

    Returns
    -------
    The model and the patients x factors scores.
    """
    blocks = {name: _block(values, block_components, seed) for name, values in assays.items()}
    return _fit_joint(blocks, assays, patients, n_factors=n_factors, max_factors=max_factors, max_iter=max_iter,
                      tol=tol, seed=seed)  # fmt: skip


def fit_concat_pca(assays: dict[str, pd.DataFrame], patients: pd.Index, *, n_factors: int | str = "auto",
                   max_factors: int = 15, seed: int = 0):  # fmt: skip
    """The naive baseline: standardised features of all assays side by side, one PCA.

    Missing assays stay at the feature means, so a large assay dominates. Parameters and returns
    as :func:`fit_mfa`.
    """
    blocks = {name: _block(values, 0, seed, weighted=False) for name, values in assays.items()}
    return _fit_joint(blocks, assays, patients, n_factors=n_factors, max_factors=max_factors, max_iter=1, tol=0.0,
                      seed=seed)  # fmt: skip


def _fit_joint(blocks: dict[str, BlockModel], assays: dict[str, pd.DataFrame], patients: pd.Index, *,
               n_factors: int | str, max_factors: int, max_iter: int, tol: float, seed: int):  # fmt: skip
    """Joint factors of the joined blocks by SVD imputation; the model and the patients' scores."""
    model = IntegrationModel(blocks, np.zeros(0), np.zeros((0, 0)), np.zeros(0))
    start = 0
    for name, block in blocks.items():
        model.block_slices[name] = slice(start, start + block.loadings.shape[1])
        start += block.loadings.shape[1]
    joint = model.joint_matrix(assays, patients)
    has_data = ~np.isnan(joint).all(axis=1)
    joint = joint[has_data]
    rank = min(max_factors if n_factors == "auto" else n_factors, min(joint.shape) - 1)
    filled, u, singular, vt, mean = _svd_impute(joint, rank, max_iter, tol, seed)
    if n_factors == "auto":
        rank = _parallel_analysis(filled, singular, seed)
        filled, u, singular, vt, mean = _svd_impute(joint, rank, max_iter, tol, seed)
    model.center, model.components, model.singular_values = mean, vt, singular
    model.variance = variance_explained(model, filled)
    scores = np.full((len(patients), rank), np.nan)
    scores[has_data] = u * singular
    log.info("integration: %d of %d patients with data, %d blocks, %d factors",
             has_data.sum(), len(patients), len(blocks), rank)  # fmt: skip
    return model, scores


def _svd_impute(joint: np.ndarray, rank: int, max_iter: int, tol: float, seed: int):
    """Rank-``rank`` SVD of a matrix with missing entries by iterative imputation (EM-PCA).

    Returns
    -------
    The imputed matrix, U, singular values, V' and the column means of the last SVD.
    """
    missing = np.isnan(joint)
    filled = np.where(missing, np.nanmean(joint, axis=0), joint)
    scale = max(np.sum(filled**2), 1e-300)
    for _ in range(max_iter):
        mean = filled.mean(axis=0)
        u, singular, vt = randomized_svd(filled - mean, rank, random_state=seed, n_iter=5)
        reconstruction = (u * singular) @ vt + mean
        change = np.sum((reconstruction[missing] - filled[missing]) ** 2) / scale
        filled[missing] = reconstruction[missing]
        if change < tol:
            break
    return filled, u, singular, vt, mean


def _parallel_analysis(filled: np.ndarray, singular: np.ndarray, seed: int, n_permutations: int = 10) -> int:
    """Number of leading singular values above those of column-permuted data (Horn, 1965)."""
    rng = np.random.default_rng(seed)
    centred = filled - filled.mean(axis=0)
    null = np.zeros((n_permutations, len(singular)))
    for i in range(n_permutations):
        permuted = np.column_stack([rng.permutation(column) for column in centred.T])
        null[i] = randomized_svd(permuted, len(singular), random_state=seed, n_iter=5)[1]
    above = singular > null.max(axis=0)
    count = len(above) if above.all() else int(np.argmin(above))
    return max(2, count)


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

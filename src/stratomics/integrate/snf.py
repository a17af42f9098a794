"""Similarity network fusion (SNF; Wang et al., Nature Methods 2014) and its spectral embedding.

Each assay gives a patient network (scaled exponential kernel on squared Euclidean distances of the
standardised features); the networks are fused by cross-diffusion over each patient's K nearest
neighbours. This follows snfpy (the Python port of the authors' SNFtool), which no longer runs with
current scikit-learn; the tests compare this module with snfpy's functions.

SNF needs every patient in every network, so the network is fitted on the patients with every
assay. The embedding is the diffusion map of the fused network: the leading non-trivial eigenvectors
of its random-walk matrix (self-loops removed) scaled by their eigenvalues, so k-means on it is spectral clustering of the
SNF affinity. Patients with only some assays, and new patients, are placed by the Nystrom extension:
their kernel rows to the fitted patients (K nearest kept, normalised, averaged over the assays they
have) times the eigenvectors. The model keeps the fitted patients' standardised profiles (it needs
them to measure distances), so unlike the MFA model it must not leave the site that fitted it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist
from scipy.stats import norm

from stratomics.errors import StratomicsInputError

log = logging.getLogger(__name__)

EPS = np.spacing(1)
MAX_FITTED_PATIENTS = 15_000  # dense n x n networks per assay


def kernel(distance: np.ndarray, nearest_rows: np.ndarray, nearest_columns: np.ndarray, *, mu: float) -> np.ndarray:
    """Scaled exponential similarity: a normal density of the distance with a local scale.

    Parameters
    ----------
    distance
        Squared Euclidean distances, rows x columns.
    nearest_rows, nearest_columns
        Mean distance of each row / column patient to its K nearest neighbours.
    mu
        Kernel width factor (0.3-0.8 in the SNF paper).

    Returns
    -------
    The affinities, rows x columns.
    """
    sigma = (nearest_rows[:, None] + nearest_columns[None, :] + distance) / 3
    sigma = sigma * (sigma > EPS) + EPS
    return norm.pdf(distance, loc=0, scale=mu * sigma)


def mean_nearest(distance: np.ndarray, k: int, *, skip_self: bool) -> np.ndarray:
    """Mean distance of each row to its ``k`` nearest columns (excluding itself when ``skip_self``)."""
    start = 1 if skip_self else 0
    return np.sort(distance, axis=1)[:, start : start + k].mean(axis=1) + EPS


def _symmetric(matrix: np.ndarray) -> np.ndarray:
    return (matrix + matrix.T) / 2


def _row_normalised(matrix: np.ndarray) -> np.ndarray:
    return matrix / matrix.sum(axis=1, keepdims=True)


def nearest_only(matrix: np.ndarray, k: int) -> np.ndarray:
    """Keep each row's ``k`` largest entries (by percentile, as SNFtool) and renormalise the row."""
    cutoff = np.percentile(matrix, 100 * (1 - k / matrix.shape[1]), axis=1, keepdims=True)
    return _row_normalised(np.where(matrix < cutoff, 0.0, matrix))


def fuse(affinities: list[np.ndarray], *, k: int = 20, iterations: int = 20, alpha: float = 1.0) -> np.ndarray:
    """Fuse patient networks by cross-diffusion (SNF).

    Parameters
    ----------
    affinities
        One symmetric patients x patients affinity matrix per assay, same patients in the same order.
    k
        Neighbours kept in each network's local (sparse) version.
    iterations
        Diffusion steps.
    alpha
        Weight of the self-similarity added at each step.

    Returns
    -------
    The fused, symmetric network.
    """
    status = [_symmetric(_row_normalised(a)) for a in affinities]
    if len(status) > 1:
        local = [nearest_only(s, k) for s in status]
        identity = np.eye(len(status[0]))
        for _ in range(iterations):
            total = sum(status)
            status = [_symmetric(near @ (total - s) @ near.T / (len(status) - 1) + alpha * identity)
                      for near, s in zip(local, status)]  # fmt: skip
    fused = _row_normalised(sum(status) / len(status))
    return (fused + fused.T + np.eye(len(fused))) / 2


@dataclass
class SnfView:
    """One assay's part of the fitted network: how to standardise it and the fitted profiles."""

    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    profiles: np.ndarray  # fitted patients x features, standardised
    nearest: np.ndarray  # mean distance of each fitted patient to its K nearest

    def standardise(self, values: pd.DataFrame) -> np.ndarray:
        """Standardised values (missing features at the mean); NaN rows where a patient has none."""
        matrix = (values.reindex(columns=self.features).to_numpy(dtype=float) - self.mean) / self.scale
        empty = np.isnan(matrix).all(axis=1)
        matrix = np.nan_to_num(matrix)
        matrix[empty] = np.nan
        return matrix


@dataclass
class SnfModel:
    """A fitted fused network's embedding and what is needed to place new patients in it."""

    views: dict[str, SnfView]
    vectors: np.ndarray  # fitted patients x factors (random-walk eigenvectors, scaled)
    eigenvalues: np.ndarray
    k: int
    mu: float
    variance: pd.DataFrame

    def transform(self, assays: dict[str, pd.DataFrame], patients: pd.Index) -> np.ndarray:
        """Embedding of (new) patients by the Nystrom extension over the assays each one has.

        Parameters
        ----------
        assays
            Preprocessed values per assay (patients x features), any subset of the assays.
        patients
            The patients to place.

        Returns
        -------
        Patients x factors, NaN rows for patients with none of the assays.
        """
        transition = np.zeros((len(patients), len(self.vectors)))
        n_views = np.zeros(len(patients))
        for name, view in self.views.items():
            values = view.standardise(assays.get(name, pd.DataFrame(index=patients)).reindex(patients))
            present = ~np.isnan(values).all(axis=1)
            distance = cdist(values[present], view.profiles, "sqeuclidean")
            nearest = mean_nearest(distance, self.k, skip_self=False)
            transition[present] += nearest_only(kernel(distance, nearest, view.nearest, mu=self.mu), self.k)
            n_views += present
        scores = np.full((len(patients), self.vectors.shape[1]), np.nan)
        placed = n_views > 0
        scores[placed] = (transition[placed] / n_views[placed, None]) @ self.vectors
        return scores


def _view(values: pd.DataFrame, k: int, mu: float) -> tuple[SnfView, np.ndarray]:
    """Standardise one assay of the fitted patients and compute its affinity network."""
    matrix = values.to_numpy(dtype=float)
    mean, scale = np.nanmean(matrix, axis=0), np.nanstd(matrix, axis=0, ddof=1)
    keep = np.isfinite(scale) & (scale > 0)
    profiles = np.nan_to_num((matrix[:, keep] - mean[keep]) / scale[keep])
    distance = cdist(profiles, profiles, "sqeuclidean")
    nearest = mean_nearest(distance, k, skip_self=True)
    view = SnfView(list(values.columns[keep]), mean[keep], scale[keep], profiles, nearest)
    return view, _symmetric(kernel(distance, nearest, nearest, mu=mu))


def fit_snf(assays: dict[str, pd.DataFrame], patients: pd.Index, *, n_factors: int | str = "auto",
            max_factors: int = 15, k: int = 20, mu: float = 0.5, iterations: int = 20):  # fmt: skip
    """Fuse the assays' networks over the patients with every assay and embed all patients.

    Parameters
    ----------
    assays
        Preprocessed values per assay: patients (who have the assay) x features.
    patients
        All patients to embed (those without any assay get NaN scores).
    n_factors
        Eigenvectors kept, or "auto": ``max_factors`` of them (scaling by the eigenvalues makes the
        later, weaker ones count less; the eigengap picked too few on the demo cohort).
    k, mu, iterations
        SNF's neighbours, kernel width and diffusion steps.

    Returns
    -------
    The model and the patients x factors scores.
    """
    fitted = patients[np.all([patients.isin(frame.index) for frame in assays.values()], axis=0)]
    if len(fitted) < max(2 * k, 20):
        raise StratomicsInputError(
            f"integrate: method snf needs patients with every assay ({', '.join(assays)}) to build the "
            f"network, and only {len(fitted)} have them all; integrate fewer assays or use method mfa."
        )
    if len(fitted) > MAX_FITTED_PATIENTS:
        raise StratomicsInputError(
            f"integrate: method snf builds dense patient x patient networks and {len(fitted)} patients "
            f"would need {8 * 4 * len(fitted) ** 2 * len(assays) / 2**30:.0f} GiB; use method mfa."
        )
    views, affinities = {}, []
    for name, values in assays.items():
        views[name], affinity = _view(values.reindex(fitted), k, mu)
        affinities.append(affinity)
    fused = fuse(affinities, k=k, iterations=iterations)
    np.fill_diagonal(fused, 0.0)  # the walk moves between patients
    degree = fused.sum(axis=1)
    eigenvalues, vectors = np.linalg.eigh(fused / np.sqrt(np.outer(degree, degree)))
    n_factors = max_factors if n_factors == "auto" else n_factors
    order = np.argsort(eigenvalues)[::-1][: n_factors + 1]
    eigenvalues, vectors = eigenvalues[order], vectors[:, order]
    walk_vectors = vectors[:, 1 : n_factors + 1] / np.sqrt(degree)[:, None] * np.sqrt(len(fitted))
    walk_vectors *= np.sign(walk_vectors[np.argmax(np.abs(walk_vectors), axis=0), range(n_factors)])
    model = SnfModel(views, walk_vectors, eigenvalues[1 : n_factors + 1], k, mu, _variance_explained(views, walk_vectors))
    scores = model.transform(assays, patients)
    scores[patients.isin(fitted)] = walk_vectors * model.eigenvalues
    log.info("snf: network of %d patients with every assay, %d eigenvectors; %d more patients placed",
             len(fitted), n_factors, (~np.isnan(scores).any(axis=1)).sum() - len(fitted))  # fmt: skip
    return model, scores


def _variance_explained(views: dict[str, SnfView], vectors: np.ndarray) -> pd.DataFrame:
    """Share of each assay's standardised variance (fitted patients) that each eigenvector explains:
    the mean over features of their squared correlation with it."""
    centred = vectors - vectors.mean(axis=0)
    unit = centred / np.linalg.norm(centred, axis=0)
    rows = []
    for name, view in views.items():
        profiles = view.profiles - view.profiles.mean(axis=0)
        total = np.sum(profiles**2)
        for factor in range(unit.shape[1]):
            rows.append({"factor": factor + 1, "assay": name,
                         "variance_explained": float(np.sum((unit[:, factor] @ profiles) ** 2) / total)})  # fmt: skip
    return pd.DataFrame(rows)

"""Patient subgroups: consensus clustering over resamples, stability-first choice of k, per-patient
confidence, and assignment of new patients.

For each k, the clustering (k-means or a Gaussian mixture) is refitted on ``n_resamples`` random
subsamples (``fraction`` of the patients, at most ``max_resample_size``). On a reference subset of patients (all of them up to
``max_consensus_patients``) this gives the consensus matrix, its PAC (proportion of ambiguous
clustering: pairs co-clustered in 10-90% of the resamples where both were drawn) and the mean
consensus within each cluster. Every resampled model also labels every patient; after matching its
labels to the final ones, a patient's confidence is the share of resamples that agree with its final
label. The final labels come from the same algorithm fitted on all patients.

The rule for k (stability first): keep the k whose PAC is within 0.05 of the lowest PAC and whose
smallest subgroup has at least ``min_size`` patients; among them take the k with the highest mean
silhouette. ``k`` in the config overrides it; the full table is written so users can see why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture

log = logging.getLogger(__name__)


def _fit(embedding: np.ndarray, k: int, algorithm: str, seed: int, n_init: int = 10):
    """A fitted clustering model with ``predict``."""
    if algorithm == "kmeans":
        return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(embedding)
    if algorithm == "gmm":
        return GaussianMixture(n_components=k, covariance_type="full", n_init=max(1, n_init // 3),
                               random_state=seed).fit(embedding)  # fmt: skip
    raise ValueError(f"unknown clustering algorithm {algorithm!r}; use kmeans or gmm")


def _matching(labels: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """The relabelling of ``labels`` that agrees best with ``reference`` (Hungarian matching).

    Returns
    -------
    ``mapping`` such that ``mapping[labels]`` are labels in the reference's numbering.
    """
    table = np.zeros((k, k))
    np.add.at(table, (labels, reference), 1)
    rows, cols = linear_sum_assignment(-table)
    mapping = np.empty(k, dtype=int)
    mapping[rows] = cols
    return mapping


@dataclass
class Stratification:
    """The result for one k: labels, confidence, stability measures and the resampled models."""

    k: int
    labels: np.ndarray
    confidence: np.ndarray
    pac: float
    mean_cluster_consensus: float
    min_cluster_consensus: float
    silhouette: float
    model: object
    relabel: np.ndarray
    resampled: list
    mappings: list

    def assign(self, embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Subgroup and confidence (share of resampled models that agree) of new patients."""
        labels = self.final_labels(embedding)
        votes = np.array([mapping[model.predict(embedding)] for model, mapping in zip(self.resampled, self.mappings)])
        return labels, (votes == labels).mean(axis=0)

    def final_labels(self, embedding: np.ndarray) -> np.ndarray:
        """Labels of the final model, in the size-ordered numbering."""
        return self.relabel[self.model.predict(embedding)]


def consensus_for_k(
    embedding: np.ndarray,
    k: int,
    *,
    algorithm: str = "kmeans",
    n_resamples: int = 100,
    fraction: float = 0.8,
    max_consensus_patients: int = 1000,
    max_resample_size: int = 5000,
    seed: int = 0,
) -> Stratification:
    """Consensus clustering for one k (see the module docstring).

    Parameters
    ----------
    embedding
        Patients x factors, no missing values.
    k
        Number of subgroups.
    algorithm
        "kmeans" or "gmm".
    n_resamples, fraction
        Subsamples and their share of patients.
    max_consensus_patients
        Size of the reference subset on which the consensus matrix is computed (memory grows
        with its square).
    max_resample_size
        Largest subsample (for large cohorts the resamples hold this many patients instead of
        ``fraction`` of them; every patient is still labelled by every resampled model).
    seed
        Seed of every random step.

    Returns
    -------
    The stratification for k.
    """
    rng = np.random.default_rng([seed, k])
    n = len(embedding)
    reference = np.sort(rng.choice(n, size=min(n, max_consensus_patients), replace=False))
    final = _fit(embedding, k, algorithm, seed)
    predicted = final.predict(embedding)
    relabel = _size_order(predicted, k)
    labels = relabel[predicted]
    together = np.zeros((len(reference), len(reference)))
    drawn = np.zeros_like(together)
    agree = np.zeros(n)
    resampled, mappings = [], []
    for r in range(n_resamples):
        size = min(int(round(fraction * n)), max_resample_size)
        sample = np.sort(rng.choice(n, size=size, replace=False))
        model = _fit(embedding[sample], k, algorithm, seed + r + 1, n_init=3)
        predicted = model.predict(embedding)
        in_sample = np.isin(reference, sample)
        one_hot = np.eye(k)[predicted[reference]] * in_sample[:, None]
        together += one_hot @ one_hot.T
        drawn += np.outer(in_sample, in_sample)
        mapping = _matching(predicted, labels, k)
        agree += mapping[predicted] == labels
        resampled.append(model)
        mappings.append(mapping)
    consensus = np.divide(together, drawn, out=np.zeros_like(together), where=drawn > 0)
    upper = np.triu_indices(len(reference), 1)
    pairs = consensus[upper]
    pac = float(np.mean((pairs > 0.1) & (pairs < 0.9)))
    cluster_consensus = []
    for c in range(k):
        members = np.flatnonzero(labels[reference] == c)
        if len(members) > 1:
            block = consensus[np.ix_(members, members)]
            cluster_consensus.append(block[np.triu_indices(len(members), 1)].mean())
    silhouette = silhouette_score(embedding[reference], labels[reference]) if len(set(labels[reference])) > 1 else np.nan
    return Stratification(k, labels, agree / n_resamples, pac, float(np.mean(cluster_consensus)),
                          float(np.min(cluster_consensus)), float(silhouette), final, relabel, resampled,
                          mappings)  # fmt: skip


def _size_order(labels: np.ndarray, k: int) -> np.ndarray:
    """The relabelling that numbers clusters by decreasing size (ties by label), for stable names."""
    sizes = np.bincount(labels, minlength=k)
    order = np.lexsort((np.arange(k), -sizes))
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(k)
    return rank


def select_k(table: pd.DataFrame, *, min_size: int, pac_margin: float = 0.05) -> int:
    """The stability-first choice of k from a model-selection table (see the module docstring)."""
    eligible = table[table["smallest_subgroup"] >= min_size]
    if eligible.empty:
        eligible = table
    stable = eligible[eligible["pac"] <= eligible["pac"].min() + pac_margin]
    return int(stable.sort_values(["silhouette", "k"], ascending=[False, True])["k"].iloc[0])


def stratify(
    embedding: np.ndarray,
    *,
    k_values=range(2, 9),
    k: int | None = None,
    algorithm: str = "kmeans",
    n_resamples: int = 100,
    fraction: float = 0.8,
    max_consensus_patients: int = 1000,
    min_size: int | None = None,
    seed: int = 0,
) -> tuple[Stratification, pd.DataFrame]:
    """Consensus clustering over a range of k and the choice of k.

    Parameters
    ----------
    embedding
        Patients x factors (no missing values).
    k_values
        The k to try.
    k
        Use this k instead of the rule (it is still evaluated and reported).
    algorithm, n_resamples, fraction, max_consensus_patients, seed
        See :func:`consensus_for_k`.
    min_size
        Smallest subgroup size the rule accepts (default: 2% of patients, at least 10).

    Returns
    -------
    The chosen stratification and the model-selection table (one row per k: k, pac,
    mean_cluster_consensus, min_cluster_consensus, silhouette, smallest_subgroup, chosen).
    """
    k_values = sorted(set(k_values) | ({k} if k else set()))
    results = {}
    for candidate in k_values:
        results[candidate] = consensus_for_k(
            embedding, candidate, algorithm=algorithm, n_resamples=n_resamples, fraction=fraction,
            max_consensus_patients=max_consensus_patients, seed=seed,
        )  # fmt: skip
        log.info("k=%d: PAC %.3f, silhouette %.3f", candidate, results[candidate].pac, results[candidate].silhouette)
    table = pd.DataFrame([
        {"k": r.k, "pac": r.pac, "mean_cluster_consensus": r.mean_cluster_consensus,
         "min_cluster_consensus": r.min_cluster_consensus, "silhouette": r.silhouette,
         "smallest_subgroup": int(np.bincount(r.labels, minlength=r.k).min()),
         "mean_confidence": float(r.confidence.mean())}
        for r in results.values()
    ])  # fmt: skip
    min_size = min_size if min_size is not None else max(10, int(0.02 * len(embedding)))
    chosen = k if k else select_k(table, min_size=min_size)
    table["chosen"] = table["k"] == chosen
    table["rule"] = "config" if k else f"PAC within 0.05 of the lowest, smallest subgroup >= {min_size}, best silhouette"
    return results[chosen], table


def fit_patients(coverage: np.ndarray, *, fit_on: str = "complete", minimum: int = 50) -> np.ndarray:
    """Which patients define the subgroups.

    Parameters
    ----------
    coverage
        Patients x assays, True where the patient has the assay.
    fit_on
        "complete": patients with every integrated assay (if at least ``minimum`` of them, else
        patients missing at most one assay, else all); "all": every patient with any assay.
    minimum
        Fewest patients the fit may use.

    Returns
    -------
    A mask of the patients that fit the subgroups; the others are assigned to them.
    """
    any_assay = coverage.any(axis=1)
    if fit_on == "all":
        return any_assay
    n_assays = coverage.sum(axis=1)
    for missing in range(coverage.shape[1]):
        mask = n_assays >= coverage.shape[1] - missing
        if mask.sum() >= minimum:
            return mask
    return any_assay

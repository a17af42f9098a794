"""Patient subgroups: consensus clustering over resamples, stability-first choice of k, per-patient
confidence, and assignment of new patients.

For each k, the clustering (k-means or a Gaussian mixture) is refitted on ``n_resamples`` random
subsamples (``fraction`` of the patients, at most ``max_resample_size``). On a reference subset of patients (all of them up to
``max_consensus_patients``) this gives the consensus matrix, its PAC (proportion of ambiguous
clustering: pairs co-clustered in 10-90% of the resamples where both were drawn) and the mean
consensus within each cluster. Every resampled model also labels every patient; after matching its
labels to the final ones, a patient's confidence is the share of resamples that agree with its final
label. The final labels come from the same algorithm fitted on all patients.

"No structure" is an answer: for each setting, the share of the variance left within its
subgroups (W/T) is compared with that of k-means on ``N_NULL`` Gaussian clouds with the embedding's
covariance (SigClust's null, Liu et al. JASA 2008; M3C's idea of a reference that keeps the
covariance): ``null_p_value`` is the normal tail of the observed W/T under the null draws. A
setting is supported when its p-value is below 0.05 divided by the number of settings (Bonferroni).
When none is, the answer is one group (k = 1) and a warning says so: PAC falls with k even in a
single Gaussian cloud, so stability alone cannot tell structure from none.

The rule for k, among the supported settings whose smallest subgroup has at least ``min_size``
patients: for k-means and Gaussian mixtures, the largest k with a crisp consensus (PAC <= 0.01,
the finest split every resample reproduces); else, among the k about as stable as the most stable
one (PAC within 0.05 of the lowest), the one with the lowest BIC of a Gaussian mixture with one
shared covariance (the smaller k on a tie). PAC alone keeps falling as k grows in a single cloud,
hence the null first; on well-separated groups further splits stay crisp, hence the largest crisp
k; on a single factor PAC says little (k-means cuts one Gaussian at the same quantiles in every
resample), and BIC tells two overlapping groups from three there, but BIC alone splits skewed
groups into many, hence BIC only among the stable k. Chosen on the benchmark suite and on drawn
subgroup spaces (``benchmarks/k_rules.py``), not on the demo. For HDBSCAN and Leiden settings, PAC
within 0.05 of the lowest, then the best mean silhouette. PAC, consensus, silhouette, the gap
statistic and the BIC are reported for every setting. ``k`` in the config overrides the rule; the
full table is written so users can see why.
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
from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

#: Leiden resolutions tried by default.
LEIDEN_RESOLUTIONS = (0.1, 0.2, 0.3, 0.5, 0.8, 1.2)
#: HDBSCAN minimum cluster sizes tried by default, as shares of the patients.
HDBSCAN_SHARES = (0.01, 0.02, 0.05, 0.1)


@dataclass
class CentroidModel:
    """A clustering that labels new points by their nearest cluster centroid (for HDBSCAN)."""

    centroids: np.ndarray
    strength: np.ndarray  # membership strength of the fitted points (0 for noise)

    def predict(self, points: np.ndarray) -> np.ndarray:
        distances = ((points[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
        return distances.argmin(axis=1)


def _hdbscan(embedding: np.ndarray, min_cluster_size: int) -> CentroidModel:
    """HDBSCAN clusters as centroids; noise points join their nearest cluster with strength 0."""
    import hdbscan

    clusterer = hdbscan.HDBSCAN(min_cluster_size=int(min_cluster_size), core_dist_n_jobs=1).fit(embedding)
    found = sorted(set(clusterer.labels_) - {-1})
    if not found:  # everything is noise: one cluster
        return CentroidModel(embedding.mean(axis=0, keepdims=True), np.zeros(len(embedding)))
    centroids = np.vstack([embedding[clusterer.labels_ == c].mean(axis=0) for c in found])
    return CentroidModel(centroids, np.where(clusterer.labels_ >= 0, clusterer.probabilities_, 0.0))


def _leiden(embedding: np.ndarray, resolution: float, seed: int, n_neighbors: int = 15) -> CentroidModel:
    """Leiden communities (modularity, igraph) of the k-nearest-neighbour graph, as centroids."""
    import random

    import igraph
    from sklearn.neighbors import NearestNeighbors

    neighbors = min(n_neighbors, len(embedding) - 1)
    distances, indices = NearestNeighbors(n_neighbors=neighbors + 1).fit(embedding).kneighbors(embedding)
    sources = np.repeat(np.arange(len(embedding)), neighbors)
    graph = igraph.Graph(n=len(embedding), edges=list(zip(sources, indices[:, 1:].ravel())))
    graph.es["weight"] = np.exp(-(distances[:, 1:].ravel() / distances[:, 1:].mean()) ** 2)
    graph = graph.as_undirected(mode="collapse", combine_edges="max")
    igraph.set_random_number_generator(random.Random(seed))
    membership = np.array(graph.community_leiden(objective_function="modularity", weights="weight",
                                                 resolution=resolution, n_iterations=-1).membership)  # fmt: skip
    centroids = np.vstack([embedding[membership == c].mean(axis=0) for c in range(membership.max() + 1)])
    return CentroidModel(centroids, np.ones(len(embedding)))


def _fit(embedding: np.ndarray, setting, algorithm: str, seed: int, n_init: int = 10):
    """A fitted clustering model with ``predict``; ``setting`` is k, HDBSCAN's minimum cluster size
    or the Leiden resolution."""
    if algorithm == "kmeans":
        return KMeans(n_clusters=setting, n_init=n_init, random_state=seed).fit(embedding)
    if algorithm == "gmm":
        return GaussianMixture(n_components=setting, covariance_type="full", n_init=max(1, n_init // 3),
                               random_state=seed).fit(embedding)  # fmt: skip
    if algorithm == "hdbscan":
        return _hdbscan(embedding, setting)
    if algorithm == "leiden":
        return _leiden(embedding, setting, seed)
    raise ValueError(f"unknown clustering algorithm {algorithm!r}; use kmeans, gmm, hdbscan or leiden")


def _n_clusters(model) -> int:
    """Number of clusters of a fitted model."""
    for attribute in ("n_clusters", "n_components"):
        if hasattr(model, attribute):
            return int(getattr(model, attribute))
    return len(model.centroids)


def _matching(labels: np.ndarray, reference: np.ndarray, k_labels: int, k_reference: int) -> np.ndarray:
    """The relabelling of ``labels`` that agrees best with ``reference``.

    Clusters are paired by the Hungarian method on their contingency table; a cluster left without
    a partner (when ``labels`` has more clusters) joins the reference cluster it overlaps most.

    Returns
    -------
    ``mapping`` such that ``mapping[labels]`` are labels in the reference's numbering.
    """
    table = np.zeros((k_labels, k_reference))
    np.add.at(table, (labels, reference), 1)
    rows, cols = linear_sum_assignment(-table)
    mapping = table.argmax(axis=1)
    mapping[rows] = cols
    return mapping


@dataclass
class Stratification:
    """The result for one k: labels, confidence, stability measures and the resampled models."""

    k: int
    setting: float
    labels: np.ndarray
    confidence: np.ndarray
    noise: np.ndarray
    pac: float
    mean_cluster_consensus: float
    min_cluster_consensus: float
    silhouette: float
    model: object
    relabel: np.ndarray
    resampled: list
    mappings: list
    consensus: np.ndarray  # reference patients x reference patients, share of resamples together
    reference: np.ndarray  # indices of the reference patients

    def assign(self, embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Subgroup and confidence (share of resampled models that agree; NaN without them) of new patients."""
        labels = self.final_labels(embedding)
        if not self.resampled:  # a shipped model keeps no resampled clusterings
            return labels, np.full(len(labels), np.nan)
        votes = np.array([mapping[model.predict(embedding)] for model, mapping in zip(self.resampled, self.mappings)])
        return labels, (votes == labels).mean(axis=0)

    def final_labels(self, embedding: np.ndarray) -> np.ndarray:
        """Labels of the final model, in the size-ordered numbering."""
        return self.relabel[self.model.predict(embedding)]


def consensus_for_k(
    embedding: np.ndarray,
    setting,
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
    setting
        The number of subgroups k (k-means, Gaussian mixture), HDBSCAN's minimum cluster size or
        the Leiden resolution (communities of the 15-nearest-neighbour graph).
    algorithm
        "kmeans", "gmm" or "hdbscan" (noise points join their nearest subgroup, are flagged in
        ``noise``, and their confidence is multiplied by their HDBSCAN membership strength, 0).
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
    rng = np.random.default_rng([seed, int(round(1000 * setting))])
    n = len(embedding)
    reference = np.sort(rng.choice(n, size=min(n, max_consensus_patients), replace=False))
    final = _fit(embedding, setting, algorithm, seed)
    k = _n_clusters(final)
    predicted = final.predict(embedding)
    relabel = _size_order(predicted, k)
    labels = relabel[predicted]
    together = np.zeros((len(reference), len(reference)))
    drawn = np.zeros_like(together)
    agree = np.zeros(n)
    resampled, mappings = [], []
    others = np.setdiff1d(np.arange(n), reference)
    for r in range(n_resamples):
        sample = _resample(rng, n, reference, others, fraction=fraction, max_size=max_resample_size)
        model = _fit(embedding[sample], setting, algorithm, seed + r + 1, n_init=3)
        predicted = model.predict(embedding)
        k_model = _n_clusters(model)
        in_sample = np.isin(reference, sample)
        one_hot = np.eye(k_model)[predicted[reference]] * in_sample[:, None]
        together += one_hot @ one_hot.T
        drawn += np.outer(in_sample, in_sample)
        mapping = _matching(predicted, labels, k_model, k)
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
    log.info("%s %g: k=%d, PAC %.3f", algorithm, setting, k, pac)
    strength = getattr(final, "strength", np.ones(n))
    return Stratification(k, setting, labels, agree / n_resamples * strength, strength == 0, pac,
                          float(np.mean(cluster_consensus)) if cluster_consensus else np.nan,
                          float(np.min(cluster_consensus)) if cluster_consensus else np.nan,
                          float(silhouette), final, relabel, resampled, mappings,
                          consensus.astype(np.float32), reference)  # fmt: skip


def _resample(rng, n: int, reference: np.ndarray, others: np.ndarray, *, fraction: float, max_size: int) -> np.ndarray:
    """Sorted positions of one subsample: ``fraction`` of the ``n`` patients, or in a cohort where that
    exceeds ``max_size``, ``fraction`` of the reference patients plus others up to ``max_size``.

    Drawn uniformly from a large cohort, two reference patients would share a resample in 100 x
    (5,000 / n)^2 of 100 resamples (0.35 at 85,000 patients): their consensus would rest on no draw
    or one and be 0 or 1, and PAC would be near 0 for every k. Drawn this way, every pair of
    reference patients shares fraction^2 of the resamples at any n, as in a small cohort."""
    size = int(round(fraction * n))
    if size <= max_size:
        return np.sort(rng.choice(n, size=size, replace=False))
    from_reference = rng.choice(reference, size=int(round(fraction * len(reference))), replace=False)
    from_others = rng.choice(others, size=max(0, max_size - len(from_reference)), replace=False)
    return np.sort(np.concatenate([from_reference, from_others]))


def _size_order(labels: np.ndarray, k: int) -> np.ndarray:
    """The relabelling that numbers clusters by decreasing size (ties by label), for stable names."""
    sizes = np.bincount(labels, minlength=k)
    order = np.lexsort((np.arange(k), -sizes))
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(k)
    return rank


#: Family-wise level of the test against the Gaussian null, and its number of null draws.
NULL_ALPHA = 0.05
N_NULL = 10
#: A k whose consensus is this unambiguous (PAC) is crisp; the largest crisp k is taken before the most stable one.
CRISP_PAC = 0.01
#: Settings whose PAC is within this of the lowest count as equally stable (the mixture BIC or the
#: silhouette decides among them).
PAC_MARGIN = 0.05
#: Largest number of patients in each null draw (the statistic W/T does not grow with n).
MAX_NULL_PATIENTS = 2000
#: Largest number of patients the mixture BIC is computed on (a seeded subsample above it).
MAX_BIC_PATIENTS = 10_000


def within_share(embedding: np.ndarray, labels: np.ndarray) -> float:
    """Share of the total sum of squares left within the clusters (W/T)."""
    centred = embedding - embedding.mean(axis=0)
    within = sum(((embedding[labels == c] - embedding[labels == c].mean(axis=0)) ** 2).sum()
                 for c in np.unique(labels))  # fmt: skip
    return float(within / (centred**2).sum())


def null_reference(embedding: np.ndarray, results: list, *, n_null: int = N_NULL, seed: int = 0) -> pd.DataFrame:
    """Each result's W/T against k-means on Gaussian clouds with the embedding's covariance.

    Parameters
    ----------
    embedding
        Patients x factors that were clustered.
    results
        Stratifications of the embedding (their ``labels`` and ``k``).
    n_null, seed
        Null draws and their seed.

    Returns
    -------
    One row per result: ``null_p_value`` (normal upper tail of (null mean - observed W/T) / null
    SD), ``gap`` (mean null log W/T minus the observed log W/T, Tibshirani's gap statistic with this
    reference) and ``gap_sd`` (its simulation error, SD of the null log W/T times sqrt(1 + 1/n_null)).
    """
    from scipy import stats

    rng = np.random.default_rng([seed, 7])
    size = min(len(embedding), MAX_NULL_PATIENTS)
    covariance = np.atleast_2d(np.cov(embedding, rowvar=False))
    draws = [rng.multivariate_normal(np.zeros(len(covariance)), covariance, size=size, method="eigh")
             for _ in range(n_null)]  # fmt: skip
    rows = []
    for result in results:
        if result.k < 2:
            rows.append({"null_p_value": np.nan, "gap": 0.0, "gap_sd": 0.0})
            continue
        with threadpool_limits(1):  # small problems: threads cost more than they bring
            null = np.array([within_share(draw, KMeans(result.k, n_init=10, random_state=seed).fit_predict(draw))
                             for draw in draws])  # fmt: skip
        observed = within_share(embedding, result.labels)
        spread = max(np.std(null, ddof=1), 1e-12)
        rows.append({"null_p_value": float(stats.norm.sf((null.mean() - observed) / spread)),
                     "gap": float(np.log(null).mean() - np.log(observed)),
                     "gap_sd": float(np.std(np.log(null), ddof=1) * np.sqrt(1 + 1 / n_null))})  # fmt: skip
    return pd.DataFrame(rows)


def mixture_bic(embedding: np.ndarray, k: int, *, seed: int = 0) -> float:
    """BIC of a Gaussian mixture with ``k`` components and one shared covariance (scikit-learn, 5 starts).

    Parameters
    ----------
    embedding
        Patients x factors that were clustered (a seeded subsample of :data:`MAX_BIC_PATIENTS` above it).
    k, seed
        Components and the seed of the starts.

    Returns
    -------
    The BIC (lower is better).
    """
    if len(embedding) > MAX_BIC_PATIENTS:
        rng = np.random.default_rng([seed, 11])
        embedding = embedding[np.sort(rng.choice(len(embedding), MAX_BIC_PATIENTS, replace=False))]
    with threadpool_limits(1):
        mixture = GaussianMixture(k, covariance_type="tied", n_init=5, random_state=seed).fit(embedding)
    return float(mixture.bic(embedding))


def select_k(table: pd.DataFrame, *, min_size: int, pac_margin: float = PAC_MARGIN, crisp_first: bool = True):
    """The choice from a model-selection table with ``supported`` settings (see the module docstring).

    With ``crisp_first`` (k-means, Gaussian mixtures): the largest eligible k whose consensus is
    crisp (PAC <= CRISP_PAC: the finest split that every resample reproduces), else, among the
    eligible k with PAC within ``pac_margin`` of the lowest, the lowest ``mixture_bic`` (the smaller
    k on a tie). Otherwise (HDBSCAN, Leiden settings): PAC within ``pac_margin`` of the lowest, then
    the best silhouette.

    Returns
    -------
    The chosen row's ``setting`` (k for k-means and Gaussian mixtures), or None when no setting
    is supported (one group).
    """
    supported = table[table["supported"] & (table["k"] >= 2)]
    if supported.empty:
        return None
    eligible = supported[supported["smallest_subgroup"] >= min_size]
    if eligible.empty:
        eligible = supported
    if crisp_first:
        crisp = eligible[eligible["pac"] <= CRISP_PAC].sort_values("k")
        if not crisp.empty:  # well-separated groups: their further splits can stay crisp too
            return crisp["setting"].iloc[-1].item()
    stable = eligible[eligible["pac"] <= eligible["pac"].min() + pac_margin]
    if crisp_first:
        return stable.sort_values(["mixture_bic", "k"])["setting"].iloc[0].item()
    return stable.sort_values(["silhouette", "k"], ascending=[False, True])["setting"].iloc[0].item()


def candidate_settings(n: int, *, algorithm: str = "kmeans", k_values=range(2, 9), k: int | None = None,
                       min_cluster_sizes=None, resolutions=LEIDEN_RESOLUTIONS) -> list:  # fmt: skip
    """The settings the model selection tries: k values, HDBSCAN minimum sizes or Leiden resolutions.

    Parameters
    ----------
    n
        Number of patients clustered.
    algorithm, k_values, k, min_cluster_sizes, resolutions
        See :func:`stratify`.

    Returns
    -------
    The sorted settings.
    """
    if algorithm == "hdbscan":
        sizes = min_cluster_sizes or [max(5, round(share * n)) for share in HDBSCAN_SHARES]
        return sorted(set(int(size) for size in sizes))
    if algorithm == "leiden":
        return sorted(set(float(r) for r in resolutions))
    return sorted(set(k_values) | ({k} if k else set()))


#: Consensus values at which the consensus CDF is tabulated.
CDF_GRID = np.linspace(0, 1, 101)


def consensus_cdf(consensus: np.ndarray) -> tuple[np.ndarray, float]:
    """Empirical CDF of the pairwise consensus values and the area under it (ConsensusClusterPlus).

    A crisp clustering puts every pair near 0 or 1: the CDF is flat in between, and its area is
    the share of pairs never clustered together. Monti et al. (2003) choose k where the area
    stops growing (the relative change, delta area, falls off).

    Parameters
    ----------
    consensus
        Patients x patients: share of resamples that cluster each pair together.

    Returns
    -------
    The CDF at :data:`CDF_GRID` and the exact area under the empirical CDF on [0, 1].
    """
    pairs = np.sort(consensus[np.triu_indices(len(consensus), 1)])
    cdf = np.searchsorted(pairs, CDF_GRID, side="right") / len(pairs)
    values, counts = np.unique(np.r_[pairs, 1.0], return_counts=True)
    below = np.cumsum(counts)[:-1] / len(pairs)  # the CDF is constant from one value to the next
    return cdf, float(np.sum(np.diff(values) * below))


def consensus_cdf_table(results: list[Stratification]) -> pd.DataFrame:
    """Long table of the consensus CDF of every setting: setting, k, consensus, cdf."""
    return pd.concat([pd.DataFrame({"setting": r.setting, "k": r.k, "consensus": CDF_GRID,
                                    "cdf": consensus_cdf(r.consensus)[0]}) for r in results if len(r.consensus) > 1],
                     ignore_index=True)  # fmt: skip


def _delta_area(areas: pd.Series) -> pd.Series:
    """Relative change of the CDF area from the previous setting (the first keeps its area)."""
    return (areas - areas.shift()).div(areas.shift()).fillna(areas)


def choose(results: list[Stratification], embedding: np.ndarray, *, algorithm: str = "kmeans",
           k: int | None = None, min_size: int | None = None, seed: int = 0) -> tuple[Stratification, pd.DataFrame]:  # fmt: skip
    """The model-selection table of consensus results and the chosen one (see the module docstring).

    Parameters
    ----------
    results
        One consensus result per setting.
    embedding
        The patients x factors that were clustered.
    algorithm, k, min_size, seed
        See :func:`stratify`.

    Returns
    -------
    The chosen stratification (k = 1 when no setting beats the Gaussian null) and the table.
    """
    n = len(embedding)
    table = pd.DataFrame([
        {"setting": r.setting, "k": r.k, "pac": r.pac, "mean_cluster_consensus": r.mean_cluster_consensus,
         "min_cluster_consensus": r.min_cluster_consensus, "silhouette": r.silhouette,
         "smallest_subgroup": int(np.bincount(r.labels, minlength=r.k).min()),
         "mean_confidence": float(r.confidence.mean()), "noise": int(r.noise.sum()),
         "cdf_area": consensus_cdf(r.consensus)[1]}
        for r in results
    ])  # fmt: skip
    table["delta_area"] = _delta_area(table["cdf_area"])
    table["mixture_bic"] = [mixture_bic(embedding, r.k, seed=seed) for r in results]
    table[["null_p_value", "gap", "gap_sd"]] = null_reference(embedding, results, seed=seed)
    table["supported"] = table["null_p_value"] < NULL_ALPHA / len(table)
    min_size = min_size if min_size is not None else max(10, int(0.02 * n))
    forced = k is not None and algorithm in ("kmeans", "gmm")
    crisp_first = algorithm in ("kmeans", "gmm")
    chosen = k if forced else select_k(table, min_size=min_size, crisp_first=crisp_first)
    table["chosen"] = table["setting"] == chosen
    stable = f"PAC within {PAC_MARGIN:g} of the lowest"
    choice = (f"largest k with PAC <= {CRISP_PAC:g}, else {stable}, lowest mixture BIC" if crisp_first
              else f"{stable}, best silhouette")
    table["rule"] = "config" if forced else (
        f"beats the Gaussian null (p < {NULL_ALPHA:g}/{len(table)}), smallest subgroup >= {min_size}, {choice}")
    if chosen is None:
        log.warning("stratify: no setting beats a Gaussian cloud with the embedding's covariance (smallest null "
                    "p-value %.3g over %d settings): no subgroup structure, every patient in one group (k = 1)",
                    table["null_p_value"].min(), len(table))  # fmt: skip
        single = consensus_for_k(embedding, 1, algorithm="kmeans", n_resamples=10, seed=seed)
        row = {"setting": 1, "k": 1, "pac": single.pac, "smallest_subgroup": n, "mean_confidence": 1.0, "noise": 0,
               "supported": True, "chosen": True, "rule": table["rule"].iloc[0] + "; none did: one group"}
        return single, pd.concat([pd.DataFrame([row]), table.assign(chosen=False)], ignore_index=True)[table.columns]
    return results[int(np.flatnonzero(table["chosen"])[0])], table


def stratify(
    embedding: np.ndarray,
    *,
    k_values=range(2, 9),
    k: int | None = None,
    algorithm: str = "kmeans",
    min_cluster_sizes=None,
    resolutions=LEIDEN_RESOLUTIONS,
    n_resamples: int = 100,
    fraction: float = 0.8,
    max_consensus_patients: int = 1000,
    min_size: int | None = None,
    seed: int = 0,
) -> tuple[Stratification, pd.DataFrame]:
    """Consensus clustering over a range of k (or HDBSCAN minimum cluster sizes) and the choice.

    Parameters
    ----------
    embedding
        Patients x factors (no missing values).
    k_values
        The k to try (k-means, Gaussian mixture).
    k
        Use this k instead of the rule (it is still evaluated and reported).
    algorithm, n_resamples, fraction, max_consensus_patients, seed
        See :func:`consensus_for_k`.
    min_cluster_sizes
        HDBSCAN's minimum cluster sizes to try (default 1%, 2%, 5% and 10% of patients, at least 5).
    resolutions
        Leiden resolutions to try.
    min_size
        Smallest subgroup size the rule accepts (default: 2% of patients, at least 10).

    Returns
    -------
    The chosen stratification and the model-selection table (one row per setting: setting, k, pac,
    mean_cluster_consensus, min_cluster_consensus, silhouette, smallest_subgroup, mean_confidence,
    noise, cdf_area, delta_area, mixture_bic, null_p_value, gap, gap_sd, supported, chosen, rule).
    """
    n = len(embedding)
    settings = candidate_settings(n, algorithm=algorithm, k_values=k_values, k=k,
                                  min_cluster_sizes=min_cluster_sizes, resolutions=resolutions)  # fmt: skip
    results = [consensus_for_k(embedding, setting, algorithm=algorithm, n_resamples=n_resamples, fraction=fraction,
                               max_consensus_patients=max_consensus_patients, seed=seed)
               for setting in settings]  # fmt: skip
    return choose(results, embedding, algorithm=algorithm, k=k, min_size=min_size, seed=seed)


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

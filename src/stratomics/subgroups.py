"""Integration and stratification of a cohort MuData, and assignment of new patients.

Glue between the MuData and :mod:`stratomics.integrate` / :mod:`stratomics.stratify`: which assays,
which patients, where results are stored (``obsm["X_integrated"]``, ``obs["subgroup"]``,
``obs["subgroup_confidence"]``, ``uns``) and the saved model for new patients.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError
from stratomics.integrate import DEFAULT_METHOD, IntegrationModel, fit_integration
from stratomics.parallel import in_processes
from stratomics.membership import Membership, assay_patterns, fit_membership
from stratomics.model_file import check_sha256, is_model_file, load_model_file
from stratomics.stratify import Stratification, fit_patients, stratify
from stratomics.subgroup_space import SubgroupSpace, fit_subgroup_space

log = logging.getLogger(__name__)


@dataclass
class SubgroupModel:
    """Everything needed to place new patients into the subgroups."""

    integration: IntegrationModel
    stratification: Stratification
    assays: list[str]
    versions: dict
    scales: dict = field(default_factory=dict)  # assay -> feature SDs of the discovery cohort (shipped models)
    space: SubgroupSpace | None = None  # covariate adjustment and kept factors (None: the factors as they are)
    membership: Membership | None = None  # per assay pattern discriminants (None: resampled models vote)

    def coordinates(self, scores: np.ndarray, obs: pd.DataFrame) -> np.ndarray:
        """The coordinates subgroups are assigned in, from integrated factor scores."""
        return scores if self.space is None else self.space.transform(scores, obs)

    def place(self, coordinates: np.ndarray, patterns: list[frozenset], *,
              labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Subgroup (0..k-1) and confidence of patients from their coordinates and assay patterns.

        The most probable subgroup under the discriminant of each patient's pattern of assays
        (:mod:`stratomics.membership`), and its probability; patients whose pattern has no
        discriminant are placed by the vote of the resampled clusterings. Given ``labels`` (the
        clustering's subgroups of the fitted patients), those are kept and the confidence is their
        probability.
        """
        voted, confidence = self.stratification.assign(coordinates)
        labels = voted if labels is None else np.asarray(labels).copy()
        if self.membership is not None:
            probabilities = self.membership.probabilities(coordinates, patterns)
            known = ~np.isnan(probabilities).any(axis=1)
            if labels is voted:
                labels[known] = probabilities[known].argmax(axis=1)
            confidence[known] = probabilities[known, labels[known]]
        return labels, confidence


def assay_pattern_of_patients(frames: dict[str, pd.DataFrame], patients: pd.Index) -> list[frozenset]:
    """The set of assays each patient has."""
    coverage = coverage_matrix(frames, patients)
    names = list(frames)
    return [frozenset(name for name, present in zip(names, row) if present) for row in coverage]


def _membership(mdata, model: SubgroupModel, fitted_labels: np.ndarray, frames: dict[str, pd.DataFrame],
                patterns: list[frozenset]) -> Membership:  # fmt: skip
    """Discriminants per pattern of assays (``patterns``: each patient's), trained on the fitted patients' subgroups."""
    fitted = mdata.obs_names[mdata.obs["subgroup_fitted"].to_numpy(dtype=bool)]
    has = {name: fitted.isin(frame.index) for name, frame in frames.items()}

    def coordinates_from(pattern: frozenset) -> np.ndarray:
        scores = model.integration.transform({name: frames[name] for name in pattern}, fitted)
        scores[~np.all([has[name] for name in pattern], axis=0)] = np.nan  # only patients with the whole pattern
        return model.coordinates(scores, mdata.obs.loc[fitted])

    return fit_membership(fitted_labels, model.stratification.k, coordinates=fitted_scores(mdata),
                          patterns=assay_patterns(model.assays, patterns), coordinates_from=coordinates_from,
                          seed=int(mdata.uns["integrate"]["seed"]))  # fmt: skip


def assay_frames(mdata, assays: list[str]) -> dict[str, pd.DataFrame]:
    """Preprocessed values of the given assays as patients x features frames."""
    missing = [name for name in assays if name not in mdata.mod]
    if missing:
        raise StratomicsInputError(
            f"integrate: assay '{missing[0]}' is not in the cohort (assays: {', '.join(mdata.mod)})."
        )
    return {name: mdata[name].to_df() for name in assays}


def coverage_matrix(frames: dict[str, pd.DataFrame], patients: pd.Index) -> np.ndarray:
    """Patients x assays: True where the patient has the assay."""
    return np.column_stack([patients.isin(frame.index) for frame in frames.values()])


def assays_with_enough_patients(mdata, assays: list[str], *, min_patients: int, purpose: str) -> list[str]:
    """The assays measured on at least ``min_patients`` patients; each one left out is named in a warning."""
    kept = [name for name in assays if mdata[name].n_obs >= min_patients]
    for name in [name for name in assays if name not in kept]:
        log.warning("%s: assay '%s' is left out: measured on %d patients, fewer than min_patients_per_assay (%d)",
                    purpose, name, mdata[name].n_obs, min_patients)  # fmt: skip
    if not kept:
        raise StratomicsInputError(
            f"{purpose}: none of the assays {', '.join(assays)} is measured on {min_patients} patients or more "
            "(cohort.min_patients_per_assay); there is nothing to integrate."
        )
    return kept


def integrate_cohort(mdata, assays: list[str], *, integrate_options: dict, fit_on: str = "complete",
                     adjust_for: list[str] = (), select_factors: bool = True, min_patients: int = 2,
                     seed: int = 0):  # fmt: skip
    """Integrate the assays, mark the patients that will define the subgroups and fit the subgroup space.

    Stores ``obsm["X_integrated"]`` (factors), ``obsm["X_subgroup_space"]`` (the factors adjusted
    for ``adjust_for`` and reduced to those with cluster structure, see
    :mod:`stratomics.subgroup_space`), ``obs["n_integrated_assays"]``, ``obs["subgroup_fitted"]`` and
    ``uns["integrate"]`` (with the per-factor table under ``"factors"`` and every setting under
    ``"params"``) in the MuData (modified in place).

    Parameters
    ----------
    mdata
        The preprocessed cohort.
    assays
        Assays to integrate.
    integrate_options
        Keyword arguments of :func:`stratomics.integrate.fit_integration`.
    fit_on
        See :func:`stratomics.stratify.fit_patients`.
    adjust_for, select_factors
        Sample-sheet columns the factors are adjusted for, and whether only factors with cluster
        structure are kept (:func:`stratomics.subgroup_space.fit_subgroup_space`).
    min_patients
        Assays measured on fewer patients are left out (with a warning).
    seed
        Seed of every random step.

    Returns
    -------
    The integration model and the subgroup space.
    """
    assays = assays_with_enough_patients(mdata, assays, min_patients=min_patients, purpose="integrate")
    frames = assay_frames(mdata, assays)
    patients = mdata.obs_names
    integration, scores = fit_integration(frames, patients, seed=seed, **integrate_options)
    coverage = coverage_matrix(frames, patients)
    fitted = fit_patients(coverage, fit_on=fit_on)
    log.info("subgroups fitted on %d patients (%s), assigned to %d more", fitted.sum(), fit_on,
             (coverage.any(axis=1) & ~fitted).sum())  # fmt: skip
    space, factors = fit_subgroup_space(scores[fitted], mdata.obs[fitted], list(adjust_for), select=select_factors)
    mdata.obsm["X_integrated"] = scores
    mdata.obsm["X_subgroup_space"] = space.transform(scores, mdata.obs)
    mdata.obs["subgroup_fitted"] = fitted
    mdata.obs["n_integrated_assays"] = coverage.sum(axis=1)
    method = integrate_options.get("method", DEFAULT_METHOD)
    params = {**integrate_options, "method": method, "assays": assays, "fit_on": fit_on, "adjust_for": adjust_for,
              "select_factors": select_factors, "min_patients": min_patients, "seed": seed}  # fmt: skip
    mdata.uns["integrate"] = {"method": method, "assays": assays, "n_factors": int(scores.shape[1]), "seed": seed,
                              "fit_on": fit_on, "variance_explained": integration.variance, "factors": factors,
                              "params": storable(params)}  # fmt: skip
    return integration, space


def fitted_scores(mdata) -> np.ndarray:
    """Subgroup-space coordinates of the patients that define the subgroups (after :func:`integrate_cohort`)."""
    return mdata.obsm["X_subgroup_space"][mdata.obs["subgroup_fitted"].to_numpy(dtype=bool)]


def store_subgroups(mdata, result: Stratification, table: pd.DataFrame, *, integration,
                    space: SubgroupSpace, params: dict | None = None) -> SubgroupModel:  # fmt: skip
    """Assign every integrated patient to the chosen subgroups and store them in the MuData.

    Fitted patients keep the clustering's subgroup; the others get the most probable subgroup
    given the assays they have (:mod:`stratomics.membership`). Every patient's confidence is the
    probability of its subgroup under the discriminant of its pattern of assays (fitted on the
    fitted patients' soft memberships of a Gaussian mixture started at the subgroups).

    Stores ``obs["subgroup"]``, ``obs["subgroup_confidence"]``, ``obs["subgroup_noise"]`` and
    ``uns["stratify"]`` (k, model selection, consensus matrix and its patients, and ``params``: the
    stratification settings given as ``params``).

    Returns
    -------
    The subgroup model for new patients.
    """
    patients, scores = mdata.obs_names, mdata.obsm["X_subgroup_space"]
    fitted = mdata.obs["subgroup_fitted"].to_numpy(dtype=bool)
    versions = {name: version(name) for name in ("stratomics", "numpy", "scikit-learn", "scipy", "mofapy2")}
    model = SubgroupModel(integration, result, list(mdata.uns["integrate"]["assays"]), versions, space=space)
    fitted_labels = result.final_labels(scores[fitted])
    frames = assay_frames(mdata, model.assays)
    patterns = assay_pattern_of_patients(frames, patients)
    model.membership = _membership(mdata, model, fitted_labels, frames, patterns)
    assigned = ~np.isnan(scores).any(axis=1) & ~fitted
    labels, confidence = np.full(len(patients), -1), np.full(len(patients), np.nan)
    for rows, given in ((assigned, None), (fitted, fitted_labels)):
        if not rows.any():  # fit_on all: nobody is assigned afterwards
            continue
        labels[rows], confidence[rows] = model.place(scores[rows], [patterns[i] for i in np.flatnonzero(rows)],
                                                     labels=given)  # fmt: skip
    mdata.obs["subgroup"] = pd.Categorical(
        [f"S{label + 1}" if label >= 0 else np.nan for label in labels],
        categories=[f"S{i + 1}" for i in range(result.k)],
    )
    noise = np.zeros(len(patients), dtype=bool)
    noise[np.flatnonzero(fitted)[result.noise]] = True
    confidence[noise] = 0.0  # HDBSCAN noise: joined its nearest subgroup, with no confidence
    mdata.obs["subgroup_confidence"] = confidence
    mdata.obs["subgroup_noise"] = noise
    mdata.uns["stratify"] = {"k": result.k, "fit_on": mdata.uns["integrate"]["fit_on"], "model_selection": table,
                             "consensus": result.consensus,
                             "consensus_patients": np.asarray(patients[fitted][result.reference]),
                             "params": storable(params or {})}  # fmt: skip
    return model


def storable(params: dict) -> dict:
    """Settings as ``uns`` can write them to .h5mu: ranges and tuples as lists, unset (None) ones left out."""
    def value(item):
        if isinstance(item, dict):
            return storable(item)
        return list(item) if isinstance(item, range | tuple) else item

    return {key: value(item) for key, item in params.items() if item is not None}


def integrate_and_stratify(mdata, assays: list[str], *, integrate_options: dict, stratify_options: dict,
                           fit_on: str = "complete", seed: int = 0, **space_options):  # fmt: skip
    """Integrate the assays, find subgroups and store the results in the MuData.

    Parameters
    ----------
    mdata
        The preprocessed cohort (modified in place).
    assays
        Assays to integrate.
    integrate_options, stratify_options
        Keyword arguments of :func:`stratomics.integrate.fit_integration` and
        :func:`stratomics.stratify.stratify`.
    fit_on
        See :func:`stratomics.stratify.fit_patients`.
    seed
        Seed of every random step.
    space_options
        ``adjust_for`` and ``select_factors`` of :func:`integrate_cohort`.

    Returns
    -------
    The subgroup model and the model-selection table.
    """
    integration, space = integrate_cohort(mdata, assays, integrate_options=integrate_options, fit_on=fit_on,
                                          seed=seed, **space_options)  # fmt: skip
    result, table = stratify(fitted_scores(mdata), seed=seed, **stratify_options)
    model = store_subgroups(mdata, result, table, integration=integration, space=space,
                            params={**stratify_options, "seed": seed})  # fmt: skip
    return model, table


#: Keys of the config's ``stratify`` section that are not options of :func:`stratomics.stratify.stratify`.
SPACE_AND_STUDY_KEYS = ("k_min", "k_max", "fit_on", "n_permutations", "adjust_for", "factors")


def stratify_options(section: dict) -> dict:
    """Keyword arguments of :func:`stratomics.stratify.stratify` from the config's ``stratify`` section."""
    options = {key: value for key, value in section.items() if key not in SPACE_AND_STUDY_KEYS}
    return {"k_values": range(section["k_min"], section["k_max"] + 1), **options}


def subgroup_table(mdata) -> pd.DataFrame:
    """One row per patient: patient_id, subgroup, confidence, fitted, noise, n_integrated_assays."""
    columns = ["subgroup", "subgroup_confidence", "subgroup_fitted", "subgroup_noise", "n_integrated_assays"]
    table = mdata.obs[columns].rename(columns=lambda c: c.removeprefix("subgroup_") if c != "subgroup" else c)
    return table.rename_axis("patient_id").reset_index()


def scaled_group_means(mdata, assays: list[str], *, group: str = "subgroup") -> pd.DataFrame:
    """Each feature's mean per group in units of its standard deviation (values z-scored over the
    patients with a group and a value; missing values left out): a marker's effect size that is
    comparable across assays and does not grow with n as a t statistic does.

    Parameters
    ----------
    mdata
        The cohort with ``obs[group]``.
    assays
        Assays whose features to summarise.
    group
        The grouping column.

    Returns
    -------
    One row per assay, feature and group level: assay, feature, level, scaled_mean, n.
    """
    tables = []
    for assay in assays:
        adata = mdata[assay]
        labels = mdata.obs[group].reindex(adata.obs_names)
        values = adata.to_df().astype(float)[labels.notna().to_numpy()]
        scaled = (values - values.mean()) / values.std(ddof=1).replace(0, np.nan)
        grouped = scaled.groupby(labels.dropna().astype(str).to_numpy())
        means, counts = grouped.mean(), grouped.count()  # levels x features, laid out long level by level
        tables.append(pd.DataFrame({"assay": assay, "feature": np.tile(means.columns.to_numpy(), len(means)),
                                    "level": np.repeat(means.index.to_numpy(), means.shape[1]),
                                    "scaled_mean": means.to_numpy().ravel(), "n": counts.to_numpy().ravel()}))  # fmt: skip
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["assay", "feature", "level",
                                                                                       "scaled_mean", "n"])


def embedding_table(mdata) -> pd.DataFrame:
    """One row per patient: patient_id, n_integrated_assays and factor_1..factor_k."""
    scores = mdata.obsm["X_integrated"]
    table = pd.DataFrame(scores, index=mdata.obs_names, columns=[f"factor_{i + 1}" for i in range(scores.shape[1])])
    table.insert(0, "n_integrated_assays", mdata.obs["n_integrated_assays"].to_numpy())
    return table.rename_axis("patient_id").reset_index()


#: umap-learn's modules whose numba functions are compiled without an on-disk cache.
UMAP_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.spectral", "umap.distances", "umap.sparse")


@functools.cache
def cache_umap_compilation() -> None:
    """Keep umap-learn's compiled numba code on disk between processes (once per process).

    umap-learn compiles its numba functions without ``cache=True``, so every process that runs a
    UMAP compiled them again: 21.6 s of a 24.8 s first UMAP of 800 patients on a 2-core VM, 3.2 s
    once cached. numba writes the cache beside the package or, where that is read-only, in the
    user's cache folder (``NUMBA_CACHE_DIR`` overrides both); the compiled code, hence the
    embedding, is the same.
    """
    from importlib import import_module

    from numba.core.registry import CPUDispatcher

    for name in UMAP_MODULES:
        for function in vars(import_module(name)).values():
            if isinstance(function, CPUDispatcher):
                function.enable_caching()


def umap_table(mdata, *, seed: int = 0, n_neighbors: int = 15) -> pd.DataFrame:
    """Two-dimensional view of the subgroup space for figures: a seeded (hence single-threaded) UMAP.

    A space of one or two dimensions is drawn as it is (UMAP would only distort it, and on one
    dimension umap-learn takes minutes: 77 s for 8,500 patients against 11 s on five): two
    dimensions as they are, one against a seeded uniform jitter.

    Returns
    -------
    One row per placed patient: patient_id, embedding_1, embedding_2, and method (umap,
    subgroup_space or subgroup_space_jittered).
    """
    scores = mdata.obsm["X_subgroup_space"]
    placed = ~np.isnan(scores).any(axis=1)
    if scores.shape[1] > 2:
        import umap

        cache_umap_compilation()
        reducer = umap.UMAP(n_neighbors=min(n_neighbors, placed.sum() - 1), random_state=seed, n_jobs=1)
        coordinates, method = reducer.fit_transform(scores[placed]), "umap"
    elif scores.shape[1] == 2:
        coordinates, method = scores[placed], "subgroup_space"
    else:
        jitter = np.random.default_rng(seed).uniform(-1, 1, placed.sum())
        coordinates, method = np.column_stack([scores[placed, 0], jitter]), "subgroup_space_jittered"
    return pd.DataFrame({"patient_id": mdata.obs_names[placed], "embedding_1": coordinates[:, 0],
                         "embedding_2": coordinates[:, 1], "method": method})  # fmt: skip


def strip_patient_data(model: SubgroupModel, scales: dict | None = None, *, min_count: int = 5) -> SubgroupModel:
    """A copy of the model that holds aggregates of at least ``min_count`` patients only, to ship.

    Removes the fitted patients' labels, confidences and consensus matrix, and the resampled
    clusterings (a resample's cluster may hold one patient, whose scores would be its centroid).
    Patients are placed by the final clustering and the membership discriminants, whose subgroup
    means are over at least ``min_count`` patients; the confidence of a patient whose pattern of
    assays has no discriminant is unknown (NaN). ``scales`` (assay -> feature SDs of the discovery
    cohort) travel with it so that sites report effects on one scale.

    Raises
    ------
    StratomicsInputError
        For an SNF model, which needs the fitted patients' profiles to place anyone, and for a
        subgroup of fewer than ``min_count`` fitted patients (its centroid would be theirs).
    """
    import copy

    from stratomics.integrate.snf import SnfModel

    if isinstance(model.integration, SnfModel):
        raise StratomicsInputError("an snf subgroup model holds patient profiles and cannot be shipped; "
                                   "integrate with method mofa or mfa for federated analyses.")  # fmt: skip
    sizes = np.bincount(model.stratification.labels, minlength=model.stratification.k)
    if (sizes < min_count).any():
        small = ", ".join(f"S{i + 1} ({size} patients)" for i, size in enumerate(sizes) if size < min_count)
        raise StratomicsInputError(
            f"ship model: subgroups {small} hold fewer than federated.min_cell_count ({min_count}) patients, whose "
            "subgroup centre would be their own factor scores; stratify with a smaller k before shipping the model."
        )
    shipped = copy.deepcopy(model)
    shipped.scales = scales or {}
    result = shipped.stratification
    result.labels, result.confidence, result.noise = np.zeros(0, int), np.zeros(0), np.zeros(0, bool)
    result.consensus, result.reference = np.zeros((0, 0), np.float32), np.zeros(0, int)
    result.resampled, result.mappings = [], []
    for attribute in ("labels_", "strength"):
        if hasattr(result.model, attribute):
            setattr(result.model, attribute, None)
    return shipped


def load_model(path: str | Path, *, sha256: str | None = None, allow_pickle: bool = False):
    """Load a saved model (subgroups or signature), warning when package versions differ.

    Parameters
    ----------
    path
        A model file (:func:`stratomics.model_file.save_model_file`).
    sha256
        The hash the sender gave; the file is refused when it differs.
    allow_pickle
        Also load a joblib pickle (from an older stratomics). A pickle runs code when it is loaded:
        only for files you made yourself.
    """
    if allow_pickle and not is_model_file(path):
        log.warning("%s: loading a pickle (allow_pickle); it runs code when loaded, so only use files you made", path)
        check_sha256(path, sha256)
        model = joblib.load(path)
    else:
        model = load_model_file(path, sha256=sha256)
    current = {name: version(name) for name in model.versions}
    changed = {name: (model.versions[name], current[name]) for name in current if current[name] != model.versions[name]}
    if changed:
        log.warning("model %s was saved with other versions: %s", path, changed)
    return model


def assign_patients(model: SubgroupModel, mdata) -> pd.DataFrame:
    """Subgroup and confidence of the patients of another (preprocessed) cohort.

    Patients may lack some of the assays; those with none of them get no subgroup.

    Returns
    -------
    One row per patient: patient_id, subgroup, confidence, n_integrated_assays.
    """
    frames = {name: mdata[name].to_df() for name in model.assays if name in mdata.mod}
    if not frames:
        raise StratomicsInputError(
            f"assign: the cohort has none of the assays the subgroups were made from ({', '.join(model.assays)})."
        )
    patients = mdata.obs_names
    scores = model.coordinates(model.integration.transform(frames, patients), mdata.obs)
    usable = ~np.isnan(scores).any(axis=1)
    patterns = assay_pattern_of_patients(frames, patients)
    labels, confidence = np.full(len(patients), -1), np.full(len(patients), np.nan)
    if usable.any():
        labels[usable], confidence[usable] = model.place(scores[usable], [patterns[i] for i in np.flatnonzero(usable)])
    return pd.DataFrame({
        "patient_id": patients,
        "subgroup": [f"S{label + 1}" if label >= 0 else "" for label in labels],
        "confidence": confidence,
        "n_integrated_assays": coverage_matrix(frames, patients).sum(axis=1),
    })  # fmt: skip


def cohort_subset(mdata, patients, assays: list[str], *, columns=()):
    """A new MuData of some patients: the clinical modality, the given assays (their patients among
    ``patients``) and the sample-sheet ``columns`` (e.g. those the factors are adjusted for) in ``obs``."""
    import mudata as md

    modalities = {name: mdata[name][mdata[name].obs_names.isin(patients)].copy() for name in assays}
    subset = md.MuData({"clinical": mdata["clinical"][patients].copy(), **modalities})
    for column in columns:
        subset.obs[column] = mdata.obs[column].reindex(subset.obs_names).to_numpy()
    return subset


def _refitted_subgroups(path: Path, assays: list[str], **options) -> pd.Series:
    """The subgroups found again on the cohort subset in the .h5mu file ``path`` (:func:`integrate_and_stratify`
    with ``options``)."""
    import mudata as md

    subset = md.read_h5mu(path)
    integrate_and_stratify(subset, assays, **options)
    return subset.obs["subgroup"]


def leave_one_site_out(mdata, assays: list[str], site: str, *, k: int, integrate_options: dict,
                       fit_on: str = "complete", n_resamples: int = 20, seed: int = 0, n_jobs: int = 1,
                       **space_options) -> pd.DataFrame:  # fmt: skip
    """Stability of the subgroups when each site is left out of integration and clustering.

    For each site, the subgroups (with the same k) are found again without that site's patients and
    compared with the subgroups of the whole cohort on the remaining patients. The sites are refitted
    in ``n_jobs`` processes (the numbers do not depend on it).

    Returns
    -------
    One row per site: site, patients_left_out, patients_compared, ari, note. With a single site or
    a single subgroup there is nothing to compare: ari is empty and the note says why.
    """
    from sklearn.metrics import adjusted_rand_score

    reference = mdata.obs["subgroup"]
    sites = sorted(mdata.obs[site].dropna().unique())
    if len(sites) < 2 or k < 2:
        note = "one site: nothing to leave out" if len(sites) < 2 else "one subgroup: nothing to compare"
        log.warning("site stability: %s", note)
        return pd.DataFrame({"site": sites, "patients_left_out": np.nan, "patients_compared": np.nan, "ari": np.nan,
                             "note": note})  # fmt: skip
    import tempfile

    from joblib import delayed

    options = {"integrate_options": integrate_options, "fit_on": fit_on, "seed": seed, **space_options,
               "stratify_options": {"k": k, "k_values": [k], "n_resamples": n_resamples}}  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:  # the workers read their subset from a file (AnnData does not pickle)
        paths = [Path(folder) / f"without_site_{i}.h5mu" for i in range(len(sites))]
        for level, path in zip(sites, paths):
            cohort_subset(mdata, mdata.obs_names[mdata.obs[site] != level], assays,
                          columns=space_options.get("adjust_for", ())).write(path)  # fmt: skip
        subgroups = in_processes((delayed(_refitted_subgroups)(path, assays, **options) for path in paths), n_jobs)
    rows = []
    for level, labels in zip(sites, subgroups):
        both = labels.notna() & reference.reindex(labels.index).notna()
        rows.append({"site": level, "patients_left_out": int(len(mdata.obs_names) - len(labels)),
                     "patients_compared": int(both.sum()),
                     "ari": adjusted_rand_score(reference.reindex(labels.index)[both], labels[both]), "note": ""})  # fmt: skip
    return pd.DataFrame(rows)

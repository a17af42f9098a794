"""Subgroup membership probabilities that carry the uncertainty of overlap and of missing assays.

The clustering gives hard subgroups, and a probability learned from hard labels is over-confident:
the labels are a function of the coordinates (k-means cuts the space into cells), so a
discriminant trained on them finds every patient far from the cut certain, even where two
subgroups overlap and the cut runs through both. Instead, the fitted patients' soft memberships
come from a Gaussian mixture with one shared covariance (scikit-learn, EM started at the
clustering's subgroups: their shares, means and pooled covariance), whose posterior reflects how
much the subgroups overlap. Where EM moves away from the clustering (fewer than
``MIN_AGREEMENT`` of the fitted patients keep their subgroup, e.g. non-Gaussian clusters from
HDBSCAN or Leiden), the clustering's hard subgroups are used instead, with a warning.

A patient with fewer assays has coordinates that are both noisier and, for MOFA+ and
least-squares projections, shrunk towards the centre, so placing them by the nearest subgroup
pulls them into the central subgroup and reports a confidence they have not earned. So for each
pattern of assays, the fitted patients' coordinates are recomputed from those assays only and a
Gaussian discriminant (subgroup means and one shared covariance, each patient weighted by its
soft membership: the M-step of the mixture) is fitted to them. A patient's subgroup probabilities
come from the discriminant of its own pattern, so they reflect how well its assays alone tell the
subgroups apart. Fitted patients keep the subgroup of the clustering; their confidence is the
probability of that subgroup.

A discriminant fitted on a few hundred patients is over-confident on new ones (its means and
covariance fit the training patients too well), so each discriminant's scores are divided by a
temperature (Guo et al. 2017, "On calibration of modern neural networks") chosen to minimise the
cross-entropy between cross-validated (out-of-fold) probabilities and the soft memberships. A
temperature above 1 softens the probabilities; 1 leaves them as the discriminant gives them.

Discriminants are fitted for every non-empty subset of the integrated assays when there are at
most ``MAX_ASSAYS_FOR_ALL_PATTERNS`` of them, otherwise for the patterns present in the cohort.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import StratifiedKFold

log = logging.getLogger(__name__)

#: Up to this many integrated assays, a discriminant is fitted for every subset (new cohorts may
#: bring any pattern); above it, for the patterns present in the cohort.
MAX_ASSAYS_FOR_ALL_PATTERNS = 8
#: Folds of the cross-validation that chooses a discriminant's temperature.
CALIBRATION_FOLDS = 5
#: Share of the fitted patients whose most probable mixture component must be their subgroup for
#: the mixture's soft memberships to be used.
MIN_AGREEMENT = 0.8
#: Added to the diagonal of every covariance (as scikit-learn's ``reg_covar``).
RIDGE = 1e-6


@dataclass
class GaussianDiscriminant:
    """Subgroup-conditional Gaussians with one shared covariance."""

    means: np.ndarray  # subgroups x dimensions
    precision: np.ndarray  # inverse of the shared covariance
    log_priors: np.ndarray  # log subgroup shares

    def scores(self, coordinates: np.ndarray) -> np.ndarray:
        """Patients x subgroups log posterior, up to a constant per patient (softmax gives the probabilities)."""
        weighted = self.means @ self.precision
        return coordinates @ weighted.T - 0.5 * np.einsum("kd,kd->k", weighted, self.means) + self.log_priors


def fit_discriminant(coordinates: np.ndarray, weights: np.ndarray) -> GaussianDiscriminant:
    """Weighted subgroup means, shared covariance and shares (the M-step of a tied Gaussian mixture).

    Parameters
    ----------
    coordinates
        Patients x dimensions.
    weights
        Patients x subgroups membership weights (one-hot for hard subgroups; rows sum to 1).

    Returns
    -------
    The discriminant.
    """
    totals = weights.sum(axis=0)
    means = (weights.T @ coordinates) / totals[:, None]
    covariance = coordinates.T @ coordinates - (means.T * totals) @ means
    covariance = covariance / len(coordinates) + RIDGE * np.eye(coordinates.shape[1])
    return GaussianDiscriminant(means, np.linalg.inv(covariance), np.log(totals / totals.sum()))


@dataclass
class Membership:
    """One Gaussian discriminant per pattern of assays (a frozenset of assay names)."""

    k: int
    discriminants: dict[frozenset, GaussianDiscriminant] = field(default_factory=dict)
    temperatures: dict[frozenset, float] = field(default_factory=dict)

    def probabilities(self, coordinates: np.ndarray, patterns: list[frozenset]) -> np.ndarray:
        """Patients x subgroups membership probabilities (NaN rows for a pattern without a discriminant).

        Parameters
        ----------
        coordinates
            Patients x subgroup-space coordinates (computed from the assays each patient has).
        patterns
            The set of assays of each patient.
        """
        result = np.full((len(coordinates), self.k), np.nan)
        if self.k == 1:
            result[:] = 1.0
            return result
        patterns = np.array(patterns, dtype=object)
        for pattern in set(patterns):
            rows = np.flatnonzero(patterns == pattern)
            if pattern in self.discriminants:
                scores = self.discriminants[pattern].scores(coordinates[rows])
                result[rows] = softmax(scores / self.temperatures.get(pattern, 1.0), axis=1)
            else:
                log.warning("subgroups: no discriminant for the assay pattern %s (%d patients); they get no "
                            "probability", sorted(pattern), len(rows))  # fmt: skip
        return result


def soft_memberships(coordinates: np.ndarray, labels: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """Fitted patients' posterior subgroup probabilities under a tied Gaussian mixture started at their subgroups.

    Parameters
    ----------
    coordinates
        The fitted patients' coordinates in the space the clustering ran in.
    labels
        Their subgroups (0..k-1) from the clustering.
    k
        Number of subgroups.
    seed
        Seed of the mixture.

    Returns
    -------
    Patients x subgroups probabilities; the one-hot subgroups when EM moves away from the
    clustering (see the module docstring).
    """
    hard = np.eye(k)[labels]
    start = fit_discriminant(coordinates, hard)
    mixture = GaussianMixture(k, covariance_type="tied", reg_covar=RIDGE, tol=1e-6, max_iter=1000, random_state=seed,
                              weights_init=np.exp(start.log_priors), means_init=start.means,
                              precisions_init=start.precision)  # fmt: skip
    soft = mixture.fit(coordinates).predict_proba(coordinates)
    agreement = float(np.mean(soft.argmax(axis=1) == labels))
    if agreement < MIN_AGREEMENT:
        log.warning("subgroups: a Gaussian mixture started at the subgroups keeps only %.0f%% of the patients in "
                    "their subgroup (the subgroups are not Gaussian-shaped); confidences come from the hard "
                    "subgroups and may be over-confident where subgroups meet", 100 * agreement)  # fmt: skip
        return hard
    return soft


def calibration_temperature(coordinates: np.ndarray, memberships: np.ndarray, *, seed: int = 0) -> float:
    """The temperature that minimises the cross-entropy of out-of-fold discriminant probabilities.

    Parameters
    ----------
    coordinates
        The fitted patients' coordinates.
    memberships
        Their subgroup probabilities (soft memberships, or one-hot subgroups), the targets.
    seed
        Seed of the folds (stratified by the most probable subgroup).

    Returns
    -------
    The temperature (1.0 when a subgroup is the most probable one of fewer than 2 patients, too
    few to cross-validate).
    """
    labels = memberships.argmax(axis=1)
    folds = min(CALIBRATION_FOLDS, np.bincount(labels, minlength=memberships.shape[1]).min())
    if folds < 2:
        return 1.0
    scores = np.empty_like(memberships)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(coordinates, labels):
        scores[test] = fit_discriminant(coordinates[train], memberships[train]).scores(coordinates[test])

    def cross_entropy(log_temperature: float) -> float:
        return -(memberships * log_softmax(scores / np.exp(log_temperature), axis=1)).sum(axis=1).mean()

    return float(np.exp(minimize_scalar(cross_entropy, bounds=(-3.0, 3.0), method="bounded").x))


def assay_patterns(assays: list[str], observed: list[frozenset]) -> list[frozenset]:
    """The patterns to fit: every non-empty subset of ``assays`` when few, else the observed ones."""
    if len(assays) <= MAX_ASSAYS_FOR_ALL_PATTERNS:
        return [frozenset(subset) for size in range(1, len(assays) + 1) for subset in combinations(assays, size)]
    return sorted(set(observed) - {frozenset()}, key=lambda pattern: (len(pattern), sorted(pattern)))


def fit_membership(labels: np.ndarray, k: int, *, coordinates: np.ndarray, patterns: list[frozenset],
                   coordinates_from: Callable[[frozenset], np.ndarray], seed: int = 0) -> Membership:  # fmt: skip
    """Fit one discriminant per pattern of assays on the fitted patients.

    Parameters
    ----------
    labels
        Subgroup (0..k-1) of each fitted patient, from the clustering.
    k
        Number of subgroups.
    coordinates
        The fitted patients' coordinates in the space the clustering ran in (for their soft
        memberships, :func:`soft_memberships`).
    patterns
        Patterns of assays to fit (see :func:`assay_patterns`).
    coordinates_from
        Returns the fitted patients' coordinates computed from a pattern's assays only.
    seed
        Seed of the mixture and of the cross-validation folds that choose each temperature.

    Returns
    -------
    The membership model.
    """
    membership = Membership(k)
    if k == 1:
        return membership
    memberships = soft_memberships(coordinates, labels, k, seed=seed)
    for pattern in patterns:
        pattern_coordinates = coordinates_from(pattern)
        usable = ~np.isnan(pattern_coordinates).any(axis=1)
        if np.bincount(labels[usable], minlength=k).min() < 2:
            log.warning("subgroups: the assays %s place too few fitted patients to tell the subgroups apart",
                        sorted(pattern))  # fmt: skip
            continue
        weights = memberships[usable]
        membership.discriminants[pattern] = fit_discriminant(pattern_coordinates[usable], weights)
        membership.temperatures[pattern] = calibration_temperature(pattern_coordinates[usable], weights, seed=seed)
    return membership

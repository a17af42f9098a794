"""Subgroup membership probabilities that carry the uncertainty of missing assays.

The subgroups are defined on the fitted patients (usually those with every integrated assay). A
patient with fewer assays has coordinates that are both noisier and, for MOFA+ and least-squares
projections, shrunk towards the centre, so placing them by the nearest subgroup pulls them into the
central subgroup and reports a confidence they have not earned. Instead, for each pattern of
assays, the fitted patients' coordinates are recomputed from those assays only and a linear
discriminant (scikit-learn's LDA, Ledoit-Wolf shrunk covariance) learns their subgroups from
them. A patient's subgroup probabilities come from the discriminant of its own pattern, so they
reflect how well its assays alone tell the subgroups apart. Fitted patients keep the subgroup of
the clustering; their confidence is the discriminant's probability of that subgroup.

A discriminant fitted on a few hundred patients is over-confident on new ones (its class means
and covariance fit the training patients too well), so each discriminant's scores are divided by
a temperature (Guo et al. 2017, "On calibration of modern neural networks") chosen to minimise
the log-loss of cross-validated (out-of-fold) probabilities on the fitted patients. A temperature
above 1 softens the probabilities; 1 leaves them as the discriminant gives them.

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
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import StratifiedKFold, cross_val_predict

log = logging.getLogger(__name__)

#: Up to this many integrated assays, a discriminant is fitted for every subset (new cohorts may
#: bring any pattern); above it, for the patterns present in the cohort.
MAX_ASSAYS_FOR_ALL_PATTERNS = 8
#: Folds of the cross-validation that chooses a discriminant's temperature.
CALIBRATION_FOLDS = 5


@dataclass
class Membership:
    """One linear discriminant per pattern of assays (a frozenset of assay names)."""

    k: int
    discriminants: dict[frozenset, LinearDiscriminantAnalysis] = field(default_factory=dict)
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
                scores = class_scores(self.discriminants[pattern].decision_function(coordinates[rows]))
                result[rows] = softmax(scores / self.temperatures.get(pattern, 1.0), axis=1)
            else:
                log.warning("subgroups: no discriminant for the assay pattern %s (%d patients); they get no "
                            "probability", sorted(pattern), len(rows))  # fmt: skip
        return result


def class_scores(scores: np.ndarray) -> np.ndarray:
    """Patients x classes log-posterior scores (up to a constant per patient; softmax gives the
    probabilities) from a discriminant's decision function, which has one column for two classes."""
    return np.column_stack([np.zeros(len(scores)), scores]) if scores.ndim == 1 else scores


def calibration_temperature(coordinates: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> float:
    """The temperature that minimises the log-loss of out-of-fold discriminant probabilities.

    Parameters
    ----------
    coordinates, labels
        The fitted patients' coordinates and subgroups.
    seed
        Seed of the stratified folds.

    Returns
    -------
    The temperature (1.0 when a subgroup has fewer than 2 patients, too few to cross-validate).
    """
    folds = min(CALIBRATION_FOLDS, np.bincount(labels).min())
    if folds < 2:
        return 1.0
    discriminant = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    scores = cross_val_predict(discriminant, coordinates, labels, method="decision_function",
                               cv=StratifiedKFold(folds, shuffle=True, random_state=seed))  # fmt: skip
    scores = class_scores(scores)
    rows = np.arange(len(labels))

    def log_loss(log_temperature: float) -> float:
        return -log_softmax(scores / np.exp(log_temperature), axis=1)[rows, labels].mean()

    return float(np.exp(minimize_scalar(log_loss, bounds=(-3.0, 3.0), method="bounded").x))


def assay_patterns(assays: list[str], observed: list[frozenset]) -> list[frozenset]:
    """The patterns to fit: every non-empty subset of ``assays`` when few, else the observed ones."""
    if len(assays) <= MAX_ASSAYS_FOR_ALL_PATTERNS:
        return [frozenset(subset) for size in range(1, len(assays) + 1) for subset in combinations(assays, size)]
    return sorted(set(observed) - {frozenset()}, key=lambda pattern: (len(pattern), sorted(pattern)))


def fit_membership(labels: np.ndarray, k: int, *, patterns: list[frozenset],
                   coordinates_from: Callable[[frozenset], np.ndarray], seed: int = 0) -> Membership:  # fmt: skip
    """Fit one discriminant per pattern of assays on the fitted patients.

    Parameters
    ----------
    labels
        Subgroup (0..k-1) of each fitted patient, from the clustering.
    k
        Number of subgroups.
    patterns
        Patterns of assays to fit (see :func:`assay_patterns`).
    coordinates_from
        Returns the fitted patients' coordinates computed from a pattern's assays only.
    seed
        Seed of the cross-validation folds that choose each discriminant's temperature.

    Returns
    -------
    The membership model.
    """
    membership = Membership(k)
    if k == 1:
        return membership
    for pattern in patterns:
        coordinates = coordinates_from(pattern)
        usable = ~np.isnan(coordinates).any(axis=1)
        if len(np.unique(labels[usable])) < k:
            log.warning("subgroups: the assays %s place too few fitted patients to tell the subgroups apart",
                        sorted(pattern))  # fmt: skip
            continue
        discriminant = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
        membership.discriminants[pattern] = discriminant.fit(coordinates[usable], labels[usable])
        membership.temperatures[pattern] = calibration_temperature(coordinates[usable], labels[usable], seed=seed)
    return membership

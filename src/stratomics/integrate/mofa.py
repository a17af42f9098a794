"""MOFA+ (Argelaguet et al., Genome Biology 2020) through mofapy2, with scoring of new patients.

Each assay is standardised (features centred and scaled on the patients who have it) and handed to
mofapy2 as one view with Gaussian likelihood; a patient without an assay is missing in that view,
which MOFA's variational inference handles. Of the ``max_factors`` factors (or ``n_factors``), those
that MOFA's automatic relevance determination switched off (no view with at least
``MIN_FACTOR_R2`` of its variance explained) are dropped; the others are kept at MOFA's own scale
(unit prior variance), not weighted by variance explained: on the benchmark suite
(benchmarks/stratify_quality.py) the factors that separate endotypes explain little variance, and
weighting by it (by the mean share over views, or by the share of all features) let inflammation-
and assay-specific nuisance factors decide the clustering (k-means ARI at the true k 0.47-0.61 on
the realistic and nuisance scenarios, against 0.95-0.98 unweighted, 0.99-1.00 both on the original
demo).

New patients (and the check that training patients land where MOFA put them) are scored by the
posterior mean of their factors given the trained weights W and noise precisions tau of the views
they have: z = (sum_v W_v' T_v W_v + I)^-1 sum_v W_v' T_v y_v, with missing features of a present
view at the feature mean.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Share of some view's variance a factor must explain to be kept (below it, ARD switched it off).
MIN_FACTOR_R2 = 1e-3


@dataclass
class MofaView:
    """One assay in the trained model."""

    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # features x factors
    precision: np.ndarray  # per feature noise precision tau

    def standardise(self, values: pd.DataFrame) -> np.ndarray:
        """Standardised values; NaN where missing."""
        return (values.reindex(columns=self.features).to_numpy(dtype=float) - self.mean) / self.scale


@dataclass
class MofaModel:
    """A trained MOFA+ model reduced to what scores new patients."""

    views: dict[str, MofaView]
    variance: pd.DataFrame

    def transform(self, assays: dict[str, pd.DataFrame], patients: pd.Index) -> np.ndarray:
        """Posterior-mean factors of (new) patients from the assays each one has.

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
        n_factors = next(iter(self.views.values())).weights.shape[1]
        precision = np.zeros((len(patients), n_factors, n_factors))
        projected = np.zeros((len(patients), n_factors))
        for name, view in self.views.items():
            values = view.standardise(assays.get(name, pd.DataFrame(index=patients)).reindex(patients))
            present = ~np.isnan(values).all(axis=1)
            weighted = view.weights * view.precision[:, None]
            precision[present] += view.weights.T @ weighted
            projected[present] += np.nan_to_num(values[present]) @ weighted
        scores = np.full((len(patients), n_factors), np.nan)
        scored = precision.any(axis=(1, 2))
        solution = np.linalg.solve(precision[scored] + np.eye(n_factors), projected[scored][..., None])[..., 0]
        scores[scored] = solution
        return scores

    def feature_weights(self) -> dict[str, pd.DataFrame]:
        """MOFA's weights W per assay: features x factors (of the standardised features)."""
        return {name: pd.DataFrame(view.weights, index=view.features) for name, view in self.views.items()}


def _standardised(values: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Features with some spread, centred and scaled."""
    mean, scale = values.mean(), values.std(ddof=1)
    keep = scale.notna() & (scale > 0)
    return (values.loc[:, keep] - mean[keep]) / scale[keep], mean[keep].to_numpy(), scale[keep].to_numpy()


def fit_mofa(assays: dict[str, pd.DataFrame], patients: pd.Index, *, n_factors: int | str = "auto",
             max_factors: int = 15, max_iter: int = 1000, seed: int = 0):  # fmt: skip
    """Train MOFA+ on the assays and return the model and the factors of ``patients``.

    Parameters
    ----------
    assays
        Preprocessed values per assay: patients (who have the assay) x features.
    patients
        All patients (those without any assay get NaN scores).
    n_factors
        Factors, or "auto" (``max_factors``).
    max_iter
        Training iterations at most (convergence: MOFA's "fast" mode).
    seed
        mofapy2's seed.

    Returns
    -------
    The model and the patients x factors scores (MOFA's expectations of Z of the active factors).
    """
    from mofapy2.run.entry_point import entry_point

    has_data = patients[np.any([patients.isin(frame.index) for frame in assays.values()], axis=0)]
    standardised = {name: _standardised(values) for name, values in assays.items()}
    data = [[frame.reindex(has_data).to_numpy()] for frame, _, _ in standardised.values()]
    banner = io.StringIO()
    with contextlib.redirect_stdout(banner):
        trainer = entry_point()
        trainer.set_data_options(scale_views=False, center_groups=True)
        trainer.set_data_matrix(data, views_names=list(assays), groups_names=["cohort"],
                                samples_names=[list(has_data)],
                                features_names=[[f"{view}:{feature}" for feature in frame.columns]
                                                for view, (frame, _, _) in standardised.items()])  # fmt: skip
        trainer.set_model_options(factors=max_factors if n_factors == "auto" else int(n_factors))
        trainer.set_train_options(iter=max_iter, convergence_mode="fast", seed=seed, quiet=True)
        trainer.build()
        trainer.run()
    nodes = trainer.model.getNodes()
    factors = nodes["Z"].getExpectation()
    weights, precisions = nodes["W"].getExpectation(), nodes["Tau"].getExpectation()
    variance = _variance_explained(standardised, has_data, factors, weights)
    largest = variance.groupby("factor")["variance_explained"].max().to_numpy()
    active = (largest >= MIN_FACTOR_R2) | (largest == largest.max())  # at least one factor
    factors, weights = factors[:, active], [w[:, active] for w in weights]
    kept = variance["factor"].isin(np.flatnonzero(active) + 1)  # each factor's R^2 is its own: filter, renumber
    variance = variance[kept].assign(factor=variance.loc[kept, "factor"].rank(method="dense").astype(int))
    variance = variance.reset_index(drop=True)
    views = {}
    for (name, (frame, mean, scale)), w, tau in zip(standardised.items(), weights, precisions):
        tau = np.asarray(tau)
        views[name] = MofaView(list(frame.columns), mean, scale, w, tau.mean(axis=0) if tau.ndim == 2 else tau)
    model = MofaModel(views, variance)
    scores = np.full((len(patients), factors.shape[1]), np.nan)
    scores[patients.isin(has_data)] = factors
    log.info("mofa: %d patients, %d views, %d of %d factors active", len(has_data), len(views), factors.shape[1],
             len(active))  # fmt: skip
    return model, scores


def _variance_explained(standardised: dict, patients: pd.Index, factors: np.ndarray, weights: list) -> pd.DataFrame:
    """MOFA's R^2 per factor and view: 1 - residual / total sum of squares over observed values."""
    rows = []
    for (name, (frame, _, _)), w in zip(standardised.items(), weights):
        values = frame.reindex(patients).to_numpy()
        observed = ~np.isnan(values)
        total = np.sum(values[observed] ** 2)
        for factor in range(factors.shape[1]):
            residual = values - np.outer(factors[:, factor], w[:, factor])
            rows.append({"factor": factor + 1, "assay": name,
                         "variance_explained": 1 - np.sum(residual[observed] ** 2) / total})  # fmt: skip
    return pd.DataFrame(rows)

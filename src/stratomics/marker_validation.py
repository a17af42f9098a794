"""Subgroup markers tested on patients who did not define the subgroups (an honest test of markers).

Markers of the subgroups on the features that made them are descriptive: the groups separate those
features by construction (their p-values do not test anything). :func:`held_out_markers` gives a
test: the subgroups are found again (same k, same settings) on a random discovery share of the
patients, the held-out patients are assigned to them with every integrated assay *but the one
tested*, and that assay's markers are tested on the held-out patients only. Neither the groups nor
a held-out patient's assignment has then seen the tested values, so under no real difference the
p-values are uniform. An assay that is the only integrated one cannot be validated this way (it
is named in a warning).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from stratomics.associate import RESULT_COLUMNS, cluster_markers
from stratomics.subgroups import assign_patients, cohort_subset, integrate_and_stratify

log = logging.getLogger(__name__)

#: Note on every row of the held-out marker table.
HELD_OUT = "held out: subgroups defined on other patients, assigned without this assay"

__all__ = ["HELD_OUT", "held_out_markers", "split_patients"]


def split_patients(subgroups: pd.Series, *, holdout: float, seed: int = 0) -> pd.Index:
    """A seeded held-out share of the patients with a subgroup, drawn within each subgroup.

    Returns
    -------
    The held-out patient IDs.
    """
    rng = np.random.default_rng(seed)
    held = []
    for _, members in subgroups.dropna().groupby(subgroups.dropna(), observed=True):
        held += list(rng.choice(members.index, size=int(round(holdout * len(members))), replace=False))
    return pd.Index(sorted(held))


def _matched_labels(discovered: pd.Series, reference: pd.Series) -> dict:
    """Discovery subgroup -> the reference subgroup it overlaps most (one-to-one, Hungarian)."""
    table = pd.crosstab(discovered, reference)
    rows, columns = linear_sum_assignment(-table.to_numpy())
    return {table.index[r]: table.columns[c] for r, c in zip(rows, columns)}


def held_out_markers(mdata, assays: list[str], *, tested: list[str], covariates: list[str], holdout: float,
                     integrate_options: dict, fit_on: str = "complete", n_resamples: int = 20, seed: int = 0,
                     marker_options: dict | None = None, **space_options) -> pd.DataFrame:  # fmt: skip
    """Markers of the subgroups of each tested assay, on held-out patients assigned without that assay.

    Parameters
    ----------
    mdata
        The stratified cohort (``obs["subgroup"]`` and ``uns["stratify"]["k"]`` set).
    assays
        The integrated assays.
    tested
        The assays whose markers are tested.
    covariates
        Adjustment covariates of the marker tests.
    holdout
        Share of the patients held out (drawn within each subgroup, seeded).
    integrate_options, fit_on, n_resamples, space_options
        As for the whole cohort (:func:`stratomics.subgroups.integrate_and_stratify`), with k fixed.
    seed
        Seed of the split and of every random step.
    marker_options
        ``kind``, ``moderated``, ``robust`` of :func:`stratomics.associate.cluster_markers`.

    Returns
    -------
    One row per assay, feature and contrast with :data:`~stratomics.associate.RESULT_COLUMNS`
    (note :data:`HELD_OUT`); contrasts are named by the whole cohort's subgroups (each discovery
    subgroup takes the name of the whole-cohort subgroup it overlaps most).
    """
    reference, k = mdata.obs["subgroup"], int(mdata.uns["stratify"]["k"])
    if k < 2:
        log.warning("held-out markers: one subgroup, nothing to compare")
        return pd.DataFrame(columns=RESULT_COLUMNS)
    held = split_patients(reference, holdout=holdout, seed=seed)
    discovery = mdata.obs_names.difference(held)
    subset = cohort_subset(mdata, discovery, assays, columns=space_options.get("adjust_for", ()))
    model, _ = integrate_and_stratify(subset, assays, integrate_options=integrate_options, fit_on=fit_on, seed=seed,
                                      stratify_options={"k": k, "k_values": [k], "n_resamples": n_resamples},
                                      **space_options)  # fmt: skip
    refitted = subset.obs["subgroup"].dropna()
    names = _matched_labels(refitted, reference.reindex(refitted.index))
    log.info("held-out markers: subgroups found again on %d patients, tested on %d held out", len(discovery), len(held))
    context = {"assays": assays, "covariates": covariates, "columns": space_options.get("adjust_for", ()),
               "options": marker_options or {}}  # fmt: skip
    tables = [_assay_markers(mdata, model, held, names, assay=assay, **context) for assay in tested]
    tables = [table for table in tables if len(table)]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=RESULT_COLUMNS)


def _assay_markers(mdata, model, held, names: dict, *, assay: str, assays: list[str], covariates: list[str],
                   columns, options: dict) -> pd.DataFrame:  # fmt: skip
    """Markers of one assay on its held-out patients, assigned by the other integrated assays."""
    others = [name for name in assays if name != assay]
    if not others:
        log.warning("held-out markers: '%s' is the only integrated assay, so its held-out patients cannot be "
                    "assigned without it; not validated", assay)  # fmt: skip
        return pd.DataFrame(columns=RESULT_COLUMNS)
    patients = mdata[assay].obs_names.intersection(held)
    assigned = assign_patients(model, cohort_subset(mdata, patients, others, columns=columns))
    labels = assigned.set_index("patient_id")["subgroup"].replace("", np.nan).map(names)
    obs = mdata.obs.loc[patients].assign(subgroup=labels.reindex(patients).to_numpy())
    kept = obs.index[obs["subgroup"].notna()]
    if len(kept) < len(patients):
        log.warning("held-out markers of '%s': %d of %d held-out patients have none of the other assays and are "
                    "not tested", assay, len(patients) - len(kept), len(patients))  # fmt: skip
    if obs.loc[kept, "subgroup"].nunique() < 2:
        log.warning("held-out markers: fewer than two subgroups among the %d held-out patients of '%s'", len(kept), assay)
        return pd.DataFrame(columns=RESULT_COLUMNS)
    table = cluster_markers(mdata[assay][kept], obs, "subgroup", covariates=covariates, assay=assay, **options)
    table["note"] = table["note"].where(table["note"] != "", HELD_OUT)
    return table

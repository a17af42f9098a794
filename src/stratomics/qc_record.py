"""The record of one assay's preprocessing: parameters, per-feature QC metrics and every removal."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


class Record:
    """Collects the parameters, feature QC metrics and removals of one assay's preprocessing."""

    def __init__(self, assay: str, kind: str):
        self.assay, self.kind = assay, kind
        self.params: dict = {"kind": kind}
        self.removed: list[dict] = []
        self.feature_qc = pd.DataFrame()

    def add_metrics(self, metrics: pd.DataFrame) -> None:
        """Add per-feature QC metrics (index = feature) computed before a filter."""
        self.feature_qc = metrics.combine_first(self.feature_qc)

    def drop(self, adata: ad.AnnData, drop: np.ndarray, reason: str, axis: str = "feature"):
        """Remove features (or samples) flagged in ``drop``, logging and recording them."""
        drop = np.asarray(drop, dtype=bool)
        names = adata.var_names if axis == "feature" else adata.obs_names
        if drop.any():
            log.info("assay '%s': removed %d %ss: %s", self.assay, drop.sum(), axis, reason)
        self.removed += [{"assay": self.assay, "axis": axis, "id": i, "reason": reason}
                         for i in names[drop]]  # fmt: skip
        return adata[:, ~drop].copy() if axis == "feature" else adata[~drop].copy()

    def store(self, adata: ad.AnnData) -> None:
        """Write the record into ``adata.uns``."""
        removed = pd.DataFrame(self.removed, columns=["assay", "axis", "id", "reason"])
        qc = self.feature_qc.copy()
        qc["removed"] = qc.index.isin(removed.loc[removed["axis"] == "feature", "id"])
        qc.index.name = "feature"
        adata.uns["preprocess"] = self.params
        adata.uns["feature_qc"] = qc.reset_index()
        adata.uns["removed"] = removed

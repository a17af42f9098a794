"""Any wide numeric table (kind ``table``): optional log transform and z-scores, binary features kept as they are."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np

from stratomics.errors import StratomicsInputError
from stratomics.io import (AssayTable, read_wide,
                           wide_options)
from stratomics.kinds.base import AssayKind
from stratomics.qc_record import Record

log = logging.getLogger(__name__)


#: Transforms of the ``table`` kind (``log2p1``: log2(x + 1), for counts or intensities with zeros).
TABLE_TRANSFORMS = {"none": None, "log2": np.log2, "log2p1": lambda x: np.log2(x + 1), "log10": np.log10}
#: The unit of the values after each transform when they are not z-scored.
TABLE_UNITS = {"none": "value as given", "log2": "log2 value", "log2p1": "log2(value + 1)", "log10": "log10 value"}


def read_table_assay(path, *, source, known_ids, options) -> AssayTable:
    """Read a generic wide numeric table (kind ``table``)."""
    return read_wide(path, source=source, known_ids=known_ids, **wide_options(options))


def preprocess_table(adata: ad.AnnData, record: Record, *, transform: str = "none", scale: str = "zscore") -> ad.AnnData:
    """Optionally log-transform, then z-score every feature (missing values ignored), or leave the scale.

    Binary features (two observed values 0 and 1, e.g. mutations) stay 0/1 and are neither
    transformed nor scaled; a constant feature stays as it is (and is then removed as constant).
    Give ``scale: none`` for values that are already normalised (e.g. log-expression), so that the
    moderated tests see the data's own variances as limma would.

    Raises
    ------
    StratomicsInputError
        When a log transform meets a value it is not defined for, naming the feature and the value.
    """
    result = adata.copy()
    values = np.array(adata.X, dtype=float)
    binary = np.array([set(np.unique(column[np.isfinite(column)])) == {0.0, 1.0} for column in values.T], bool)
    continuous = values[:, ~binary]
    if TABLE_TRANSFORMS[transform] is not None:
        bad = np.isfinite(continuous) & (continuous <= (-1 if transform == "log2p1" else 0))
        if bad.any():
            row, column = np.argwhere(bad)[0]
            raise StratomicsInputError(
                f"assay '{record.assay}': transform {transform} is not defined for feature "
                f"'{adata.var_names[~binary][column]}', sample '{adata.obs_names[row]}', value {continuous[row, column]:g}. "
                "Use transform: none for values already on a log scale, or log2p1 for counts with zeros."
            )
        continuous = TABLE_TRANSFORMS[transform](continuous)
    if scale == "zscore":
        spread = np.nanstd(continuous, axis=0, ddof=1)
        varying = np.isfinite(spread) & (spread > 0)
        continuous[:, varying] = zscore(continuous[:, varying])
    values[:, ~binary] = continuous
    result.X = values
    unit = "SD" if scale == "zscore" else TABLE_UNITS[transform]
    record.params.update(transform=transform, scale=scale, unit=unit, binary_features=int(binary.sum()))
    return result


def zscore(values: np.ndarray) -> np.ndarray:
    """Centre and scale each column to unit SD, ignoring NaN."""
    return (values - np.nanmean(values, axis=0)) / np.nanstd(values, axis=0, ddof=1)


KIND = AssayKind(
    name="table",
    read=read_table_assay,
    preprocess=preprocess_table,
    options={
        "transform": {"enum": ["none", "log2", "log2p1", "log10"], "description": "transform of the values (log2p1 = log2(x + 1)); binary 0/1 features are left as they are."},
        "scale": {"enum": ["zscore", "none"], "description": "z-score each feature (default), or none for values already normalised (e.g. log-expression), so that tests see their own variances as limma would."},
    },
    preprocess_options=("transform", "scale"),
)  # fmt: skip

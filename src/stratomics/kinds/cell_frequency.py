"""Flow-cytometry population frequencies (kind ``cell_frequency``): gating hierarchy and centred log-ratios within each parent."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError
from stratomics.io import (AssayTable, check_unique_features, read_text_table, read_wide,
                           rename_case_insensitive, split_summary_rows, wide_options)
from stratomics.kinds.base import AssayKind
from stratomics.plot import SMALLEST_FONT, colours
from stratomics.qc_record import Record

log = logging.getLogger(__name__)


def read_cell_frequency(path, *, source, known_ids, options) -> AssayTable:
    """Read flow-cytometry population frequencies (kind ``cell_frequency``).

    Column names are gating paths ("Lymphocytes/T cells/CD4+"); a FlowJo suffix such as
    " | Freq. of Parent (%)" is removed. The parent of a population is given by the ``hierarchy``
    file (columns population, parent) when there is one, else by its path without the last
    element; with flat names and no hierarchy, every population is one composition (warned).
    Percentages must lie in [0, 100] (fractions in [0, 1] are recognised and rescaled).
    """
    assay = split_summary_rows(
        read_wide(path, source=source, known_ids=known_ids, **wide_options(options))
    )
    populations = [name.split(" | ")[0].strip() for name in assay.values.columns]
    check_unique_features(pd.Index(populations), source)
    values = assay.values.set_axis(populations, axis=1)
    low, high = np.nanmin(values.to_numpy()), np.nanmax(values.to_numpy())
    if low < 0 or high > 100:
        column = values.columns[((values < 0) | (values > 100)).any()][0]
        raise StratomicsInputError(
            f"{source}: population '{column}' has a frequency outside 0-100 "
            f"(range {low:g} to {high:g}). Export frequencies as percentages of the parent."
        )
    if high <= 1:
        log.warning("%s: all frequencies are <= 1, reading them as fractions", source)
        values = values * 100
    if options.get("hierarchy"):
        parents = _read_hierarchy(options["hierarchy"], populations, source)
    else:
        parents = [name.rsplit("/", 1)[0] if "/" in name else "" for name in populations]
        if not any(parents):
            log.warning("%s: population names are not gating paths and no hierarchy file is given, so all %d "
                        "populations are treated as one composition (one parent); give the assay a hierarchy "
                        "file (columns population, parent) if they have different parents", source,
                        len(populations))  # fmt: skip
    var = pd.DataFrame({"parent": parents}, index=pd.Index(populations, name="population"))
    assay.values, assay.var = values, var
    return assay


def _read_hierarchy(path, populations: list[str], source: str) -> list[str]:
    """The parent of each population from a hierarchy file (columns population, parent; any case)."""
    table, _ = read_text_table(path)
    table = rename_case_insensitive(table, ("population", "parent"))
    if not {"population", "parent"} <= set(table.columns):
        raise StratomicsInputError(
            f"{path}: the hierarchy file for {source} needs columns population and parent; found {list(table.columns)}."
        )
    parents = table.assign(parent=table["parent"].fillna("").astype(str)).set_index("population")["parent"]
    absent = [name for name in populations if name not in parents.index]
    if absent:
        raise StratomicsInputError(
            f"{path}: population '{absent[0]}' of {source} is not in the hierarchy file ({len(absent)} missing); "
            "add a row population,parent for each (an empty parent for top-level populations)."
        )
    return [parents[name] for name in populations]


def clr_by_parent(frequencies: np.ndarray, parents: np.ndarray) -> tuple[np.ndarray, dict]:
    """Centred log-ratio of population frequencies within each parent population.

    The children of a parent, plus the remainder (100% minus their sum) when they do not cover
    the parent, form one composition. Zeros are replaced by half the smallest positive frequency.

    Parameters
    ----------
    frequencies
        Samples x populations, percent of parent.
    parents
        The parent of each population.

    Returns
    -------
    CLR values (same shape; NaN where a composition has a missing part) and, per parent, whether
    a remainder part was added.
    """
    pseudo = 0.5 * np.nanmin(np.where(frequencies > 0, frequencies, np.nan))
    clr = np.full_like(frequencies, np.nan, dtype=float)
    with_remainder = {}
    for parent in pd.unique(parents):
        columns = np.flatnonzero(parents == parent)
        parts = frequencies[:, columns]
        remainder = 100 - parts.sum(axis=1, keepdims=True)
        with_remainder[str(parent)] = bool(np.nanmedian(remainder) > 1)
        if with_remainder[str(parent)]:
            parts = np.hstack([parts, remainder])
        logs = np.log(np.maximum(parts, pseudo))
        clr[:, columns] = (logs - logs.mean(axis=1, keepdims=True))[:, : len(columns)]
    return clr, with_remainder


def preprocess_cell_frequency(adata: ad.AnnData, record: Record) -> ad.AnnData:
    """CLR-transform population frequencies within each parent (see :func:`clr_by_parent`)."""
    clr, with_remainder = clr_by_parent(adata.X, adata.var["parent"].to_numpy())
    result = ad.AnnData(clr, obs=adata.obs.copy(), var=adata.var.copy())
    result.layers["percent_of_parent"] = adata.X.copy()
    record.params.update(
        transform="clr within parent",
        unit="CLR",
        parents_with_remainder_part=[parent for parent, added in with_remainder.items() if added],
    )
    return result


#: How many populations the QC figure's composition panel shows (the largest by median).
COMPOSITION_SHOWN = 10


def _composition_panel(ax, *, adata, **_):
    percent = pd.DataFrame(adata.layers["percent_of_parent"], columns=adata.var_names)
    medians = percent.median().sort_values().tail(COMPOSITION_SHOWN)
    ax.barh(["/".join(name.split("/")[-2:]) for name in medians.index], medians.to_numpy(),
            color=colours()[0])  # fmt: skip
    ax.tick_params(axis="y", labelsize=SMALLEST_FONT)
    shown = f"{len(medians)} largest of {percent.shape[1]} populations" if percent.shape[1] > len(medians) else "Populations"
    ax.set(title=shown, xlabel="median % of parent")



KIND = AssayKind(
    name="cell_frequency",
    read=read_cell_frequency,
    preprocess=preprocess_cell_frequency,
    options={
        "hierarchy": {"type": "string", "description": "file with columns population, parent (as exported by gating software); without it parents come from gating-path names."},
    },
    preprocess_options=(),
    qc_panels=(_composition_panel,),
)  # fmt: skip

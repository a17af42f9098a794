"""Olink NPX long exports (kind ``olink_npx``): reader, QC-warning masking, plate normalisation, LOD handling."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError
from stratomics.io import (AssayTable, parse_numeric, read_text_table, rename_case_insensitive, uses_decimal_comma)
from stratomics.kinds.base import AssayKind
from stratomics.plot import PALETTE, SMALLEST_FONT, histogram, sd_limits
from stratomics.qc_record import Record

log = logging.getLogger(__name__)


OLINK_COLUMNS = ("SampleID", "OlinkID", "Assay", "Panel", "PlateID", "QC_Warning", "LOD", "NPX")


def read_olink_npx(path, *, source, known_ids, options) -> AssayTable:
    """Read an Olink NPX long export (kind ``olink_npx``).

    One row per sample, plate and assay; columns SampleID, OlinkID, Assay, Panel, PlateID,
    QC_Warning, LOD, NPX (UniProt and Assay_Warning optional; names matched case-insensitively).
    A sample measured on several plates gives one row per plate. Control samples (``control_pattern``)
    are excluded. A QC warning (anything but PASS) masks that sample's values on that panel; a
    sample warned on every panel has failed QC.
    """
    table, sep = read_text_table(path, sep=options.get("sep"))
    table = rename_case_insensitive(table, OLINK_COLUMNS + ("UniProt", "Assay_Warning"))
    missing = [name for name in OLINK_COLUMNS if name not in table.columns]
    if missing:
        raise StratomicsInputError(
            f"{source}: an Olink long export needs columns {', '.join(OLINK_COLUMNS)}; missing "
            f"{', '.join(missing)} (found {', '.join(table.columns)}). Export NPX data in long "
            "format from NPX Signature/NPX Manager, or use kind: table for a wide table."
        )
    numbers = parse_numeric(
        table[["NPX", "LOD"]],
        source=source,
        na_values=options.get("na_values", ()),
        decimal_comma=uses_decimal_comma(table[["NPX", "LOD"]], sep),
    )
    control = table["SampleID"].str.contains(options.get("control_pattern", r"(?i)control"))
    excluded = pd.DataFrame(
        {"sample_id": table.loc[control, "SampleID"].unique(), "reason": "Olink control sample"}
    )
    table, numbers = table[~control], numbers[~control]
    warned = ~table["QC_Warning"].str.upper().isin({"PASS", ""})
    if "Assay_Warning" in table.columns:
        warned |= ~table["Assay_Warning"].str.upper().isin({"PASS", ""})
    long = table.assign(NPX=numbers["NPX"], LOD=numbers["LOD"], warned=warned)
    key = ["SampleID", "PlateID", "OlinkID"]
    repeated = long.duplicated(key)
    if repeated.any():
        first = long[repeated].iloc[0]
        raise StratomicsInputError(
            f"{source}: {int(repeated.sum())} rows repeat a measurement of the same sample, assay "
            f"and plate (first: sample '{first.SampleID}', {first.OlinkID} on plate "
            f"{first.PlateID}, line {int(long.index[repeated][0]) + 2}). Remove the repeated rows."
        )
    wide = long.pivot(index=["SampleID", "PlateID"], columns="OlinkID")
    runs = wide.index.to_frame(index=False)
    var_columns = ["Assay", "Panel"] + (["UniProt"] if "UniProt" in long.columns else [])
    var = long.drop_duplicates("OlinkID").set_index("OlinkID")[var_columns].sort_index()
    sample_index = pd.Index(runs["SampleID"], name="sample_id")

    def layer(name):
        return wide[name].reindex(columns=var.index).set_axis(sample_index, axis=0)

    warned_matrix = layer("warned").astype(float).fillna(0).astype(bool)
    panels_warned = _panels_fully_warned(warned_matrix, var["Panel"])
    n_panels = var["Panel"].nunique()
    qc_failed = panels_warned.apply(
        lambda panels: f"QC warning on all {n_panels} panels" if len(panels) == n_panels else ""
    )
    sample_info = pd.DataFrame(
        {"plate": runs["PlateID"].to_numpy(), "qc_failed": qc_failed.to_numpy()},
        index=sample_index,
    )
    return AssayTable(
        values=layer("NPX").astype(float),
        var=var,
        sample_info=sample_info,
        layers={"lod": layer("LOD").astype(float), "qc_warning": warned_matrix.astype(float)},
        excluded=excluded,
        uns={"separator": sep},
    )


def _panels_fully_warned(warned: pd.DataFrame, panel: pd.Series) -> pd.Series:
    """For each sample row, the panels on which every value carries a QC warning."""
    by_panel = warned.T.groupby(panel.to_numpy()).all().T
    return by_panel.apply(lambda row: tuple(row.index[row.to_numpy()]), axis=1)


def preprocess_olink(
    adata: ad.AnnData,
    record: Record,
    *,
    below_lod: str = "keep",
    plate_normalisation: str = "median",
    max_below_lod_fraction: float = 0.75,
) -> ad.AnnData:
    """Mask QC-warned values, normalise plates, handle values below LOD, drop mostly-undetected assays.

    Parameters
    ----------
    adata
        Raw NPX with layers ``lod`` and ``qc_warning`` and ``obs["plate"]``.
    record
        Where parameters and removals are recorded.
    below_lod
        "keep" the NPX (Olink's advice), replace it by the "lod", or set it "missing".
    plate_normalisation
        "median": subtract each plate's median of each assay and add the assay's overall median
        (intensity normalisation, for samples randomised over plates); "none".
    max_below_lod_fraction
        Assays with a larger fraction of values below LOD are removed.

    Returns
    -------
    The preprocessed AnnData (raw NPX kept in ``layers["npx_raw"]``).
    """
    npx = adata.X.copy()
    npx[adata.layers["qc_warning"] > 0] = np.nan
    lod = adata.layers["lod"].copy()
    if plate_normalisation == "median":
        offset = _plate_offsets(npx, adata.obs["plate"].to_numpy())
        npx, lod = npx - offset, lod - offset
    below = npx < lod
    fraction_below = below.sum(axis=0) / np.maximum(np.isfinite(npx).sum(axis=0), 1)
    if below_lod == "lod":
        npx = np.where(below, lod, npx)
    elif below_lod == "missing":
        npx = np.where(below, np.nan, npx)
    result = ad.AnnData(npx, obs=adata.obs.copy(), var=adata.var.copy())
    result.layers["npx_raw"] = adata.X.copy()
    result.var["below_lod_fraction"] = fraction_below
    result.obs["median_npx"] = np.nanmedian(npx, axis=1)
    result.obs["iqr_npx"] = np.subtract(*np.nanpercentile(npx, [75, 25], axis=1))
    record.add_metrics(result.var[["below_lod_fraction"]])
    record.params.update(
        unit="NPX (log2)",
        below_lod=below_lod,
        plate_normalisation=plate_normalisation,
        max_below_lod_fraction=max_below_lod_fraction,
        n_values_qc_warning=int((adata.layers["qc_warning"] > 0).sum()),
    )
    return record.drop(
        result, fraction_below > max_below_lod_fraction,
        f"more than {max_below_lod_fraction:.0%} of values below LOD",
    )  # fmt: skip


def _plate_offsets(values: np.ndarray, plates: np.ndarray) -> np.ndarray:
    """Per-sample offsets: the plate's median of each feature minus the feature's overall median."""
    overall = np.nanmedian(values, axis=0)
    offsets = np.zeros_like(values)
    for plate in np.unique(plates):
        rows = plates == plate
        offsets[rows] = np.nanmedian(values[rows], axis=0) - overall
    return np.nan_to_num(offsets)


def _below_lod_panel(ax, *, adata, qc, **_):
    histogram(ax, qc["below_lod_fraction"], title="Below LOD", xlabel="share below LOD",
              threshold=adata.uns["preprocess"]["max_below_lod_fraction"], value_range=(0, 1))  # fmt: skip


def _sample_npx_panel(ax, *, adata, **_):
    """Olink's sample QC: each sample's IQR against its median NPX, by plate, with mean +- 3 SD limits."""
    import seaborn as sns

    obs = adata.obs
    plates = obs["plate"].astype(str) if "plate" in obs else None
    sns.scatterplot(x=obs["median_npx"], y=obs["iqr_npx"], hue=plates, s=4, linewidth=0, palette=PALETTE, ax=ax,
                    hue_order=sorted(plates.unique()) if plates is not None else None,
                    legend=plates is not None)  # fmt: skip
    sd_limits(ax, obs["median_npx"], labelled=False)
    sd_limits(ax, obs["iqr_npx"], axis="y")
    ax.set(title="Sample QC", xlabel="median NPX", ylabel="IQR of NPX")
    if ax.get_legend():
        ax.legend(title="plate", frameon=False, fontsize=SMALLEST_FONT, title_fontsize=SMALLEST_FONT, ncol=2,
                  markerscale=1.5, loc="upper center", bbox_to_anchor=(0.5, -0.3), handletextpad=0.1,
                  columnspacing=0.5)  # fmt: skip


KIND = AssayKind(
    name="olink_npx",
    read=read_olink_npx,
    preprocess=preprocess_olink,
    options={
        "control_pattern": {"type": "string", "description": "regular expression of control SampleIDs."},
        "below_lod": {"enum": ["keep", "lod", "missing"], "description": "keep NPX below LOD (Olink's advice), set it to the LOD, or to missing."},
        "plate_normalisation": {"enum": ["median", "none"], "description": "centre each assay's plate median on its overall median."},
        "max_below_lod_fraction": {"type": "number", "minimum": 0, "maximum": 1, "description": "drop assays with more values below LOD."},
    },
    preprocess_options=("below_lod", "plate_normalisation", "max_below_lod_fraction"),
    shared_options=("sep", "na_values", "batch_correction"),
    qc_panels=(_below_lod_panel,),
    sample_qc_panels=(_sample_npx_panel,),
)  # fmt: skip

"""The enrichment dot plot: the gene sets of :func:`stratomics.enrichment.enrichment_table` (rows)
against each ranking (columns), one panel per source (markers, biomarkers). Computes nothing."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm

from stratomics.plot import PAGE_WIDTH_IN, SMALLEST_FONT, figure_style, panel_letters

#: FDR q-value (GSEA's) below which a dot gets a black ring; GSEA's own suggested cut-off is 0.25.
RING_Q = 0.05
#: -log10 q at which the dot size stops growing.
MAX_SIZE_LOG_Q = 3.0


def enrichment_dotplot(table: pd.DataFrame, *, top: int = 20):
    """Normalised enrichment score (colour) and -log10 q (size) of the ``top`` sets with the smallest q.

    Parameters
    ----------
    table
        :func:`stratomics.enrichment.enrichment_table`.
    top
        Gene sets drawn (smallest q over all rankings first).

    Returns
    -------
    The figure; a one-panel note when no set was tested.
    """
    if table.empty:
        return _no_result()
    best = table.groupby("gene_set")["q_value"].min().reset_index().sort_values(["q_value", "gene_set"])
    sets = best["gene_set"].head(top).tolist()
    shown = table[table["gene_set"].isin(sets)].assign(
        ranking=lambda t: t["assay"] + ": " + t["outcome_or_contrast"].astype(str)
        + np.where(t["note"].astype(str) != "", " †", "")
    )
    sources = list(dict.fromkeys(shown["source"]))
    widths = [max(shown.loc[shown["source"] == s, "ranking"].nunique(), 1) for s in sources]
    limit = max(float(np.nanmax(np.abs(shown["nes"]))), 1.0)
    with figure_style():
        fig, axes = plt.subplots(1, len(sources), figsize=(PAGE_WIDTH_IN, 1.6 + 0.2 * len(sets)), sharey=True,
                                 gridspec_kw={"width_ratios": widths, "wspace": 0.08}, squeeze=False)  # fmt: skip
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
        for ax, source in zip(axes[0], sources):
            points = _dots(ax, shown[shown["source"] == source], sets, norm)
            ax.set_title(source.capitalize())
        axes[0][0].set_ylabel("gene set")
        colour_bar = fig.colorbar(points, ax=axes[0].tolist(), fraction=0.04, pad=0.02)
        colour_bar.set_label("normalised enrichment score")
        _size_key(axes[0][-1])
        panel_letters(list(axes[0]))
    return fig


def _dots(ax, rows: pd.DataFrame, sets: list[str], norm):
    """One panel's dots: rankings along x, sets along y (first set on top)."""
    rankings = sorted(rows["ranking"].unique())
    x = rows["ranking"].map({name: i for i, name in enumerate(rankings)})
    y = rows["gene_set"].map({name: i for i, name in enumerate(sets)})
    significant = rows["q_value"] < RING_Q
    points = ax.scatter(x, y, s=_dot_size(rows["q_value"]), c=rows["nes"], cmap="RdBu_r", norm=norm,
                        edgecolors=np.where(significant, "black", "none"), linewidths=0.8)  # fmt: skip
    ax.set_xticks(range(len(rankings)), rankings, rotation=45, ha="right")
    ax.set_yticks(range(len(sets)), sets)
    ax.set_xlim(-0.6, len(rankings) - 0.4)
    ax.set_ylim(len(sets) - 0.5, -0.5)
    ax.grid(color="#eeeeee", lw=0.5)
    ax.set_axisbelow(True)
    return points


def _dot_size(q_values) -> np.ndarray:
    """Marker area (pt^2) from -log10 q, capped at :data:`MAX_SIZE_LOG_Q`."""
    return 8 + 60 * np.minimum(-np.log10(np.asarray(q_values, dtype=float)), MAX_SIZE_LOG_Q)


def _size_key(ax) -> None:
    """Legend of the dot sizes and of the ring, outside the last panel."""
    sizes = [0.25, 0.05, 10**-MAX_SIZE_LOG_Q]
    handles = [ax.scatter([], [], s=_dot_size([q])[0], color="#999999",
                          edgecolors="black" if q < RING_Q else "none") for q in sizes]  # fmt: skip
    labels = ["q = 0.25", "q = 0.05 (ring: q < 0.05)", f"q ≤ {10**-MAX_SIZE_LOG_Q:g}"]
    ax.legend(handles, labels, title="GSEA FDR", loc="upper left", bbox_to_anchor=(1.25, 1.0), frameon=False,
              fontsize=SMALLEST_FONT, title_fontsize=SMALLEST_FONT)  # fmt: skip


def _no_result():
    """A note saying that no ranking had a set with enough matched genes."""
    with figure_style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN / 2, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "No gene set had enough genes among the tested features\n(see the enrichment log)",
                ha="center", va="center", fontsize=8)  # fmt: skip
    return fig

"""QC figures: which patients have which assay, and one figure per preprocessed assay whose middle
panels come from its kind (:mod:`stratomics.kinds`)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import seaborn as sns

from stratomics.kinds import KINDS
from matplotlib.colors import ListedColormap
import matplotlib.pyplot as plt

from stratomics.plot import (PAGE_WIDTH_IN, PALETTE, PRESENT_ABSENT, SMALLEST_FONT, figure_style, histogram,
                             panel_letters)


def assay_coverage(coverage: pd.DataFrame, assays: list[str], batch: str | None = None):
    """Which patient has which assay: a presence matrix (patients sorted by batch) and counts.

    Parameters
    ----------
    coverage
        The per-patient coverage table (:func:`stratomics.cohort.assay_coverage`).
    assays
        Assay columns to show.
    batch
        Batch column to group patients by.

    Returns
    -------
    The figure.
    """
    order = [batch, *assays] if batch else assays
    table = coverage.sort_values(order, ascending=[True] + [False] * len(assays) if batch else False)
    with figure_style():
        fig, (ax_matrix, ax_counts) = plt.subplots(
            1, 2, figsize=(PAGE_WIDTH_IN, 2.6), gridspec_kw={"width_ratios": [2.2, 1]}
        )
        matrix = table[assays].to_numpy().T
        ax_matrix.pcolormesh(matrix, cmap=ListedColormap(PRESENT_ABSENT),
                             vmin=0, vmax=1, rasterized=True, antialiased=False,
                             linewidth=0)  # fmt: skip
        ax_matrix.invert_yaxis()
        ax_matrix.set_yticks(np.arange(len(assays)) + 0.5, assays)
        ax_matrix.set_xlabel(f"patients (n = {len(table)})" + (f", grouped by {batch}" if batch else ""))
        ax_matrix.set_xticks([])
        ax_matrix.set_title("Assay availability per patient")
        if batch:
            labels = table[batch].to_numpy()
            bounds = np.flatnonzero(labels[1:] != labels[:-1]) + 1
            for bound in bounds:
                ax_matrix.axvline(bound, color="white", lw=1.5)
            starts = np.concatenate([[0], bounds, [len(table)]])
            ax_matrix.set_xticks((starts[:-1] + starts[1:]) / 2, labels[starts[:-1]])
        counts = table.groupby(batch)[assays].sum() if batch else table[assays].sum().to_frame("all").T
        counts.T.plot.barh(ax=ax_counts, stacked=True, color=sns.color_palette(PALETTE, len(counts)),
                           width=0.75)  # fmt: skip
        ax_counts.invert_yaxis()
        ax_counts.set_xlabel("patients with the assay")
        ax_counts.set_title("Patients per assay")
        ax_counts.legend(title=batch, frameon=False, fontsize=SMALLEST_FONT, title_fontsize=SMALLEST_FONT,
                         loc="upper left", bbox_to_anchor=(1, 1))  # fmt: skip
        sns.despine(fig=fig)
        fig.tight_layout()
    return fig



def assay_qc(adata: ad.AnnData, name: str, batch: str | None = None):
    """QC panels of one preprocessed assay: per-feature metrics on the top row (missingness, then the
    kind's), per-sample metrics below (missingness, the kind's, the QC PCA by batch with % variance).

    Parameters
    ----------
    adata
        A preprocessed assay (with ``uns["feature_qc"]``, ``uns["preprocess"]``, ``obsm["X_qc_pca"]``).
    name
        The assay name (for titles).
    batch
        The obs column to colour the PCA by.

    Returns
    -------
    The figure.
    """
    kind = adata.uns["preprocess"]["kind"]
    qc = adata.uns["feature_qc"]
    missing = KINDS[kind].missingness_panels
    rows = [[_missingness_panel] * missing + list(KINDS[kind].qc_panels),
            [_sample_missingness_panel] * missing + [*KINDS[kind].sample_qc_panels, *_pca_panels(adata)]]  # fmt: skip
    n_columns = max(map(len, rows))
    with figure_style():
        fig, axes = plt.subplots(2, n_columns, figsize=(PAGE_WIDTH_IN, 4.6), squeeze=False)
        drawn = []
        for row, row_axes in zip(rows, axes):
            for panel, ax in zip(row, row_axes):
                panel(ax, adata=adata, qc=qc, batch=batch)
                drawn.append(ax)
            for ax in row_axes[len(row):]:
                ax.axis("off")
        removed = int(qc["removed"].sum())
        fig.suptitle(f"{name} ({kind}): {adata.n_obs} samples, {adata.n_vars} features kept, "
                     f"{removed} removed; top: features, bottom: samples", fontsize=8, x=0.01, ha="left")  # fmt: skip
        sns.despine(fig=fig)
        fig.tight_layout(h_pad=1.5, w_pad=1.2)
        panel_letters(drawn)
    return fig


def _missingness_panel(ax, *, qc, **_):
    histogram(ax, qc["missing_fraction"], title="Missing values", xlabel="missing share",
              value_range=(0, 1))  # fmt: skip


def _sample_missingness_panel(ax, *, adata, **_):
    histogram(ax, adata.obs["missing_fraction"], title="Missing values", xlabel="missing share", value_range=(0, 1))


def _pca_panels(adata: ad.AnnData) -> list:
    keys = [key for key in ("X_qc_pca_uncorrected", "X_qc_pca") if key in adata.obsm]
    return [lambda ax, key=key, last=key == keys[-1], **kw: _pca_panel(ax, key=key, legend=last, **kw)
            for key in keys]  # fmt: skip


def _pca_panel(ax, *, adata, batch, key, legend, **_):
    pcs = adata.obsm[key]
    frame = pd.DataFrame({"PC1": pcs[:, 0], "PC2": pcs[:, 1] if pcs.shape[1] > 1 else 0.0})
    colour = batch if batch and batch in adata.obs else None
    if colour:
        frame[colour] = adata.obs[colour].astype(str).to_numpy()
    hue_order = sorted(frame[colour].unique()) if colour else None
    sns.scatterplot(frame, x="PC1", y="PC2", hue=colour, hue_order=hue_order, s=4, linewidth=0,
                    palette=PALETTE if colour else None, ax=ax, legend=legend and colour is not None)  # fmt: skip
    method = {"combat": "ComBat", "centre": "batch centring"}.get(
        adata.uns["preprocess"].get("batch_correction"), ""
    )
    title = f"after {method}" if key == "X_qc_pca" and method else "QC PCA"
    shares = list(adata.uns.get("qc_pca_variance", {}).get(key, [])) + [np.nan, np.nan]
    ax.set(title=title, xticks=[], yticks=[],
           xlabel=f"PC1 ({shares[0]:.1%})", ylabel=f"PC2 ({shares[1]:.1%})")  # fmt: skip
    if ax.get_legend():
        ax.legend(frameon=False, fontsize=SMALLEST_FONT, markerscale=1.5, title=colour, title_fontsize=SMALLEST_FONT,
                  loc="upper left", bbox_to_anchor=(1, 1))  # fmt: skip

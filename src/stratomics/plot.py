"""Figures. Plotting reads what the computing steps stored; it computes no statistics.

One style for every figure (seaborn "ticks", 7 pt text, colour-blind-safe palette), sized for a
journal page (7.2 in wide = two columns), saved as vector PDF and 300-dpi PNG.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import anndata as ad
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

PAGE_WIDTH_IN = 7.2
PALETTE = "colorblind"
PRESENT_ABSENT = ("#d9d9d9", "#0173b2")


@contextmanager
def figure_style():
    """The stratomics figure style (deterministic: no dates in PDF metadata)."""
    with sns.axes_style("ticks"), sns.plotting_context("paper", font_scale=0.85):
        with matplotlib.rc_context({"pdf.fonttype": 42, "svg.hashsalt": "stratomics",
                                    "axes.titlesize": 8, "axes.titleweight": "bold"}):  # fmt: skip
            yield


def save_figure(fig: plt.Figure, path_stem: str | Path) -> list[Path]:
    """Save a figure as PDF and 300-dpi PNG next to each other, then close it.

    Returns
    -------
    The two paths written.
    """
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".pdf"), stem.with_suffix(".png")]
    fig.savefig(paths[0], bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    fig.savefig(paths[1], dpi=300, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return paths


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
        ax_matrix.pcolormesh(matrix, cmap=matplotlib.colors.ListedColormap(PRESENT_ABSENT),
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
        ax_counts.legend(title=batch, frameon=False, fontsize=6, title_fontsize=6,
                         loc="upper left", bbox_to_anchor=(1, 1))  # fmt: skip
        sns.despine(fig=fig)
        fig.tight_layout()
    return fig


def assay_qc(adata: ad.AnnData, name: str, batch: str | None = None):
    """QC panels of one preprocessed assay: missingness, kind-specific metrics, QC PCA by batch.

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
    panels = [_missingness_panel, *KIND_PANELS.get(kind, ()), *_pca_panels(adata)]
    with figure_style():
        fig, axes = plt.subplots(1, len(panels), figsize=(PAGE_WIDTH_IN, 2.2))
        for panel, ax in zip(panels, np.atleast_1d(axes)):
            panel(ax, adata=adata, qc=qc, batch=batch)
        removed = int(qc["removed"].sum())
        fig.suptitle(f"{name} ({kind}): {adata.n_obs} samples, {adata.n_vars} features kept, "
                     f"{removed} removed", fontsize=8, x=0.01, ha="left")  # fmt: skip
        sns.despine(fig=fig)
        fig.tight_layout()
    return fig


def _histogram(ax, values, *, title, xlabel, threshold=None, log=False, value_range=None):
    """A histogram of per-feature or per-sample values with an optional threshold line."""
    values = pd.Series(values, dtype=float).dropna()
    ax.hist(values, bins=40, range=value_range, color=sns.color_palette(PALETTE)[0], log=log)
    if threshold is not None:
        ax.axvline(threshold, color=sns.color_palette(PALETTE)[3], ls="--", lw=1)
    ax.set(title=title, xlabel=xlabel, ylabel="count")


def _missingness_panel(ax, *, qc, **_):
    _histogram(ax, qc["missing_fraction"], title="Missing values",
               xlabel="fraction missing per feature", value_range=(0, 1))  # fmt: skip


def _below_lod_panel(ax, *, adata, qc, **_):
    _histogram(ax, qc["below_lod_fraction"], title="Below LOD", xlabel="fraction below LOD per assay",
               threshold=adata.uns["preprocess"]["max_below_lod_fraction"], value_range=(0, 1))  # fmt: skip


def _censored_panel(ax, *, adata, qc, **_):
    order = qc.sort_values("below_lloq_fraction")
    ax.barh(order["feature"], order["below_lloq_fraction"], color=sns.color_palette(PALETTE)[0],
            label="< LLOQ")  # fmt: skip
    ax.barh(order["feature"], order["above_uloq_fraction"], left=order["below_lloq_fraction"],
            color=sns.color_palette(PALETTE)[1], label="> ULOQ")  # fmt: skip
    ax.axvline(adata.uns["preprocess"]["max_censored_fraction"], color=sns.color_palette(PALETTE)[3],
               ls="--", lw=1)  # fmt: skip
    ax.tick_params(axis="y", labelsize=5)
    ax.set(title="Censored values", xlabel="fraction of samples")
    ax.legend(frameon=False, fontsize=6)


def _composition_panel(ax, *, adata, **_):
    percent = pd.DataFrame(adata.layers["percent_of_parent"], columns=adata.var_names)
    medians = percent.median().sort_values()
    ax.barh([name.split("/", 1)[-1] for name in medians.index], medians.to_numpy(),
            color=sns.color_palette(PALETTE)[0])  # fmt: skip
    ax.tick_params(axis="y", labelsize=4)
    ax.set(title="Populations", xlabel="median % of parent")


def _library_panel(ax, *, adata, batch, **_):
    frame = adata.obs.assign(library_size=adata.obs["library_size"] / 1e6)
    if batch and batch in frame:
        order = sorted(frame[batch].astype(str).unique())
        sns.stripplot(frame.assign(**{batch: frame[batch].astype(str)}), x="library_size", y=batch,
                      hue=batch, order=order, hue_order=order, palette=PALETTE, size=1.5, ax=ax,
                      legend=False)  # fmt: skip
    else:
        ax.hist(frame["library_size"], bins=40, color=sns.color_palette(PALETTE)[0])
    ax.set(title="Library sizes", xlabel="million reads", ylabel=batch or "samples")


def _size_factor_panel(ax, *, adata, **_):
    ax.scatter(adata.obs["library_size"] / 1e6, adata.obs["size_factor"], s=2,
               color=sns.color_palette(PALETTE)[0])  # fmt: skip
    ax.set(title="Size factors", xlabel="million reads", ylabel="median-of-ratios size factor")


def _call_rate_panel(ax, *, adata, qc, **_):
    _histogram(ax, qc["call_rate"], title="SNP call rate", xlabel="call rate", log=True,
               threshold=adata.uns["preprocess"]["min_call_rate"])  # fmt: skip


def _maf_panel(ax, *, adata, qc, **_):
    _histogram(ax, qc["maf"], title="Minor-allele frequency", xlabel="MAF",
               threshold=adata.uns["preprocess"]["min_maf"])  # fmt: skip


def _hwe_panel(ax, *, adata, qc, **_):
    _histogram(ax, -np.log10(qc["hwe_p"].clip(lower=1e-300)), title="Hardy-Weinberg",
               xlabel="-log10 exact p", log=True,
               threshold=-np.log10(adata.uns["preprocess"]["min_hwe_p"]))  # fmt: skip


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
                    palette=PALETTE, ax=ax, legend=legend and colour is not None)  # fmt: skip
    method = {"combat": "ComBat", "centre": "batch centring"}.get(
        adata.uns["preprocess"].get("batch_correction"), ""
    )
    corrected = f"after {method}" if key == "X_qc_pca" and method else ""
    ax.set(title=f"QC PCA {corrected}".strip(), xticks=[], yticks=[])
    if ax.get_legend():
        ax.legend(frameon=False, fontsize=6, markerscale=1.5, title=colour, title_fontsize=6,
                  loc="upper left", bbox_to_anchor=(1, 1))  # fmt: skip


KIND_PANELS = {
    "olink_npx": (_below_lod_panel,),
    "concentration": (_censored_panel,),
    "cell_frequency": (_composition_panel,),
    "rna_counts": (_library_panel, _size_factor_panel),
    "genotypes": (_call_rate_panel, _maf_panel, _hwe_panel),
}

"""The integration figure: what each factor explains, what it goes with and which features make it
(MOFA+'s downstream views for any integration method). Draws the tables of
:mod:`stratomics.factor_annotation` and the integration step; computes nothing."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from stratomics.figures import short_label
from stratomics.plot import PAGE_WIDTH_IN, PALETTE, SMALLEST_FONT, figure_style, panel_letters

#: Factors whose top features are drawn (those that define the subgroups first).
MAX_FEATURE_PANELS = 4


def factor_overview(variance: pd.DataFrame, selection: pd.DataFrame, *, associations: pd.DataFrame,
                    features: pd.DataFrame, top: int = 8):  # fmt: skip
    """Variance explained per assay and factor, factor-characteristic and factor-outcome associations,
    and the top features of the factors that define the subgroups.

    Parameters
    ----------
    variance
        factor, assay, variance_explained (share, 0-1).
    selection
        The factor-selection table (factor "factor_<i>", kept).
    associations
        :func:`stratomics.factor_annotation.factor_associations`.
    features
        :func:`stratomics.factor_annotation.factor_features`.
    top
        Features drawn per factor.

    Returns
    -------
    The figure.
    """
    kept = [int(name.removeprefix("factor_")) for name in selection.loc[selection["kept"].astype(bool), "factor"]]
    shown = (kept or sorted(variance.groupby("factor")["variance_explained"].sum().nlargest(2).index))
    shown = shown[:MAX_FEATURE_PANELS]
    n_variables = max(associations["variable"].nunique(), 1)
    with figure_style():
        fig = plt.figure(figsize=(PAGE_WIDTH_IN, 2.0 + 0.17 * n_variables + 0.14 * top + 0.6))
        grid = fig.add_gridspec(2, MAX_FEATURE_PANELS, height_ratios=[0.6 + 0.17 * n_variables, 0.6 + 0.14 * top],
                                hspace=0.55, wspace=1.6)  # fmt: skip
        top_row = grid[0, :].subgridspec(1, 2, width_ratios=[1, 1.1], wspace=0.95)
        ax_variance, ax_associations = fig.add_subplot(top_row[0]), fig.add_subplot(top_row[1])
        _variance_heatmap(ax_variance, variance, kept)
        _association_heatmap(ax_associations, associations, kept)
        colours = dict(zip(sorted(features["assay"].unique()), sns.color_palette(PALETTE)))
        feature_axes = [fig.add_subplot(grid[1, i]) for i in range(len(shown))]
        for ax, factor in zip(feature_axes, shown):
            _top_features(ax, features[features["factor"] == factor].nsmallest(top, "rank"), factor, colours)
        handles = [plt.Rectangle((0, 0), 1, 1, color=colour) for colour in colours.values()]
        feature_axes[-1].legend(handles, list(colours), title="assay", loc="upper left", bbox_to_anchor=(1.05, 1),
                                frameon=False, fontsize=SMALLEST_FONT, title_fontsize=SMALLEST_FONT)  # fmt: skip
        panel_letters([ax_variance, ax_associations, *feature_axes])
    return fig


def _factor_labels(factors, kept) -> list[str]:
    """F1, F2, ...; a factor that defines the subgroups is starred."""
    return [f"F{factor}*" if factor in kept else f"F{factor}" for factor in factors]


def _variance_heatmap(ax, variance: pd.DataFrame, kept: list[int]) -> None:
    """Per cent of each assay's variance explained by each factor."""
    matrix = variance.pivot_table(index="assay", columns="factor", values="variance_explained") * 100
    sns.heatmap(matrix, ax=ax, cmap="Greys", vmin=0, annot=matrix.shape[1] <= 10, fmt=".0f",
                annot_kws={"fontsize": SMALLEST_FONT}, cbar_kws={"label": "% variance explained", "shrink": 0.8},
                xticklabels=_factor_labels(matrix.columns, kept), yticklabels=True)  # fmt: skip
    ax.set(xlabel="factor (*: defines the subgroups)", ylabel="", title="Variance explained")
    ax.tick_params(axis="y", rotation=0)


def _association_heatmap(ax, associations: pd.DataFrame, kept: list[int]) -> None:
    """Association of each factor with each characteristic and outcome; q < 0.05 starred."""
    order = list(dict.fromkeys(associations.sort_values("kind", kind="stable")["variable"]))
    matrix = associations.pivot_table(index="variable", columns="factor", values="association", dropna=False)
    matrix = matrix.reindex(order)
    significant = associations.pivot_table(index="variable", columns="factor", values="q_value").reindex(order) < 0.05
    stars = np.where(significant.reindex_like(matrix).fillna(False).to_numpy(), "*", "")
    measures = associations.drop_duplicates("variable").set_index("variable")["measure"]
    labels = [f"{variable} ({_MEASURE_SYMBOLS[measures[variable]]})" for variable in matrix.index]
    sns.heatmap(matrix, ax=ax, cmap="RdBu_r", vmin=-1, vmax=1, annot=stars, fmt="", annot_kws={"fontsize": 8},
                xticklabels=_factor_labels(matrix.columns, kept), yticklabels=labels,
                cbar_kws={"label": "association", "shrink": 0.8})  # fmt: skip
    outcomes = (associations.drop_duplicates("variable").set_index("variable")["kind"] == "outcome").reindex(order)
    if outcomes.any() and not outcomes.all():
        ax.axhline(int((~outcomes).sum()), color="black", lw=1)
    ax.set(xlabel="factor (*: defines the subgroups)", ylabel="", title="Characteristics and outcomes (*: q < 0.05)")
    ax.tick_params(axis="y", rotation=0)


#: How each association measure is written after its variable.
_MEASURE_SYMBOLS = {"Spearman rho": "ρ", "eta": "η", "Somers' D": "D"}


def _top_features(ax, rows: pd.DataFrame, factor: int, colours: dict) -> None:
    """The factor's top features by absolute correlation, named, coloured by assay."""
    rows = rows.iloc[::-1]
    ax.barh(np.arange(len(rows)), rows["correlation"], color=[colours[assay] for assay in rows["assay"]])
    ax.set_yticks(np.arange(len(rows)), [short_label(name) for name in rows["feature_name"]], fontsize=SMALLEST_FONT)
    ax.axvline(0, color="0.3", lw=0.6)
    ax.set(xlim=(-1, 1), xlabel="correlation", title=f"Factor {factor}")

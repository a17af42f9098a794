"""Paper figures of the results: subgroups, outcomes, biomarkers and the genotype scan.

Each function draws from the tables the computing steps wrote (or the values they stored in the
MuData) and returns a figure; :func:`stratomics.plot.save_figure` writes it. Style and sizes are
those of :mod:`stratomics.plot`.
"""

from __future__ import annotations

import logging

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter

from stratomics.plot import PAGE_WIDTH_IN, PALETTE, SMALLEST_FONT, figure_style, panel_letters
from stratomics.tables import format_p_value

COLUMN_WIDTH_IN = 3.5


def message_figure(message: str, *, title: str):
    """A figure that says why there is nothing to draw (e.g. one subgroup: nothing to compare)."""
    with figure_style():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 1.2))
        ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=8)
        ax.set(title=title)
        ax.axis("off")
    return fig


def subgroup_palette(subgroups) -> dict:
    """One colour per subgroup (S1, S2, ...), the same in every figure."""
    names = sorted(subgroups, key=lambda name: int(str(name)[1:]))
    return dict(zip(names, sns.color_palette(PALETTE, len(names))))


#: Panel titles of known patient columns (others: the column name in words).
PANEL_TITLES = {"subgroup": "Subgroup", "subgroup_confidence": "Subgroup confidence", "crp": "CRP"}

#: Axis labels of the embedding figure by how the coordinates were made.
AXIS_LABELS = {"umap": ("UMAP 1", "UMAP 2"), "subgroup_space": ("Subgroup space 1", "Subgroup space 2"),
               "subgroup_space_jittered": ("Subgroup space", "Random jitter")}  # fmt: skip


def embedding(coordinates: pd.DataFrame, obs: pd.DataFrame, colour_by: list[str]):
    """The subgroup space in two dimensions (UMAP, or the space itself), one panel per patient characteristic.

    Parameters
    ----------
    coordinates
        patient_id, embedding_1, embedding_2, method (:func:`stratomics.subgroups.umap_table`).
    obs
        Patient table (index patient_id) with ``subgroup``, ``subgroup_confidence`` and ``colour_by``.
    colour_by
        Columns to colour by; continuous ones (and the confidence, on 0-1) get a colour bar, others a
        legend outside the panel.

    Returns
    -------
    The figure.
    """
    frame = coordinates.set_index("patient_id").join(obs[colour_by])
    x_label, y_label = AXIS_LABELS[coordinates["method"].iloc[0]]
    columns = min(len(colour_by), 2)
    rows = int(np.ceil(len(colour_by) / columns))
    with figure_style():
        fig, axes = plt.subplots(rows, columns, figsize=(PAGE_WIDTH_IN, 3.0 * rows), squeeze=False)
        for ax, column in zip(axes.ravel(), colour_by):
            values, title = frame[column], PANEL_TITLES.get(column, column.replace("_", " ").capitalize())
            if _is_continuous(values) or column == "subgroup_confidence":
                limits = (0, 1) if column == "subgroup_confidence" else (None, None)
                points = ax.scatter(frame["embedding_1"], frame["embedding_2"], c=values, s=3, cmap="viridis", vmin=limits[0],
                                    vmax=limits[1], rasterized=True, linewidths=0)  # fmt: skip
                fig.colorbar(points, ax=ax, shrink=0.7, label=title)
            else:
                palette = subgroup_palette(values.dropna().unique()) if column == "subgroup" else PALETTE
                sns.scatterplot(x=frame["embedding_1"], y=frame["embedding_2"], hue=values.astype("string"), s=4,
                                palette=palette, linewidth=0, rasterized=True, ax=ax,
                                hue_order=sorted(values.dropna().astype(str).unique(), key=_natural))  # fmt: skip
                ax.legend(title=title, markerscale=2, frameon=False, fontsize=SMALLEST_FONT, loc="upper left",
                          bbox_to_anchor=(1.0, 1.0))  # outside the data  # fmt: skip
            ax.set(title=title, xlabel=x_label, ylabel=y_label, xticks=[], yticks=[])
        for ax in axes.ravel()[len(colour_by) :]:
            ax.axis("off")
        fig.tight_layout()
        panel_letters([ax for ax in axes.ravel() if ax.axison and ax.get_visible()])
    return fig


def _is_continuous(values: pd.Series) -> bool:
    """Numbers with many levels or with fractions (a colour bar), not codes or categories (a legend)."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    known = values.dropna()
    return known.nunique() > 12 or bool((known % 1 != 0).any())


def _natural(name: str):
    """Sort key that puts S2 before S10."""
    digits = "".join(ch for ch in name if ch.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits and name[-1].isdigit() else 0, name)


def consensus_and_selection(consensus: np.ndarray, labels: pd.Series, confidence: pd.Series,
                            *,
                            selection: pd.DataFrame, cdf: pd.DataFrame):  # fmt: skip
    """Consensus matrix of the chosen subgroups and the model selection, as ConsensusClusterPlus draws it.

    Panels: (a) the consensus matrix ordered by subgroup; (b) the consensus CDF of every k; (c) the
    BIC of a Gaussian mixture with one shared covariance (the rule's choice among the stable k when
    none is crisp); (d) PAC with the crisp threshold of the rule; (e) the p-value of each k against
    the Gaussian null reference (−log10) with its Bonferroni threshold. The relative change in the
    CDF area (ConsensusClusterPlus' delta area) stays in the table.

    Parameters
    ----------
    consensus
        Reference patients x reference patients: share of resamples that put both in one cluster.
    labels, confidence
        Subgroup and confidence of the reference patients (same order).
    selection
        The model-selection table (k, pac, mixture_bic, null_p_value, chosen, rule).
    cdf
        The consensus CDF of every k (k, consensus, cdf; :func:`stratomics.stratify.consensus_cdf_table`).

    Returns
    -------
    The figure.
    """
    from stratomics.stratify import CRISP_PAC, NULL_ALPHA

    selection = selection.assign(null_log_p=-np.log10(selection["null_p_value"].clip(lower=1e-300)))
    tried = selection[selection["k"].isin(cdf["k"])]
    chosen = selection.loc[selection["chosen"]].iloc[0]  # k = 1 (no structure) is chosen but not drawn
    with figure_style():
        fig = plt.figure(figsize=(PAGE_WIDTH_IN, 4.6))
        grid = fig.add_gridspec(2, 3, width_ratios=[1.3, 1, 1], hspace=0.6, wspace=0.6)
        _consensus_heatmap(fig.add_subplot(grid[:, 0]), consensus, labels, confidence)
        ax_cdf = fig.add_subplot(grid[0, 1])
        colours = sns.color_palette("viridis", len(tried))
        for colour, (k, curve) in zip(colours, cdf.groupby("k")):
            ax_cdf.step(curve["consensus"], curve["cdf"], where="post", color=colour, lw=2 if k == chosen["k"] else 0.9,
                        label=f"k = {k}")  # fmt: skip
        ax_cdf.set(xlabel="consensus index", ylabel="CDF", title="Consensus CDF", xlim=(0, 1), ylim=(0, 1))
        # above the matrix (panel a's free space), where no curve runs
        fig.legend(*ax_cdf.get_legend_handles_labels(), title="consensus CDF (b)", fontsize=SMALLEST_FONT,
                   title_fontsize=SMALLEST_FONT, frameon=False, loc="upper left", bbox_to_anchor=(0.04, 0.93),
                   ncol=4, handlelength=1, columnspacing=0.8, labelspacing=0.2)  # fmt: skip
        panels = [(grid[0, 2], "mixture_bic", "Mixture BIC", None),
                  (grid[1, 1], "pac", f"PAC (dashed: {CRISP_PAC:g})", CRISP_PAC),
                  (grid[1, 2], "null_log_p", f"−log10 null p\n(dashed: {NULL_ALPHA:g}/{len(tried)})",
                   -np.log10(NULL_ALPHA / len(tried)))]  # fmt: skip
        axes = [fig.add_subplot(cell) for cell, *_ in panels]
        for ax, (_, column, title, threshold) in zip(axes, panels):
            _selection_curve(ax, tried, chosen, column, title=title, threshold=threshold)
        panel_letters([fig.axes[0], ax_cdf, *axes])
        fig.suptitle(f"Chosen: k = {chosen['k']} ({chosen['rule']})", fontsize=SMALLEST_FONT, y=0.995, wrap=True)
    return fig


def _consensus_heatmap(ax, consensus, labels, confidence):
    """The consensus matrix ordered by subgroup and confidence, subgroups framed, colour bar beside it."""
    order = np.lexsort((-confidence.to_numpy(), labels.map(lambda name: int(name[1:])).to_numpy()))
    palette = subgroup_palette(labels.unique())
    image = ax.imshow(consensus[np.ix_(order, order)], cmap="Blues", vmin=0, vmax=1, interpolation="nearest",
                      rasterized=True)  # fmt: skip
    sorted_labels = labels.to_numpy()[order]
    starts = np.r_[0, np.flatnonzero(sorted_labels[1:] != sorted_labels[:-1]) + 1, len(order)]
    for start, end in zip(starts[:-1], starts[1:]):
        ax.add_patch(plt.Rectangle((start - 0.5, start - 0.5), end - start, end - start, fill=False,
                                   edgecolor=palette[sorted_labels[start]], lw=1.2))  # fmt: skip
        ax.text((start + end) / 2, -len(order) * 0.02, sorted_labels[start], ha="center", va="bottom",
                fontsize=SMALLEST_FONT, color=palette[sorted_labels[start]])  # fmt: skip
    ax.set(xticks=[], yticks=[], xlabel=f"patients (n = {len(order)})")
    colour_bar = ax.figure.colorbar(image, ax=ax, fraction=0.05, pad=0.03, location="right")
    colour_bar.set_label("consensus index", fontsize=SMALLEST_FONT)


def _selection_curve(ax, table, chosen, column, *, title, threshold=None):
    """One model-selection statistic against k, the chosen k circled, an optional threshold (dashed)."""
    ax.plot(table["k"], table[column], "o-", color=sns.color_palette(PALETTE)[0], ms=3, lw=1)
    ax.plot(chosen["k"], chosen[column], "o", color=sns.color_palette(PALETTE)[3], ms=7, mfc="none")
    if threshold is not None:
        ax.axhline(threshold, color="0.4", lw=0.8, ls="--")
    ax.set_title(title, fontsize=SMALLEST_FONT + 1)
    ax.set_xticks(table["k"].unique())
    ax.set_xlabel("number of subgroups k")


#: Time points (days) of the Kaplan-Meier axis and at-risk table when the follow-up is in days.
CLINICAL_DAYS = (0, 90, 180, 365, 730, 1095, 1825)


def km_times(max_time: float, times=None) -> np.ndarray:
    """Time points of the Kaplan-Meier axis: ``times`` (or :data:`CLINICAL_DAYS`) up to ``max_time``,
    or evenly spaced ones when fewer than three of them fall inside the follow-up."""
    chosen = np.array([t for t in (times or CLINICAL_DAYS) if 0 <= t <= max_time], dtype=float)
    if len(chosen) >= 3:
        return chosen
    ticks = MaxNLocator(5).tick_values(0, max_time)
    return ticks[(ticks >= 0) & (ticks <= max_time)]


def at_risk_at(curve: pd.DataFrame, time: float) -> int:
    """Patients still followed at ``time`` (follow-up >= time) in one subgroup's Kaplan-Meier table."""
    later = curve[curve["time"] >= time]
    return int(later["at_risk"].iloc[0]) if len(later) else 0


def kaplan_meier(curves: pd.DataFrame, log_rank_p: float, *, outcome: str, time_unit: str = "days",
                 times=None, confidence_bands: bool = False):  # fmt: skip
    """Kaplan-Meier curves per subgroup with censoring marks, numbers at risk and the log-rank p.

    Parameters
    ----------
    curves
        One outcome's Kaplan-Meier table (:func:`stratomics.outcomes.kaplan_meier_table`).
    log_rank_p
        The log-rank p-value across subgroups.
    outcome, time_unit
        For the labels.
    times
        Time points of the axis and the at-risk table (default :func:`km_times`).
    confidence_bands
        Draw the 95% confidence bands.

    Returns
    -------
    The figure.
    """
    palette = subgroup_palette(curves["subgroup"].unique())
    ticks = km_times(curves["time"].max(), times)
    ordered = sorted(curves.groupby("subgroup"), key=lambda item: _natural(item[0]))
    with figure_style():
        fig, (ax, ax_risk) = plt.subplots(2, 1, figsize=(COLUMN_WIDTH_IN, 3.3), sharex=True,
                                          gridspec_kw={"height_ratios": [4, 1.3], "hspace": 0.25})  # fmt: skip
        for row, (name, curve) in enumerate(ordered):
            ax.step(curve["time"], curve["survival"], where="post", color=palette[name], lw=1.2,
                    label=f"{name}: n = {curve['at_risk'].iloc[0]}, {int(curve['events'].sum())} events")  # fmt: skip
            censored = curve[curve["censored"] > 0]
            ax.plot(censored["time"], censored["survival"], ls="none", marker="|", ms=3, mew=0.6, color=palette[name])
            if confidence_bands:
                ax.fill_between(curve["time"], curve["ci_low"], curve["ci_high"], step="post", color=palette[name],
                                alpha=0.15, lw=0)  # fmt: skip
            for t in ticks:
                ax_risk.text(t, row, f"{at_risk_at(curve, t)}", ha="center", va="center", fontsize=SMALLEST_FONT,
                             color=palette[name])  # fmt: skip
        test = f"log-rank p = {log_rank_p:.2g}" if np.isfinite(log_rank_p) else "one group: no test"
        ax.set(ylabel="proportion without event", ylim=(0, 1.02))
        ax.set_title(f"{outcome.replace('_', ' ')}, {test}", pad=6 + 10 * ((len(ordered) + 1) // 2))
        ax.legend(frameon=False, fontsize=SMALLEST_FONT, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2,
                  borderaxespad=0.2)  # above the data, under the title
        ax_risk.set(ylim=(len(ordered) - 0.5, -0.5), yticks=range(len(ordered)), xticks=ticks,
                    xlabel=f"time ({time_unit})")  # fmt: skip
        ax_risk.set_xticklabels([f"{t:g}" for t in ticks])
        ax_risk.set_yticklabels([name for name, _ in ordered], fontsize=SMALLEST_FONT)
        ax_risk.set_title("number at risk", fontsize=SMALLEST_FONT, loc="left", fontweight="normal")
        sns.despine(ax=ax_risk, left=True)
        ax_risk.tick_params(left=False)
    return fig


#: The subgroup effect of each model, as the forest plot's axis names it.
EFFECT_NAMES = {"cox": "hazard ratio", "logistic": "odds ratio", "linear": "difference in mean",
                "ordinal": "cumulative odds ratio"}


def forest(outcomes: pd.DataFrame):
    """Adjusted hazard and odds ratios (mean differences for continuous outcomes) of each subgroup
    against the reference, one panel per outcome, stacked (ratio panels share one x range).

    Parameters
    ----------
    outcomes
        The subgroup-outcome table: outcome, model, term, estimate, ratio, ci_low, ci_high (on the
        estimate's scale: log ratios for Cox and logistic models), p_value.

    Returns
    -------
    The figure.
    """
    if outcomes.empty:
        return message_figure("No subgroups to compare (one group, or no outcome).",
                              title="Subgroups and outcomes")  # fmt: skip
    names = list(dict.fromkeys(outcomes["outcome"]))
    ratio_rows = outcomes[outcomes["model"] != "linear"]
    ratio_limits = _ratio_limits(ratio_rows) if len(ratio_rows) else None
    with figure_style():
        heights = [outcomes["outcome"].eq(name).sum() + 1 for name in names]  # subgroups and the reference
        fig, axes = plt.subplots(len(names), 1, figsize=(PAGE_WIDTH_IN * 0.75, 0.3 * sum(heights) + 1.0 * len(names)),
                                 squeeze=False, height_ratios=heights)  # fmt: skip
        for ax, name in zip(axes[:, 0], names):
            _forest_panel(ax, outcomes[outcomes["outcome"] == name].reset_index(drop=True), ratio_limits)
        fig.tight_layout()
        if len(names) > 1:
            panel_letters(list(axes[:, 0]))
    return fig


def _ratio_limits(rows: pd.DataFrame) -> tuple[float, float]:
    """One x range for every ratio panel: the widest confidence interval, padded, always holding 1."""
    low, high = np.exp(rows["ci_low"].min()), np.exp(rows["ci_high"].max())
    return min(low, 1.0) / 1.2, max(high, 1.0) * 1.2


def _forest_panel(ax, rows: pd.DataFrame, ratio_limits) -> None:
    """One outcome: the reference subgroup on top, each other subgroup's effect with its CI, and the
    numbers as right-hand labels (outside the data, so they never run into the next panel)."""
    ratio_scale = rows["model"].iloc[0] != "linear"  # a continuous outcome: mean differences
    effect = rows["ratio"] if ratio_scale else rows["estimate"]
    transform = np.exp if ratio_scale else np.asarray
    low, high = transform(rows["ci_low"]), transform(rows["ci_high"])
    position = np.arange(len(rows))[::-1]
    null = 1.0 if ratio_scale else 0.0
    ax.errorbar(effect, position, xerr=[effect - low, high - effect], fmt="s",
                color=sns.color_palette(PALETTE)[0], ms=4, capsize=2, lw=1)  # fmt: skip
    ax.plot([null], [len(rows)], marker="D", color="grey", ms=4)  # the reference subgroup
    ax.axvline(null, color="grey", lw=0.8, ls="--")
    if ratio_scale:
        ax.set_xscale("log")
        ax.set_xlim(*ratio_limits)
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    labels = ["S1 (reference)"] + [term.replace("subgroup[", "").rstrip("]") + " vs S1" for term in rows["term"]]
    ticks = np.r_[len(rows), position]
    ax.set_yticks(ticks, labels)
    numbers = ax.twinx()
    numbers.set_ylim(-0.7, len(rows) + 0.7)
    numbers.set_yticks(ticks, ["reference"] + [f"{value:.2f} ({lo:.2f}-{hi:.2f}), p = {p:.2g}"
                                               for value, lo, hi, p in zip(effect, low, high, rows["p_value"])])  # fmt: skip
    numbers.tick_params(axis="y", length=0, labelsize=SMALLEST_FONT)
    numbers.spines[["top", "right"]].set_visible(False)
    counts = rows[["n", "n_events"]].iloc[0]
    title = rows["outcome"].iloc[0].replace("_", " ")
    if pd.notna(counts["n"]):
        events = f", {int(counts['n_events'])} events" if pd.notna(counts["n_events"]) else ""
        title += f" ({int(counts['n'])} patients{events})"
    effect_name = EFFECT_NAMES[rows["model"].iloc[0]]
    ax.set(xlabel=f"adjusted {effect_name} (95% CI)", title=title, ylim=(-0.7, len(rows) + 0.7))


#: Steps of the label placement (a cap keeps crowded panels fast and the result reproducible).
LABEL_STEPS = 300


def place_labels(ax, points, labels) -> list:
    """Labels at their points (x, y columns; 7 pt), to be moved apart by :func:`spread_labels` once
    the layout is final."""
    return [ax.text(x, y, label, fontsize=SMALLEST_FONT) for (x, y), label in zip(np.asarray(points, float), labels)]


def spread_labels(ax, texts: list, *, around) -> None:
    """Move labels off each other and off the points ``around`` (x, y columns) with adjustText,
    inside the panel, each with a leader line to its point."""
    from adjustText import adjust_text

    logging.getLogger("adjustText").setLevel(logging.ERROR)  # it warns at every step for a label wider than the panel
    if texts:
        around = np.asarray(around, float)
        adjust_text(texts, x=around[:, 0], y=around[:, 1], ax=ax, ensure_inside_axes=True,
                    min_arrow_len=2, iter_lim=LABEL_STEPS, arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.3"})  # fmt: skip


def named_labels(rows: pd.DataFrame, length: int = 14) -> list[str]:
    """Short figure labels of features: the human name where the table has one, else the ID."""
    names = rows["feature_name"].fillna(rows["feature"]) if "feature_name" in rows else rows["feature"]
    return [short_label(name, length) for name in names]


def short_label(name, length: int = 20) -> str:
    """A feature name short enough for a figure: the last two levels of a gating path, ``length``
    characters at most (a longer name ends in an ellipsis)."""
    label = "/".join(str(name).split("/")[-2:])
    return label if len(label) <= length else label[: length - 1] + "…"


def fdr_line(rows: pd.DataFrame, q_threshold: float) -> float | None:
    """-log10 of the largest p-value whose q-value is under ``q_threshold`` (None when none is)."""
    passing = rows.loc[rows["q_value"] < q_threshold, "p_value"]
    return float(-np.log10(max(passing.max(), 1e-300))) if len(passing) else None


#: Volcano panels per row (assays beyond wrap onto further rows).
VOLCANO_COLUMNS = 4


def volcano(results: pd.DataFrame, *, outcome: str, q_threshold: float = 0.05, label_top: int = 3):
    """Estimate against -log10 p, one panel per assay; features under the q threshold coloured, the
    dashed line at the largest p-value that passes it in the FDR family (all assays, or each assay as the
    ``adjustment`` column says), the top features labelled with leader lines.

    Parameters
    ----------
    results
        Association table (assay, feature, outcome_or_contrast, estimate, p_value, q_value, effect).
    outcome
        The outcome or contrast to show.
    q_threshold
        FDR for colouring.
    label_top
        Features labelled per assay (smallest p).

    Returns
    -------
    The figure.
    """
    rows = results[(results["outcome_or_contrast"] == outcome) & results["p_value"].notna()]
    assays = list(dict.fromkeys(rows["assay"]))
    colours, labelled = sns.color_palette(PALETTE), []
    with figure_style():
        columns = min(len(assays), VOLCANO_COLUMNS)  # more assays wrap onto further rows
        rows_of_panels = -(-len(assays) // columns) if assays else 1
        fig, axes = plt.subplots(rows_of_panels, max(columns, 1), figsize=(PAGE_WIDTH_IN, 0.4 + 2.4 * rows_of_panels),
                                 squeeze=False)  # fmt: skip
        for ax in axes.flat[len(assays):]:
            ax.set_visible(False)
        for ax, assay in zip(axes.flat, assays):
            part = rows[rows["assay"] == assay]
            significant = part["q_value"] < q_threshold
            log_p = -np.log10(part["p_value"].clip(lower=1e-300))
            ax.scatter(part.loc[~significant, "estimate"], log_p[~significant], s=2, color="#bdbdbd",
                       rasterized=True, linewidths=0, label=f"q ≥ {q_threshold:g}")  # fmt: skip
            ax.scatter(part.loc[significant, "estimate"], log_p[significant], s=4, color=colours[3],
                       rasterized=True, linewidths=0, label=f"q < {q_threshold:g}")  # fmt: skip
            per_assay = "assay" in str(part["adjustment"].iloc[0]) if "adjustment" in part else True
            line = fdr_line(part if per_assay else rows, q_threshold)  # the threshold of the FDR family
            if line is not None:
                ax.axhline(line, color=colours[3], lw=0.6, ls="--")
            top = part.nsmallest(label_top, "p_value")
            top_points = np.c_[top["estimate"], -np.log10(top["p_value"].clip(lower=1e-300))]
            labelled.append((ax, place_labels(ax, top_points, named_labels(top)), np.c_[part["estimate"], log_p]))
            reach = 1.15 * np.abs(part["estimate"]).max() if len(part) else 1.0
            ax.set_xlim(-reach, reach)  # symmetric: up and down effects at the same scale
            ax.xaxis.set_major_locator(MaxNLocator(2 if columns > 2 else 4, symmetric=True))
            ax.set_ylim(-0.05 * log_p.max(), 1.3 * log_p.max() if len(part) else 1)  # room above for the labels
            ax.set_title(assay, pad=12)  # the count goes beneath the title, in regular weight to fit the panel
            ax.text(0.5, 1.015, f"{significant.sum()} of {len(part)} at q < {q_threshold:g}", transform=ax.transAxes,
                    ha="center", va="bottom", fontsize=SMALLEST_FONT)  # fmt: skip
        for row in axes:
            row[0].set_ylabel(r"$-\log_{10}$ p")
        if assays:
            fig.supxlabel(rows["effect"].iloc[0], fontsize=7)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, frameon=False, fontsize=SMALLEST_FONT, loc="upper right", ncol=2, markerscale=2)
        fig.suptitle(outcome.replace("_", " "), fontsize=8, fontweight="bold", x=0.02, ha="left")
        fig.tight_layout()
        for ax, texts, around in labelled:
            spread_labels(ax, texts, around=around)
        panel_letters([ax for ax in axes.ravel() if ax.axison and ax.get_visible()])
    return fig


#: Strongest SNPs whose points the Manhattan labels avoid (the others lie below every label).
MANHATTAN_AVOIDED = 2000


def manhattan_qq(scan: pd.DataFrame, inflation: float, *, outcome: str, genome_wide: float = 5e-8,
                 q_threshold: float = 0.05, label_top: int = 3):  # fmt: skip
    """Manhattan plot and QQ plot (with the genomic inflation factor) of a genotype scan.

    Parameters
    ----------
    scan
        Genotype results for one outcome: chrom, pos, p_value, and q_value and feature when present.
    inflation
        Genomic inflation factor lambda of the scan.
    outcome
        For the title.
    genome_wide, q_threshold
        The two significance lines: genome-wide p and the FDR threshold of the q-values.
    label_top
        SNPs labelled (smallest p).

    Returns
    -------
    The figure; the QQ plot has the 95% band of the expected order statistics (Beta distribution).
    """
    scan = scan[scan["p_value"].notna()].copy()
    scan["chrom_order"] = pd.to_numeric(scan["chrom"], errors="coerce").fillna(100)
    scan = scan.sort_values(["chrom_order", "chrom", "pos"])
    spans = scan.groupby("chrom", sort=False)["pos"].max()
    offsets = spans.cumsum().shift(fill_value=0)
    x = scan["pos"] + scan["chrom"].map(offsets)
    log_p = -np.log10(scan["p_value"].clip(lower=1e-300))
    colours = sns.color_palette(PALETTE)
    with figure_style():
        fig, (ax, ax_qq) = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 2.6), gridspec_kw={"width_ratios": [3, 1]})
        chrom_index = scan["chrom"].map({c: i for i, c in enumerate(spans.index)})
        ax.scatter(x, log_p, c=[colours[0] if i % 2 == 0 else colours[7] for i in chrom_index], s=2,
                   rasterized=True, linewidths=0)  # fmt: skip
        ax.axhline(-np.log10(genome_wide), color=colours[3], lw=0.8, ls="--", label=f"genome-wide p = {genome_wide:g}")
        line = fdr_line(scan, q_threshold) if "q_value" in scan else None
        if line is not None:
            ax.axhline(line, color=colours[1], lw=0.8, ls=":", label=f"FDR q < {q_threshold:g} ({(scan['q_value'] < q_threshold).sum()} SNPs)")
        top = log_p.nlargest(label_top).index if "feature" in scan else []
        texts = place_labels(ax, np.c_[x[top], log_p[top]], scan.loc[top, "feature"].astype(str))
        ax.legend(frameon=False, fontsize=SMALLEST_FONT, loc="upper right", ncol=2)  # in the room left above the lines
        ax.set_ylim(0, max(log_p.max(), -np.log10(genome_wide)) * 1.3)
        centres = offsets + spans / 2
        shown = [name if i % max(1, len(spans) // 12) == 0 else "" for i, name in enumerate(spans.index)]
        ax.set_xticks(centres, shown, fontsize=SMALLEST_FONT)
        ax.set(xlabel="chromosome", ylabel=r"$-\log_{10}$ p")
        ax.set_title(f"{outcome.replace('_', ' ')} ({len(scan)} SNPs)", loc="left")
        _qq_panel(ax_qq, log_p.to_numpy(), colours[0])
        ax_qq.set_title(f"QQ, λ = {inflation:.3f}")
        fig.tight_layout()
        nearby = log_p.nlargest(MANHATTAN_AVOIDED).index  # the points labels could cover
        spread_labels(ax, texts, around=np.c_[x[nearby], log_p[nearby]])
        panel_letters([ax, ax_qq])
    return fig


def _qq_panel(ax, log_p: np.ndarray, colour) -> None:
    """Observed against expected -log10 p, with the 95% band of uniform order statistics."""
    from scipy import stats

    n = len(log_p)
    rank = np.arange(1, n + 1)
    expected = -np.log10((rank - 0.5) / n)
    band_low, band_high = (-np.log10(stats.beta.ppf(q, rank, n - rank + 1)) for q in (0.975, 0.025))
    ax.fill_between(expected, band_low, band_high, color="0.85", lw=0, label="95% band")
    ax.scatter(expected, np.sort(log_p)[::-1], s=2, color=colour, rasterized=True, linewidths=0)
    limit = max(expected.max(), log_p.max()) * 1.05
    ax.plot([0, limit], [0, limit], color="grey", lw=0.8, ls="--")
    ax.set(xlabel=r"expected $-\log_{10}$ p", ylabel=r"observed $-\log_{10}$ p")


def named_features(rows: pd.DataFrame) -> pd.Series:
    """Each result row's feature as "name (ID)", or the ID alone where it is the name."""
    ids = rows["feature"].astype(str)
    names = rows["feature_name"].astype(str) if "feature_name" in rows else ids
    return names.where(names == ids, names + " (" + ids + ")")


def marker_heatmap(markers: pd.DataFrame, means: pd.DataFrame, *, group: str = "subgroup", top: int = 5):
    """The top markers of each subgroup (one-vs-rest) across assays: their scaled mean in every subgroup.

    Parameters
    ----------
    markers
        Marker table with contrasts named "<group>: <level> vs rest".
    means
        Scaled means per feature and level (:func:`stratomics.subgroups.scaled_group_means`).
    group
        The grouping whose contrasts to show.
    top
        Features per subgroup (smallest p; each feature once).

    Returns
    -------
    The figure: names on the rows, an assay bar beside them, colours clipped (arrows on the colour bar)
    where a few means go beyond the 95th percentile.
    """
    contrasts = markers["outcome_or_contrast"].astype(str)
    rows = markers[contrasts.str.startswith(f"{group}: ") & markers["p_value"].notna()].copy()
    if rows.empty:
        return message_figure(f"No {group} markers: fewer than two groups were compared.", title="Markers")
    rows["level"] = rows["outcome_or_contrast"].str.removeprefix(f"{group}: ").str.removesuffix(" vs rest")
    levels = sorted(rows["level"].unique(), key=_natural)
    chosen = []
    for level in levels:
        best = rows[(rows["level"] == level) & ~rows.set_index(["assay", "feature"]).index.isin(chosen)]
        chosen += list(best.nsmallest(top, "p_value")[["assay", "feature"]].itertuples(index=False, name=None))
    matrix = means.pivot_table(index=["assay", "feature"], columns="level", values="scaled_mean")
    matrix = matrix.reindex(index=pd.MultiIndex.from_tuples(chosen), columns=levels)
    names = rows.drop_duplicates(["assay", "feature"]).set_index(["assay", "feature"])["feature_name"]
    assays = [assay for assay, _ in chosen]
    colours = dict(zip(sorted(set(assays)), sns.color_palette(PALETTE)))
    limit = float(np.nanpercentile(np.abs(matrix.to_numpy()), 95))
    clipped = np.nanmax(np.abs(matrix.to_numpy())) > limit
    with figure_style():
        fig = plt.figure(figsize=(COLUMN_WIDTH_IN, 0.13 * len(chosen) + 1.2))
        grid = fig.add_gridspec(1, 2, width_ratios=[0.06, 1], wspace=0.03)
        ax_assay, ax = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
        ax_assay.imshow(np.array([colours[assay] for assay in assays])[:, None, :], aspect="auto",
                        interpolation="nearest")  # fmt: skip
        ax_assay.set(xticks=[], yticks=np.arange(len(chosen)))
        ax_assay.set_yticklabels([short_label(names.get(key, key[1])) for key in chosen], fontsize=SMALLEST_FONT)
        sns.heatmap(matrix.to_numpy(), cmap="RdBu_r", center=0, vmin=-limit, vmax=limit, ax=ax, yticklabels=False,
                    xticklabels=levels, cbar_kws={"label": "mean (SD units)", "shrink": 0.5,
                                                  "extend": "both" if clipped else "neither"})  # fmt: skip
        handles = [plt.Rectangle((0, 0), 1, 1, color=colour) for colour in colours.values()]
        ax.legend(handles, list(colours), title="assay", loc="upper left", bbox_to_anchor=(1.35, 1), frameon=False,
                  fontsize=SMALLEST_FONT, title_fontsize=SMALLEST_FONT)  # fmt: skip
        ax.set(xlabel="subgroup", ylabel="", title=f"Top {top} markers per subgroup")
    return fig


def table_figure(table: pd.DataFrame, *, title: str = "Table 1"):
    """A figure-ready rendering of a table (e.g. Table 1 of clinical characteristics by subgroup).

    Returns
    -------
    The figure.
    """
    shown = table.copy()
    if "characteristic" in shown:
        shown["characteristic"] = shown["characteristic"].where(shown["characteristic"] != shown["characteristic"].shift())
    for column in shown.columns[shown.columns.str.endswith("p_value")]:
        shown[column] = shown[column].map(format_p_value)
    shown = shown.fillna("").astype(str)
    with figure_style():
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 0.2 * len(shown) + 0.6))
        ax.axis("off")
        rendered = ax.table(cellText=shown.to_numpy(), colLabels=list(shown.columns), loc="upper center",
                            cellLoc="left", colLoc="left", edges="horizontal")  # fmt: skip
        rendered.auto_set_font_size(False)
        rendered.set_fontsize(7)
        rendered.auto_set_column_width(range(shown.shape[1]))
        ax.set_title(title, loc="left")
    return fig


def meta_forest(meta: pd.DataFrame, site_estimates: pd.DataFrame, *, top: int = 6):
    """Forest plots of the top meta-analysed biomarkers: one row per site, then fixed and random effects.

    Parameters
    ----------
    meta
        Per-feature meta-analysis (:func:`stratomics.meta.meta_analyse`).
    site_estimates
        The site rows (site, assay, feature, outcome_or_contrast, estimate, std_error).
    top
        Number of features (smallest random-effects p).

    Returns
    -------
    The figure.
    """
    keys = ["assay", "feature", "outcome_or_contrast"]
    chosen = meta.nsmallest(top, "p_value_random")
    colours = sns.color_palette(PALETTE)
    columns = 3
    rows = int(np.ceil(len(chosen) / columns))
    with figure_style():
        fig, axes = plt.subplots(rows, columns, figsize=(PAGE_WIDTH_IN, 1.9 * rows), squeeze=False)
        for ax, (_, best) in zip(axes.ravel(), chosen.iterrows()):
            sites = site_estimates.merge(best[keys].to_frame().T, on=keys).dropna(subset=["estimate"])
            labels = [*sites["site"], "fixed", "random"]
            estimates = [*sites["estimate"], best["estimate_fixed"], best["estimate_random"]]
            errors = [*(1.96 * sites["std_error"]), 1.96 * best["std_error_fixed"], 1.96 * best["std_error_random"]]
            position = np.arange(len(labels))[::-1]
            for y, estimate, error, label in zip(position, estimates, errors, labels):
                pooled = label in ("fixed", "random")
                ax.errorbar(estimate, y, xerr=error, fmt="D" if pooled else "s", ms=4 if pooled else 3, lw=1,
                            color=colours[3] if pooled else colours[0], capsize=1.5)  # fmt: skip
            ax.axvline(0, color="grey", lw=0.8, ls="--")
            ax.set_yticks(position, labels, fontsize=SMALLEST_FONT)
            ax.set_title(f"{best['assay']}: {str(best['feature']).split('/')[-1][:18]}\n{best['outcome_or_contrast']}, "
                         f"I² = {best['i2']:.2f}", fontsize=SMALLEST_FONT)  # fmt: skip
            ax.set_xlabel("estimate per SD (95% CI)", fontsize=SMALLEST_FONT)
        for ax in axes.ravel()[len(chosen) :]:
            ax.axis("off")
        fig.tight_layout()
    return fig


def meta_heterogeneity(meta: pd.DataFrame):
    """Heterogeneity overview: I² of every feature, and random against fixed effects, per outcome.

    Returns
    -------
    The figure.
    """
    outcomes = list(dict.fromkeys(meta["outcome_or_contrast"]))
    colours = sns.color_palette(PALETTE)
    with figure_style():
        fig, axes = plt.subplots(2, len(outcomes), figsize=(PAGE_WIDTH_IN, 4.2), squeeze=False)
        for column, name in enumerate(outcomes):
            rows = meta[meta["outcome_or_contrast"] == name]
            axes[0][column].hist(rows["i2"], bins=20, range=(0, 1), color=colours[0])
            axes[0][column].set(title=f"{name}: {len(rows)} features", xlabel="I²", ylabel="features")
            ax = axes[1][column]
            ax.scatter(rows["estimate_fixed"], rows["estimate_random"], c=rows["i2"], cmap="viridis", vmin=0, vmax=1,
                       s=3, rasterized=True, linewidths=0)  # fmt: skip
            limit = np.nanmax(np.abs(rows[["estimate_fixed", "estimate_random"]].to_numpy())) * 1.05
            ax.plot([-limit, limit], [-limit, limit], color="grey", lw=0.8, ls="--")
            ax.set(xlabel="fixed-effect estimate", ylabel="random-effects estimate")
        fig.tight_layout()
    return fig


def prediction_performance(performance: pd.DataFrame):
    """Gain over the clinical model (top row, the headline) and AUC or C-index (bottom row) of each
    predictor set and model, one column per outcome.

    Parameters
    ----------
    performance
        The prediction performance table (outcome, model, feature_set, validation, metric, estimate,
        ci_low, ci_high).

    Returns
    -------
    The figure: nested cross-validation (filled) and all sites held out in turn, pooled (open), with
    95% CI; grey ticks: each held-out site on its own.
    """
    is_gain = performance["metric"].str.endswith("_gain_over_clinical")
    rows = performance[performance["metric"].isin(["auc", "c_index"]) | is_gain]
    outcomes, models = list(dict.fromkeys(rows["outcome"])), list(dict.fromkeys(rows["model"]))
    sets = list(dict.fromkeys(rows.loc[~is_gain, "feature_set"]))
    added = [s for s in sets if s != "clinical"]
    colours = dict(zip(models, sns.color_palette(PALETTE, len(models))))
    with figure_style():
        fig, axes = plt.subplots(2, len(outcomes), squeeze=False, sharey="row",
                                 figsize=(PAGE_WIDTH_IN, 0.45 * (len(sets) + len(added)) * len(models) + 2.0),
                                 gridspec_kw={"height_ratios": [max(len(added), 1), len(sets)], "hspace": 0.45})  # fmt: skip
        for column, outcome in enumerate(outcomes):
            part = rows[rows["outcome"] == outcome]
            metric = "AUC" if (part["metric"] == "auc").any() else "C-index"
            gain_ax, metric_ax = axes[0, column], axes[1, column]
            _performance_intervals(gain_ax, part[is_gain.loc[part.index]], added, models, colours)
            gain_ax.axvline(0, color="grey", lw=0.8, ls="--")
            gain_ax.set(xlabel=f"{metric} gain over clinical (95% CI)", title=outcome.replace("_", " "))
            _performance_intervals(metric_ax, part[~is_gain.loc[part.index]], sets, models, colours)
            if metric_ax.get_xlim()[0] < 0.5 < metric_ax.get_xlim()[1]:
                metric_ax.axvline(0.5, color="grey", lw=0.8, ls="--")
            metric_ax.set(xlabel=f"{metric} (95% CI)")
        for ax, shown in ((axes[0, 0], added), (axes[1, 0], sets)):
            ticks = np.arange(len(shown)) * len(models) - (len(models) - 1) / 2
            ax.set_yticks(ticks, [s.replace("_", " + ") for s in reversed(shown)])
        handles, labels = axes[1, 0].get_legend_handles_labels()
        fig.legend(handles, labels, frameon=False, fontsize=SMALLEST_FONT, loc="lower center", ncol=3)
        fig.subplots_adjust(left=0.22, right=0.97, top=0.95, bottom=0.11, wspace=0.12)
        panel_letters(list(axes.ravel()))
    return fig


def _performance_intervals(ax, rows: pd.DataFrame, sets: list[str], models: list[str], colours: dict) -> None:
    """Nested-CV (filled) and pooled leave-one-site-out (open) estimates with CIs, per set and model;
    each held-out site's own estimate as a grey tick on the leave-one-site-out line."""

    def row_of(feature_sets: pd.Series) -> np.ndarray:
        return np.array([len(sets) - 1 - sets.index(s) for s in feature_sets]) * len(models)

    for m, model in enumerate(models):
        for validation, offset, face in (("nested_cv", 0.12, None), ("loso_pooled", -0.12, "white")):
            part = rows[(rows["model"] == model) & (rows["validation"] == validation) & rows["feature_set"].isin(sets)]
            position = row_of(part["feature_set"]) - m + offset
            ax.errorbar(part["estimate"], position, xerr=[part["estimate"] - part["ci_low"], part["ci_high"] - part["estimate"]],
                        fmt="o", ms=4, color=colours[model], mfc=face or colours[model], capsize=2, lw=1,
                        label=f"{model.replace('_', ' ')}, {'nested CV' if face is None else 'leave one site out'}")  # fmt: skip
        sites = rows[(rows["model"] == model) & rows["validation"].str.startswith("loso_")
                     & (rows["validation"] != "loso_pooled") & rows["feature_set"].isin(sets)]  # fmt: skip
        ax.plot(sites["estimate"], row_of(sites["feature_set"]) - m - 0.12, "|", color="grey", ms=6, mew=0.8,
                label="each held-out site" if m == 0 else None)  # fmt: skip


def prediction_curves(curves: pd.DataFrame, *, model: str = "elastic_net", horizon: float | None = None):
    """ROC, calibration and decision curves of each predictor set, one row per binary outcome; then
    the calibration at the horizon of each survival outcome, three to a row.

    Parameters
    ----------
    curves
        The curves table (outcome, model, feature_set, curve, x, y, ci_low, ci_high, n, group) of the
        out-of-fold risks of the nested cross-validation, averaged over repeats.
    model
        The model whose curves are drawn.
    horizon
        The horizon (days) of the survival calibration, for its title.

    Returns
    -------
    The figure; under each calibration curve, the distribution of predicted risk of the last
    predictor set (binary: patients with the event above the baseline, without it below).
    """
    part = curves[curves["model"].isin([model, "reference"])]
    binary = list(dict.fromkeys(part.loc[part["curve"] == "roc", "outcome"]))
    survival = list(dict.fromkeys(part.loc[part["curve"] == "calibration_horizon", "outcome"]))
    survival_rows = -(-len(survival) // 3)
    sets = [s for s in dict.fromkeys(part["feature_set"]) if s != "treat_all"]
    colours = dict(zip(sets, sns.color_palette(PALETTE, len(sets))))
    with figure_style():
        fig, axes = plt.subplots(max(len(binary) + survival_rows, 1), 3, squeeze=False,
                                 figsize=(PAGE_WIDTH_IN, 2.5 * max(len(binary) + survival_rows, 1)))  # fmt: skip
        for row, outcome in zip(axes, binary):
            _binary_curves(row, part[part["outcome"] == outcome], outcome, colours)
        survival_axes = list(axes[len(binary):].ravel())
        for ax, outcome in zip(survival_axes, survival):
            _horizon_calibration_panel(ax, part[part["outcome"] == outcome], outcome, colours, horizon)
        for ax in survival_axes[len(survival):]:
            ax.axis("off")
        if not binary and not survival:
            axes[0, 1].text(0.5, 0.5, "no outcome to predict", ha="center", va="center")
        elif not binary:
            survival_axes[0].legend(frameon=False, fontsize=SMALLEST_FONT, loc="upper left")
        fig.tight_layout()
        panel_letters([ax for ax in axes.ravel() if ax.axison])
    return fig


def _binary_curves(row, part: pd.DataFrame, outcome: str, colours: dict) -> None:
    """ROC, calibration (tenths of risk, smoother with 95% band, risk histogram) and decision curves."""
    for feature_set, colour in colours.items():
        lines, label = part[part["feature_set"] == feature_set], feature_set.replace("_", " + ")
        roc, bins = lines[lines["curve"] == "roc"], lines[lines["curve"] == "calibration"]
        smooth, decision = lines[lines["curve"] == "calibration_smooth"], lines[lines["curve"] == "decision"]
        row[0].plot(roc["x"], roc["y"], color=colour, lw=1, label=label)
        row[1].fill_between(smooth["x"], smooth["ci_low"], smooth["ci_high"], color=colour, alpha=0.15, lw=0)
        row[1].plot(smooth["x"], smooth["y"], color=colour, lw=1)
        row[1].plot(bins["x"], bins["y"], "o", color=colour, ms=2.5)
        row[2].plot(decision["x"], decision["y"], color=colour, lw=1)
    _risk_histogram(row[1], part, colours)
    treat_all = part[part["feature_set"] == "treat_all"]
    row[2].plot(treat_all["x"], treat_all["y"], color="grey", lw=0.8, ls=":", label="treat all")
    row[2].axhline(0, color="black", lw=0.8, label="treat none")
    for ax in row[:2]:
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    prevalence = treat_all["y"].max() if len(treat_all) else 0.5
    row[0].set(xlabel="1 - specificity", ylabel="sensitivity", title=f"{outcome.replace('_', ' ')}: ROC")
    row[1].set(xlabel="predicted risk", ylabel="observed frequency", title="calibration", xlim=(0, 1))
    row[2].set(xlabel="threshold probability", ylabel="net benefit", title="decision curve",
               ylim=(-0.05, max(prevalence, 0.1) + 0.05))  # fmt: skip
    row[0].legend(frameon=False, fontsize=SMALLEST_FONT, loc="lower right")
    row[2].legend(frameon=False, fontsize=SMALLEST_FONT, loc="upper right")  # sets: see the ROC legend


def _horizon_calibration_panel(ax, part: pd.DataFrame, outcome: str, colours: dict, horizon) -> None:
    """Predicted probability of the event by the horizon against the Kaplan-Meier observed one (95% CI)."""
    for offset, (feature_set, colour) in zip(np.linspace(-0.006, 0.006, len(colours)), colours.items()):
        points = part[(part["feature_set"] == feature_set) & (part["curve"] == "calibration_horizon")]
        ax.errorbar(points["x"] + offset, points["y"], yerr=[points["y"] - points["ci_low"], points["ci_high"] - points["y"]],
                    fmt="o-", color=colour, ms=2.5, lw=1, capsize=1.5, label=feature_set.replace("_", " + "))  # fmt: skip
    _risk_histogram(ax, part, colours)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    when = f"{horizon:g} days" if horizon is not None else "the horizon"
    ax.set(xlabel=f"predicted risk by {when}", ylabel="observed (Kaplan-Meier)", xlim=(0, 1),
           title=f"{outcome.replace('_', ' ')}: calibration at {when}")  # fmt: skip


def _risk_histogram(ax, part: pd.DataFrame, colours: dict) -> None:
    """Spike histogram of the last predictor set's predicted risk below y = 0 (first group above its
    baseline, a second below)."""
    last, colour = list(colours.items())[-1]
    histogram = part[(part["feature_set"] == last) & (part["curve"] == "risk_histogram")]
    baseline, height = -0.12, 0.09
    scale = height / max(histogram["y"].max(), 1e-12)
    for direction, (_, group) in zip((1, -1), histogram.groupby("group", sort=False)):
        ax.bar(group["x"], direction * group["y"] * scale, bottom=baseline, width=0.045, color=colour, lw=0)
    ax.axhline(baseline, color="grey", lw=0.5)
    ax.set_ylim(-0.23, 1.02)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1])


def trajectories(table: pd.DataFrame, *, group_by: str, visits: list[str], top: int = 6):
    """Change from baseline (95% CI) per visit and group for the features whose groups differ most.

    Parameters
    ----------
    table
        The longitudinal table (:func:`stratomics.longitudinal.longitudinal_tests`).
    group_by
        The grouping to draw (e.g. subgroup or failure_12m).
    visits
        The visits in time order, baseline first.
    top
        How many features (smallest interaction p) to draw, one panel each.

    Returns
    -------
    The figure (a message figure when nothing was tested).
    """
    rows = table[table["group_by"] == group_by]
    title = f"Change from baseline by {group_by.replace('_', ' ')}"
    if rows.empty:
        return message_figure("No follow-up visit with at least two groups of 3 or more patients", title=title)
    order = rows.drop_duplicates(["assay", "feature"]).nsmallest(top, "interaction_p")
    groups = sorted(rows["group"].unique(), key=_natural)
    colours = dict(zip(groups, sns.color_palette(PALETTE, len(groups))))
    shown = [v for v in visits if v == visits[0] or v in set(rows["visit"])]
    n_columns = min(3, len(order))
    with figure_style():
        fig, axes = plt.subplots(int(np.ceil(len(order) / n_columns)), n_columns, squeeze=False, sharex=True,
                                 figsize=(PAGE_WIDTH_IN, 2.0 * np.ceil(len(order) / n_columns)))  # fmt: skip
        for ax, (_, feature) in zip(axes.ravel(), order.iterrows()):
            _trajectory_panel(ax, rows[(rows["assay"] == feature["assay"]) & (rows["feature"] == feature["feature"])],
                              shown, colours)  # fmt: skip
            name = named_features(feature.to_frame().T).iloc[0] + (f", {feature['assay']}" if feature["assay"] else "")
            q = format_p_value(feature["interaction_q"])
            ax.set_title(f"{name}\ngroups differ: q {q if q.startswith('<') else '= ' + q}")
            unit = feature.get("unit", "")
            ax.set_ylabel(f"Change from baseline{f' ({unit})' if isinstance(unit, str) and unit else ''}")
        for ax in axes.ravel()[len(order):]:
            ax.axis("off")
        handles = [plt.Line2D([], [], color=colours[g], marker="o", label=g) for g in groups]
        fig.tight_layout(rect=(0, 0, 0.84, 1))
        fig.legend(handles=handles, title=title.replace(" by ", "\nby "), loc="upper left", bbox_to_anchor=(0.85, 0.95),
                   frameon=False)  # fmt: skip
    return fig


def _trajectory_panel(ax, rows: pd.DataFrame, visits: list[str], colours: dict) -> None:
    """One feature: a line per group from 0 at baseline through each visit's change, with 95% CI bars."""
    offsets = np.linspace(-0.08, 0.08, len(colours))
    for offset, (group, colour) in zip(offsets, colours.items()):
        of_group = rows[rows["group"] == group].set_index("visit").reindex(visits[1:])
        x = np.arange(len(visits)) + offset
        change = np.concatenate([[0.0], of_group["change"].to_numpy(float)])
        low = np.concatenate([[0.0], of_group["ci_low"].to_numpy(float)])
        high = np.concatenate([[0.0], of_group["ci_high"].to_numpy(float)])
        ax.errorbar(x, change, yerr=[change - low, high - change], color=colour, marker="o", markersize=3,
                    capsize=2, linewidth=1)  # fmt: skip
    ax.axhline(0, color="0.6", linewidth=0.6, linestyle="--")
    ax.set_xticks(range(len(visits)), visits)


def treatment_forest(effects: pd.DataFrame):
    """Effect of each treatment against the reference within each subgroup (ratio, 95% CI), weighted
    (filled) and adjusted (open), one panel per outcome and treatment, with the interaction p.

    Parameters
    ----------
    effects
        The treatment-heterogeneity table (:func:`stratomics.treatment_effects.treatment_heterogeneity`).

    Returns
    -------
    The figure (a message figure when no effect could be estimated).
    """
    title = "Treatment effect by subgroup"
    estimable = effects[effects["estimate"].notna()]
    if estimable.empty:
        return message_figure("No treatment comparison could be estimated in any subgroup (see the notes in "
                              "treatment_heterogeneity.tsv).", title=title)  # fmt: skip
    panels = list(estimable.groupby(["outcome", "treatment"], sort=False).groups)
    limits = _ratio_limits(estimable)
    with figure_style():
        height = sum(1.0 + 0.3 * effects.loc[(effects["outcome"] == o) & (effects["treatment"] == t), "subgroup"].nunique()
                     for o, t in panels)  # fmt: skip
        fig, axes = plt.subplots(len(panels), 1, squeeze=False, sharex=True, figsize=(PAGE_WIDTH_IN * 0.75, height))
        for ax, (outcome, treatment) in zip(axes[:, 0], panels):
            rows = effects[(effects["outcome"] == outcome) & (effects["treatment"] == treatment)]
            _treatment_panel(ax, rows, limits)
        axes[-1, 0].set_xlabel(f"{estimable['ratio_type'].iloc[0].capitalize()} vs {estimable['reference'].iloc[0]} "
                               "(95% CI; < 1 favours the treatment)" if estimable["ratio_type"].nunique() == 1 else
                               f"Odds or hazard ratio vs {estimable['reference'].iloc[0]} (95% CI)")  # fmt: skip
        handles = [plt.Line2D([], [], marker=m, ls="", color=sns.color_palette(PALETTE)[0], mfc=f, label=label)
                   for m, f, label in (("s", None, "weighted (IPTW)"), ("o", "white", "adjusted"))]  # fmt: skip
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / height))
        fig.legend(handles=handles, loc="upper center", ncols=2, frameon=False, bbox_to_anchor=(0.5, 1.0))
    return fig


def _treatment_panel(ax, rows: pd.DataFrame, limits) -> None:
    """One outcome and treatment: a row per subgroup, the weighted and adjusted ratios side by side."""
    subgroups = sorted(rows["subgroup"].unique(), key=_natural)
    position = dict(zip(subgroups, np.arange(len(subgroups))[::-1]))
    colour = sns.color_palette(PALETTE)[0]
    for model, offset, face in (("iptw", 0.15, colour), ("adjusted", -0.15, "white")):
        shown = rows[(rows["model"] == model) & rows["estimate"].notna()]
        y = shown["subgroup"].map(position).to_numpy() + offset
        ratio, low, high = shown["ratio"], np.exp(shown["ci_low"]), np.exp(shown["ci_high"])
        ax.errorbar(ratio, y, xerr=[ratio - low, high - ratio], fmt="s" if model == "iptw" else "o", color=colour,
                    mfc=face, ms=4, capsize=2, lw=1)  # fmt: skip
    for subgroup in rows.loc[rows["estimate"].isna(), "subgroup"].unique():
        ax.text(1.0, position[subgroup], "  not estimable", va="center", fontsize=SMALLEST_FONT, color="grey")
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlim(*limits)
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    counts = rows.drop_duplicates("subgroup").set_index("subgroup")
    ax.set_yticks(list(position.values()), [f"{s} (n = {int(counts.at[s, 'n_treatment'])} vs "
                                            f"{int(counts.at[s, 'n_reference'])})" for s in position])  # fmt: skip
    ax.set_ylim(-0.7, len(subgroups) - 0.3)
    weighted = rows.loc[rows["model"] == "iptw", "interaction_p_value"].dropna()
    p_text = f"interaction p = {format_p_value(weighted.iloc[0])} (weighted)" if len(weighted) else "no interaction test"
    ax.set_title(f"{rows['treatment'].iloc[0]} vs {rows['reference'].iloc[0]}: "
                 f"{rows['outcome'].iloc[0].replace('_', ' ')}\n{p_text}", loc="left")  # fmt: skip


def treatment_overlap(propensity: pd.DataFrame, *, trim: float):
    """Propensity of each treatment (vs the reference) per subgroup and arm: the positivity check.

    Parameters
    ----------
    propensity
        One row per patient and comparison (treatment, reference, subgroup, arm, propensity); with
        an ``outcome`` column, the first outcome's rows are drawn.
    trim
        The trimming bound; patients outside [trim, 1 - trim] were left out (shaded).

    Returns
    -------
    The figure: one row of panels per treatment, one column per subgroup.
    """
    title = "Propensity overlap"
    if propensity.empty:
        return message_figure("No treatment comparison (one treatment only, or no outcome).", title=title)
    if "outcome" in propensity:  # each outcome has its own complete cases: the first outcome's patients are shown
        propensity = propensity[propensity["outcome"] == propensity["outcome"].iloc[0]]
    treatments = sorted(propensity["treatment"].unique())
    subgroups = sorted(propensity["subgroup"].unique(), key=_natural)
    colours = dict(zip(("treatment", "reference"), sns.color_palette(PALETTE, 2)))
    bins = np.linspace(0, 1, 26)
    with figure_style():
        fig, axes = plt.subplots(len(treatments), len(subgroups), squeeze=False, sharex=True,
                                 figsize=(PAGE_WIDTH_IN, 1.5 * len(treatments) + 0.4))  # fmt: skip
        for i, treatment in enumerate(treatments):
            for j, subgroup in enumerate(subgroups):
                ax, rows = axes[i, j], propensity[(propensity["treatment"] == treatment) & (propensity["subgroup"] == subgroup)]
                for arm, colour in colours.items():
                    ax.hist(rows.loc[rows["arm"] == arm, "propensity"], bins=bins, color=colour, histtype="step", lw=1.2)
                for edge in ((0, trim), (1 - trim, 1)):
                    ax.axvspan(*edge, color="grey", alpha=0.2, lw=0)
                ax.set_title(f"{treatment}, {subgroup}", fontsize=SMALLEST_FONT + 1)
            axes[i, 0].set_ylabel("Patients")
        for ax in axes[-1]:
            ax.set_xlabel("Propensity of the treatment")
        reference = propensity["reference"].iloc[0]
        handles = [plt.Line2D([], [], color=colours["treatment"], label="given the treatment"),
                   plt.Line2D([], [], color=colours["reference"], label=f"given {reference}"),
                   plt.Rectangle((0, 0), 1, 1, color="grey", alpha=0.2, label=f"trimmed (< {trim:g} or > {1 - trim:g})")]  # fmt: skip
        fig.tight_layout(rect=(0, 0, 1, 0.93))
        fig.legend(handles=handles, loc="upper center", ncols=3, frameon=False, bbox_to_anchor=(0.5, 1.0))
    return fig

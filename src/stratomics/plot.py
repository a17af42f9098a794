"""The figure style and its primitives. Plotting reads what the computing steps stored; it computes
no statistics (the QC figures are in :mod:`stratomics.qc_figures`, the paper's in :mod:`stratomics.figures`).

One style for every figure (seaborn "ticks", 7 pt text, colour-blind-safe palette), sized for a
journal page (7.2 in wide = two columns), saved as vector PDF and 300-dpi PNG.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pandas as pd

PAGE_WIDTH_IN = 7.2
PALETTE = "colorblind"
PRESENT_ABSENT = ("#d9d9d9", "#0173b2")


#: Smallest text in any figure (points): journals ask for 6-8 pt at print size.
SMALLEST_FONT = 7


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (imported on first use: computing steps that
    never draw do not pay for matplotlib and seaborn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def colours(n: int | None = None) -> list:
    """The first ``n`` colours of the figure palette (default: all of them)."""
    import seaborn as sns

    return sns.color_palette(PALETTE, n)


@contextmanager
def figure_style():
    """The stratomics figure style (deterministic: no dates in PDF metadata)."""
    import matplotlib
    import seaborn as sns

    pyplot()
    with sns.axes_style("ticks"), sns.plotting_context("paper", font_scale=0.85):
        with matplotlib.rc_context({"pdf.fonttype": 42, "svg.hashsalt": "stratomics",
                                    "axes.titlesize": 8, "axes.titleweight": "bold"}):  # fmt: skip
            yield


def save_figure(fig, path_stem: str | Path) -> list[Path]:
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
    pyplot().close(fig)
    return paths


def panel_letters(axes, *, x: float | None = None, y: float = 1.06) -> None:
    """Letter the panels a, b, c, ... in the order given (10 pt bold, above the top-left corner).

    Parameters
    ----------
    axes
        The panels, in reading order.
    x, y
        Position in axes fractions; ``x`` None: left of the panel's tick labels and axis label.
    """
    for ax, letter in zip(axes, "abcdefghijklmnopqrstuvwxyz"):
        left = x
        if left is None:
            extent = ax.get_tightbbox(ax.figure.canvas.get_renderer()).transformed(ax.transAxes.inverted())
            left = min(extent.x0, 0.0)
        ax.text(left, y, letter, transform=ax.transAxes, fontsize=10, fontweight="bold", va="bottom", ha="left")




def histogram(ax, values, *, title, xlabel, threshold=None, log=False, value_range=None, threshold_label=None):
    """A histogram of per-feature or per-sample values with an optional threshold line, labelled with
    ``threshold_label`` (default: its value)."""
    values = pd.Series(values, dtype=float).dropna()
    ax.hist(values, bins=40, range=value_range, color=colours()[0], log=log, linewidth=0)
    ax.xaxis.set_major_locator(pyplot().MaxNLocator(2, steps=[1, 2, 5, 10]))
    ax.tick_params(axis="x", labelsize=SMALLEST_FONT)  # three ticks fit a narrow panel at 7 pt
    if threshold is not None:
        threshold_line(ax, threshold, threshold_label or f"{threshold:g}")
    ax.set(title=title, xlabel=xlabel, ylabel="count")


def sd_limits(ax, values, *, axis: str = "x", labelled: bool = True) -> None:
    """Dashed limits at the mean ± 3 SD of ``values`` (outlying samples), the upper one labelled."""
    values = pd.Series(values, dtype=float)
    for side in (-1, 1):
        label = "mean\u00b13 SD" if side > 0 and labelled else ""
        threshold_line(ax, values.mean() + side * 3 * values.std(), label, axis=axis)


def threshold_line(ax, at: float, label: str, *, axis: str = "x") -> None:
    """A dashed QC threshold across the panel at ``at`` with its label in the panel's upper edge."""
    colour = colours()[3]
    if axis == "x":
        ax.axvline(at, color=colour, ls="--", lw=1)
        ax.annotate(label, xy=(at, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -2),
                    textcoords="offset points", ha="left", va="top", fontsize=SMALLEST_FONT, color=colour)  # fmt: skip
    else:
        ax.axhline(at, color=colour, ls="--", lw=1)
        ax.annotate(label, xy=(1.0, at), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                    textcoords="offset points", ha="right", va="bottom", fontsize=SMALLEST_FONT, color=colour)  # fmt: skip



"""The QC panels of every assay and the assay coverage, in one job (drawing is cheap; each job pays its imports)."""

from pathlib import Path

import anndata as ad
import pandas as pd

from stratomics import plot, qc_figures
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    params = snakemake.params
    for assay, path, pdf in zip(params.assays, snakemake.input.assays, snakemake.output.pdf):
        figure = qc_figures.assay_qc(ad.read_h5ad(path), assay, batch=params.batch)
        plot.save_figure(figure, Path(pdf).with_suffix(""))
    coverage = pd.read_csv(snakemake.input.coverage, sep="\t")
    figure = qc_figures.assay_coverage(coverage, params.assays, batch=params.batch)
    plot.save_figure(figure, Path(snakemake.output.coverage_pdf).with_suffix(""))


run_step(snakemake.log[0], main, inputs=snakemake.input)

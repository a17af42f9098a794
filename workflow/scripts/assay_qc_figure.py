from pathlib import Path

import anndata as ad

from stratomics import plot, qc_figures
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    adata = ad.read_h5ad(snakemake.input[0])
    figure = qc_figures.assay_qc(adata, snakemake.wildcards.assay, batch=snakemake.params.batch)
    plot.save_figure(figure, Path(snakemake.output.pdf).with_suffix(""))


run_step(snakemake.log[0], main, inputs=snakemake.input)

from pathlib import Path

import pandas as pd

from stratomics import plot, qc_figures
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    coverage = pd.read_csv(snakemake.input[0], sep="\t")
    figure = qc_figures.assay_coverage(coverage, snakemake.params.assays, batch=snakemake.params.batch)
    plot.save_figure(figure, Path(snakemake.output.pdf).with_suffix(""))


run_step(snakemake.log[0], main, inputs=snakemake.input)

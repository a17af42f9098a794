from pathlib import Path

import pandas as pd

from stratomics import figures
from stratomics.plot import save_figure
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    performance = pd.read_csv(snakemake.input.performance, sep="\t")
    curves = pd.read_csv(snakemake.input.curves, sep="\t")
    save_figure(figures.prediction_performance(performance), Path(snakemake.output.performance[0]).with_suffix(""))
    save_figure(figures.prediction_curves(curves, horizon=snakemake.params.horizon), Path(snakemake.output.curves[0]).with_suffix(""))


run_step(snakemake.log[0], main, inputs=snakemake.input)

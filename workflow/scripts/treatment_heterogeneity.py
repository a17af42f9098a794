from pathlib import Path

from stratomics import figures
from stratomics.cohort import read_cohort_obs
from stratomics.plot import save_figure
from stratomics.runner import run_step
from stratomics.tables import write_table
from stratomics.treatment_effects import treatment_heterogeneity

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    params = snakemake.params
    settings = params.settings
    effects, overlap, propensity = treatment_heterogeneity(
        read_cohort_obs(snakemake.input[0]), params.outcomes, params.covariates, treatment=settings["treatment"],
        reference=settings["reference"], trim=settings["trim"], min_per_arm=settings["min_per_arm"])  # fmt: skip
    write_table(effects, snakemake.output.table)
    write_table(overlap, snakemake.output.overlap)
    write_table(propensity, snakemake.output.propensity)
    save_figure(figures.treatment_forest(effects), Path(snakemake.output.forest[0]).with_suffix(""))
    save_figure(figures.treatment_overlap(propensity, trim=settings["trim"]), Path(snakemake.output.overlap_figure[0]).with_suffix(""))


run_step(snakemake.log[0], main, inputs=snakemake.input)

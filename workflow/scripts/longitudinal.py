from pathlib import Path

import mudata as md

from stratomics import figures
from stratomics.cohort import read_cohort_obs
from stratomics.longitudinal import visit_tests
from stratomics.plot import save_figure
from stratomics.runner import run_step
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    params = snakemake.params
    md.set_options(pull_on_update=False)
    patients = read_cohort_obs(snakemake.input.cohort)
    table = visit_tests(md.read_h5mu(snakemake.input.visits), patients, assays=params.assays,
                        group_columns=params.groups, visit_order=params.visits, covariates=params.covariates,
                        seed=params.seed)  # fmt: skip
    write_table(table, snakemake.output.table)
    for index, group in enumerate(params.groups):
        figure = figures.trajectories(table, group_by=group, visits=params.visits)
        save_figure(figure, Path(snakemake.output.figures[2 * index]).with_suffix(""))


run_step(snakemake.log[0], main, inputs=snakemake.input)

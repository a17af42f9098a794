import mudata as md

from stratomics.runner import run_step
from stratomics.subgroups import leave_one_site_out
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    mdata = md.read_h5mu(snakemake.input[0])
    params = snakemake.params
    table = leave_one_site_out(mdata, params.assays, params.site, k=mdata.uns["stratify"]["k"],
                               integrate_options=params.integrate, fit_on=params.fit_on, seed=params.seed, n_jobs=snakemake.threads,
                               **params.space)  # fmt: skip
    write_table(table, snakemake.output[0])


run_step(snakemake.log[0], main, inputs=snakemake.input)

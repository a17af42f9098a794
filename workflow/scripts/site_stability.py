import mudata as md

from stratomics.runner import run_step
from stratomics.subgroups import leave_one_site_out

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    mdata = md.read_h5mu(snakemake.input[0])
    params = snakemake.params
    table = leave_one_site_out(mdata, params.assays, params.site, k=mdata.uns["stratify"]["k"],
                               integrate_options=params.integrate, fit_on=params.fit_on, seed=params.seed,
                               **params.space)  # fmt: skip
    table.to_csv(snakemake.output[0], sep="\t", index=False, float_format="%.6g")


run_step(snakemake.log[0], main)

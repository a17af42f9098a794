import anndata as ad

from stratomics.cohort import assemble, read_cohort_obs, write_cohort
from stratomics.preprocess import feature_qc_table, removed_table
from stratomics.runner import run_step
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    assays = {name: ad.read_h5ad(path) for name, path in zip(snakemake.params.assays, snakemake.input.assays)}
    mdata = assemble(read_cohort_obs(snakemake.input.raw), assays)
    write_cohort(mdata, snakemake.output.mdata)
    write_table(removed_table(mdata), snakemake.output.removed)
    write_table(feature_qc_table(mdata), snakemake.output.feature_qc)


run_step(snakemake.log[0], main, inputs=snakemake.input)

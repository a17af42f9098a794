import anndata as ad

from stratomics.cohort import assemble, read_cohort_obs, write_cohort
from stratomics.preprocess import feature_qc_table, removed_table
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    assays = {name: ad.read_h5ad(path) for name, path in zip(snakemake.params.assays, snakemake.input.assays)}
    mdata = assemble(read_cohort_obs(snakemake.input.raw), assays)
    write_cohort(mdata, snakemake.output.mdata)
    removed_table(mdata).to_csv(snakemake.output.removed, sep="\t", index=False)
    feature_qc_table(mdata).to_csv(snakemake.output.feature_qc, sep="\t", index=False, float_format="%.6g")


run_step(snakemake.log[0], main)

import anndata as ad

from stratomics.associate import markers_of_groups
from stratomics.cohort import read_cohort_obs
from stratomics.runner import run_step
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    adata = ad.read_h5ad(snakemake.input.assay)
    obs = read_cohort_obs(snakemake.input.cohort)
    params = snakemake.params
    table = markers_of_groups(adata, obs, params.groups, covariates=params.covariates, assay=snakemake.wildcards.assay,
                              kind=params.kind, moderated=params.moderated, robust=params.robust, min_patients=params.min_patients,
                              defined_on=("subgroup",) if params.integrated else ())  # fmt: skip
    write_table(table, snakemake.output[0])


run_step(snakemake.log[0], main, inputs=snakemake.input)

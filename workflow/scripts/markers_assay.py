import anndata as ad

from stratomics.associate import markers_of_groups
from stratomics.cohort import read_cohort_obs
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    adata = ad.read_h5ad(snakemake.input.assay)
    obs = read_cohort_obs(snakemake.input.cohort)
    params = snakemake.params
    table = markers_of_groups(adata, obs, params.groups, params.covariates, assay=snakemake.wildcards.assay,
                              kind=params.kind, moderated=params.moderated, robust=params.robust,
                              defined_on=("subgroup",) if params.integrated else ())  # fmt: skip
    table.to_csv(snakemake.output[0], sep="\t", index=False, float_format="%.6g")


run_step(snakemake.log[0], main)

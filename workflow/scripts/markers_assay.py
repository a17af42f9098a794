import anndata as ad
import pandas as pd

from stratomics.associate import RESULT_COLUMNS, cluster_markers
from stratomics.cohort import read_cohort_obs
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    adata = ad.read_h5ad(snakemake.input.assay)
    obs = read_cohort_obs(snakemake.input.cohort)
    params = snakemake.params
    tables = [
        cluster_markers(adata, obs, group, [c for c in params.covariates if c != group], assay=snakemake.wildcards.assay,
                        kind=params.kind, moderated=params.moderated, robust=params.robust)
        for group in params.groups
    ]  # fmt: skip
    table = pd.concat(tables) if tables else pd.DataFrame(columns=RESULT_COLUMNS)
    table.to_csv(snakemake.output[0], sep="\t", index=False, float_format="%.6g")


run_step(snakemake.log[0], main)

import anndata as ad
import pandas as pd

from stratomics.associate import outcome_biomarkers
from stratomics.cohort import read_cohort_obs
from stratomics.runner import run_step
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    adata = ad.read_h5ad(snakemake.input.assay)
    obs = read_cohort_obs(snakemake.input.cohort)
    tables = [
        outcome_biomarkers(adata, obs, name, spec, snakemake.params.covariates, assay=snakemake.wildcards.assay)
        for name, spec in snakemake.params.outcomes.items()
    ]
    write_table(pd.concat(tables), snakemake.output[0])


run_step(snakemake.log[0], main)

import anndata as ad
import numpy as np
import pandas as pd

from stratomics.associate import genotype_scan
from stratomics.cohort import read_cohort_obs
from stratomics.runner import run_step
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    adata = ad.read_h5ad(snakemake.input.assay)  # genotypes: obs and var; the dosages are read from the .bed
    obs = read_cohort_obs(snakemake.input.cohort)
    bounds = np.linspace(0, adata.n_vars, snakemake.params.n_chunks + 1).astype(int)
    chunk = int(snakemake.wildcards.chunk)
    snps = slice(bounds[chunk], bounds[chunk + 1])
    tables = [
        genotype_scan(adata, obs, name, spec=spec, covariates=snakemake.params.covariates, snps=snps,
                      chunk_size=snakemake.params.chunk_size)
        for name, spec in snakemake.params.outcomes.items()
    ]
    table = pd.concat(tables).assign(assay=snakemake.wildcards.genotypes)
    write_table(table, snakemake.output[0])


run_step(snakemake.log[0], main, inputs=snakemake.input)

import mudata as md

from stratomics.cohort import read_cohort_obs
from stratomics.preprocess import (
    assay_with_clinical,
    clinical_columns,
    preprocess_assay,
    preprocess_options,
)
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    name, config = snakemake.wildcards.assay, snakemake.config
    raw = md.read_h5ad(snakemake.input[0], name)
    adata = assay_with_clinical(raw, read_cohort_obs(snakemake.input[0]), clinical_columns(config))
    result = preprocess_assay(adata, name, snakemake.params.spec, **preprocess_options(config))
    result.write_h5ad(snakemake.output[0])


run_step(snakemake.log[0], main)

import mudata as md

from stratomics.cohort import read_cohort_obs
from stratomics.preprocess import assay_with_clinical, preprocess_assay
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    name, params = snakemake.wildcards.assay, snakemake.params
    raw = md.read_h5ad(snakemake.input[0], name)
    adata = assay_with_clinical(raw, read_cohort_obs(snakemake.input[0]), params.clinical)
    result = preprocess_assay(adata, name, params.spec, **params.options)
    result.write_h5ad(snakemake.output[0])


run_step(snakemake.log[0], main, inputs=snakemake.input)

import mudata as md

from stratomics.federated import site_export
from stratomics.runner import run_step
from stratomics.subgroups import load_model

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    params = snakemake.params
    log = site_export(md.read_h5mu(snakemake.input.cohort), load_model(snakemake.input.model, sha256=params.model_sha256), outcomes=params.outcomes,
                      covariates=params.covariates, folder=snakemake.output[0], min_count=params.min_count,
                      km_times=params.km_times, releases=params.releases,
                      allow_close_release=params.allow_close_release)  # fmt: skip
    print(f"site export written to {snakemake.output[0]}; {len(log)} cells suppressed (disclosure_log.tsv)")


run_step(snakemake.log[0], main, inputs=snakemake.input)

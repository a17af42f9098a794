import joblib
import mudata as md

from stratomics.cohort import write_cohort
from stratomics.runner import run_step
from stratomics.subgroups import embedding_table, integrate_cohort

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    mdata = md.read_h5mu(snakemake.input[0])
    models = integrate_cohort(mdata, snakemake.params.assays, integrate_options=snakemake.params.integrate,
                              fit_on=snakemake.params.fit_on, seed=snakemake.params.seed,
                              **snakemake.params.space)  # fmt: skip
    write_cohort(mdata, snakemake.output.mdata)
    joblib.dump(models, snakemake.output.model)
    write = {"sep": "\t", "index": False, "float_format": "%.6g"}
    embedding_table(mdata).to_csv(snakemake.output.embedding, **write)
    mdata.uns["integrate"]["variance_explained"].to_csv(snakemake.output.variance, **write)
    mdata.uns["integrate"]["factors"].to_csv(snakemake.output.factors, **write)


run_step(snakemake.log[0], main)

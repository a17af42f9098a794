import joblib
import mudata as md

from stratomics.cohort import write_cohort
from stratomics.runner import run_step
from stratomics.subgroups import embedding_table, integrate_cohort
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    mdata = md.read_h5mu(snakemake.input[0])
    models = integrate_cohort(mdata, snakemake.params.assays, integrate_options=snakemake.params.integrate,
                              fit_on=snakemake.params.fit_on, seed=snakemake.params.seed,
                              **snakemake.params.space)  # fmt: skip
    write_cohort(mdata, snakemake.output.mdata)
    joblib.dump(models, snakemake.output.model)
    write_table(embedding_table(mdata), snakemake.output.embedding)
    write_table(mdata.uns["integrate"]["variance_explained"], snakemake.output.variance)
    write_table(mdata.uns["integrate"]["factors"], snakemake.output.factors)


run_step(snakemake.log[0], main, inputs=snakemake.input)

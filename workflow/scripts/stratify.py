import joblib
import mudata as md

from stratomics.cohort import write_cohort
from stratomics.model_file import save_model_file
from stratomics.runner import run_step
from stratomics.stratify import choose, consensus_cdf_table
from stratomics.subgroups import fitted_scores, store_subgroups, subgroup_table
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    mdata = md.read_h5mu(snakemake.input.mdata)
    results = [result for path in snakemake.input.consensus if (result := joblib.load(path)) is not None]
    options = snakemake.params.stratify
    result, table = choose(results, fitted_scores(mdata), algorithm=options["algorithm"], k=options.get("k"),
                           seed=snakemake.params.seed)  # fmt: skip
    integration, space = joblib.load(snakemake.input.integration)
    model = store_subgroups(mdata, result, table, integration=integration, space=space,
                            params={**options, "seed": snakemake.params.seed})  # fmt: skip
    write_cohort(mdata, snakemake.output.mdata)
    write_table(subgroup_table(mdata), snakemake.output.clusters)
    write_table(table, snakemake.output.selection)
    write_table(consensus_cdf_table(results), snakemake.output.cdf)
    save_model_file(model, snakemake.output.model)


run_step(snakemake.log[0], main, inputs=snakemake.input)

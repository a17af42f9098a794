import mudata as md

from stratomics.runner import run_step
from stratomics.subgroups import embedding_table, integrate_and_stratify, save_model, subgroup_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    mdata = md.read_h5mu(snakemake.input[0])
    options = dict(snakemake.params.stratify)
    k_range = range(options.pop("k_min"), options.pop("k_max") + 1)
    fit_on = options.pop("fit_on")
    options.pop("n_permutations")  # used by the subgroup_outcomes rule
    model, table = integrate_and_stratify(
        mdata, snakemake.params.assays, integrate_options=snakemake.params.integrate,
        stratify_options={"k_values": k_range, **options}, fit_on=fit_on, seed=snakemake.params.seed,
    )  # fmt: skip
    mdata.write(snakemake.output.mdata)
    write = {"sep": "\t", "index": False, "float_format": "%.6g"}
    embedding_table(mdata).to_csv(snakemake.output.embedding, **write)
    mdata.uns["integrate"]["variance_explained"].to_csv(snakemake.output.variance, **write)
    subgroup_table(mdata).to_csv(snakemake.output.clusters, **write)
    table.to_csv(snakemake.output.selection, **write)
    save_model(model, snakemake.output.model)


run_step(snakemake.log[0], main)

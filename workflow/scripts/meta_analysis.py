from pathlib import Path

from stratomics import figures
from stratomics.federated import combine_exports
from stratomics.plot import save_figure
from stratomics.runner import run_step
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    outputs = snakemake.output
    combined = combine_exports(dict(zip(snakemake.params.sites, snakemake.input.exports)),
                               fdr_method=snakemake.params.fdr_method)  # fmt: skip
    write_table(combined["features"], outputs.features)
    write_table(combined["subgroups"], outputs.subgroups)
    save_figure(figures.meta_forest(combined["features"], combined["site_estimates"]),
                Path(outputs.forest[0]).with_suffix(""))  # fmt: skip
    save_figure(figures.meta_heterogeneity(combined["features"]), Path(outputs.heterogeneity[0]).with_suffix(""))


run_step(snakemake.log[0], main, inputs=snakemake.input)

from pathlib import Path

from stratomics import figures
from stratomics.federated import combine_exports
from stratomics.plot import save_figure
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    outputs = snakemake.output
    combined = combine_exports(dict(zip(snakemake.params.sites, snakemake.input.exports)),
                               fdr_method=snakemake.params.fdr_method)  # fmt: skip
    write = {"sep": "\t", "index": False, "float_format": "%.6g"}
    combined["features"].to_csv(outputs.features, **write)
    combined["subgroups"].to_csv(outputs.subgroups, **write)
    save_figure(figures.meta_forest(combined["features"], combined["site_estimates"]),
                Path(outputs.forest[0]).with_suffix(""))  # fmt: skip
    save_figure(figures.meta_heterogeneity(combined["features"]), Path(outputs.heterogeneity[0]).with_suffix(""))


run_step(snakemake.log[0], main)

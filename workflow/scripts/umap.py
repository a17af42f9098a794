import mudata as md

from stratomics.runner import run_step
from stratomics.subgroups import umap_table
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    table = umap_table(md.read_h5mu(snakemake.input[0]), seed=snakemake.params.seed)
    write_table(table, snakemake.output[0])


run_step(snakemake.log[0], main, inputs=snakemake.input)

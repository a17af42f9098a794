import pandas as pd

from stratomics.enrichment import enrichment_table, read_gmt
from stratomics.runner import run_step
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    gene_sets = read_gmt(snakemake.input.gene_sets)
    results = {source: pd.read_csv(snakemake.input[source], sep="\t", keep_default_na=False, na_values=[""])
               for source in ("markers", "biomarkers")}  # fmt: skip
    write_table(enrichment_table(results, gene_sets, settings=snakemake.params.settings), snakemake.output[0])


run_step(snakemake.log[0], main, inputs=snakemake.input)

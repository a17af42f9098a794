import pandas as pd

from stratomics.runner import run_step
from stratomics.tables import top_rows, write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    for source, target in zip(snakemake.input, snakemake.output):  # in the same order
        write_table(top_rows(pd.read_csv(source, sep="\t", low_memory=False), snakemake.params.rows), target)


run_step(snakemake.log[0], main, inputs=snakemake.input)

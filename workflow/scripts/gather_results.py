import pandas as pd

from stratomics.associate.multiple import finalise
from stratomics.runner import run_step
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    tables = [pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""]) for path in snakemake.input]
    table = finalise(tables, method=snakemake.params.method, per_assay=snakemake.params.per_assay)
    write_table(table, snakemake.output[0])


run_step(snakemake.log[0], main, inputs=snakemake.input)

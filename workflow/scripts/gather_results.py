import pandas as pd

from stratomics.associate.multiple import finalise
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    tables = [pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""]) for path in snakemake.input]
    table = finalise(tables, method=snakemake.params.method, per_assay=snakemake.params.per_assay)
    table.to_csv(snakemake.output[0], sep="\t", index=False, float_format="%.6g")


run_step(snakemake.log[0], main)

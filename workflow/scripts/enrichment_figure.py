import pandas as pd

from stratomics.enrichment_figures import enrichment_dotplot
from stratomics.plot import save_figure
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    table = pd.read_csv(snakemake.input[0], sep="\t", keep_default_na=False, na_values=[""])
    save_figure(enrichment_dotplot(table), snakemake.output[0].removesuffix(".pdf"))


run_step(snakemake.log[0], main, inputs=snakemake.input)

import json
from pathlib import Path

import pandas as pd

from stratomics.runner import run_step
from stratomics.summary import summary_rst

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    tables = {name: pd.read_csv(path, sep="\t") for name, path in snakemake.input.items() if name != "provenance"}
    provenance = json.loads(Path(snakemake.input.provenance).read_text())
    Path(snakemake.output[0]).write_text(summary_rst(tables, config=snakemake.params.config, resolved=snakemake.params.resolved,
                                                               provenance=provenance))


run_step(snakemake.log[0], main, inputs=snakemake.input)

from stratomics import provenance
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    record = provenance.collect(dict(snakemake.params.config))
    provenance.write(record, snakemake.output.json, snakemake.output.html)


run_step(snakemake.log[0], main, inputs=snakemake.input)

from stratomics.omop import derive_sample_sheet
from stratomics.runner import run_step
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    extraction = derive_sample_sheet(snakemake.params.omop)
    write_table(extraction.sheet, snakemake.output.sheet)
    write_table(extraction.report, snakemake.output.report)
    write_table(extraction.excluded, snakemake.output.excluded)


run_step(snakemake.log[0], main, inputs=snakemake.input)

from stratomics.cohort import build_cohort, write_cohort
from stratomics.runner import run_step
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    cohort = build_cohort(snakemake.params.settings)
    write_cohort(cohort.mdata, snakemake.output.raw)
    write_table(cohort.report, snakemake.output.report)
    write_table(cohort.coverage, snakemake.output.coverage)
    if snakemake.output.visits:
        write_cohort(cohort.visits, snakemake.output.visits[0])


run_step(snakemake.log[0], main, inputs=snakemake.input)

from stratomics.cohort import build_cohort, write_cohort
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    cohort = build_cohort(snakemake.config)
    write_cohort(cohort.mdata, snakemake.output.raw)
    cohort.report.to_csv(snakemake.output.report, sep="\t", index=False)
    cohort.coverage.to_csv(snakemake.output.coverage, sep="\t", index=False)


run_step(snakemake.log[0], main)

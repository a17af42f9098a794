from pathlib import Path

from stratomics.runner import run_step
from stratomics.simulate import simulate_cohort

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    out_dir = Path(snakemake.output[0]).parent
    simulate_cohort(out_dir, **snakemake.params)


run_step(snakemake.log[0], main, inputs=snakemake.input)

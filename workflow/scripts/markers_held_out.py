import mudata as md

from stratomics.associate.multiple import finalise
from stratomics.marker_validation import held_out_markers
from stratomics.runner import run_step
from stratomics.tables import write_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    mdata = md.read_h5mu(snakemake.input[0])
    params = snakemake.params
    table = held_out_markers(mdata, params.assays, tested=params.tested, covariates=params.covariates,
                             holdout=params.holdout, integrate_options=params.integrate, fit_on=params.fit_on,
                             seed=params.seed, marker_options=params.markers, **params.space)  # fmt: skip
    write_table(finalise([table], method=params.method, per_assay=params.per_assay), snakemake.output[0])


run_step(snakemake.log[0], main, inputs=snakemake.input)

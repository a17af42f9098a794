import pandas as pd

from stratomics.cohort import read_cohort_obs
from stratomics.outcomes import KM_COLUMNS, kaplan_meier_table, subgroup_outcomes, table_one
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    obs = read_cohort_obs(snakemake.input[0])
    params = snakemake.params
    write = {"sep": "\t", "index": False, "float_format": "%.6g"}
    table = subgroup_outcomes(obs, params.outcomes, params.covariates, n_permutations=params.n_permutations,
                              seed=params.seed)  # fmt: skip
    table.to_csv(snakemake.output.outcomes, **write)
    curves = [kaplan_meier_table(obs, spec["time"], spec["event"]).assign(outcome=name)
              for name, spec in params.outcomes.items() if spec["type"] == "survival"]  # fmt: skip
    empty = pd.DataFrame(columns=[*KM_COLUMNS, "outcome"])  # no survival outcome: the header alone
    (pd.concat(curves) if curves else empty).to_csv(snakemake.output.kaplan_meier, **write)
    survival = {name: (spec["time"], spec["event"]) for name, spec in params.outcomes.items()
                if spec["type"] == "survival"}  # fmt: skip
    table_one(obs, params.characteristics, survival=survival).to_csv(snakemake.output.table_one, **write)


run_step(snakemake.log[0], main)

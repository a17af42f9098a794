import pandas as pd

from stratomics.cohort import read_cohort_obs
from stratomics.outcome_types import outcome_type
from stratomics.outcomes import KM_COLUMNS, TABLE_ONE_NOTE, kaplan_meier_table, subgroup_outcomes, table_one
from stratomics.runner import run_step
from stratomics.tables import write_table, write_word_table

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    obs = read_cohort_obs(snakemake.input[0])
    params = snakemake.params
    table = subgroup_outcomes(obs, params.outcomes, params.covariates, n_permutations=params.n_permutations,
                              seed=params.seed)  # fmt: skip
    write_table(table, snakemake.output.outcomes)
    survival = {name: outcome_type(spec, name).columns(name, spec) for name, spec in params.outcomes.items()
                if outcome_type(spec, name).time_to_event}  # fmt: skip
    curves = [kaplan_meier_table(obs, *columns).assign(outcome=name) for name, columns in survival.items()]
    empty = pd.DataFrame(columns=[*KM_COLUMNS, "outcome"])  # no survival outcome: the header alone
    write_table((pd.concat(curves) if curves else empty), snakemake.output.kaplan_meier)
    characteristics = table_one(obs, params.characteristics, survival=survival)
    write_table(characteristics, snakemake.output.table_one)
    write_word_table(characteristics, snakemake.output.table_one_word, title="Table 1. Patient characteristics by subgroup",
                     note=TABLE_ONE_NOTE)  # fmt: skip


run_step(snakemake.log[0], main, inputs=snakemake.input)

# Follow-up visits (cohort.visits): per feature, a random-intercept mixed model of the change from baseline
# by subgroup and by each binary outcome.

VISITS = config["cohort"]["visits"] if len(config["cohort"]["visits"]) > 1 else []
LONGITUDINAL_GROUPS = (["subgroup"] if SUBGROUPS else []) + RESOLVED["binary_outcome_columns"]


rule longitudinal:
    input:
        visits="results/cohort/visits.h5mu",
        cohort="results/cohort/stratified.h5mu" if SUBGROUPS else "results/cohort/raw.h5mu",
    output:
        table=report("results/associate/longitudinal.tsv", caption="../report/longitudinal.rst", category="Biomarkers"),
        figures=[f for group in LONGITUDINAL_GROUPS for f in figure(f"trajectories_{group}", "fig_trajectories")],
    params:
        assays={name: spec for name, spec in config["assays"].items() if spec["kind"] != "genotypes"},
        groups=LONGITUDINAL_GROUPS,
        visits=VISITS,
        covariates=RESOLVED["associate_covariates"],
        seed=config["seed"],
    log:
        "results/logs/longitudinal.log",
    benchmark:
        "results/benchmarks/longitudinal.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/longitudinal.py"

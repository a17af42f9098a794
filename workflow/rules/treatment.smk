# Which treatment suits which subgroup (associate.treatment_heterogeneity).
TREATMENT_HETEROGENEITY = config["associate"].get("treatment_heterogeneity")


rule treatment_heterogeneity:
    input:
        "results/cohort/stratified.h5mu",
    output:
        table=report("results/associate/treatment_heterogeneity.tsv", caption="../report/treatment_heterogeneity.rst",
                     category="Treatment"),
        overlap="results/associate/treatment_overlap.tsv",
        propensity="results/associate/treatment_propensity.tsv",
        forest=figure("treatment_heterogeneity", "fig_treatment_heterogeneity"),
        overlap_figure=figure("treatment_overlap", "fig_treatment_overlap"),
    params:
        settings=TREATMENT_HETEROGENEITY,
        outcomes=config["cohort"]["outcomes"],
        covariates=RESOLVED["associate_covariates"],
    log:
        "results/logs/treatment_heterogeneity.log",
    benchmark:
        "results/benchmarks/treatment_heterogeneity.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/treatment_heterogeneity.py"

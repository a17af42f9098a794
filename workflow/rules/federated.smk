rule ship_model:
    input:
        mdata="results/cohort/stratified.h5mu",
        model="results/stratify/model.zip",
    output:
        model="results/federated/model_for_sites.zip",
        sha256="results/federated/model_for_sites.zip.sha256",
    params:
        min_count=config["federated"]["min_cell_count"],
    log:
        "results/logs/ship_model.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/ship_model.py"


rule site_export:
    input:
        cohort="results/cohort/preprocessed.h5mu",
        model=config["federated"]["model"],
    output:
        directory("results/export/{site}"),
    params:
        outcomes=config["cohort"]["outcomes"],
        covariates=RESOLVED["associate_covariates"],
        min_count=config["federated"]["min_cell_count"],
        km_times=config["federated"]["km_times"],
        model_sha256=config["federated"].get("model_sha256"),
        releases=lambda wildcards: f"{config['federated']['releases']}/{wildcards.site}.json",
        allow_close_release=config["federated"]["allow_close_release"],
    log:
        "results/logs/site_export_{site}.log",
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/site_export.py"


rule meta_analysis:
    input:
        exports=list(config["federated"]["exports"].values()),
    output:
        features=report(
            "results/meta/feature_meta.tsv", caption="../report/feature_meta.rst", category="Meta-analysis"
        ),
        subgroups=report(
            "results/meta/subgroup_meta.tsv", caption="../report/subgroup_meta.rst", category="Meta-analysis"
        ),
        forest=figure("meta_forest", "fig_meta_forest"),
        heterogeneity=figure("meta_heterogeneity", "fig_meta_heterogeneity"),
    params:
        sites=list(config["federated"]["exports"]),
        fdr_method=config["associate"]["fdr_method"],
    log:
        "results/logs/meta_analysis.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/meta_analysis.py"

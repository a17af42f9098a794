# Scatter: one job per assay; gather: one MuData with every patient.


rule preprocess_assay:
    input:
        "results/cohort/raw.h5mu",
    output:
        "results/cohort/preprocessed/{assay}.h5ad",
    params:
        spec=lambda wildcards: config["assays"][wildcards.assay],
        options=preprocess_options(config),
        clinical=clinical_columns(config),
    log:
        "results/logs/preprocess_{assay}.log",
    benchmark:
        "results/benchmarks/preprocess_{assay}.tsv"
    priority: 20
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/preprocess_assay.py"


rule gather_preprocessed:
    input:
        raw="results/cohort/raw.h5mu",
        assays=expand("results/cohort/preprocessed/{assay}.h5ad", assay=ASSAYS),
    output:
        mdata="results/cohort/preprocessed.h5mu",
        removed=report(
            "results/qc/preprocess_removed.tsv",
            caption="../report/preprocess_removed.rst",
            category="Quality control",
        ),
        feature_qc="results/qc/feature_qc.tsv",
    params:
        assays=ASSAYS,
    log:
        "results/logs/gather_preprocessed.log",
    benchmark:
        "results/benchmarks/gather_preprocessed.tsv"
    priority: 20
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/gather_preprocessed.py"

rule assay_qc_figure:
    input:
        "results/cohort/preprocessed/{assay}.h5ad",
    output:
        pdf="results/qc/{assay}_qc.pdf",
        png=report(
            "results/qc/{assay}_qc.png",
            caption="../report/assay_qc.rst",
            category="Quality control",
            subcategory="Assays",
        ),
    params:
        batch=config["cohort"].get("batch"),
    log:
        "results/logs/qc_figure_{assay}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/assay_qc_figure.py"


rule coverage_figure:
    input:
        "results/qc/modality_coverage.tsv",
    output:
        pdf="results/qc/assay_coverage.pdf",
        png=report(
            "results/qc/assay_coverage.png",
            caption="../report/assay_coverage.rst",
            category="Quality control",
        ),
    params:
        assays=ASSAYS,
        batch=config["cohort"].get("batch"),
    log:
        "results/logs/coverage_figure.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/coverage_figure.py"

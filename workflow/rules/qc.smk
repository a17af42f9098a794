rule qc_figures:
    input:
        assays=expand("results/cohort/preprocessed/{assay}.h5ad", assay=ASSAYS),
        coverage="results/qc/modality_coverage.tsv",
    output:
        pdf=expand("results/qc/{assay}_qc.pdf", assay=ASSAYS),
        png=[
            report(
                f"results/qc/{assay}_qc.png",
                caption="../report/assay_qc.rst",
                category="Quality control",
                subcategory="Assays",
            )
            for assay in ASSAYS
        ],
        coverage_pdf="results/qc/assay_coverage.pdf",
        coverage_png=report(
            "results/qc/assay_coverage.png",
            caption="../report/assay_coverage.rst",
            category="Quality control",
        ),
    params:
        assays=ASSAYS,
        batch=config["cohort"].get("batch"),
    log:
        "results/logs/qc_figures.log",
    benchmark:
        "results/benchmarks/qc_figures.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/qc_figures.py"

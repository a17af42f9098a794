rule ingest:
    input:
        INPUT_FILES,
    output:
        raw="results/cohort/raw.h5mu",
        report=report(
            "results/qc/ingest_report.tsv",
            caption="../report/ingest_report.rst",
            category="Quality control",
        ),
        coverage="results/qc/modality_coverage.tsv",
    params:
        settings=ingest_settings(config),
    log:
        "results/logs/ingest.log",
    benchmark:
        "results/benchmarks/ingest.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/ingest.py"

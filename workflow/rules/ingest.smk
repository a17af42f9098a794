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
        visits=[VISITS_FILE] if len(config["cohort"]["visits"]) > 1 else [],
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


# With cohort.omop, the sample sheet is derived from the OMOP CDM (read-only). A PostgreSQL CDM is not a
# file Snakemake can watch: rerun with --forcerun omop_extract after the database changes.
if config["cohort"].get("omop"):

    rule omop_extract:
        input:
            [] if is_postgres(config["cohort"]["omop"]["url"]) else [duckdb_path(config["cohort"]["omop"]["url"])],
        output:
            sheet=DERIVED_SAMPLE_SHEET,
            report=report(EXTRACTION_REPORT, caption="../report/omop_extraction.rst", category="Quality control"),
            excluded=EXCLUDED_PATIENTS,
        params:
            omop=config["cohort"]["omop"],
        log:
            "results/logs/omop_extract.log",
        benchmark:
            "results/benchmarks/omop_extract.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        conda:
            "../../envs/stratomics.yaml"
        script:
            "../scripts/omop_extract.py"

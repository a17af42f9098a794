# stratomics: patient subgroups and biomarkers from a multi-omics cohort.
# Run the demo:      snakemake --cores all
# Run your cohort:   snakemake --cores all --configfile my_cohort.yaml


import os

from stratomics.runner import report_warnings

# The report opens on the run's key numbers once `rule summary` has written them.
SUMMARY_PAGE = "results/report/summary.rst"


report: os.path.abspath(SUMMARY_PAGE) if os.path.exists(SUMMARY_PAGE) else "workflow/report/workflow.rst"



include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/stratify.smk"
include: "workflow/rules/associate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/federated.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/longitudinal.smk"
include: "workflow/rules/treatment.smk"


SUBGROUP_TARGETS = [
    "results/stratify/clusters.tsv",
    "results/stratify/subgroup_outcomes.tsv",
    *(["results/stratify/site_stability.tsv"] if RESOLVED["batch"] else []),
    "results/associate/biomarkers.tsv",
    "results/associate/markers.tsv",
    *(["results/associate/markers_held_out.tsv"] if config["associate"]["marker_holdout"] > 0 else []),
    *(rules.treatment_heterogeneity.output if TREATMENT_HETEROGENEITY else []),
    *rules.figures.output,
    *(rules.enrichment_figure.output if ENRICHMENT["gene_sets"] else []),
    *rules.report_tables.output,
    *(["results/predict/performance.tsv"] if PREDICT_OUTCOMES else []),
    *(rules.predict_figures.output if PREDICT_OUTCOMES else []),
    "results/federated/model_for_sites.zip",
]
FULL_TARGETS = [
    "results/cohort/preprocessed.h5mu",
    "results/qc/ingest_report.tsv",
    "results/qc/preprocess_removed.tsv",
    *expand("results/qc/{assay}_qc.{ext}", assay=ASSAYS, ext=["pdf", "png"]),
    *expand("results/qc/assay_coverage.{ext}", ext=["pdf", "png"]),
    *(SUBGROUP_TARGETS if SUBGROUPS else []),
    *(["results/associate/genotypes.tsv"] if GENOTYPE_ASSAYS else []),
    *(rules.longitudinal.output if VISITS else []),
    "results/provenance.json",
    SUMMARY_PAGE,
]
SITE_TARGETS = [f"results/export/{config.get('site')}", "results/qc/ingest_report.tsv"]
META_TARGETS = rules.meta_analysis.output


rule all:
    input:
        {"full": FULL_TARGETS, "site": SITE_TARGETS, "meta": META_TARGETS}[MODE],


# One place to read what went wrong or was left out, at the end of every successful run.
onsuccess:
    report_warnings("results/logs", "results/warnings.tsv")

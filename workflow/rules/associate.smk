# Biomarkers of each outcome per assay (scattered), genotype scan per SNP chunk (scattered),
# gathered with one FDR per outcome.

GENOTYPE_ASSAYS = RESOLVED["genotype_assays"]
FEATURE_ASSAYS = RESOLVED["feature_assays"]
GENOTYPE_CHUNKS = list(range(config["associate"]["genotype_chunks"]))


rule biomarkers_assay:
    input:
        assay="results/cohort/preprocessed/{assay}.h5ad",
        cohort="results/cohort/preprocessed.h5mu",
    output:
        "results/associate/biomarkers/{assay}.tsv",
    params:
        outcomes=config["cohort"]["outcomes"],
        covariates=RESOLVED["associate_covariates"],
        min_patients=config["cohort"]["min_patients_per_assay"],
    log:
        "results/logs/biomarkers_{assay}.log",
    benchmark:
        "results/benchmarks/biomarkers_{assay}.tsv"
    priority: 10
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/biomarkers_assay.py"


rule markers_assay:
    input:
        assay="results/cohort/preprocessed/{assay}.h5ad",
        cohort="results/cohort/stratified.h5mu",
    output:
        "results/associate/markers/{assay}.tsv",
    params:
        groups=["subgroup", *config["associate"]["marker_groups"]],
        covariates=RESOLVED["associate_covariates"],
        kind=config["associate"]["marker_contrasts"],
        moderated=config["associate"]["moderated"],
        robust=config["associate"]["robust"],
        integrated=lambda wildcards: wildcards.assay in RESOLVED["integrated_assays"],
        min_patients=config["cohort"]["min_patients_per_assay"],
    log:
        "results/logs/markers_{assay}.log",
    benchmark:
        "results/benchmarks/markers_{assay}.tsv"
    priority: 10
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/markers_assay.py"


rule gather_markers:
    input:
        expand("results/associate/markers/{assay}.tsv", assay=FEATURE_ASSAYS),
    output:
        "results/associate/markers.tsv",
    params:
        method=config["associate"]["fdr_method"],
        per_assay=config["associate"]["fdr_family"] == "per_assay",
    log:
        "results/logs/gather_markers.log",
    priority: 10
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/gather_results.py"


rule markers_held_out:
    input:
        "results/cohort/stratified.h5mu",
    output:
        report(
            "results/associate/markers_held_out.tsv",
            caption="../report/markers_held_out.rst",
            category="Association",
        ),
    params:
        assays=INTEGRATED_ASSAYS,
        tested=FEATURE_ASSAYS,
        covariates=RESOLVED["associate_covariates"],
        holdout=config["associate"]["marker_holdout"],
        integrate={k: v for k, v in config["integrate"].items() if k != "assays"},
        fit_on=config["stratify"]["fit_on"],
        space=RESOLVED["subgroup_space"],
        markers={key: config["associate"][key] for key in ("moderated", "robust")}
        | {"kind": config["associate"]["marker_contrasts"]},
        method=config["associate"]["fdr_method"],
        per_assay=config["associate"]["fdr_family"] == "per_assay",
        seed=config["seed"],
    log:
        "results/logs/markers_held_out.log",
    benchmark:
        "results/benchmarks/markers_held_out.tsv"
    threads: PARALLEL_THREADS
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/markers_held_out.py"


rule gather_biomarkers:
    input:
        expand("results/associate/biomarkers/{assay}.tsv", assay=FEATURE_ASSAYS),
    output:
        "results/associate/biomarkers.tsv",
    params:
        method=config["associate"]["fdr_method"],
        per_assay=config["associate"]["fdr_family"] == "per_assay",
    log:
        "results/logs/gather_biomarkers.log",
    priority: 10
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/gather_results.py"


rule genotype_scan_chunk:
    input:
        assay="results/cohort/preprocessed/{genotypes}.h5ad",
        cohort="results/cohort/preprocessed.h5mu",
    output:
        "results/associate/genotypes/{genotypes}_chunk{chunk}.tsv",
    params:
        outcomes=config["cohort"]["outcomes"],
        covariates=RESOLVED["associate_covariates"],
        n_chunks=len(GENOTYPE_CHUNKS),
        chunk_size=config["associate"]["genotype_chunk_size"],
    log:
        "results/logs/genotype_scan_{genotypes}_{chunk}.log",
    benchmark:
        "results/benchmarks/genotype_scan_{genotypes}_{chunk}.tsv"
    priority: 10
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/genotype_scan_chunk.py"


rule gather_genotype_scan:
    input:
        expand(
            "results/associate/genotypes/{genotypes}_chunk{chunk}.tsv",
            genotypes=GENOTYPE_ASSAYS,
            chunk=GENOTYPE_CHUNKS,
        ),
    output:
        "results/associate/genotypes.tsv",
    params:
        method=config["associate"]["fdr_method"],
        per_assay=False,
    log:
        "results/logs/gather_genotype_scan.log",
    priority: 10
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/gather_results.py"


ENRICHMENT = config["enrichment"]


rule enrichment:
    input:
        gene_sets=ENRICHMENT["gene_sets"] or [],
        markers="results/associate/markers.tsv",
        biomarkers="results/associate/biomarkers.tsv",
    output:
        report("results/associate/enrichment.tsv", caption="../report/enrichment.rst", category="Association"),
    params:
        settings={key: ENRICHMENT[key] for key in ("min_size", "max_size", "permutations")} | {"seed": config["seed"]},
    log:
        "results/logs/enrichment.log",
    benchmark:
        "results/benchmarks/enrichment.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/enrichment.py"

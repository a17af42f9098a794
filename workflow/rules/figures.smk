SURVIVAL_OUTCOMES = RESOLVED["survival_outcomes"]
ALL_OUTCOMES = RESOLVED["outcomes"]


def figure(stem, caption):
    """PDF and 300-dpi PNG of one figure; the PNG goes into the report."""
    png = report(f"results/figures/{stem}.png", caption=f"../report/{caption}.rst", category="Figures")
    return [f"results/figures/{stem}.pdf", png]


rule figures:
    input:
        mdata="results/cohort/stratified.h5mu",
        umap="results/stratify/umap.tsv",
        selection="results/stratify/model_selection.tsv",
        cdf="results/stratify/consensus_cdf.tsv",
        variance="results/integrate/variance_explained.tsv",
        factor_selection="results/integrate/factor_selection.tsv",
        factor_associations="results/integrate/factor_associations.tsv",
        factor_features="results/integrate/factor_features.tsv",
        outcomes="results/stratify/subgroup_outcomes.tsv",
        kaplan_meier="results/stratify/kaplan_meier.tsv",
        table_one="results/stratify/table1.tsv",
        biomarkers="results/associate/biomarkers.tsv",
        markers="results/associate/markers.tsv",
        genotypes=["results/associate/genotypes.tsv"] if GENOTYPE_ASSAYS else [],
    output:
        embedding=figure("embedding", "fig_embedding"),
        consensus=figure("consensus", "fig_consensus"),
        factors=figure("factors", "fig_factors"),
        kaplan_meier=[f for o in SURVIVAL_OUTCOMES for f in figure(f"km_{o}", "fig_km")],
        forest=figure("forest", "fig_forest"),
        volcano=[f for o in ALL_OUTCOMES for f in figure(f"volcano_{o}", "fig_volcano")],
        manhattan=[
            f for o in ALL_OUTCOMES if GENOTYPE_ASSAYS for f in figure(f"manhattan_{o}", "fig_manhattan")
        ],
        markers=figure("markers_heatmap", "fig_markers"),
        table_one=figure("table1", "fig_table1"),
    params:
        colour_by=RESOLVED["colour_by"],
        outcomes=ALL_OUTCOMES,
        survival=SURVIVAL_OUTCOMES,
        km_times=config["figures"].get("km_times"),
        km_confidence_bands=config["figures"]["km_confidence_bands"],
    log:
        "results/logs/figures.log",
    benchmark:
        "results/benchmarks/figures.tsv"
    priority: 20
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/figures.py"


rule enrichment_figure:
    input:
        "results/associate/enrichment.tsv",
    output:
        figure("enrichment", "fig_enrichment"),
    log:
        "results/logs/enrichment_figure.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/enrichment_figure.py"


rule provenance:
    input:
        # what the provenance describes: the figures' inputs, or without subgroups the cohort and the scan
        rules.figures.input if SUBGROUPS else [
            "results/cohort/preprocessed.h5mu", *(["results/associate/genotypes.tsv"] if GENOTYPE_ASSAYS else [])],
    output:
        json="results/provenance.json",
        html=report("results/provenance.html", caption="../report/provenance.rst", category="Provenance"),
    params:
        config=config,
    log:
        "results/logs/provenance.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/provenance.py"


def summary_inputs(wildcards):
    """The tables the landing page reads: those this run makes."""
    inputs = {"coverage": "results/qc/modality_coverage.tsv", "provenance": "results/provenance.json"}
    if SUBGROUPS:
        inputs |= {"clusters": "results/stratify/clusters.tsv", "selection": "results/stratify/model_selection.tsv",
                   "outcomes": "results/stratify/subgroup_outcomes.tsv", "biomarkers": "results/associate/biomarkers.tsv"}
        if RESOLVED["batch"]:
            inputs["stability"] = "results/stratify/site_stability.tsv"
        if PREDICT_OUTCOMES:
            inputs["performance"] = "results/predict/performance.tsv"
        if ENRICHMENT["gene_sets"]:
            inputs["enrichment"] = "results/associate/enrichment.tsv"
    if GENOTYPE_ASSAYS:
        inputs["genotypes"] = "results/associate/genotypes.tsv"
    return inputs


rule summary:
    input:
        unpack(summary_inputs),
    output:
        SUMMARY_PAGE,
    params:
        config=config,
        resolved=RESOLVED,
    log:
        "results/logs/summary.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/summary.py"


# Large tables enter the report as their top rows (the full tables stay in results/).
def top_table(name, caption, category):
    return report(f"results/report/top_{name}.tsv", caption=f"../report/{caption}.rst", category=category)


rule report_tables:
    input:
        markers="results/associate/markers.tsv",
        biomarkers="results/associate/biomarkers.tsv",
        factor_features="results/integrate/factor_features.tsv",
        genotypes=["results/associate/genotypes.tsv"] if GENOTYPE_ASSAYS else [],
    output:
        markers=top_table("markers", "markers", "Association"),
        biomarkers=top_table("biomarkers", "biomarkers", "Association"),
        factor_features=top_table("factor_features", "factor_features", "Subgroups"),
        genotypes=[top_table("genotypes", "genotypes", "Association")] if GENOTYPE_ASSAYS else [],
    params:
        rows=REPORT_ROWS,
    log:
        "results/logs/report_tables.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/report_tables.py"

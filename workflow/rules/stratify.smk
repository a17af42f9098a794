INTEGRATED_ASSAYS = config["integrate"].get(
    "assays", [a for a, spec in config["assays"].items() if spec["kind"] != "genotypes"]
)


rule stratify:
    input:
        "results/cohort/preprocessed.h5mu",
    output:
        mdata="results/cohort/stratified.h5mu",
        embedding="results/integrate/embedding.tsv",
        variance=report(
            "results/integrate/variance_explained.tsv",
            caption="../report/variance_explained.rst",
            category="Subgroups",
        ),
        clusters=report(
            "results/stratify/clusters.tsv", caption="../report/clusters.rst", category="Subgroups"
        ),
        selection=report(
            "results/stratify/model_selection.tsv",
            caption="../report/model_selection.rst",
            category="Subgroups",
        ),
        model="results/stratify/model.joblib",
    params:
        assays=INTEGRATED_ASSAYS,
        integrate={k: v for k, v in config["integrate"].items() if k != "assays"},
        stratify=config["stratify"],
        seed=config["seed"],
    log:
        "results/logs/stratify.log",
    benchmark:
        "results/benchmarks/stratify.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/stratify.py"

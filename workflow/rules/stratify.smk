INTEGRATED_ASSAYS = RESOLVED["integrated_assays"]


rule integrate:
    input:
        "results/cohort/preprocessed.h5mu",
    output:
        mdata="results/integrate/integrated.h5mu",
        model="results/integrate/model.joblib",
        embedding="results/integrate/embedding.tsv",
        variance=report(
            "results/integrate/variance_explained.tsv",
            caption="../report/variance_explained.rst",
            category="Subgroups",
        ),
        factors=report(
            "results/integrate/factor_selection.tsv",
            caption="../report/factor_selection.rst",
            category="Subgroups",
        ),
    params:
        assays=INTEGRATED_ASSAYS,
        integrate={k: v for k, v in config["integrate"].items() if k != "assays"},
        fit_on=config["stratify"]["fit_on"],
        space=RESOLVED["subgroup_space"],
        seed=config["seed"],
    log:
        "results/logs/integrate.log",
    benchmark:
        "results/benchmarks/integrate.tsv"
    priority: 30
    threads: PARALLEL_THREADS
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/integrate.py"


rule factor_annotation:
    input:
        mdata="results/integrate/integrated.h5mu",
        model="results/integrate/model.joblib",
    output:
        features="results/integrate/factor_features.tsv",
        associations=report(
            "results/integrate/factor_associations.tsv",
            caption="../report/factor_associations.rst",
            category="Subgroups",
        ),
    params:
        characteristics=list(dict.fromkeys(RESOLVED["table1_columns"] + [c for c in [config["cohort"].get("batch")] if c])),
        outcomes=config["cohort"]["outcomes"],
    log:
        "results/logs/factor_annotation.log",
    benchmark:
        "results/benchmarks/factor_annotation.tsv"
    priority: 10
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/factor_annotation.py"


rule consensus:
    input:
        "results/integrate/integrated.h5mu",
    output:
        expand("results/stratify/consensus/setting_{index}.joblib", index=range(RESOLVED["n_stratify_settings"])),
    params:
        stratify=config["stratify"],
        seed=config["seed"],
    log:
        "results/logs/consensus.log",
    benchmark:
        "results/benchmarks/consensus.tsv"
    priority: 30
    threads: PARALLEL_THREADS
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/consensus.py"


rule stratify:
    input:
        mdata="results/integrate/integrated.h5mu",
        integration="results/integrate/model.joblib",
        consensus=expand(
            "results/stratify/consensus/setting_{index}.joblib", index=range(RESOLVED["n_stratify_settings"])
        ),
    output:
        mdata="results/cohort/stratified.h5mu",
        clusters=report(
            "results/stratify/clusters.tsv", caption="../report/clusters.rst", category="Subgroups"
        ),
        selection=report(
            "results/stratify/model_selection.tsv",
            caption="../report/model_selection.rst",
            category="Subgroups",
        ),
        cdf="results/stratify/consensus_cdf.tsv",
        model="results/stratify/model.zip",
        model_sha256="results/stratify/model.zip.sha256",
    params:
        stratify=config["stratify"],
        seed=config["seed"],
    log:
        "results/logs/stratify.log",
    benchmark:
        "results/benchmarks/stratify.tsv"
    priority: 30
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/stratify.py"


rule subgroup_outcomes:
    input:
        "results/cohort/stratified.h5mu",
    output:
        outcomes=report(
            "results/stratify/subgroup_outcomes.tsv",
            caption="../report/subgroup_outcomes.rst",
            category="Subgroups",
        ),
        kaplan_meier="results/stratify/kaplan_meier.tsv",
        table_one=report(
            "results/stratify/table1.tsv", caption="../report/table1.rst", category="Subgroups"
        ),
        table_one_word="results/stratify/table1.docx",
    params:
        outcomes=config["cohort"]["outcomes"],
        covariates=RESOLVED["associate_covariates"],
        characteristics=RESOLVED["table1_columns"],
        n_permutations=config["stratify"]["n_permutations"],
        seed=config["seed"],
    log:
        "results/logs/subgroup_outcomes.log",
    benchmark:
        "results/benchmarks/subgroup_outcomes.tsv"
    priority: 10
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/subgroup_outcomes.py"


rule site_stability:
    input:
        "results/cohort/stratified.h5mu",
    output:
        report(
            "results/stratify/site_stability.tsv",
            caption="../report/site_stability.rst",
            category="Subgroups",
        ),
    params:
        assays=INTEGRATED_ASSAYS,
        site=config["cohort"].get("batch"),
        integrate={k: v for k, v in config["integrate"].items() if k != "assays"},
        fit_on=config["stratify"]["fit_on"],
        space=RESOLVED["subgroup_space"],
        seed=config["seed"],
    log:
        "results/logs/site_stability.log",
    benchmark:
        "results/benchmarks/site_stability.tsv"
    priority: 25
    threads: PARALLEL_THREADS
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/site_stability.py"


rule umap:
    input:
        "results/cohort/stratified.h5mu",
    output:
        "results/stratify/umap.tsv",
    params:
        seed=config["seed"],
    log:
        "results/logs/umap.log",
    benchmark:
        "results/benchmarks/umap.tsv"
    priority: 10
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/umap.py"

PREDICT = config["predict"]
PREDICT_OUTCOMES = RESOLVED["predict_outcomes"]
PREDICT_CLINICAL = RESOLVED["predict_clinical"]
PREDICT_OPTIONS = {
    key: PREDICT[key] for key in ("models", "feature_sets", "n_splits", "n_repeats", "n_features", "n_bootstrap", "horizons")
}


wildcard_constraints:
    outcome="|".join(PREDICT_OUTCOMES) or "none",


rule predict_outcome:
    input:
        "results/cohort/stratified.h5mu",
    output:
        "results/predict/evaluation/{outcome}.joblib",
    params:
        spec=lambda wildcards: config["cohort"]["outcomes"][wildcards.outcome],
        clinical=PREDICT_CLINICAL,
        assays=RESOLVED["predict_assays"],
        site=config["cohort"].get("batch"),
        options=PREDICT_OPTIONS,
        seed=config["seed"],
    log:
        "results/logs/predict_{outcome}.log",
    benchmark:
        "results/benchmarks/predict_{outcome}.tsv"
    priority: 25
    threads: PARALLEL_THREADS
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/predict_outcome.py"


rule predict:
    input:
        mdata="results/cohort/stratified.h5mu",
        evaluations=expand("results/predict/evaluation/{outcome}.joblib", outcome=PREDICT_OUTCOMES),
    output:
        performance=report(
            "results/predict/performance.tsv", caption="../report/predict_performance.rst", category="Prediction"
        ),
        signature=report(
            "results/predict/signature.tsv", caption="../report/predict_signature.rst", category="Prediction"
        ),
        curves="results/predict/curves.tsv",
        predictions="results/predict/predictions.tsv",
        selection="results/predict/selection.tsv",
        model="results/predict/signature.zip",
        model_sha256="results/predict/signature.zip.sha256",
    params:
        outcomes={n: config["cohort"]["outcomes"][n] for n in PREDICT_OUTCOMES},
        clinical=PREDICT_CLINICAL,
        assays=RESOLVED["predict_assays"],
        feature_set=PREDICT["signature"],
        n_features=PREDICT["n_features"],
        horizon=PREDICT["horizons"][0],
        seed=config["seed"],
    log:
        "results/logs/predict.log",
    benchmark:
        "results/benchmarks/predict.tsv"
    priority: 25
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/predict.py"


rule predict_figures:
    input:
        performance="results/predict/performance.tsv",
        curves="results/predict/curves.tsv",
    output:
        performance=figure("predict_performance", "fig_predict_performance"),
        curves=figure("predict_curves", "fig_predict_curves"),
    params:
        horizon=PREDICT["horizons"][0],
    log:
        "results/logs/predict_figures.log",
    priority: 25
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/stratomics.yaml"
    script:
        "../scripts/predict_figures.py"

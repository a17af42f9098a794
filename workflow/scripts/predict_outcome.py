import joblib
import mudata as md

from stratomics.predict import build_predictors, evaluate_outcome
from stratomics.runner import run_step

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    params, outcome = snakemake.params, snakemake.wildcards.outcome
    mdata = md.read_h5mu(snakemake.input[0])
    predictors = build_predictors(mdata, clinical=params.clinical, assays=params.assays)
    evaluation = evaluate_outcome(predictors, mdata.obs, outcome, spec=params.spec, site=params.site, seed=params.seed,
                                  n_jobs=snakemake.threads, **params.options)  # fmt: skip
    joblib.dump(evaluation, snakemake.output[0])
    summary = evaluation.performance.query("validation == 'nested_cv' and metric in ['auc', 'c_index']")
    print(summary[["model", "feature_set", "metric", "estimate", "ci_low", "ci_high"]].to_string(index=False))


run_step(snakemake.log[0], main, inputs=snakemake.input)

import joblib
import mudata as md

from stratomics.runner import run_step
from stratomics.stratify import candidate_settings, consensus_for_k
from stratomics.subgroups import fitted_scores, stratify_options

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    scores = fitted_scores(md.read_h5mu(snakemake.input[0]))
    options = stratify_options(snakemake.params.stratify)
    settings = candidate_settings(len(scores), **{key: options[key] for key in
                                  ("algorithm", "k_values", "k", "min_cluster_sizes", "resolutions") if key in options})  # fmt: skip
    index = int(snakemake.wildcards.index)
    result = None  # duplicate HDBSCAN sizes on small cohorts leave fewer settings than jobs
    if index < len(settings):
        result = consensus_for_k(scores, settings[index], algorithm=options.get("algorithm", "kmeans"),
                                 n_resamples=options.get("n_resamples", 100), fraction=options.get("fraction", 0.8),
                                 seed=snakemake.params.seed)  # fmt: skip
    joblib.dump(result, snakemake.output[0])


run_step(snakemake.log[0], main, inputs=snakemake.input)

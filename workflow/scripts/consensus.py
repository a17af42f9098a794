import joblib
import mudata as md

from stratomics.parallel import in_processes
from stratomics.runner import run_step
from stratomics.stratify import candidate_settings, consensus_for_k
from stratomics.subgroups import fitted_scores, stratify_options

snakemake = snakemake  # noqa: F821 (injected by Snakemake)


def main():
    scores = fitted_scores(md.read_h5mu(snakemake.input[0]))
    options = stratify_options(snakemake.params.stratify)
    settings = candidate_settings(len(scores), **{key: options[key] for key in
                                  ("algorithm", "k_values", "k", "min_cluster_sizes", "resolutions") if key in options})  # fmt: skip
    tasks = [joblib.delayed(consensus_for_k)(scores, setting, algorithm=options.get("algorithm", "kmeans"),
                                             n_resamples=options.get("n_resamples", 100),
                                             fraction=options.get("fraction", 0.8), seed=snakemake.params.seed)
             for setting in settings[: len(snakemake.output)]]  # fmt: skip
    results = in_processes(tasks, n_jobs=min(snakemake.threads, max(len(tasks), 1)))
    results += [None] * (len(snakemake.output) - len(results))  # duplicate HDBSCAN sizes on small cohorts leave fewer settings
    for result, path in zip(results, snakemake.output):
        joblib.dump(result, path)


run_step(snakemake.log[0], main, inputs=snakemake.input)

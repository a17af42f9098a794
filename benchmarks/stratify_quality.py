"""Subgroup recovery on the demo cohort and integration + clustering time and memory at scale.

    python benchmarks/stratify_quality.py quality   # ARI against the planted endotypes
    python benchmarks/stratify_quality.py scale     # 1,000 / 10,000 / 100,000 patients

quality: simulates the 800-patient demo, preprocesses it, then reports the adjusted Rand index (ARI)
of the subgroups against the planted endotypes for the default integration, for MOFA+, SNF and
concatenated PCA (through the same consensus clustering), for a plain concatenated PCA + k-means on
complete patients (the naive baseline) and for each assay alone, on all patients and on those with every assay; then
again with 30% of patients stripped of RNA-seq and proteomics.
scale: synthetic assays (Olink-, cytokine- and flow-sized blocks, 4 groups, 20% of patients missing a
block), integration + consensus clustering (k = 2..6, 100 resamples), time and peak memory, each size
in its own process.
"""

from __future__ import annotations

import logging
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)


def subgroups(mdata, assays, *, n_resamples=50, **integrate_options):
    from stratomics.subgroups import integrate_and_stratify, subgroup_table

    integrate_and_stratify(mdata, assays, integrate_options=integrate_options,
                           stratify_options={"n_resamples": n_resamples}, seed=0)  # fmt: skip
    return subgroup_table(mdata).set_index("patient_id")


def concatenated_pca(mdata, assays, k):
    """The naive baseline: z-scored assays side by side (missing at 0), PCA, k-means, complete patients only."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    complete = sorted(set.intersection(*(set(mdata[a].obs_names) for a in assays)))
    blocks = [mdata[a][complete].X for a in assays]
    joined = np.hstack([np.nan_to_num((b - np.nanmean(b, 0)) / np.nanstd(b, 0)) for b in blocks])
    labels = KMeans(k, n_init=10, random_state=0).fit_predict(PCA(10, random_state=0).fit_transform(joined))
    return pd.Series(labels, index=complete)


def report(label, groups, truth):
    complete = groups["n_integrated_assays"] == groups["n_integrated_assays"].max()
    assigned = groups["subgroup"].notna()
    all_ari = adjusted_rand_score(truth[groups.index[assigned]], groups.loc[assigned, "subgroup"])
    complete_ari = adjusted_rand_score(truth[groups.index[complete]], groups.loc[complete, "subgroup"])
    k = groups["subgroup"].nunique()
    print(f"{label:<46} k={k}  ARI all patients {all_ari:5.2f} ({assigned.sum()})  "
          f"with every assay {complete_ari:5.2f} ({complete.sum()})", flush=True)


def quality():
    from stratomics.cohort import build_cohort
    from stratomics.config import read_config, validate_config
    from stratomics.preprocess import preprocess_cohort
    from stratomics.simulate import simulate_cohort

    assays = ["proteomics", "cytokines", "flow", "rna"]
    with tempfile.TemporaryDirectory() as folder:
        simulate_cohort(folder, seed=0)
        config = read_config("config.yaml")
        text = str(config).replace("results/demo", folder)
        config = validate_config(eval(text))  # the default config, pointed at this folder
        mdata = preprocess_cohort(build_cohort(config).mdata, config)
        truth = pd.read_csv(f"{folder}/ground_truth/endotypes.tsv", sep="\t", index_col=0)["endotype"]
    for label, subset in (("all assays", mdata), ("30% without RNA and proteomics", _strip(mdata, 0.3))):
        print(f"-- {label}")
        report("stratomics (MFA, missing blocks, consensus)", subgroups(subset, assays), truth)
        report("stratomics, integrate.method: mofa", subgroups(subset, assays, method="mofa"), truth)
        report("stratomics, integrate.method: snf", subgroups(subset, assays, method="snf"), truth)
        report("stratomics, integrate.method: concat_pca", subgroups(subset, assays, method="concat_pca"), truth)
        baseline = concatenated_pca(subset, assays, 4)
        print(f"{'concatenated PCA + k-means (complete only)':<46} k=4  ARI {adjusted_rand_score(truth[baseline.index], baseline):5.2f} ({len(baseline)})")
        for assay in assays:
            report(f"{assay} alone", subgroups(subset, [assay], n_resamples=20), truth)


def _strip(mdata, share):
    """A copy of the cohort where a random share of patients lost RNA-seq and proteomics."""
    import mudata as md

    rng = np.random.default_rng(1)
    lost = set(mdata.obs_names[rng.random(mdata.n_obs) < share])
    modalities = {name: (adata[~adata.obs_names.isin(lost)].copy() if name in ("rna", "proteomics") else adata)
                  for name, adata in mdata.mod.items()}  # fmt: skip
    stripped = md.MuData(modalities)
    stripped.obs = stripped.obs.join(mdata.obs[[c for c in mdata.obs.columns if ":" not in c]], how="left")
    return stripped


def scale_case(n: int):
    import anndata as ad
    import mudata as md

    rng = np.random.default_rng(0)
    groups = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])
    patients = pd.Index([f"p{i}" for i in range(n)])
    modalities = {"clinical": ad.AnnData(obs=pd.DataFrame(index=patients))}
    for name, n_features in (("proteomics", 276), ("cytokines", 20), ("flow", 18)):
        centres = rng.normal(0, 0.8, size=(4, n_features))
        values = (centres[groups] + rng.normal(size=(n, n_features))).astype(np.float32)
        present = rng.random(n) > 0.2
        modalities[name] = ad.AnnData(values[present], obs=pd.DataFrame(index=patients[present]))
    mdata = md.MuData(modalities)
    start = time.perf_counter()
    groups_found = subgroups(mdata, ["proteomics", "cytokines", "flow"], n_resamples=100)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    ari = adjusted_rand_score(groups, groups_found.loc[patients, "subgroup"].astype(str))
    print(f"{n:>7} patients: {seconds:7.1f} s, peak memory {peak:5.2f} GiB, k={groups_found['subgroup'].nunique()}, "
          f"ARI {ari:.2f}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--size"]:
        scale_case(int(sys.argv[2]))
    elif sys.argv[1:2] == ["scale"]:
        for n in (1_000, 10_000, 100_000):
            subprocess.run([sys.executable, __file__, "--size", str(n)], check=True)
    else:
        quality()

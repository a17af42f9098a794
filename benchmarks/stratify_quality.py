"""Subgroup recovery over a suite of simulated scenarios, and integration + clustering at scale.

    python benchmarks/stratify_quality.py suite [--seeds 3] [--patients 600] [--methods mofa,mfa,concat_pca]
    python benchmarks/stratify_quality.py scale     # 1,000 / 10,000 / 100,000 patients

suite: for each scenario of :data:`stratomics.simulate.SCENARIOS` (strong: the original demo;
realistic: 4 strong markers per endotype and assay at 0.6-1.0 SD plus 15% of features at 0.33-0.5 SD,
a CRP-linked inflammation axis and assay-specific nuisance factors on 40% of features, site
offsets, 10% more missing assays; weak, nuisance, missing: harder variants; no_structure: no endotype) and
each seed, the cohort is simulated, ingested and preprocessed with the default config (ComBat on
site), then every method runs through stratomics' integration and consensus clustering with its
automatic choice of k. Baselines on the same preprocessed assays, at the true k (an advantage the
methods do not get): each assay alone (z-scored, PCA, k-means; the best one is reported) and the
z-scored concatenation of every assay + PCA + k-means, as it is and with the covariates that
stratomics adjusts for (stratify.adjust_for) regressed out of every feature. Reported per scenario
and method: mean ARI against the planted endotypes on patients with every assay and on all
patients, the k chosen, and the calibration of the confidence (after matching subgroups to
endotypes): the expected calibration error (ECE, the patient-weighted mean of |accuracy - mean
confidence| over the bins 0-0.6-0.8-0.9-0.95-1) and the largest gap in a bin holding at least 5%
of the patients, with accuracy after one-to-one matching, and the ECE with accuracy meaning "in the
subgroup that holds most of the patient's endotype" (fair to a k that merges endotypes). One line
per run as it finishes, then the summary table, the reliability table (per confidence bin, all
patients and those placed from fewer assays than the fitted ones) and, for the latter, the share
placed in the largest subgroup against the share whose endotype belongs there (markdown).
scale: synthetic assays (Olink-, cytokine- and flow-sized blocks, 4 groups, 20% of patients missing
a block), integration + consensus clustering (k = 2..6, 100 resamples), time and peak memory, each
size in its own process.
"""

from __future__ import annotations

import argparse
import logging
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
ASSAYS = ["proteomics", "cytokines", "flow", "rna"]


def prepared_cohort(scenario: str, seed: int, n_patients: int):
    """The preprocessed cohort of one simulated scenario and its planted endotypes."""
    from stratomics.cohort import build_cohort
    from stratomics.config import read_config, validate_config
    from stratomics.preprocess import preprocess_cohort
    from stratomics.simulate import simulate_cohort

    with tempfile.TemporaryDirectory() as folder:
        simulate_cohort(folder, n_patients=n_patients, n_snps=200, n_genes=1000, scenario=scenario, seed=seed)
        config = read_config("config.yaml")
        config["cohort"].update({key: config["cohort"][key].replace("results/demo", folder)
                                 for key in ("samples", "sample_map")})  # fmt: skip
        for spec in config["assays"].values():
            spec.update({key: spec[key].replace("results/demo", folder) for key in ("path", "limits") if key in spec})
        config["enrichment"]["gene_sets"] = None  # the demo's gene sets are not simulated here
        config = validate_config(config)
        mdata = preprocess_cohort(build_cohort(config).mdata, config)
        truth = pd.read_csv(f"{folder}/ground_truth/endotypes.tsv", sep="\t", index_col=0)["endotype"]
    return mdata, truth, config


def stratomics_subgroups(mdata, config, method: str, seed: int, truth: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Subgroups found by stratomics with one integration method and the automatic k, and the
    model-selection table with the ARI (fitted patients) of every k, to compare rules for k offline."""
    from stratomics.config import resolve
    from stratomics.stratify import candidate_settings, choose, consensus_for_k
    from stratomics.subgroups import fitted_scores, integrate_cohort, store_subgroups, stratify_options, subgroup_table

    mdata = mdata.copy()
    integrate = {key: value for key, value in config["integrate"].items() if key != "assays"}
    options = {**stratify_options(config["stratify"]), "n_resamples": 50}
    integration, space = integrate_cohort(mdata, ASSAYS, integrate_options={**integrate, "method": method},
                                          fit_on=config["stratify"]["fit_on"], seed=seed,
                                          **resolve(config)["subgroup_space"])  # fmt: skip
    scores = fitted_scores(mdata)
    results = [consensus_for_k(scores, k, n_resamples=options["n_resamples"], seed=seed)
               for k in candidate_settings(len(scores), k_values=options["k_values"])]  # fmt: skip
    result, table = choose(results, scores, seed=seed)
    fitted = mdata.obs_names[mdata.obs["subgroup_fitted"].to_numpy(dtype=bool)]
    aris = [adjusted_rand_score(truth[fitted], r.final_labels(scores)) for r in results]
    table["ari_fitted"] = [0.0] * (len(table) - len(results)) + aris  # a k = 1 row comes first (no structure)
    store_subgroups(mdata, result, table, integration=integration, space=space)
    return subgroup_table(mdata).set_index("patient_id"), table


def kmeans_on_pca(blocks: list[np.ndarray], k: int, seed: int, design: np.ndarray | None = None) -> np.ndarray:
    """z-score each block (missing at 0), join, optionally regress the design out, PCA (10 components), k-means."""
    joined = np.hstack([np.nan_to_num((b - np.nanmean(b, 0)) / np.nanstd(b, 0)) for b in blocks])
    if design is not None:
        joined -= design @ np.linalg.lstsq(design, joined, rcond=None)[0]
    components = min(10, *joined.shape)
    scores = PCA(components, random_state=seed).fit_transform(joined)
    return KMeans(k, n_init=10, random_state=seed).fit_predict(scores)


def baselines(mdata, truth: pd.Series, seed: int, adjust_for: list[str]) -> dict[str, float]:
    """ARI (patients with every assay) of the best single assay and of the concatenation (as it is, and
    with the covariates regressed out of every feature), at the true k."""
    from stratomics.subgroup_space import fit_subgroup_space

    k = truth.nunique()
    complete = sorted(set.intersection(*(set(mdata[a].obs_names) for a in ASSAYS)))
    blocks = [np.asarray(mdata[a][complete].X) for a in ASSAYS]
    obs = mdata.obs.loc[complete]
    design = fit_subgroup_space(np.zeros((len(complete), 1)), obs, adjust_for, select=False)[0].design(obs)
    concatenated = kmeans_on_pca(blocks, k, seed)
    adjusted = kmeans_on_pca(blocks, k, seed, design)
    single = {}
    for assay in ASSAYS:
        patients = mdata[assay].obs_names
        labels = pd.Series(kmeans_on_pca([np.asarray(mdata[assay].X)], k, seed), index=patients)
        single[assay] = adjusted_rand_score(truth[complete], labels[complete])
    return {"concatenation + PCA + k-means (true k)": adjusted_rand_score(truth[complete], concatenated),
            "covariate-adjusted concatenation + PCA + k-means (true k)": adjusted_rand_score(truth[complete], adjusted),
            "best single assay (true k)": max(single.values())}  # fmt: skip


CONFIDENCE_BINS = [0, 0.6, 0.8, 0.9, 0.95, 1.0]


def correctness(labels: pd.Series, true: pd.Series) -> pd.DataFrame:
    """Whether each patient is in the right subgroup, two ways: ``matched`` after one-to-one matching of
    subgroups to endotypes (Hungarian; an endotype without a subgroup of its own is wrong), and
    ``endotype_subgroup``: in the subgroup that holds most of the patient's endotype (a subgroup that
    merges two endotypes is the right place for both; the chosen k is judged apart)."""
    table = pd.crosstab(labels, true)
    rows, columns = linear_sum_assignment(-table.to_numpy())
    match = dict(zip(table.index[rows], table.columns[columns]))
    home = table.idxmax(axis=0)  # endotype -> the subgroup holding most of it
    return pd.DataFrame({"matched": labels.map(match).eq(true), "endotype_subgroup": true.map(home).eq(labels)})


def calibration_error(correct: pd.Series, confidence: pd.Series) -> tuple[float, float]:
    """ECE (patient-weighted mean |accuracy - mean confidence| over :data:`CONFIDENCE_BINS`) and the
    largest gap in a bin holding at least 5% of the patients."""
    bins = pd.cut(confidence, CONFIDENCE_BINS, include_lowest=True)
    gaps = (correct.groupby(bins, observed=True).mean() - confidence.groupby(bins, observed=True).mean()).abs()
    shares = bins.value_counts(normalize=True).reindex(gaps.index)
    return float((gaps * shares).sum()), float(gaps[shares >= 0.05].max())


def recovery(groups: pd.DataFrame, truth: pd.Series) -> tuple[dict, pd.DataFrame]:
    """ARI on complete and on all assigned patients, k, and the calibration of the confidence; and per
    assigned patient: confidence, number of assays, whether fitted, both kinds of correctness."""
    assigned = groups["subgroup"].notna()
    complete = assigned & (groups["n_integrated_assays"] == len(ASSAYS))
    labels, true = groups.loc[assigned, "subgroup"].astype(str), truth[groups.index[assigned]]
    patients = groups.loc[assigned, ["confidence", "n_integrated_assays", "fitted"]].join(correctness(labels, true))
    patients["subgroup"], patients["endotype"] = labels, true
    found = {"ari_complete": adjusted_rand_score(truth[groups.index[complete]], groups.loc[complete, "subgroup"]),
             "ari_all": adjusted_rand_score(true, labels), "k": int(groups["subgroup"].nunique())}  # fmt: skip
    if truth.nunique() > 1:
        found["ece"], found["largest_bin_gap"] = calibration_error(patients["matched"], patients["confidence"])
        found["ece_endotype_subgroup"], _ = calibration_error(patients["endotype_subgroup"], patients["confidence"])
    return found, patients


def reliability(patients: pd.DataFrame) -> pd.DataFrame:
    """Reliability table per scenario, method and confidence bin (all seeds pooled): patients, mean
    confidence, accuracy both ways; and, for patients placed from fewer assays than the fitted ones,
    the same per bin (``few_assays``)."""
    patients = patients.assign(bin=pd.cut(patients["confidence"], CONFIDENCE_BINS, include_lowest=True).astype(str))
    tables = []
    for name, subset in (("all", patients), ("few_assays", patients[~patients["fitted"]])):
        table = subset.groupby(["scenario", "method", "bin"], sort=False).agg(
            patients=("confidence", "size"), mean_confidence=("confidence", "mean"),
            accuracy_matched=("matched", "mean"), accuracy_endotype_subgroup=("endotype_subgroup", "mean"))
        tables.append(table.reset_index().assign(patients_of=name))
    return pd.concat(tables, ignore_index=True)


def pull_to_largest(patients: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and method: of the patients placed from fewer assays, the share placed in the largest
    subgroup and the share whose endotype's subgroup is the largest (equal when nobody is pulled)."""
    rows = []
    for (scenario, method, seed), run in patients.groupby(["scenario", "method", "seed"], sort=False):
        largest = run.loc[run["fitted"], "subgroup"].value_counts().idxmax()
        home = pd.crosstab(run["subgroup"], run["endotype"]).idxmax(axis=0)
        few = run[~run["fitted"]]
        rows.append({"scenario": scenario, "method": method, "seed": seed, "placed_patients": len(few),
                     "placed_in_largest": few["subgroup"].eq(largest).mean(),
                     "endotype_in_largest": few["endotype"].map(home).eq(largest).mean()})  # fmt: skip
    runs = pd.DataFrame(rows).drop(columns="seed")
    return runs.groupby(["scenario", "method"], sort=False).mean().reset_index()


def suite(seeds: int, n_patients: int, methods: list[str], scenarios: list[str]):
    """Every run's recovery (one row per scenario, seed and method), model-selection tables and the
    assigned patients of the scenarios with structure (for the reliability tables)."""
    from stratomics.config import resolve

    rows, selections, placed = [], [], []
    for scenario in scenarios:
        for seed in range(seeds):
            mdata, truth, config = prepared_cohort(scenario, seed, n_patients)
            if scenario == "no_structure":  # no endotype: the right answer is one group
                truth = pd.Series("E0", index=truth.index)
            for method in methods:
                start = time.perf_counter()
                groups, selection = stratomics_subgroups(mdata, config, method, seed, truth)
                selections.append(selection.assign(scenario=scenario, seed=seed, method=method))
                found, patients = recovery(groups, truth)
                if scenario != "no_structure":
                    placed.append(patients.assign(scenario=scenario, seed=seed, method=f"stratomics {method}"))
                rows.append({"scenario": scenario, "seed": seed, "method": f"stratomics {method}", **found,
                             "seconds": time.perf_counter() - start})  # fmt: skip
                print(rows[-1], flush=True)
            if scenario != "no_structure":
                adjust_for = resolve(config)["subgroup_space"]["adjust_for"]
                for name, ari in baselines(mdata, truth, seed, adjust_for).items():
                    rows.append({"scenario": scenario, "seed": seed, "method": name, "ari_complete": ari,
                                 "k": truth.nunique()})  # fmt: skip
                    print(rows[-1], flush=True)
    placed = pd.concat(placed) if placed else pd.DataFrame()
    return pd.DataFrame(rows), pd.concat(selections, ignore_index=True), placed


def summary(results: pd.DataFrame) -> str:
    """Mean ARI (complete patients) per scenario and method, with the k chosen in each seed."""
    grouped = results.groupby(["scenario", "method"], sort=False)
    table = grouped.agg(ari_complete=("ari_complete", "mean"), ari_all=("ari_all", "mean"),
                        k=("k", lambda k: "/".join(map(str, k))),
                        ece=("ece", "mean"), largest_bin_gap=("largest_bin_gap", "mean"),
                        ece_endotype_subgroup=("ece_endotype_subgroup", "mean")).reset_index()  # fmt: skip
    return table.to_markdown(index=False, floatfmt=".2f")


def scale_case(n: int):
    import anndata as ad
    import mudata as md

    from stratomics.subgroups import integrate_and_stratify, subgroup_table

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
    integrate_and_stratify(mdata, ["proteomics", "cytokines", "flow"], integrate_options={"method": "mfa"},
                           stratify_options={"n_resamples": 100, "k_values": range(2, 7)}, seed=0)  # fmt: skip
    found = subgroup_table(mdata).set_index("patient_id")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    ari = adjusted_rand_score(groups, found.loc[patients, "subgroup"].astype(str))
    print(f"{n:>7} patients: {seconds:7.1f} s, peak memory {peak:5.2f} GiB, k={found['subgroup'].nunique()}, "
          f"ARI {ari:.2f}", flush=True)


def main():
    from stratomics.simulate import SCENARIOS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["suite", "scale", "size"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--patients", type=int, default=600)
    parser.add_argument("--methods", default="mofa,mfa,concat_pca")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--out", default=None, help="also write every run as a TSV (and next to it the "
                        "model-selection tables, *_model_selection.tsv, and the assigned patients with their "
                        "confidence and correctness, *_patients.tsv)")
    args = parser.parse_args()
    if args.mode == "size":
        scale_case(args.size)
    elif args.mode == "scale":
        for n in (1_000, 10_000, 100_000):
            subprocess.run([sys.executable, __file__, "size", "--size", str(n)], check=True)
    else:
        results, selections, placed = suite(args.seeds, args.patients, args.methods.split(","),
                                            args.scenarios.split(","))  # fmt: skip
        if args.out:
            results.to_csv(args.out, sep="\t", index=False, float_format="%.4g")
            selections.to_csv(args.out.removesuffix(".tsv") + "_model_selection.tsv", sep="\t", index=False,
                              float_format="%.4g")  # fmt: skip
            placed.to_csv(args.out.removesuffix(".tsv") + "_patients.tsv", sep="\t", float_format="%.4g")
        print(summary(results))
        if not placed.empty:
            print(reliability(placed).to_markdown(index=False, floatfmt=".2f"))
            print(pull_to_largest(placed).to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()

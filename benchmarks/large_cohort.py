"""The whole workflow on a large cohort with one small assay: does it finish, and where does the time go?

The "any cohort" configuration matrix's large case (too slow for CI): ``--patients`` patients
(default 5,000) at 3 sites, one table assay of ``--features`` features (default 20) measured on 85%
of them, two planted groups that shift a quarter of the features by 1 SD, a binary and a survival
outcome, the default config otherwise (MOFA+, consensus clustering, prediction). Prints the
snakemake exit status, the chosen k and the ARI against the planted groups (the same data through
z-score + PCA + k-means at the true k as the naive baseline), then each rule's run time and peak
memory from Snakemake's benchmark records, slowest first.

    python benchmarks/large_cohort.py [--patients 5000] [--features 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parents[1]


def write_cohort(folder: Path, n: int, n_features: int, seed: int = 0, predict_models=None) -> tuple[dict, pd.Series]:
    """Sample sheet, assay file and config of the large cohort; the config and the planted groups."""
    rng = np.random.default_rng(seed)
    patients = pd.Index([f"P{i:06d}" for i in range(n)], name="patient_id")
    group = pd.Series(rng.integers(0, 2, n), index=patients)
    site = rng.choice(["A", "B", "C"], n)
    risk = 0.5 * group.to_numpy()
    sheet = pd.DataFrame({"site": site, "age": rng.normal(50, 12, n).round(), "sex": rng.choice(["F", "M"], n),
                          "failure_12m": (rng.random(n) < 1 / (1 + np.exp(1 - risk))).astype(int),
                          "days": rng.exponential(700 * np.exp(-risk)).round() + 1,
                          "switched": (rng.random(n) < 0.6).astype(int)}, index=patients)  # fmt: skip
    sheet.to_csv(folder / "sheet.csv")
    values = rng.normal(size=(n, n_features)) + np.outer(group, np.arange(n_features) < n_features // 4)
    values += np.where(site == "B", 0.3, 0.0)[:, None]
    measured = rng.random(n) < 0.85
    assay = pd.DataFrame(values, index=patients, columns=[f"F{j}" for j in range(n_features)])[measured]
    assay.to_csv(folder / "assay.csv")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config.pop("demo", None)
    config["cohort"] = {"samples": str(folder / "sheet.csv"), "batch": "site", "covariates": ["age", "sex"],
                        "outcomes": {"failure_12m": {"type": "binary"},
                                     "time_to_switch": {"type": "survival", "time": "days", "event": "switched"}}}  # fmt: skip
    config["assays"] = {"labs": {"kind": "table", "path": str(folder / "assay.csv")}}
    config["associate"] = {key: value for key, value in config.get("associate", {}).items()
                           if key not in ("marker_groups", "treatment_heterogeneity")}  # no treatment column
    config["enrichment"] = {**config.get("enrichment", {}), "gene_sets": None}  # no genes
    config["predict"] = {key: value for key, value in config.get("predict", {}).items() if key != "clinical"}
    if predict_models:
        config["predict"]["models"] = predict_models
    return config, group


def baseline_ari(assay_path: Path, group: pd.Series, seed: int = 0) -> float:
    """z-score + PCA + k-means (k = 2) on the assay's patients, against the planted groups."""
    values = pd.read_csv(assay_path, index_col=0)
    scaled = (values - values.mean()) / values.std()
    scores = PCA(n_components=min(10, values.shape[1]), random_state=seed).fit_transform(scaled)
    labels = KMeans(2, n_init=10, random_state=seed).fit_predict(scores)
    return adjusted_rand_score(group[values.index], labels)


def rule_times(results: Path) -> pd.DataFrame:
    """Run time (s) and peak memory (MB) of every job from Snakemake's benchmark records."""
    rows = [pd.read_csv(path, sep="\t").iloc[0].rename(path.stem) for path in (results / "benchmarks").glob("*.tsv")]
    return pd.DataFrame(rows)[["s", "max_rss"]].sort_values("s", ascending=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--cores", default="2")
    parser.add_argument("--predict-models", nargs="+", help="instead of the config's predict.models (survival "
                        "gradient boosting grows ~n^2: about an hour at 5,000 patients on 2 cores)")
    parser.add_argument("--out", type=Path, help="keep the run here (default: a temporary folder)")
    args = parser.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="large_cohort_"))
    folder.mkdir(parents=True, exist_ok=True)
    config, group = write_cohort(folder, args.patients, args.features, predict_models=args.predict_models)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(folder),
               "--cores", args.cores, "--configfile", str(folder / "config.yaml")]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    print(f"{args.patients} patients x {args.features} features, {args.cores} cores: snakemake exit "
          f"{result.returncode} in {elapsed:.0f} s ({folder})")  # fmt: skip
    if result.returncode != 0:
        print(result.stderr[-3000:])
    clusters = folder / "results/stratify/clusters.tsv"
    if clusters.exists():
        table = pd.read_csv(clusters, sep="\t", index_col="patient_id").query("fitted")
        ari = adjusted_rand_score(group[table.index], table["subgroup"].astype(str))
        print(f"stratomics: k = {table['subgroup'].nunique()}, ARI {ari:.2f} on {len(table)} fitted patients; "
              f"baseline z-score + PCA + k-means (k = 2): ARI {baseline_ari(folder / 'assay.csv', group):.2f}")  # fmt: skip
    if (folder / "results/benchmarks").exists():
        print(rule_times(folder / "results").to_string(float_format=lambda x: f"{x:.1f}"))


if __name__ == "__main__":
    main()

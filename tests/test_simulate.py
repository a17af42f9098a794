"""The demo cohort: reproducible, realistic proportions, planted structure that needs integration."""

import filecmp

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from conftest import demo_config
from stratomics.cohort import build_cohort
from stratomics.config import validate_config
from stratomics.preprocess import preprocess_cohort
from stratomics.omop import CDM_TABLES, connect, query
from stratomics.simulate import DEMO_FILES, ENDOTYPES, simulate_cohort


def test_same_seed_writes_byte_identical_files(tmp_path):
    for folder in ("a", "b"):
        simulate_cohort(tmp_path / folder, n_patients=40, n_snps=200, n_genes=60, seed=5)
    for name in DEMO_FILES.values():
        if name.endswith(".duckdb"):  # a DuckDB file is not byte-stable: its tables are compared
            continue
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), name
    for table in CDM_TABLES:
        contents = [query(connect(str(tmp_path / run / DEMO_FILES["omop_cdm"])), f"SELECT * FROM {table}")
                    for run in ("a", "b")]  # fmt: skip
        assert len(contents[0]) > 0, table
        pd.testing.assert_frame_equal(*contents)
    simulate_cohort(tmp_path / "c", n_patients=40, n_snps=200, n_genes=60, seed=6)
    assert not filecmp.cmp(tmp_path / "a" / "samples.csv", tmp_path / "c" / "samples.csv", shallow=False)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo400")
    simulate_cohort(folder, n_patients=400, n_snps=300, n_genes=800, seed=11)
    config = validate_config(demo_config(folder))
    config["preprocess"] = {"batch_correction": "combat", "combat_covariates": []}
    return folder, config


def test_cohort_has_the_expected_clinical_make_up(cohort):
    folder, _ = cohort
    sheet = pd.read_csv(folder / "samples.csv")
    truth = pd.read_csv(folder / "ground_truth/endotypes.tsv", sep="\t")
    assert sheet["site"].nunique() == 4 and set(sheet["disease"]) == {"IBD", "RA", "MS"}
    assert 0.3 < sheet["failure_12m"].mean() < 0.5
    assert sheet[["bmi", "smoking", "crp_mg_l", "failure_12m"]].isna().any().all()
    sizes = truth["endotype"].value_counts(normalize=True)
    assert set(sizes.index) == set(ENDOTYPES) and sizes.max() > 2 * sizes.min()
    by_disease = pd.crosstab(sheet["disease"], truth["endotype"])
    assert (by_disease > 0).all().all()  # endotypes are shared across diseases
    rna_samples = pd.read_csv(folder / "rna_counts.tsv", sep="\t", nrows=1).shape[1] - 2
    assert 0.6 < rna_samples / len(sheet) < 0.8


def test_planted_features_exist_in_the_files(cohort):
    folder, config = cohort
    planted = pd.read_csv(folder / "ground_truth/planted_features.tsv", sep="\t")
    raw = build_cohort(config).mdata
    for assay, rows in planted.groupby("assay"):
        scored = config["assays"][assay].get("instruments", {})  # a questionnaire's features are its scores
        assert set(rows["feature"].astype(str)) <= set(scored or raw[assay].var_names), assay
    assert set(planted["effect_on"]) >= {f"endotype {e}" for e in ENDOTYPES} | {"risk_factor"}


def kmeans_ari(blocks: list[np.ndarray], truth: np.ndarray) -> float:
    """ARI of 4-means on the first principal components of standardised, block-weighted data."""
    weighted = []
    for block in blocks:
        scaled = np.nan_to_num((block - np.nanmean(block, 0)) / np.nanstd(block, 0))
        weighted.append(scaled / np.linalg.svd(scaled, compute_uv=False)[0])
    scores = PCA(10, random_state=0).fit_transform(np.hstack(weighted))
    labels = KMeans(4, n_init=20, random_state=0).fit_predict(scores)
    return adjusted_rand_score(truth, labels)


def test_no_single_assay_recovers_the_endotypes_but_together_they_do(cohort):
    folder, config = cohort
    mdata = preprocess_cohort(build_cohort(config).mdata, config)
    truth = pd.read_csv(folder / "ground_truth/endotypes.tsv", sep="\t", index_col=0)["endotype"]
    assays = ["proteomics", "cytokines", "flow", "rna"]
    complete = sorted(set.intersection(*(set(mdata[a].obs_names) for a in assays)))
    blocks = [mdata[a][complete].X for a in assays]
    single = [kmeans_ari([block], truth[complete]) for block in blocks]
    together = kmeans_ari(blocks, truth[complete])
    assert max(single) < 0.65 and together > 0.9, (single, together)

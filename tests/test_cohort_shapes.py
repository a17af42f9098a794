"""The workflow end to end on cohorts shaped unlike the demo (issue: any cohort, not just the demo's shape).

Each case is a small simulated cohort written as a user would bring it, with its own config; the
run must finish and write the outputs its config implies, and only those.
"""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_helpers import ROOT

from stratomics.marker_validation import HELD_OUT

FAST = {
    "integrate": {"method": "mfa"},
    "stratify": {"k_max": 4, "n_resamples": 10, "n_permutations": 20},
    "predict": {"models": ["elastic_net"], "n_repeats": 1, "n_bootstrap": 50, "n_features": 10},
}


def run_cohort(folder, config: dict, *targets: str) -> subprocess.CompletedProcess:
    """Run the workflow on ``config`` (written to folder/config.yaml) in ``folder``."""
    (folder / "config.yaml").write_text(yaml.safe_dump({**FAST, **config}))
    command = [sys.executable, "-m", "snakemake", *targets, "--snakefile", str(ROOT / "Snakefile"), "--directory",
               str(folder), "--cores", "2", "--configfile", str(folder / "config.yaml")]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def other_disease_area(folder, n: int = 60, seed: int = 0) -> dict:
    """A cancer-like cohort: no site, no genotypes, no demo column; survival only; expression next to
    gene-level copy number (shared gene names) and binary mutations."""
    rng = np.random.default_rng(seed)
    patients = [f"TCGA-{i:03d}" for i in range(n)]
    group = rng.integers(0, 2, n)
    sheet = pd.DataFrame({"patient_id": patients, "age": rng.normal(60, 10, n).round(),
                          "stage": rng.choice(["I", "II", "III"], n),
                          "os_days": rng.exponential(900 / (1 + group), n).round() + 1,
                          "dead": rng.integers(0, 2, n)})  # fmt: skip
    sheet.to_csv(folder / "clinical.csv", index=False)
    genes = [f"GENE{j}" for j in range(40)]
    expression = rng.normal(8, 1, (n, 40)) + 1.5 * group[:, None] * (np.arange(40) < 8)
    pd.DataFrame(expression, index=pd.Index(patients, name="patient_id"), columns=genes).to_csv(folder / "expr.csv")
    copy_number = pd.DataFrame(rng.normal(0, 0.3, (n, 30)), index=pd.Index(patients, name="patient_id"),
                               columns=genes[:30])  # fmt: skip
    copy_number.iloc[:50].to_csv(folder / "cnv.csv")  # not every patient has every assay
    mutations = pd.DataFrame((rng.random((n, 6)) < 0.2).astype(int), index=pd.Index(patients, name="patient_id"),
                             columns=[f"MUT{j}" for j in range(5)] + ["NEVER"])  # fmt: skip
    mutations["NEVER"] = 0
    mutations.to_csv(folder / "mutations.csv")
    return {
        "cohort": {"samples": str(folder / "clinical.csv"), "covariates": ["age"],
                   "outcomes": {"os": {"type": "survival", "time": "os_days", "event": "dead"}}},
        "assays": {"expr": {"kind": "table", "path": str(folder / "expr.csv"), "scale": "none"},
                   "cnv": {"kind": "table", "path": str(folder / "cnv.csv")},
                   "mutations": {"kind": "table", "path": str(folder / "mutations.csv")}},
        "associate": {"marker_groups": ["stage"], "marker_holdout": 0.3},
        "stratify": {**FAST["stratify"], "k": 2},  # the rule finds no structure in 60 patients; markers need 2
        "table1": {"columns": ["age", "stage"]},
    }  # fmt: skip


@pytest.fixture(scope="module")
def other_area_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("other_area")
    result = run_cohort(folder, other_disease_area(folder))
    assert result.returncode == 0, result.stderr[-4000:]
    return folder / "results"


def test_a_cohort_without_site_genotypes_or_demo_columns_runs_end_to_end(other_area_run):
    results = other_area_run
    clusters = pd.read_csv(results / "stratify/clusters.tsv", sep="\t")
    assert len(clusters) == 60 and clusters["subgroup"].notna().all()
    assert not (results / "associate/genotypes.tsv").exists()  # nothing to scan
    assert not (results / "stratify/site_stability.tsv").exists()  # no site to leave out
    assert (results / "figures/km_os.png").read_bytes()[:4] == b"\x89PNG"
    performance = pd.read_csv(results / "predict/performance.tsv", sep="\t")
    assert set(performance["outcome"]) == {"os"}
    table1 = pd.read_csv(results / "stratify/table1.tsv", sep="\t")
    assert {"age", "stage", "os"} <= set(table1["characteristic"])


def test_shared_feature_names_and_binary_features_are_kept_apart(other_area_run):
    biomarkers = pd.read_csv(other_area_run / "associate/biomarkers.tsv", sep="\t")
    features = set(biomarkers["feature"])
    assert {"expr:GENE0", "cnv:GENE0", "GENE35", "MUT0"} <= features
    removed = pd.read_csv(other_area_run / "qc/preprocess_removed.tsv", sep="\t")
    assert removed.set_index("id").loc["NEVER", "reason"] == "constant across samples"
    markers = pd.read_csv(other_area_run / "associate/markers.tsv", sep="\t")
    assert markers["outcome_or_contrast"].str.startswith("stage: ").any()


def test_subgroup_markers_are_tested_on_held_out_patients_when_asked(other_area_run):
    held = pd.read_csv(other_area_run / "associate/markers_held_out.tsv", sep="\t")
    descriptive = pd.read_csv(other_area_run / "associate/markers.tsv", sep="\t")
    subgroup_rows = descriptive[descriptive["outcome_or_contrast"].str.startswith("subgroup: ")]
    assert len(held) > 0 and (held["note"] == HELD_OUT).all() and held["q_value"].notna().all()
    assert set(held["assay"]) == set(subgroup_rows["assay"])  # each assay has two others to assign by
    assert set(held["outcome_or_contrast"]) <= set(subgroup_rows["outcome_or_contrast"])
    assert held["n"].max() <= round(0.3 * 60) + 2  # only held-out patients (the split is drawn per subgroup)


def write_plink(prefix, genotypes: np.ndarray, patients: list[str], *, chromosome: str, spacing: int, alleles) -> None:
    """PLINK 1 files of patients x SNPs dosages (FID = IID = patient ID; SNPs rs0, rs1, ... ``spacing`` bp apart)."""
    from bed_reader import to_bed

    n_snps = genotypes.shape[1]
    to_bed(f"{prefix}.bed", genotypes, properties={"fid": patients, "iid": patients, "chromosome": [chromosome] * n_snps,
           "sid": [f"rs{j}" for j in range(n_snps)], "bp_position": np.arange(n_snps) * spacing + 1,
           "allele_1": [alleles[0]] * n_snps, "allele_2": [alleles[1]] * n_snps}, count_A1=True)  # fmt: skip


def one_site_with_genotypes(folder, n: int = 60, seed: int = 1) -> dict:
    """One site (the batch has a single level), a binary and a continuous outcome, lab values and
    PLINK genotypes whose IIDs are the patient IDs."""
    rng = np.random.default_rng(seed)
    patients = [f"P{i:03d}" for i in range(n)]
    sheet = pd.DataFrame({"patient_id": patients, "centre": "ONLY", "age": rng.normal(45, 12, n).round(),
                          "response": rng.integers(0, 2, n), "crp": rng.lognormal(1, 0.6, n).round(2)})  # fmt: skip
    sheet.to_csv(folder / "sheet.csv", index=False)
    labs = pd.DataFrame(rng.normal(size=(n, 15)), index=pd.Index(patients, name="patient_id"),
                        columns=[f"LAB{j}" for j in range(15)])  # fmt: skip
    labs.to_csv(folder / "labs.csv")
    genotypes = rng.binomial(2, rng.uniform(0.1, 0.5, 120), size=(n, 120)).astype(np.float32)
    write_plink(folder / "geno", genotypes, patients, chromosome="1", spacing=1000, alleles=("A", "G"))
    return {
        "cohort": {"samples": str(folder / "sheet.csv"), "covariates": ["age"], "batch": "centre",
                   "outcomes": {"response": {"type": "binary"}, "crp": {"type": "continuous"}}},
        "assays": {"labs": {"kind": "table", "path": str(folder / "labs.csv")},
                   "geno": {"kind": "genotypes", "path": str(folder / "geno")}},
        "preprocess": {"batch_correction": "combat"},
        "associate": {"genotype_chunks": 2},
    }  # fmt: skip


def test_one_site_binary_and_continuous_outcomes_with_genotypes_runs_end_to_end(tmp_path):
    result = run_cohort(tmp_path, one_site_with_genotypes(tmp_path))
    assert result.returncode == 0, result.stderr[-4000:]
    results = tmp_path / "results"
    scan = pd.read_csv(results / "associate/genotypes.tsv", sep="\t")
    assert set(scan["outcome_or_contrast"]) == {"response", "crp"} and scan["p_value"].between(0, 1).all()
    biomarkers = pd.read_csv(results / "associate/biomarkers.tsv", sep="\t")
    assert set(biomarkers["model"]) == {"logistic", "linear"}
    performance = pd.read_csv(results / "predict/performance.tsv", sep="\t")
    assert set(performance["outcome"]) == {"response"}  # a continuous outcome is not predicted
    assert not performance["validation"].str.startswith("loso").any()  # one site: nothing to leave out
    stability = pd.read_csv(results / "stratify/site_stability.tsv", sep="\t")
    assert stability["ari"].isna().all() and stability["note"].str.startswith("one ").all()


def public_breast_cancer(folder) -> dict:
    """A real public cohort of another disease area, as a user would bring it: the breast-cancer data
    shipped with scikit-survival (198 node-negative patients of GSE7390, Desmedt et al., Clin Cancer
    Res 2007: 76 genes on Affymetrix log2 scale, age, ER status, grade, tumour size, time to distant
    metastasis). One assay, no site, no genotypes."""
    from sksurv.datasets import load_breast_cancer

    features, outcome = load_breast_cancer()
    patients = pd.Index([f"GSE7390_{i:03d}" for i in range(len(features))], name="patient_id")
    clinical = features[["age", "er", "grade", "size"]].set_axis(patients)
    clinical = clinical.assign(metastasis=outcome["e.tdm"].astype(int), years_to_metastasis=outcome["t.tdm"] / 365.25)
    clinical.to_csv(folder / "clinical.csv")
    features.drop(columns=["age", "er", "grade", "size"]).set_axis(patients).to_csv(folder / "expression.csv")
    return {
        "cohort": {"samples": str(folder / "clinical.csv"), "covariates": ["age"],
                   "outcomes": {"metastasis": {"type": "survival", "time": "years_to_metastasis",
                                               "event": "metastasis"}}},
        "assays": {"expression": {"kind": "table", "path": str(folder / "expression.csv"), "scale": "none"}},
        "associate": {"marker_groups": ["er"]},
        "table1": {"columns": ["age", "er", "grade", "size"]},
        "figures": {"colour_by": ["er", "grade"]},
    }  # fmt: skip


def test_a_real_public_cohort_with_one_assay_runs_end_to_end(tmp_path):
    result = run_cohort(tmp_path, public_breast_cancer(tmp_path))
    assert result.returncode == 0, result.stderr[-4000:]
    results = tmp_path / "results"
    clusters = pd.read_csv(results / "stratify/clusters.tsv", sep="\t")
    assert len(clusters) == 198 and clusters["subgroup"].notna().all()
    biomarkers = pd.read_csv(results / "associate/biomarkers.tsv", sep="\t")
    assert len(biomarkers) == 76 and set(biomarkers["model"]) == {"cox"}
    markers = pd.read_csv(results / "associate/markers.tsv", sep="\t")
    # ER status is the strongest axis of breast-cancer expression (21 of the 76 genes differ at t-test p < 0.001)
    assert (markers["q_value"] < 0.05).sum() >= 10
    table1 = pd.read_csv(results / "stratify/table1.tsv", sep="\t")
    assert {"age", "er", "grade", "size", "metastasis"} <= set(table1["characteristic"])
    assert (results / "figures/km_metastasis.png").read_bytes()[:4] == b"\x89PNG"


def small_sites_genotypes_only(folder, n: int = 40, seed: int = 2) -> dict:
    """40 patients at 3 sites (11, 14, 15), PLINK genotypes as the only assay, a survival outcome
    with few events and a continuous outcome: a small GWAS-like cohort."""
    rng = np.random.default_rng(seed)
    patients = [f"S{i:02d}" for i in range(n)]
    genotypes = rng.binomial(2, rng.uniform(0.15, 0.5, 80), size=(n, 80)).astype(np.float32)
    sheet = pd.DataFrame({"patient_id": patients, "site": ["A"] * 11 + ["B"] * 14 + ["C"] * 15,
                          "age": rng.normal(50, 10, n).round(), "das28": rng.normal(4, 1, n).round(2) + genotypes[:, 0],
                          "months": rng.uniform(1, 24, n).round(1), "switched": (rng.random(n) < 0.2).astype(int)})  # fmt: skip
    sheet.to_csv(folder / "sheet.csv", index=False)
    write_plink(folder / "geno", genotypes, patients, chromosome="2", spacing=500, alleles=("T", "C"))
    return {
        "cohort": {"samples": str(folder / "sheet.csv"), "covariates": ["age"], "batch": "site",
                   "outcomes": {"switch": {"type": "survival", "time": "months", "event": "switched"},
                                "das28": {"type": "continuous"}}},
        "assays": {"geno": {"kind": "genotypes", "path": str(folder / "geno"), "min_maf": 0.05}},
    }  # fmt: skip


def test_a_small_genotypes_only_cohort_at_three_sites_runs_end_to_end(tmp_path):
    result = run_cohort(tmp_path, small_sites_genotypes_only(tmp_path))
    assert result.returncode == 0, result.stderr[-4000:]
    results = tmp_path / "results"
    scan = pd.read_csv(results / "associate/genotypes.tsv", sep="\t")
    assert set(scan["outcome_or_contrast"]) == {"switch", "das28"}
    das28 = scan[scan["outcome_or_contrast"] == "das28"].set_index("feature")
    assert das28.loc["rs0", "p_value"] == das28["p_value"].min()  # the planted SNP
    assert "no assay to integrate" in result.stderr and "not applicable" in result.stderr
    assert not (results / "stratify").exists() and not (results / "associate/biomarkers.tsv").exists()
    assert (results / "provenance.json").exists() and (results / "qc/geno_qc.png").exists()


def continuous_outcome_only(folder, n: int = 70, seed: int = 4) -> dict:
    """Only a continuous outcome, a covariate whose name is not an identifier, visits spelt
    'Baseline', and a second assay measured on 3 patients."""
    rng = np.random.default_rng(seed)
    patients = [f"R{i:02d}" for i in range(n)]
    group = rng.integers(0, 2, n)
    sheet = pd.DataFrame({"patient_id": patients, "age": rng.normal(50, 10, n).round(),
                          "crp (mg/L)": rng.gamma(2, 4, n).round(1),
                          "das28": (rng.normal(4, 0.5, n) + 1.5 * group).round(2)})  # fmt: skip
    sheet.to_csv(folder / "sheet.csv", index=False)
    labs = pd.DataFrame(rng.normal(0, 1, (n, 30)) + 2.0 * group[:, None] * (np.arange(30) < 6),
                        index=pd.Index([f"L-{p}" for p in patients], name="sample_id"),
                        columns=[f"marker{j}" for j in range(30)])  # fmt: skip
    labs.to_csv(folder / "labs.csv")
    pd.DataFrame(rng.normal(size=(3, 4)), index=pd.Index(patients[:3], name="patient_id"),
                 columns=[f"rare{j}" for j in range(4)]).to_csv(folder / "rare.csv")  # fmt: skip
    pd.DataFrame({"sample_id": labs.index, "patient_id": patients, "visit": "Baseline"}).to_csv(
        folder / "sample_map.csv", index=False)  # fmt: skip
    return {
        "cohort": {"samples": str(folder / "sheet.csv"), "sample_map": str(folder / "sample_map.csv"),
                   "covariates": ["age", "crp (mg/L)"], "outcomes": {"das28": {"type": "continuous"}}},
        "assays": {"labs": {"kind": "table", "path": str(folder / "labs.csv")},
                   "rare": {"kind": "table", "path": str(folder / "rare.csv")}},
    }  # fmt: skip


def test_a_cohort_with_only_a_continuous_outcome_and_an_assay_on_three_patients_runs_end_to_end(tmp_path):
    result = run_cohort(tmp_path, continuous_outcome_only(tmp_path))
    assert result.returncode == 0, result.stderr[-4000:]
    results = tmp_path / "results"
    biomarkers = pd.read_csv(results / "associate/biomarkers.tsv", sep="\t")
    assert set(biomarkers["assay"]) == {"labs"} and set(biomarkers["model"]) == {"linear"}
    assert len(biomarkers) == 30 and biomarkers.nsmallest(6, "p_value")["feature"].str.slice(6).astype(int).lt(6).all()
    assert (pd.read_csv(results / "qc/ingest_report.tsv", sep="\t")["status"] == "mapped").sum() == 73
    assert "assay 'rare' is left out: measured on 3 patients" in result.stderr
    warnings = pd.read_csv(results / "warnings.tsv", sep="\t")  # the end-of-run summary names it too
    assert warnings["message"].str.contains("assay 'rare' is left out").any()
    assert "distinct warnings in" in result.stderr
    assert "visit 'Baseline' read as the configured visit 'baseline'" in result.stderr
    assert not (results / "predict").exists()  # a continuous outcome is not predicted
    assert (results / "stratify/clusters.tsv").exists() and (results / "provenance.json").exists()
    outcomes = pd.read_csv(results / "stratify/subgroup_outcomes.tsv", sep="\t")
    n_subgroups = pd.read_csv(results / "stratify/clusters.tsv", sep="\t")["subgroup"].nunique()
    assert len(outcomes) == n_subgroups - 1 and set(outcomes["model"]) <= {"linear"}  # mean differences vs S1

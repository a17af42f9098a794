"""The workflow end to end on a tiny demo cohort, under pytest."""

import filecmp
import subprocess
import sys
from pathlib import Path

import mudata as md
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TABLES = ["qc/ingest_report.tsv", "qc/modality_coverage.tsv", "qc/preprocess_removed.tsv",
          "qc/feature_qc.tsv", "associate/biomarkers.tsv", "associate/genotypes.tsv",
          "associate/markers.tsv", "stratify/clusters.tsv", "stratify/model_selection.tsv",
          "integrate/embedding.tsv", "integrate/umap.tsv", "associate/cluster_outcomes.tsv", "stratify/table1.tsv"]  # fmt: skip


def tiny_config(folder: Path) -> Path:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["demo"] = {"n_patients": 60, "n_snps": 300, "n_genes": 120}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_workflow(folder: Path, *targets: str, cores: str = "2") -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", *targets, "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(folder), "--cores", cores,
               "--configfile", str(tiny_config(folder))]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def workflow_runs(tmp_path_factory):
    folders = [tmp_path_factory.mktemp(name) for name in ("run1", "run2")]
    for folder, cores in zip(folders, ("2", "1")):
        result = run_workflow(folder, cores=cores)
        assert result.returncode == 0, result.stderr[-3000:]
    return folders


def test_workflow_builds_the_cohort_and_accounts_for_every_sample(workflow_runs):
    results = workflow_runs[0] / "results"
    sheet = pd.read_csv(results / "demo/samples.csv")
    mdata = md.read_h5mu(results / "cohort/preprocessed.h5mu")
    assert mdata.obs_names.tolist() == sheet["patient_id"].tolist()
    assert set(mdata.mod) == {"proteomics", "cytokines", "flow", "rna", "genotypes", "clinical"}
    report = pd.read_csv(results / "qc/ingest_report.tsv", sep="\t", keep_default_na=False)
    fam_rows = len((results / "demo/genotypes.fam").read_text().splitlines())
    assert (report["assay"] == "genotypes").sum() == fam_rows
    mapped = report[report["status"] == "mapped"].groupby("assay").size()
    removed = pd.read_csv(results / "qc/preprocess_removed.tsv", sep="\t")
    removed_samples = removed[removed["axis"] == "sample"].groupby("assay").size()
    for name, n in mapped.items():
        assert mdata[name].n_obs == n - removed_samples.get(name, 0)


def test_workflow_writes_every_qc_figure(workflow_runs):
    qc = workflow_runs[0] / "results/qc"
    for name in ["assay_coverage", "proteomics_qc", "cytokines_qc", "flow_qc", "rna_qc", "genotypes_qc"]:
        assert (qc / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (qc / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"


def test_reruns_with_other_core_counts_give_byte_identical_tables(workflow_runs):
    first, second = (folder / "results" for folder in workflow_runs)
    for table in TABLES:
        assert filecmp.cmp(first / table, second / table, shallow=False), table


def test_bad_input_stops_with_one_clear_message(tmp_path):
    results = tmp_path / "results/demo"
    assert run_workflow(tmp_path, "results/demo/samples.csv").returncode == 0
    sheet = (results / "samples.csv").read_text().splitlines()
    (results / "samples.csv").write_text("\n".join(sheet + [sheet[1]]) + "\n")  # a duplicated patient
    result = run_workflow(tmp_path, "results/qc/ingest_report.tsv")
    assert result.returncode != 0
    assert "stratomics: sample sheet (results/demo/samples.csv): patient ID" in result.stderr
    assert "Traceback" not in result.stderr


def test_association_tables_cover_every_feature_and_outcome(workflow_runs):
    results = workflow_runs[0] / "results"
    mdata = md.read_h5mu(results / "cohort/preprocessed.h5mu")
    biomarkers = pd.read_csv(results / "associate/biomarkers.tsv", sep="\t")
    outcomes = ["failure_12m", "time_to_switch"]
    for assay in ["proteomics", "cytokines", "flow", "rna"]:
        rows = biomarkers[biomarkers["assay"] == assay]
        assert len(rows) == 2 * mdata[assay].n_vars
        assert sorted(rows["outcome_or_contrast"].unique()) == outcomes
    assert set(biomarkers["model"]) == {"logistic", "cox"}
    genotypes = pd.read_csv(results / "associate/genotypes.tsv", sep="\t")
    assert len(genotypes) == 2 * mdata["genotypes"].n_vars and genotypes["q_value"].notna().any()
    markers = pd.read_csv(results / "associate/markers.tsv", sep="\t")
    contrasts = set(markers["outcome_or_contrast"])
    assert {f"disease: {d} vs rest" for d in ["IBD", "MS", "RA"]} <= contrasts
    assert any(c.startswith("subgroup: S1 vs rest") for c in contrasts)
    for _, rows in biomarkers.groupby("outcome_or_contrast"):  # one FDR across assays per outcome
        tested = rows["p_value"].notna()
        assert rows.loc[tested, "q_value"].min() >= rows.loc[tested, "p_value"].min()


def test_every_patient_with_an_assay_gets_a_subgroup(workflow_runs):
    results = workflow_runs[0] / "results"
    clusters = pd.read_csv(results / "stratify/clusters.tsv", sep="\t")
    coverage = pd.read_csv(results / "qc/modality_coverage.tsv", sep="\t")
    assert clusters["patient_id"].tolist() == coverage["patient_id"].tolist()
    has_assay = (coverage[["proteomics", "cytokines", "flow", "rna"]].sum(axis=1) > 0).to_numpy()
    assert clusters.loc[has_assay, "subgroup"].notna().all()
    selection = pd.read_csv(results / "stratify/model_selection.tsv", sep="\t")
    chosen = selection.loc[selection["chosen"], "k"].item()
    assert clusters["subgroup"].nunique() == chosen
    outcomes = pd.read_csv(results / "associate/cluster_outcomes.tsv", sep="\t")
    assert sorted(outcomes["outcome"].unique()) == ["failure_12m", "time_to_switch"]
    assert len(outcomes) == 2 * (chosen - 1) and outcomes["permutation_p_value"].between(0, 1).all()

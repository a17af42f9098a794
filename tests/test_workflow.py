"""The workflow end to end on a tiny demo cohort, under pytest."""

import base64
import filecmp
import io
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import mudata as md
import pandas as pd
import pytest
from PIL import Image
from workflow_helpers import FIGURES, TABLES, run_workflow, workflow_command


def test_workflow_builds_the_cohort_and_accounts_for_every_sample(workflow_runs):
    results = workflow_runs[0] / "results"
    sheet = pd.read_csv(results / "demo/samples.csv")
    mdata = md.read_h5mu(results / "cohort/preprocessed.h5mu")
    assert mdata.obs_names.tolist() == sheet["patient_id"].tolist()
    assert set(mdata.mod) == {"proteomics", "cytokines", "flow", "rna", "genotypes", "questionnaire", "voice", "wearable", "clinical"}
    report = pd.read_csv(results / "qc/ingest_report.tsv", sep="\t", keep_default_na=False)
    fam_rows = len((results / "demo/genotypes.fam").read_text().splitlines())
    assert (report["assay"] == "genotypes").sum() == fam_rows
    mapped = report[report["status"] == "mapped"].groupby("assay").size()
    removed = pd.read_csv(results / "qc/preprocess_removed.tsv", sep="\t")
    removed_samples = removed[removed["axis"] == "sample"].groupby("assay").size()
    for name, n in mapped.items():
        assert mdata[name].n_obs == n - removed_samples.get(name, 0)


def test_workflow_writes_every_figure_as_png_and_pdf(workflow_runs):
    results = workflow_runs[0] / "results"
    for name in FIGURES:
        assert (results / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert (results / f"{name}.pdf").read_bytes()[:5] == b"%PDF-", name


def test_reruns_with_other_core_counts_give_byte_identical_tables(workflow_runs):
    first, second = (folder / "results" for folder in workflow_runs)
    for table in TABLES:
        assert filecmp.cmp(first / table, second / table, shallow=False), table
    for figure in [name for name in FIGURES if name.startswith("figures/")]:  # no dates in metadata, seeded UMAP
        assert filecmp.cmp(first / f"{figure}.png", second / f"{figure}.png", shallow=False), figure


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
    outcomes = ["activity_12m", "failure_12m", "time_to_switch"]
    for assay in ["proteomics", "cytokines", "flow", "rna"]:
        rows = biomarkers[biomarkers["assay"] == assay]
        assert len(rows) == 3 * mdata[assay].n_vars
        assert sorted(rows["outcome_or_contrast"].unique()) == outcomes
    assert set(biomarkers["model"]) == {"logistic", "cox", "ordinal"}
    olink = pd.read_csv(results / "demo/olink_npx.csv", sep=";").drop_duplicates("OlinkID").set_index("OlinkID")["Assay"]
    proteins = biomarkers[biomarkers["assay"] == "proteomics"]  # human names next to the IDs
    assert proteins["feature"].str.startswith("OID").all()
    assert proteins["feature_name"].tolist() == olink[proteins["feature"]].tolist()
    genes = biomarkers[biomarkers["assay"] == "rna"]
    assert genes["feature"].str.startswith("ENSG").all() and genes["feature_name"].str.startswith("GENE").all()
    genotypes = pd.read_csv(results / "associate/genotypes.tsv", sep="\t")
    assert len(genotypes) == 3 * mdata["genotypes"].n_vars and genotypes["q_value"].notna().any()
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
    outcomes = pd.read_csv(results / "stratify/subgroup_outcomes.tsv", sep="\t")
    assert sorted(outcomes["outcome"].unique()) == ["activity_12m", "failure_12m", "time_to_switch"]
    assert len(outcomes) == 3 * (chosen - 1) and outcomes["permutation_p_value"].between(0, 1).all()


def test_a_killed_run_resumes_to_the_same_tables(workflow_runs, tmp_path):
    """Kill the whole run (as a node failure would) while jobs are writing, then resume."""
    running = subprocess.Popen(workflow_command(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    deadline = time.time() + 300
    while not (tmp_path / "results/cohort/preprocessed.h5mu").exists() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # into the stratify / association jobs
    os.killpg(running.pid, signal.SIGKILL)
    running.wait()
    assert not (tmp_path / "results/provenance.json").exists()  # it was stopped mid-way
    assert run_workflow(tmp_path, "--unlock").returncode == 0
    resumed = run_workflow(tmp_path, "--rerun-incomplete")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for table in TABLES:
        assert filecmp.cmp(workflow_runs[0] / "results" / table, tmp_path / "results" / table, shallow=False), table


def test_consensus_scattered_per_k_equals_the_one_process_library_call(workflow_runs):
    import yaml

    from stratomics.config import resolve, validate_config
    from stratomics.subgroups import integrate_and_stratify, stratify_options, subgroup_table

    results = workflow_runs[0] / "results"
    config = validate_config(yaml.safe_load((workflow_runs[0] / "tiny.yaml").read_text()), check_files=False)
    mdata = md.read_h5mu(results / "cohort/preprocessed.h5mu")
    assays = resolve(config)["integrated_assays"]
    integrate = {key: value for key, value in config["integrate"].items() if key != "assays"}
    _, table = integrate_and_stratify(mdata, assays, integrate_options=integrate,
                                      stratify_options=stratify_options(config["stratify"]),
                                      fit_on=config["stratify"]["fit_on"], seed=config["seed"],
                                      **resolve(config)["subgroup_space"])  # fmt: skip
    scattered = pd.read_csv(results / "stratify/clusters.tsv", sep="\t")
    in_process = subgroup_table(mdata)
    assert scattered["subgroup"].fillna("").tolist() == in_process["subgroup"].astype(str).replace("nan", "").tolist()
    workflow_table = pd.read_csv(results / "stratify/model_selection.tsv", sep="\t")
    assert workflow_table["pac"].round(6).tolist() == table["pac"].round(6).tolist()


def test_sites_export_aggregates_and_the_centre_meta_analyses_them(workflow_runs, tmp_path):
    import yaml

    full = workflow_runs[0] / "results"
    preprocessed = md.read_h5mu(full / "cohort/preprocessed.h5mu")
    everyone = set.intersection(*(set(preprocessed[a].obs_names) for a in preprocessed.mod if a != "clinical"))
    sites = preprocessed.obs.loc[sorted(everyone), "site"].value_counts().index[:2].tolist()  # sites with every assay
    config = yaml.safe_load((workflow_runs[0] / "tiny.yaml").read_text())
    sheet = pd.read_csv(full / "demo/samples.csv")
    exports = {}
    for site in sites:
        folder = tmp_path / site
        folder.mkdir()
        sheet[sheet["site"] == site].to_csv(folder / "samples.csv", index=False)
        site_config = yaml.safe_load(yaml.safe_dump(config).replace("results/demo", str(full / "demo")))
        site_config["cohort"]["samples"] = str(folder / "samples.csv")
        shipped = full / "federated/model_for_sites.zip"
        digest = (full / "federated/model_for_sites.zip.sha256").read_text().split()[0]  # sent with the model
        site_config.update(mode="site", site=site, federated={"model": str(shipped), "model_sha256": digest,
                                                              "min_cell_count": 2})  # tiny sites: let both contribute
        site_config["associate"]["covariates"] = ["age"]  # 10-20 patients per site cannot carry more
        (folder / "site.yaml").write_text(yaml.safe_dump(site_config))
        result = subprocess.run([*workflow_command(folder)[:-1], str(folder / "site.yaml")], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        exports[site] = str(folder / f"results/export/{site}")
        exported = " ".join(path.read_text() for path in Path(exports[site]).iterdir())
        assert not any(patient in exported.split() for patient in sheet["patient_id"])
    centre = tmp_path / "centre"
    centre.mkdir()
    meta_config = {**config, "mode": "meta", "federated": {"exports": exports}}
    (centre / "meta.yaml").write_text(yaml.safe_dump(meta_config))
    result = subprocess.run([*workflow_command(centre)[:-1], str(centre / "meta.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    meta = pd.read_csv(centre / "results/meta/feature_meta.tsv", sep="\t")
    assert meta["n_sites"].between(1, 2).all() and (meta["n_sites"] == 2).any()
    assert meta["i2"].between(0, 1).all() and meta["q_value"].between(0, 1).all()
    assert (centre / "results/figures/meta_forest.png").read_bytes()[:4] == b"\x89PNG"


def test_prediction_compares_predictor_sets_and_the_signature_scores_new_patients(workflow_runs, tmp_path):
    from stratomics.cli import main
    from stratomics.predict import predict_patients
    from stratomics.subgroups import load_model

    results = workflow_runs[0] / "results"
    performance = pd.read_csv(results / "predict/performance.tsv", sep="\t")
    nested = performance[performance["validation"] == "nested_cv"]
    for outcome, metric in (("failure_12m", "auc"), ("time_to_switch", "c_index")):
        rows = nested[(nested["outcome"] == outcome) & (nested["metric"] == metric)]
        assert len(rows) == 8 and rows["estimate"].between(0, 1).all()  # 4 predictor sets x 2 models
        gains = nested[(nested["outcome"] == outcome) & (nested["metric"] == f"{metric}_gain_over_clinical")]
        assert len(gains) == 6
    sheet = pd.read_csv(results / "demo/samples.csv")
    predictions = pd.read_csv(results / "predict/predictions.tsv", sep="\t")
    survival = predictions[(predictions["outcome"] == "time_to_switch") & (predictions["validation"] == "nested_cv")]
    assert survival.groupby(["model", "feature_set"]).size().eq(len(sheet)).all()  # nobody dropped
    assert {f"loso_{site}" for site in sheet["site"].unique()} <= set(performance["validation"])
    out = tmp_path / "risk.tsv"
    assert main(["predict", "--signature", str(results / "predict/signature.zip"), "--cohort",
                 str(results / "cohort/preprocessed.h5mu"), "--subgroups", str(results / "stratify/model.zip"),
                 "--out", str(out)]) == 0  # fmt: skip
    new = pd.read_csv(out, sep="\t").set_index("patient_id")
    cohort = md.read_h5mu(results / "cohort/preprocessed.h5mu")
    subgroups = pd.read_csv(results / "stratify/clusters.tsv", sep="\t", keep_default_na=False).set_index("patient_id")
    cohort.obs["subgroup"] = subgroups["subgroup"].reindex(cohort.obs_names).to_numpy()  # the fitted subgroups
    in_process = predict_patients(load_model(results / "predict/signature.zip"), cohort).set_index("patient_id")
    assert new.index.tolist() == sheet["patient_id"].tolist() and new.notna().all().all()
    assert ((new - in_process).abs().max(axis=1) < 1e-6).mean() > 0.9  # same risk unless assigned to another subgroup


def test_cohort_files_read_back_with_mudata_pull_on_update_off(workflow_runs):
    results = workflow_runs[0] / "results"
    n_patients = len(pd.read_csv(results / "demo/samples.csv"))
    for name in ("cohort/raw.h5mu", "cohort/preprocessed.h5mu", "integrate/integrated.h5mu", "cohort/stratified.h5mu"):
        with md.set_options(pull_on_update=False):  # what mudata advises to silence its update warnings
            mdata = md.read_h5mu(results / name)
        assert mdata.n_obs == n_patients, name


def test_a_changed_setting_reruns_the_steps_that_read_it_and_only_those(workflow_runs):
    def planned_rules(*config):
        result = run_workflow(workflow_runs[0], "--dry-run", "--config", *config)
        assert result.returncode == 0, result.stderr[-2000:]
        if "Job stats:" not in result.stdout:
            return set()
        rows = result.stdout.split("Job stats:")[1].split("\ntotal")[0].splitlines()[3:]  # after the header
        return {row.split()[0] for row in rows if row.strip()}

    assert planned_rules("seed=0") == set()  # the same settings: nothing to do
    rerun = planned_rules("preprocess={batch_correction: none}")
    assert "preprocess_assay" in rerun and "ingest" not in rerun
    rerun = planned_rules("table1={columns: [age, bmi]}")  # checked at ingest, used by subgroup_outcomes
    assert {"ingest", "subgroup_outcomes"} <= rerun


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (CI installs Debian's)")
def test_report_opens_on_the_run_summary_in_a_browser_and_embeds_every_figure(workflow_runs):
    folder = workflow_runs[0]
    report = folder / "report.html"
    result = subprocess.run(workflow_command(folder, "--report", str(report)), capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    html = report.read_text()
    assert len(html) < 15e6  # large tables enter as their top rows
    results = json.loads(re.search(r"var results = (\{.*?\});\n", html).group(1))
    figures = sorted(str(path.relative_to(folder)) for path in (folder / "results/figures").glob("*.png"))
    assert figures and set(figures) <= set(results)
    for name in figures:
        data = base64.b64decode(results[name]["data_uri"].split(",", 1)[1])
        with Image.open(io.BytesIO(data)) as image:
            image.verify()  # a complete PNG
    rendered = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
                               "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=300)  # fmt: skip
    dom = rendered.stdout
    # the landing page is in the document as elements, not only in the script that holds it
    assert '<h1 class="title">stratomics results</h1>' in dom, dom[-2000:]
    clusters = pd.read_csv(folder / "results/stratify/clusters.tsv", sep="\t")
    assert f"<strong>{len(clusters)} patients</strong>" in dom


def test_steps_that_use_processes_take_one_thread_below_four_cores(tmp_path):
    # on 2 cores a 2-thread job waits for both while 1-thread jobs keep one busy (the demo's integration waited 130 s)
    for cores, expected in (("2", 1), ("3", 1), ("4", 2), ("16", 2)):
        command = workflow_command(tmp_path, "--dry-run", "results/integrate/integrated.h5mu", cores=cores)
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        job = result.stdout.split("rule integrate:")[1].split("\n\n")[0]
        threads = int(job.split("threads: ")[1].split()[0]) if "threads: " in job else 1
        assert threads == expected, (cores, job)

"""Site exports: only aggregates, small cells suppressed (with secondary suppression), logged, scanned."""

import numpy as np
import pandas as pd
import pytest

from stratomics.cohort import build_cohort
from stratomics.errors import StratomicsInputError
from stratomics.federated import feature_scales, scan_export, site_export, suppress_small_cells
from stratomics.preprocess import preprocess_cohort
from stratomics.subgroups import assign_patients, integrate_and_stratify, strip_patient_data

ASSAYS = ["proteomics", "cytokines", "flow", "rna"]


def test_small_cells_and_the_cell_that_would_reveal_them_are_blanked():
    table = pd.DataFrame({"subgroup": ["S1", "S2", "S3", "all"], "n_patients": [40, 3, 12, 55],
                          "mean": [1.0, 2.0, 3.0, 1.5]})  # fmt: skip
    safe, log = suppress_small_cells(table, {"n_patients": ["mean"]}, min_count=5, file="t.tsv", key=["subgroup"],
                                     total_row=table["subgroup"] == "all")  # fmt: skip
    assert safe["n_patients"].isna().tolist() == [False, True, True, False]  # S3 blanked: 55 - 40 - 12 = 3
    assert np.isnan(safe.loc[1, "mean"]) and safe.loc[0, "mean"] == 1.0
    assert [row["row"] for row in log] == ["S2", "S3"] and "secondary" in log[1]["reason"]


def test_scan_refuses_identifiers_and_small_counts(tmp_path):
    pd.DataFrame({"feature": ["IL6"], "n": [30]}).to_csv(tmp_path / "a.tsv", sep="\t", index=False)
    scan_export(tmp_path, ["P0001"], min_count=5, count_columns={"n"})
    (tmp_path / "notes.txt").write_text("outlier: P0001\n")
    with pytest.raises(StratomicsInputError, match="notes.txt.*P0001"):
        scan_export(tmp_path, ["P0001"], min_count=5, count_columns={"n"})
    (tmp_path / "notes.txt").unlink()
    pd.DataFrame({"feature": ["IL6"], "n": [3]}).to_csv(tmp_path / "b.tsv", sep="\t", index=False)
    with pytest.raises(StratomicsInputError, match="b.tsv.*count of 3"):
        scan_export(tmp_path, ["P0001"], min_count=5, count_columns={"n"})


def test_a_site_export_holds_no_patient_rows_and_logs_every_blank(small_demo, tmp_path):
    _, config = small_demo
    mdata = preprocess_cohort(build_cohort(config).mdata, config)
    model, _ = integrate_and_stratify(mdata, ASSAYS, integrate_options={"method": "mfa"},
                                      stratify_options={"k": 2, "k_values": [2], "n_resamples": 10})  # fmt: skip
    shipped = strip_patient_data(model)
    assert shipped.stratification.labels.size == 0 and shipped.stratification.consensus.size == 0
    assert (assign_patients(shipped, mdata)["subgroup"] == assign_patients(model, mdata)["subgroup"]).all()
    site = mdata.obs["site"].value_counts().index[0]
    patients = mdata.obs_names[mdata.obs["site"] == site]
    local = mdata[patients].copy()
    log = site_export(local, shipped, outcomes=config["cohort"]["outcomes"], covariates=config["cohort"]["covariates"],
                      scales=feature_scales(mdata, ASSAYS), folder=tmp_path, min_count=5)  # fmt: skip
    files = {path.name for path in tmp_path.iterdir()}
    assert files == {"feature_estimates.tsv", "subgroup_counts.tsv", "subgroup_effects.tsv", "kaplan_meier.tsv",
                     "subgroup_feature_summary.tsv", "disclosure_log.tsv"}  # fmt: skip
    everything = " ".join(path.read_text() for path in tmp_path.iterdir())
    assert not any(patient in everything for patient in mdata.obs_names)
    assert len(log) > 0
    for _, row in log.iterrows():
        table = pd.read_csv(tmp_path / row["file"], sep="\t", dtype=str, keep_default_na=False)
        assert row["column"] in table.columns
    counts = pd.read_csv(tmp_path / "subgroup_counts.tsv", sep="\t").set_index("subgroup")
    assert counts.loc["all", "n_patients"] == len(patients)
    estimates = pd.read_csv(tmp_path / "feature_estimates.tsv", sep="\t")
    shown = estimates["estimate"].notna()
    assert (estimates.loc[shown, ["n", "n_events", "n_without_event"]] >= 5).all().all()

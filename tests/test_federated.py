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


def test_numeric_patient_ids_do_not_fail_every_export_and_identifier_columns_are_still_refused(tmp_path, caplog):
    pd.DataFrame({"feature": ["IL6"], "n": [5]}).to_csv(tmp_path / "a.tsv", sep="\t", index=False)
    (tmp_path / "export.log").write_text("2 cells with a count below 5 blanked\n")
    scan_export(tmp_path, [str(i) for i in range(1, 121)], min_count=5, count_columns={"n"})
    assert "120 patient or sample IDs are plain numbers (e.g. '1')" in caplog.text
    pd.DataFrame({"patient_id": [5, 6]}).to_csv(tmp_path / "b.tsv", sep="\t", index=False)
    with pytest.raises(StratomicsInputError, match="b.tsv: has the identifier column 'patient_id'"):
        scan_export(tmp_path, [str(i) for i in range(1, 121)], min_count=5, count_columns={"n"})


@pytest.mark.parametrize("site", ["../outside", "a/b", ".hidden", ""])
def test_a_site_name_that_is_not_a_plain_folder_name_is_refused(site):
    from stratomics.config import validate_config

    assays = {"labs": {"kind": "table", "path": "labs.csv"}}
    config = {"mode": "site", "site": site, "cohort": {"samples": "s.csv"}, "assays": assays}
    with pytest.raises(StratomicsInputError, match="site"):
        validate_config(config, check_files=False)
    meta = {"mode": "meta", "federated": {"exports": {site: "results/export/x"}}, "cohort": {"samples": "s.csv"},
            "assays": assays}  # fmt: skip
    with pytest.raises(StratomicsInputError, match="exports"):
        validate_config(meta, check_files=False)


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
    assert (estimates.loc[shown, "n"] >= 5).all()
    with_events = estimates["n_events"].notna()  # binary and survival outcomes (an ordinal one has no events)
    assert (estimates.loc[shown & with_events, ["n_events", "n_without_event"]] >= 5).all().all()
    assert set(estimates.loc[shown & ~with_events, "outcome_or_contrast"]) <= {"activity_12m"}

"""Building the cohort: every sample row accounted for, no patient lost, clear input errors."""

import mudata as md
import numpy as np
import pandas as pd
import pytest

from stratomics.cohort import STATUSES, build_cohort
from stratomics.config import validate_config
from stratomics.errors import StratomicsInputError


@pytest.fixture(scope="module")
def cohort(small_demo):
    return build_cohort(small_demo[1])


def file_sample_rows(folder) -> dict[str, int]:
    """Number of sample rows in each demo assay file, counted independently of the readers."""
    olink = pd.read_csv(folder / "olink_npx.csv", sep=";", decimal=",")
    return {
        "proteomics": len(olink[["SampleID", "PlateID"]].drop_duplicates()),
        "cytokines": len(pd.read_csv(folder / "cytokines.csv")),
        "flow": len(pd.read_csv(folder / "flow_frequencies.tsv", sep="\t")),
        "rna": pd.read_csv(folder / "rna_counts.tsv", sep="\t").shape[1] - 2,
        "genotypes": len((folder / "genotypes.fam").read_text().splitlines()),
        "questionnaire": len(pd.read_csv(folder / "questionnaire.csv")),
        "voice": _voice_report_rows(pd.read_csv(folder / "voice_features.csv")),
        "wearable": pd.read_csv(folder / "wearable.csv")["patient_id"].nunique(),  # summarised or excluded
    }


def _voice_report_rows(recordings: pd.DataFrame) -> int:
    """A voice file is reported per patient (the median of the kept recordings) plus every failed recording."""
    failed = (recordings["duration_s"] < 2) | (recordings.iloc[:, 3:].isna().mean(axis=1) > 0.5)
    return recordings.loc[~failed, "patient_id"].nunique() + int(failed.sum())


def test_ingest_report_accounts_for_every_sample_row(small_demo, cohort):
    folder, _ = small_demo
    report = cohort.report
    assert set(report["status"]) <= set(STATUSES)
    assert report.groupby("assay").size().to_dict() == file_sample_rows(folder)
    for name, rows in report[report["status"] == "mapped"].groupby("assay"):
        assert sorted(rows["patient_id"]) == sorted(cohort.mdata[name].obs_names)
        assert rows["patient_id"].is_unique
    assert {"duplicate", "excluded", "unmapped", "mapped"} <= set(report["status"])
    assert (report.loc[report["status"] != "mapped", "reason"] != "").all()


def test_samples_map_to_the_right_patients(small_demo, cohort):
    folder, _ = small_demo
    sample_map = pd.read_csv(folder / "sample_map.csv").set_index("sample_id")["patient_id"]
    rna = cohort.mdata["rna"]
    assert (sample_map[rna.obs["sample_id"]].to_numpy() == rna.obs_names.to_numpy()).all()
    counts = pd.read_csv(folder / "rna_counts.tsv", sep="\t").set_index("gene_id")
    first = rna.obs["sample_id"].iloc[0]
    np.testing.assert_array_equal(rna.X[0], counts[first].to_numpy())


def test_every_patient_stays_with_clinical_columns(small_demo, cohort, tmp_path):
    folder, _ = small_demo
    sheet = pd.read_csv(folder / "samples.csv")
    assert cohort.mdata.obs_names.tolist() == sheet["patient_id"].tolist()
    assert cohort.mdata.obs["age"].tolist() == sheet["age"].tolist()
    assert (cohort.coverage["n_assays"] == cohort.coverage[["proteomics", "cytokines", "flow", "rna", "genotypes",
                                                             "questionnaire", "voice", "wearable"]].sum(axis=1)).all()  # fmt: skip
    cohort.mdata.write(tmp_path / "raw.h5mu")
    assert md.read_h5mu(tmp_path / "raw.h5mu").n_obs == len(sheet)


def test_week14_samples_are_excluded_and_redraws_are_duplicates(small_demo, cohort):
    folder, _ = small_demo
    sample_map = pd.read_csv(folder / "sample_map.csv")
    cytokines = cohort.report[cohort.report["assay"] == "cytokines"].merge(sample_map, on="sample_id")
    assert (cytokines.loc[cytokines["visit"] == "week14", "status"] == "excluded").all()
    duplicates = cytokines[cytokines["status"] == "duplicate"]
    assert len(duplicates) and (duplicates["visit"] == "baseline").all()


def write_cohort(tmp_path, sheet: str, assay: str, **cohort_keys) -> dict:
    (tmp_path / "samples.csv").write_text(sheet)
    (tmp_path / "assay.csv").write_text(assay)
    return validate_config({
        "cohort": {"samples": str(tmp_path / "samples.csv"), **cohort_keys},
        "assays": {"labs": {"kind": "table", "path": str(tmp_path / "assay.csv")}},
    })  # fmt: skip


SHEET = "patient_id,age,sex,failure_12m\nP1,50,F,1\nP2,60,M,0\nP3,40,F,0\nP4,45,M,1\n"
ASSAY = "patient_id,CRP,ALB\nP1,1,40\nP2,2,38\nP3,3,41\nX9,4,39\n"


def test_patient_without_assay_and_unmapped_sample_are_reported(tmp_path, caplog):
    cohort = build_cohort(write_cohort(tmp_path, SHEET, ASSAY))
    assert cohort.mdata.obs_names.tolist() == ["P1", "P2", "P3", "P4"]
    assert cohort.coverage.set_index("patient_id").loc["P4", "n_assays"] == 0
    unmapped = cohort.report[cohort.report["status"] == "unmapped"]
    assert unmapped["sample_id"].tolist() == ["X9"]
    assert "1 unmapped" in caplog.text


def test_duplicated_patient_ids_name_the_lines(tmp_path):
    sheet = SHEET + "P2,61,M,0\n"
    with pytest.raises(StratomicsInputError, match="patient ID 'P2' appears more than once.*lines 3, 6"):
        build_cohort(write_cohort(tmp_path, sheet, ASSAY))


def test_missing_covariate_column_suggests_the_near_name(tmp_path):
    config = write_cohort(tmp_path, SHEET, ASSAY, covariates=["Age"])
    with pytest.raises(StratomicsInputError, match="covariate 'Age' needs column 'Age'.*Did you mean 'age'"):
        build_cohort(config)


def test_settings_naming_sample_sheet_columns_are_checked_at_ingest(tmp_path):
    config = write_cohort(tmp_path, SHEET, ASSAY)
    for section, key in (("stratify", "adjust_for"), ("table1", "columns"), ("figures", "colour_by")):
        bad = {**config, section: {**config.get(section, {}), key: ["age", "plate"]}}
        with pytest.raises(StratomicsInputError, match=f"{section}.{key} 'plate' needs column 'plate'"):
            build_cohort(bad)


def test_missing_outcome_column_is_named(tmp_path):
    outcomes = {"relapse": {"type": "binary"}}
    with pytest.raises(StratomicsInputError, match="outcome 'relapse' \\(column\\) needs column 'relapse'"):
        build_cohort(write_cohort(tmp_path, SHEET, ASSAY, outcomes=outcomes))


def test_outcome_with_one_class_is_an_error(tmp_path):
    sheet = SHEET.replace(",1\n", ",0\n")
    outcomes = {"failure_12m": {"type": "binary"}}
    with pytest.raises(StratomicsInputError, match="must have two classes.*found 1"):
        build_cohort(write_cohort(tmp_path, sheet, ASSAY, outcomes=outcomes))


def test_negative_survival_time_is_an_error(tmp_path):
    sheet = "patient_id,days,event\nP1,100,1\nP2,-5,0\nP3,30,1\n"
    outcomes = {"switch": {"type": "survival", "time": "days", "event": "event"}}
    with pytest.raises(StratomicsInputError, match="negative time -5 \\(patient P2\\)"):
        build_cohort(write_cohort(tmp_path, sheet, ASSAY, outcomes=outcomes))


def test_no_sample_mapping_is_an_error(tmp_path):
    assay = "id,CRP\nQ1,1\nQ2,2\n"
    config = write_cohort(tmp_path, SHEET, assay)
    config["assays"]["labs"]["orientation"] = "samples_in_rows"
    with pytest.raises(StratomicsInputError, match="none of its 2 samples maps to a patient"):
        build_cohort(config)


def test_sample_listed_twice_in_the_sample_map_is_an_error(tmp_path):
    (tmp_path / "map.csv").write_text("sample_id,patient_id\nS1,P1\nS1,P2\n")
    config = write_cohort(tmp_path, SHEET, ASSAY, sample_map=str(tmp_path / "map.csv"))
    with pytest.raises(StratomicsInputError, match="sample 'S1' is listed 2 times \\(line 2: patient P1; line 3: patient P2"):
        build_cohort(config)


def test_a_text_follow_up_time_names_the_offending_values_and_patients(tmp_path):
    sheet = "patient_id,days,event\nP1,100,1\nP2,about 90,0\nP3,30,1\nP4,n.d.,0\n"
    outcomes = {"switch": {"type": "survival", "time": "days", "event": "event"}}
    with pytest.raises(StratomicsInputError, match="not numeric: 'about 90' \\(patient P2\\), 'n.d.' \\(patient P4\\)\\."):
        build_cohort(write_cohort(tmp_path, sheet, ASSAY, outcomes=outcomes))


def test_visits_match_ignoring_case_and_the_spelling_is_reported(tmp_path, caplog):
    (tmp_path / "map.csv").write_text("sample_id,patient_id,visit\nS1,P1,Baseline\nS2,P2,baseline \nS3,P3,Week14\n")
    assay = "sample_id,CRP,ALB\nS1,1,40\nS2,2,38\nS3,3,41\n"
    cohort = build_cohort(write_cohort(tmp_path, SHEET, assay, sample_map=str(tmp_path / "map.csv")))
    assert cohort.report.set_index("sample_id")["status"].to_dict() == {"S1": "mapped", "S2": "mapped", "S3": "excluded"}
    assert "visit 'Baseline' read as the configured visit 'baseline'" in caplog.text


def test_unmapped_ids_and_patients_left_without_an_assay_are_named_with_the_likely_cause(tmp_path, caplog):
    assay = "patient_id,CRP,ALB\np1,1,40\nP2 ,2,38\nP3,3,41\nX9,4,39\n"
    cohort = build_cohort(write_cohort(tmp_path, SHEET, assay))
    assert cohort.coverage.set_index("patient_id")["n_assays"].to_dict() == {"P1": 0, "P2": 1, "P3": 1, "P4": 0}
    assert "assay 'labs': 2 unmapped sample IDs: p1, X9; 1 match a known ID but for case or spaces (e.g. 'p1' ~ 'P1')" in caplog.text
    assert "2 of 4 patients of the sample sheet have no assay (P1, P4)" in caplog.text


def test_assays_stay_aligned_with_the_clinical_columns(small_demo, cohort):
    mdata = cohort.mdata
    sheet = pd.read_csv(small_demo[0] / "samples.csv").set_index("patient_id")
    for name in ["proteomics", "rna", "genotypes"]:
        rows = mdata.obsmap[name]
        present = mdata.obs_names[rows > 0]
        assert sorted(present) == sorted(mdata[name].obs_names)
        positions = pd.Series(rows[rows > 0] - 1, index=present)
        assert (mdata[name].obs_names[positions.to_numpy()] == present).all()
    assert (mdata.obs["age"] == sheet.loc[mdata.obs_names, "age"]).all()


def test_missing_marker_group_column_is_named(tmp_path):
    config = write_cohort(tmp_path, SHEET, ASSAY)
    config["associate"]["marker_groups"] = ["treatment"]
    with pytest.raises(StratomicsInputError, match="associate.marker_groups 'treatment' needs column 'treatment'"):
        build_cohort(config)


def test_feature_names_shared_by_two_assays_are_prefixed_and_kept(tmp_path, caplog):
    config = write_cohort(tmp_path, SHEET, ASSAY)
    (tmp_path / "cnv.csv").write_text("patient_id,CRP,TP53\nP1,0,1\nP2,1,0\nP3,2,1\n")
    config["assays"]["cnv"] = {"kind": "table", "path": str(tmp_path / "cnv.csv")}
    mdata = build_cohort(validate_config(config)).mdata
    assert mdata["labs"].var_names.tolist() == ["labs:CRP", "ALB"]
    assert mdata["cnv"].var_names.tolist() == ["cnv:CRP", "TP53"]
    assert mdata.var_names.is_unique
    assert mdata["cnv"].var["feature_name"].tolist() == ["CRP", "TP53"]
    assert "1 feature names also occur in another assay (e.g. CRP)" in caplog.text

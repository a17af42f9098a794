"""Site exports: only aggregates, small cells suppressed (with secondary suppression), logged, scanned."""

import json

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

from stratomics.cohort import build_cohort
from stratomics.errors import StratomicsInputError
from stratomics.federated import (
    feature_scales,
    kaplan_meier_at_times,
    protected_cells,
    scan_export,
    site_export,
    subgroup_feature_summary,
    suppress_small_cells,
)
from stratomics.preprocess import preprocess_cohort
from stratomics.subgroups import assign_patients, integrate_and_stratify, strip_patient_data

ASSAYS = ["proteomics", "cytokines", "flow", "rna"]


def test_small_cells_and_the_cells_that_would_reveal_them_are_hidden():
    sizes = pd.DataFrame({"n_patients": [40, 3, 12, 20]}, index=["S1", "S2", "S3", "S4"])
    hidden = protected_cells(sizes, min_count=5)  # S2 alone would be the total minus the others
    assert set(hidden) == {"S2", "S3"} and "complementary" in hidden["S3"]
    two_small = protected_cells(pd.DataFrame({"n": [40, 3, 4, 20]}, index=sizes.index), min_count=5)
    assert set(two_small) == {"S2", "S3"}  # together 7: neither can be told
    tiny = protected_cells(pd.DataFrame({"n": [40, 1, 2, 20]}, index=sizes.index), min_count=5)
    assert set(tiny) == {"S2", "S3", "S4"}  # 1 + 2 < 5: one more cell is hidden
    events = pd.DataFrame({"events": [10, 6, 9, 7], "without": [30, 8, 3, 13]}, index=sizes.index)
    by_outcome = protected_cells(events, min_count=5, hidden={"S2": "count below 5"})
    assert set(by_outcome) == {"S2", "S3"}  # S3 has 3 without the event; S2 was hidden for its size
    table = pd.DataFrame({"feature": ["IL6", "TNF"], "n": [30, 3], "estimate": [0.2, 0.4]})
    safe, log = suppress_small_cells(table, {"n": ["estimate"]}, min_count=5, file="t.tsv", key=["feature"])
    assert safe["estimate"].isna().tolist() == [False, True] and [row["row"] for row in log] == ["TNF"]


def test_kaplan_meier_is_coarsened_to_times_with_enough_events():
    times = [30] * 3 + [120] * 4 + [200] * 6 + [400] * 17  # events at 30 (3), 120 (4), 200 (6); 17 censored later
    obs = pd.DataFrame({"days": times, "event": [1] * 13 + [0] * 17}, index=[f"P{i}" for i in range(30)])
    subgroups = pd.Series("S1", index=obs.index)
    outcomes = {"time_to_switch": {"type": "survival", "time": "days", "event": "event"}}
    table, log = kaplan_meier_at_times(obs, subgroups, outcomes, times=[90, 180, 365], plan={None: {}}, min_count=5)
    shown = table.dropna()
    assert shown["time"].tolist() == [180, 365]  # 90: only 3 events since the start; 180: 7
    assert shown["at_risk"].tolist() == [23, 17]
    assert shown["survival"].to_numpy() == pytest.approx([23 / 30, 17 / 30])
    assert log[0]["row"] == "time_to_switch/S1/90" and "3 events" in log[0]["reason"]
    hidden, _ = kaplan_meier_at_times(obs, subgroups, outcomes, times=[90, 180], plan={None: {"S1": "count below 5"}},
                                      min_count=5)  # fmt: skip
    assert hidden["survival"].isna().all()


def test_means_of_censored_concentrations_need_enough_quantified_values():
    values = np.array([[2.0, 5.0]] * 4 + [[7.3, 5.1], [8.1, 5.2]] + [[2.0, 5.3]] * 6)  # IL6 quantified in 2 of 6 S1
    censored = np.zeros_like(values)
    censored[[0, 1, 2, 3, 6, 7, 8, 9, 10, 11], 0] = -1  # at the LLOQ, imputed
    assay = ad.AnnData(values, obs=pd.DataFrame(index=[f"P{i}" for i in range(12)]),
                       var=pd.DataFrame(index=["IL6", "TNF"]), layers={"censored": censored})  # fmt: skip
    mdata = md.MuData({"cytokines": assay})
    subgroups = pd.Series(["S1"] * 6 + ["S2"] * 6, index=assay.obs_names)
    table, log = subgroup_feature_summary(mdata, subgroups, ["cytokines"], hidden={}, min_count=5)
    table = table.set_index(["feature", "subgroup"])
    assert np.isnan(table.loc[("IL6", "S1"), "mean"])  # (4 x 2.0 + 7.3 + 8.1) / 6 would give the two values away
    assert table.loc[("TNF", "S1"), "mean"] == pytest.approx(np.mean([5.0] * 4 + [5.1, 5.2]))
    assert table.loc[("TNF", "S1"), "n"] == 5  # 6, floored to a multiple of 5
    assert any(row["row"] == "cytokines/IL6/S1" and "n_quantified below 5" in row["reason"] for row in log)


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
    assert shipped.stratification.resampled == []  # a resample's cluster may be one patient's scores
    with pytest.raises(StratomicsInputError, match=r"S1 \(\d+ patients\).*fewer than federated.min_cell_count"):
        strip_patient_data(model, min_count=1000)
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


def _shown_difference_is_safe(counts: pd.DataFrame, min_count: int) -> bool:
    """Whether every column's total minus its shown subgroup cells is 0 (nothing hidden) or at least
    ``min_count`` (what the hidden cells hold together)."""
    total = counts.set_index("subgroup").loc["all"]
    cells = counts[counts["subgroup"] != "all"].set_index("subgroup")
    for column in cells.columns:
        if pd.isna(total[column]):
            continue
        rest = total[column] - cells[column].sum()
        if cells[column].isna().any() and rest < min_count or not cells[column].isna().any() and rest != 0:
            return False
    return True


def test_one_export_cannot_be_differenced_across_its_tables(small_demo, tmp_path):
    _, config = small_demo
    mdata = preprocess_cohort(build_cohort(config).mdata, config)
    model, _ = integrate_and_stratify(mdata, ASSAYS, integrate_options={"method": "mfa"},
                                      stratify_options={"k": 3, "k_values": [3], "n_resamples": 10})  # fmt: skip
    site = mdata.obs["site"].value_counts().index[0]
    local = mdata[mdata.obs_names[mdata.obs["site"] == site]].copy()
    site_export(local, strip_patient_data(model, feature_scales(mdata, ASSAYS)), outcomes=config["cohort"]["outcomes"],
                covariates=["age"], folder=tmp_path, min_count=5)  # fmt: skip
    counts = pd.read_csv(tmp_path / "subgroup_counts.tsv", sep="\t")
    assert _shown_difference_is_safe(counts, 5)
    effects = pd.read_csv(tmp_path / "subgroup_effects.tsv", sep="\t")
    cells = counts.set_index("subgroup")
    for _, row in effects.iterrows():
        subgroup = row["term"].split("[")[1].rstrip("]")
        column = f"{row['outcome']}_events"
        hidden = pd.isna(cells.loc[subgroup, "n_patients"]) or column in cells and pd.isna(cells.loc[subgroup, column])
        assert not hidden or pd.isna(row["estimate"])  # an estimate would give the hidden counts back
    summary = pd.read_csv(tmp_path / "subgroup_feature_summary.tsv", sep="\t")
    estimates = pd.read_csv(tmp_path / "feature_estimates.tsv", sep="\t")
    for table in (summary, estimates):  # floored: n of two features differ by a multiple of 5 (or not at all)
        counted = table[["n"]].dropna()
        assert (counted["n"] % 5 == 0).all()
    ordinal = estimates[estimates["model"] == "ordinal"]
    assert (ordinal.loc[ordinal["estimate"].notna(), "n_smallest_category"] >= 5).all()


def test_two_releases_a_few_patients_apart_are_refused(small_demo, tmp_path, caplog):
    _, config = small_demo
    mdata = preprocess_cohort(build_cohort(config).mdata, config)
    model, _ = integrate_and_stratify(mdata, ASSAYS, integrate_options={"method": "mfa"},
                                      stratify_options={"k": 2, "k_values": [2], "n_resamples": 10})  # fmt: skip
    shipped = strip_patient_data(model, feature_scales(mdata, ASSAYS))
    site = mdata.obs["site"].value_counts().index[0]
    patients = mdata.obs_names[mdata.obs["site"] == site]
    record = tmp_path / "releases/site.json"

    def export(kept, name, **options):
        return site_export(mdata[kept].copy(), shipped, outcomes=config["cohort"]["outcomes"], covariates=["age"],
                           folder=tmp_path / name, min_count=5, releases=record, **options)  # fmt: skip

    export(patients, "first")
    export(patients, "rerun")  # the same patients again: the same release
    assert [r["release"] for r in json.loads(record.read_text())["releases"]] == [1]
    with pytest.raises(StratomicsInputError, match=r"\(patients\) differ from release 1 .* by 0 added and 1 removed"):
        export(patients[1:], "one_less")  # the attack: one export minus the other would be that patient
    assert not (tmp_path / "one_less").exists()
    export(patients[1:], "one_less", allow_close_release=True)
    assert "released anyway" in caplog.text
    with pytest.raises(StratomicsInputError, match=r"\(assay:rna\) differ .* by 0 added and 4 removed"):
        export(patients[6:], "six_less")  # 6 fewer patients, but only 4 of them had RNA: their RNA means would leak
    export(mdata.obs_names, "every_site")  # every set differs by at least 5
    assert len(json.loads(record.read_text())["releases"]) == 3

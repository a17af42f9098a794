"""The sample sheet derived from an OMOP CDM: rules checked on hand-made patients, the demo CDM against
the demo's CSV sheet, and PostgreSQL against DuckDB on a throwaway PostgreSQL cluster."""

import datetime as dt
import glob
import os
import shutil
import socket
import subprocess
import tempfile

import mudata as md
import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_helpers import ROOT, workflow_command

from stratomics.config import validate_config
from stratomics.errors import StratomicsInputError
from stratomics.omop import CDM_TABLES, connect, derive_sample_sheet, write_cdm
from stratomics.simulate import simulate_cohort
from stratomics.simulate_omop import DEMO_OMOP, demo_cdm_tables

INFLIXIMAB, PRODUCT, TOCILIZUMAB, CROHN, RA, CRP = 937368, 2_000_937_368, 40171288, 201606, 80809, 3020460
DAY0 = dt.date(2020, 3, 1)


def _omop_config(url, **changes):
    """A validated cohort.omop section (defaults from the schema) with the demo's concept sets."""
    config = {"cohort": {"omop": {"url": str(url), **DEMO_OMOP, **changes}, "outcomes": {}},
              "assays": {"cytokines": {"kind": "concentration", "path": "absent.csv"}}}
    return validate_config(config, check_files=False)["cohort"]["omop"]


def _day(offset):
    return pd.Timestamp(DAY0 + dt.timedelta(days=offset))


def _hand_made_cdm():
    """Nine persons, each built to test one rule; day 0 is the index date unless said otherwise."""
    persons = pd.DataFrame({
        "person_id": np.arange(1, 10), "gender_concept_id": [8507, 8532, 8507, 8532, 8507, 8507, 8532, 0, 8507],
        "year_of_birth": [1980] * 9, "month_of_birth": [6, None, 1, 1, 1, 1, 1, 1, 1],
        "day_of_birth": [15, None, 1, 1, 1, 1, 1, 1, 1], "care_site_id": [1] * 8 + [None],
        "person_source_value": ["P1", "P2", "P3", "P4", "P5", "P5", "P7", "P8", "P9"],
    })  # fmt: skip
    observation_end = {1: 400, 2: 500, 3: 500, 4: 100, 5: 500, 6: 500, 7: 364, 8: 365, 9: 120}
    periods = pd.DataFrame({
        "observation_period_id": np.arange(1, 10), "person_id": np.arange(1, 10),
        "observation_period_start_date": [_day(-300)] * 3 + [_day(50)] + [_day(-300)] * 5,
        "observation_period_end_date": [_day(observation_end[p]) for p in range(1, 10)],
        "period_type_concept_id": 0,
    })  # fmt: skip
    exposures = [  # person, concept, first day, last day
        (1, PRODUCT, 0, 55), (1, INFLIXIMAB, 105, 400),  # gap of 49 days: one episode, censored
        (2, INFLIXIMAB, 0, 100), (2, INFLIXIMAB, 191, 300),  # gap of 90 days: stop at day 100
        (3, INFLIXIMAB, 0, 250), (3, TOCILIZUMAB, 200, 300),  # switch at day 200 while still on infliximab
        (4, INFLIXIMAB, 0, 90), (5, INFLIXIMAB, 0, 400), (6, INFLIXIMAB, 0, 400),
        (7, INFLIXIMAB, 0, 364),  # followed 364 days without event: failure unknown
        (8, INFLIXIMAB, 0, 365),  # followed 365 days: failure 0
        (9, INFLIXIMAB, 0, 80),  # stop at day 80 but observation ends at day 120 (< 80 + 60): censored
        (9, 1305058, -30, -1),  # methotrexate: not an index drug
    ]
    drug = pd.DataFrame({
        "drug_exposure_id": np.arange(1, len(exposures) + 1), "person_id": [e[0] for e in exposures],
        "drug_concept_id": [e[1] for e in exposures], "drug_exposure_start_date": [_day(e[2]) for e in exposures],
        "drug_exposure_end_date": [_day(e[3]) for e in exposures], "days_supply": None, "drug_type_concept_id": 0,
    })  # fmt: skip
    conditions = pd.DataFrame({
        "condition_occurrence_id": np.arange(1, 6), "person_id": [1, 1, 1, 2, 3],
        "condition_concept_id": [CROHN, RA, RA, RA, CROHN], "condition_start_date": [_day(-10), _day(-200), _day(-100),
                                                                                   _day(40), _day(20)],
        "condition_type_concept_id": 0,
    })  # fmt: skip
    measurements = pd.DataFrame({
        "measurement_id": [1, 2, 3, 4, 5, 6], "person_id": [1, 1, 1, 2, 2, 3],
        "measurement_concept_id": [CRP] * 6, "measurement_date": [_day(-5), _day(-5), _day(3), _day(-91), _day(-90),
                                                                 _day(-1)],
        "value_as_number": [4.5, 7.0, 99.0, 50.0, 12.5, None], "unit_source_value": "mg/L",
        "measurement_type_concept_id": 0,
    })  # fmt: skip
    ancestors = pd.DataFrame({"ancestor_concept_id": [INFLIXIMAB], "descendant_concept_id": [PRODUCT],
                              "min_levels_of_separation": [1], "max_levels_of_separation": [1]})  # fmt: skip
    tables = {
        "person": persons, "observation_period": periods, "drug_exposure": drug, "condition_occurrence": conditions,
        "measurement": measurements, "concept_ancestor": ancestors,
        "care_site": pd.DataFrame({"care_site_id": [1], "care_site_name": ["LUX"], "location_id": [1]}),
        "location": pd.DataFrame({"location_id": [1], "country_source_value": ["Luxembourg"]}),
    }  # fmt: skip
    tables["concept"] = pd.DataFrame(columns=list(CDM_TABLES["concept"]))
    return tables


def _write_duckdb(tables, path):
    connection = connect(str(path), read_only=False)
    write_cdm(tables, connection)
    connection.close()
    return path


def test_hand_made_patients_follow_each_rule(tmp_path):
    url = _write_duckdb(_hand_made_cdm(), tmp_path / "cdm.duckdb")
    extraction = derive_sample_sheet(_omop_config(url, measurements={"crp": [CRP]}))
    sheet = extraction.sheet.set_index("patient_id")
    assert list(sheet.index) == ["P1", "P2", "P3", "P7", "P8", "P9"]
    assert extraction.excluded.set_index("person_id")["reason"].to_dict() == {
        4: "the index date lies in no observation period",
        5: "patient ID shared with another person_id",
        6: "patient ID shared with another person_id",
    }
    assert sheet["time_to_switch_days"].tolist() == [400, 100, 200, 364, 365, 120]
    assert sheet["switched"].tolist() == [0, 1, 1, 0, 0, 0]
    assert sheet["failure_12m"].astype("Float64").tolist() == [0, 1, 1, pd.NA, 0, pd.NA]
    assert sheet.loc["P1", "age"] == 39 and sheet.loc["P2", "age"] == 40  # birthday after index; no month
    assert sheet["sex"].fillna("?").tolist()[:5] == ["M", "F", "M", "F", "?"]
    assert pd.isna(sheet.loc["P9", "site"]) and sheet.loc["P1", "country"] == "Luxembourg"
    # two RA records outweigh one later Crohn's record; P2's RA is 40 days after index (window 30)
    assert sheet["disease"].fillna("?").tolist()[:3] == ["RA", "?", "IBD"]
    # same-day values: the lower measurement_id; after index or 91 days before: ignored; a NULL: ignored
    assert sheet.loc["P1", "crp"] == 4.5 and sheet.loc["P2", "crp"] == 12.5 and np.isnan(sheet.loc["P3", "crp"])
    counts = extraction.report.set_index("rule")["patients"]
    assert counts["patients in the derived sample sheet"] == 6
    assert counts["conditions of more than one set (the set with most records is kept)"] == 1


def test_the_demo_cdm_derives_the_demo_csv_sample_sheet(tmp_path):
    paths = simulate_cohort(tmp_path, n_patients=300, n_snps=200, n_genes=100, scenario="realistic", seed=3)
    derived = derive_sample_sheet(_omop_config(paths["omop_cdm"])).sheet
    written = pd.read_csv(paths["samples"]).sort_values("patient_id").reset_index(drop=True)
    columns = ["patient_id", "site", "country", "disease", "treatment", "age", "sex", "bmi", "crp_mg_l",
               "time_to_switch_days", "switched", "failure_12m"]  # fmt: skip
    pd.testing.assert_frame_equal(
        derived[columns].astype({"age": int, "time_to_switch_days": int, "failure_12m": float}),
        written[columns].astype({"failure_12m": float}),
    )


def test_the_cdm_is_opened_read_only_and_problems_are_named(tmp_path):
    url = _write_duckdb(_hand_made_cdm(), tmp_path / "cdm.duckdb")
    connection = connect(str(url))
    with pytest.raises(Exception, match="read-only"):
        connection.execute("CREATE TABLE written (a INTEGER)")
    connection.close()
    with pytest.raises(StratomicsInputError, match="schema 'cdm'.*lacks the CDM table"):
        derive_sample_sheet(_omop_config(url, schema="cdm"))
    with pytest.raises(StratomicsInputError, match="does not exist"):
        derive_sample_sheet(_omop_config(tmp_path / "absent.duckdb"))


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def postgres_url():
    """A throwaway PostgreSQL cluster on a temporary directory and port (as user postgres when root)."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    if binaries[-1] is None:
        pytest.skip("PostgreSQL is not installed (CI installs Debian's postgresql)")
    bin_dir = os.path.dirname(binaries[-1])
    root = tempfile.mkdtemp(prefix="stratomics-pg-")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    data, port = os.path.join(root, "data"), _free_port()
    subprocess.run([*as_user, f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "stratomics", "--no-sync"],
                   check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -k {root} -c listen_addresses='' -c fsync=off"
    subprocess.run([*as_user, f"{bin_dir}/pg_ctl", "-D", data, "-o", options, "-w", "start", "-l",
                    os.path.join(root, "log")], check=True, capture_output=True)  # fmt: skip
    try:
        admin = connect(f"postgresql://stratomics@/postgres?host={root}&port={port}", read_only=False)
        admin.execute("CREATE DATABASE cdm")
        admin.close()
        yield f"postgresql://stratomics@/cdm?host={root}&port={port}"
    finally:
        subprocess.run([*as_user, f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_derives_what_duckdb_derives(tmp_path, postgres_url):
    import psycopg

    patients = pd.read_csv(simulate_cohort(tmp_path, n_patients=200, n_snps=200, n_genes=100, seed=4)["samples"])
    tables = demo_cdm_tables(patients, seed=4)
    tables["person"] = pd.concat([tables["person"], _hand_made_cdm()["person"].assign(person_id=lambda t: t.person_id + 1000)])
    writer = connect(postgres_url, read_only=False)
    write_cdm(tables, writer, schema="cdm")
    writer.close()
    from_duckdb = derive_sample_sheet(_omop_config(_write_duckdb(tables, tmp_path / "cdm.duckdb")))
    from_postgres = derive_sample_sheet(_omop_config(postgres_url, schema="cdm"))
    assert len(from_postgres.sheet) == 200
    for table in ("sheet", "report", "excluded"):
        pd.testing.assert_frame_equal(getattr(from_postgres, table), getattr(from_duckdb, table))
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        connect(postgres_url).execute("CREATE TABLE cdm.written (a INTEGER)")


def test_the_omop_demo_config_matches_the_demo_cdm():
    variant = yaml.safe_load((ROOT / "workflow/configs/demo_omop.yaml").read_text())["cohort"]["omop"]
    assert {key: variant[key] for key in DEMO_OMOP} == DEMO_OMOP


def test_the_workflow_ingests_the_cohort_from_the_omop_cdm(tmp_path):
    command = workflow_command(tmp_path, "results/cohort/raw.h5mu", "results/demo/samples.csv")
    command.append(str(ROOT / "workflow/configs/demo_omop.yaml"))  # a second --configfile, merged over the first
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    obs = md.read_h5mu(tmp_path / "results/cohort/raw.h5mu").obs
    written = pd.read_csv(tmp_path / "results/demo/samples.csv", index_col="patient_id")
    assert sorted(obs.index) == sorted(written.index)
    for column in ("age", "time_to_switch_days", "failure_12m", "crp_mg_l"):
        np.testing.assert_array_equal(obs[column].astype(float), written.loc[obs.index, column].astype(float))
    for column in ("sex", "site", "disease", "treatment"):
        assert obs[column].astype(str).tolist() == written.loc[obs.index, column].astype(str).tolist(), column
    report = pd.read_csv(tmp_path / "results/qc/omop_extraction.tsv", sep="\t").set_index("rule")["patients"]
    assert report["patients in the derived sample sheet"] == len(written)

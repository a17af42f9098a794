"""A sample sheet derived from an OMOP CDM v5.4 database (DuckDB file or PostgreSQL), read-only.

One row per patient who was exposed to an index biologic: the index date is the first exposure to
any of ``index_drugs`` (each a name with concept ids; their descendants in ``concept_ancestor``
count too). From there, in SQL that runs unchanged on DuckDB and PostgreSQL:

- age at index (year of birth, and month and day when recorded), sex (gender concepts 8507/8532),
  site and country (``care_site`` and its ``location``);
- disease: the configured condition concept set with the most records up to
  ``diagnosis_window_days`` after index (ties: the latest record, then the name);
- baseline measurements: per configured column, the value nearest before index within
  ``measurement_window_days`` (same day counts; ties: the lowest measurement_id);
- treatment failure: **stop** when the first episode of the index drug (exposures joined across
  gaps up to ``switch_grace_days``) ends, observation continues beyond the grace period and no other
  index drug starts within it (the event date is the episode's end); otherwise **switch** on the
  first exposure to another index drug after index; time to it in days, censored at the end of the observation period that
  holds the index date; ``failure_<months>m`` = 1 when the event falls within the window, 0 when
  the patient was followed that long without it, missing otherwise.

Patients are excluded, each with the reason, when the index date lies in no observation period,
the patient ID is empty or repeated, they are younger than ``min_age`` or have fewer than
``prior_observation_days`` of observation before index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError

#: Where the workflow writes the derived sample sheet and its reports.
DERIVED_SAMPLE_SHEET = "results/omop/samples.tsv"
EXTRACTION_REPORT = "results/qc/omop_extraction.tsv"
EXCLUDED_PATIENTS = "results/qc/omop_excluded.tsv"
#: OMOP gender concepts.
GENDER_CONCEPTS = {8507: "M", 8532: "F"}
#: The CDM v5.4 columns this module reads, with portable SQL types (the simulator writes these).
CDM_TABLES = {
    "person": {
        "person_id": "BIGINT", "gender_concept_id": "INTEGER", "year_of_birth": "INTEGER",
        "month_of_birth": "INTEGER", "day_of_birth": "INTEGER", "care_site_id": "BIGINT",
        "person_source_value": "VARCHAR(50)",
    },
    "observation_period": {
        "observation_period_id": "BIGINT", "person_id": "BIGINT", "observation_period_start_date": "DATE",
        "observation_period_end_date": "DATE", "period_type_concept_id": "INTEGER",
    },
    "drug_exposure": {
        "drug_exposure_id": "BIGINT", "person_id": "BIGINT", "drug_concept_id": "INTEGER",
        "drug_exposure_start_date": "DATE", "drug_exposure_end_date": "DATE", "days_supply": "INTEGER",
        "drug_type_concept_id": "INTEGER",
    },
    "condition_occurrence": {
        "condition_occurrence_id": "BIGINT", "person_id": "BIGINT", "condition_concept_id": "INTEGER",
        "condition_start_date": "DATE", "condition_type_concept_id": "INTEGER",
    },
    "measurement": {
        "measurement_id": "BIGINT", "person_id": "BIGINT", "measurement_concept_id": "INTEGER",
        "measurement_date": "DATE", "value_as_number": "NUMERIC", "unit_source_value": "VARCHAR(50)",
        "measurement_type_concept_id": "INTEGER",
    },
    "care_site": {"care_site_id": "BIGINT", "care_site_name": "VARCHAR(255)", "location_id": "BIGINT"},
    "location": {"location_id": "BIGINT", "country_source_value": "VARCHAR(80)"},
    "concept": {
        "concept_id": "INTEGER", "concept_name": "VARCHAR(255)", "domain_id": "VARCHAR(20)",
        "vocabulary_id": "VARCHAR(20)", "concept_class_id": "VARCHAR(20)", "concept_code": "VARCHAR(50)",
    },
    "concept_ancestor": {
        "ancestor_concept_id": "INTEGER", "descendant_concept_id": "INTEGER",
        "min_levels_of_separation": "INTEGER", "max_levels_of_separation": "INTEGER",
    },
}  # fmt: skip
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class OmopExtraction:
    """What :func:`derive_sample_sheet` found.

    Attributes
    ----------
    sheet
        One row per included patient (see the module docstring for the columns).
    report
        The derivation rules and counts: step, rule, patients.
    excluded
        One row per excluded patient: person_id, patient_id, reason.
    """

    sheet: pd.DataFrame
    report: pd.DataFrame
    excluded: pd.DataFrame


def sample_sheet_path(cohort: dict) -> str | None:
    """The sample sheet the analysis reads: ``cohort.samples``, or the one derived from ``cohort.omop``."""
    return DERIVED_SAMPLE_SHEET if cohort.get("omop") else cohort.get("samples")


def is_postgres(url: str) -> bool:
    """Whether a CDM URL names a PostgreSQL server (otherwise it is a DuckDB file)."""
    return url.startswith(("postgresql://", "postgres://"))


def duckdb_path(url: str) -> str:
    """The file of a DuckDB URL (``duckdb:///path``, ``duckdb://path`` or a plain path)."""
    return re.sub(r"^duckdb://", "", url)


def connect(url: str, *, read_only: bool = True):
    """Open a CDM: a DuckDB file or a PostgreSQL server (password from PGPASSWORD or ~/.pgpass).

    Parameters
    ----------
    url
        ``postgresql://user@host:port/database`` or a DuckDB file path.
    read_only
        Open read-only (the analysis never writes to the user's CDM).

    Returns
    -------
    A DB-API connection (duckdb or psycopg).
    """
    if is_postgres(url):
        import psycopg

        options = "-c default_transaction_read_only=on" if read_only else ""
        try:
            return psycopg.connect(url, options=options, autocommit=True)
        except psycopg.OperationalError as err:
            raise StratomicsInputError(
                f"cohort.omop.url: cannot connect to PostgreSQL ({without_password(url)}): {err}. Check the "
                "host, port, database and user; give the password through PGPASSWORD or ~/.pgpass, not the config."
            ) from None
    import duckdb

    path = duckdb_path(url)
    if read_only and not Path(path).is_file():
        raise StratomicsInputError(
            f"cohort.omop.url: the DuckDB file '{path}' does not exist (working directory {Path.cwd()}). "
            "Give the path of the CDM database file, or a postgresql:// URL."
        )
    return duckdb.connect(path, read_only=read_only)


def without_password(url: str) -> str:
    """A URL with any password replaced by *** (for messages and the provenance record)."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)


def query(connection, sql: str) -> pd.DataFrame:
    """Run one SELECT and return its rows as a frame (same result on DuckDB and PostgreSQL)."""
    cursor = connection.cursor()
    cursor.execute(sql)
    columns = [column[0] for column in cursor.description]
    return pd.DataFrame(cursor.fetchall(), columns=columns)


def derive_sample_sheet(omop: dict) -> OmopExtraction:
    """Derive the sample sheet, its extraction report and the excluded patients from a CDM.

    Parameters
    ----------
    omop
        The validated ``cohort.omop`` config section.

    Returns
    -------
    The :class:`OmopExtraction`.
    """
    schema = _schema(omop)
    connection = connect(omop["url"])
    try:
        _check_tables(connection, omop, schema)
        patients = query(connection, _patients_sql(omop, schema))
        measurements = query(connection, _measurements_sql(omop, schema)) if omop["measurements"] else None
        n_persons = int(query(connection, f"SELECT COUNT(*) AS n FROM {schema}.person")["n"].iloc[0])
    finally:
        connection.close()
    patients = _typed(patients)
    patients["patient_id"] = _patient_ids(patients, omop["patient_id"])
    patients["reason"] = _exclusion_reasons(patients, omop)
    included = patients[patients["reason"] == ""]
    sheet = _sheet(included, omop, measurements)
    excluded = patients.loc[patients["reason"] != "", ["person_id", "patient_id", "reason"]].reset_index(drop=True)
    report = _report(patients, sheet, omop, n_persons, measurements)
    return OmopExtraction(sheet=sheet, report=report, excluded=excluded)


def _schema(omop: dict) -> str:
    """The CDM schema, checked as an SQL identifier."""
    schema = omop.get("schema") or ("public" if is_postgres(omop["url"]) else "main")
    if not _IDENTIFIER.match(schema):
        raise StratomicsInputError(
            f"cohort.omop.schema is '{schema}': a schema name has letters, digits and underscores only."
        )
    return schema


def _check_tables(connection, omop: dict, schema: str) -> None:
    """Stop with the missing tables named when the schema lacks a CDM table this module reads."""
    needed = ["person", "observation_period", "drug_exposure", "care_site", "location", "concept_ancestor"]
    needed += ["condition_occurrence"] * bool(omop["diseases"]) + ["measurement"] * bool(omop["measurements"])
    found = query(
        connection,
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'",
    )["table_name"].str.lower()
    missing = sorted(set(needed) - set(found))
    if missing:
        raise StratomicsInputError(
            f"cohort.omop: schema '{schema}' of {without_password(omop['url'])} lacks the CDM table(s) "
            f"{', '.join(missing)}. Set cohort.omop.schema to the schema that holds the CDM v5.4 tables."
        )


def _concept_set_sql(name: str, concept_sets: dict, schema: str) -> str:
    """CTEs ``{name}_set(item, concept_id)`` and ``{name}_concept``: the concepts and their descendants.

    Items are numbered in the order of the config; the numbers map back to names in Python.
    """
    rows = ", ".join(
        f"({item}, {int(concept)})" for item, concepts in enumerate(concept_sets.values()) for concept in concepts
    )
    return (
        f"{name}_set(item, concept_id) AS (VALUES {rows}),\n"
        f"{name}_concept AS (\n"
        f"  SELECT s.item, ca.descendant_concept_id AS concept_id FROM {name}_set s\n"
        f"  JOIN {schema}.concept_ancestor ca ON ca.ancestor_concept_id = s.concept_id\n"
        f"  UNION SELECT item, concept_id FROM {name}_set)"
    )


def _index_sql(omop: dict, schema: str) -> str:
    """CTEs ``exposure`` (index-drug exposures with their item) and ``index_person`` (the first one per person)."""
    return f"""{_concept_set_sql("drug", omop["index_drugs"], schema)},
exposure AS (
  SELECT de.person_id, dc.item, de.drug_exposure_start_date AS start_date,
         COALESCE(de.drug_exposure_end_date, de.drug_exposure_start_date + COALESCE(de.days_supply, 1) - 1)
           AS end_date
  FROM {schema}.drug_exposure de
  JOIN (SELECT DISTINCT item, concept_id FROM drug_concept) dc ON dc.concept_id = de.drug_concept_id),
first_exposure AS (
  SELECT person_id, item, start_date,
         ROW_NUMBER() OVER (PARTITION BY person_id ORDER BY start_date, item) AS rank
  FROM exposure),
index_person AS (
  SELECT person_id, item AS index_item, start_date AS index_date FROM first_exposure WHERE rank = 1)"""


def _patients_sql(omop: dict, schema: str) -> str:
    """One row per person with an index exposure: demographics, index, outcome dates and disease."""
    grace = int(omop["switch_grace_days"])
    with_disease = bool(omop["diseases"])
    disease_ctes = ""
    if with_disease:
        disease_ctes = f""",
{_concept_set_sql("disease", omop["diseases"], schema)},
diagnosis AS (
  SELECT co.person_id, dc.item, COUNT(*) AS n_records, MAX(co.condition_start_date) AS latest
  FROM {schema}.condition_occurrence co
  JOIN (SELECT DISTINCT item, concept_id FROM disease_concept) dc ON dc.concept_id = co.condition_concept_id
  JOIN index_person i ON i.person_id = co.person_id
  WHERE co.condition_start_date <= i.index_date + {int(omop["diagnosis_window_days"])}
  GROUP BY co.person_id, dc.item),
ranked_diagnosis AS (
  SELECT person_id, item, COUNT(*) OVER (PARTITION BY person_id) AS n_diseases,
         ROW_NUMBER() OVER (PARTITION BY person_id ORDER BY n_records DESC, latest DESC, item) AS rank
  FROM diagnosis)"""
    return f"""
WITH {_index_sql(omop, schema)},
index_drug_exposure AS (
  SELECT e.person_id, e.start_date, e.end_date,
         MAX(e.end_date) OVER (PARTITION BY e.person_id ORDER BY e.start_date, e.end_date
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_end
  FROM exposure e JOIN index_person i ON i.person_id = e.person_id AND e.item = i.index_item),
episode AS (
  SELECT person_id,
         COALESCE(MIN(CASE WHEN start_date > previous_end + {grace} THEN previous_end END), MAX(end_date))
           AS episode_end
  FROM index_drug_exposure GROUP BY person_id),
switch AS (
  SELECT e.person_id, MIN(e.start_date) AS switch_date
  FROM exposure e JOIN index_person i ON i.person_id = e.person_id
  WHERE e.item <> i.index_item AND e.start_date > i.index_date
  GROUP BY e.person_id),
observation AS (
  SELECT i.person_id, MIN(op.observation_period_start_date) AS observation_start,
         MAX(op.observation_period_end_date) AS observation_end
  FROM index_person i JOIN {schema}.observation_period op ON op.person_id = i.person_id
   AND i.index_date BETWEEN op.observation_period_start_date AND op.observation_period_end_date
  GROUP BY i.person_id){disease_ctes}
SELECT p.person_id, p.person_source_value, i.index_item,
       CAST(i.index_date AS VARCHAR(10)) AS index_date,
       EXTRACT(YEAR FROM i.index_date) - p.year_of_birth
         - CASE WHEN p.month_of_birth IS NOT NULL AND (p.month_of_birth > EXTRACT(MONTH FROM i.index_date)
                  OR (p.month_of_birth = EXTRACT(MONTH FROM i.index_date)
                      AND COALESCE(p.day_of_birth, 1) > EXTRACT(DAY FROM i.index_date)))
                THEN 1 ELSE 0 END AS age,
       p.gender_concept_id, cs.care_site_name AS site, l.country_source_value AS country,
       i.index_date - o.observation_start AS prior_observation_days,
       o.observation_end - i.index_date AS followed_days,
       s.switch_date - i.index_date AS switch_days,
       CASE WHEN ep.episode_end + {grace} < o.observation_end THEN ep.episode_end - i.index_date END AS stop_days,
       {"d.item AS disease_item, d.n_diseases" if with_disease else "NULL AS disease_item, 0 AS n_diseases"}
FROM index_person i
JOIN {schema}.person p ON p.person_id = i.person_id
LEFT JOIN {schema}.care_site cs ON cs.care_site_id = p.care_site_id
LEFT JOIN {schema}.location l ON l.location_id = cs.location_id
LEFT JOIN observation o ON o.person_id = i.person_id
LEFT JOIN episode ep ON ep.person_id = i.person_id
LEFT JOIN switch s ON s.person_id = i.person_id
{"LEFT JOIN ranked_diagnosis d ON d.person_id = i.person_id AND d.rank = 1" if with_disease else ""}
ORDER BY p.person_id"""


def _measurements_sql(omop: dict, schema: str) -> str:
    """Per person with an index exposure and measurement column: the nearest value before index."""
    window = int(omop["measurement_window_days"])
    return f"""
WITH {_index_sql(omop, schema)},
{_concept_set_sql("measured", omop["measurements"], schema)},
candidate AS (
  SELECT m.person_id, mc.item, CAST(m.value_as_number AS DOUBLE PRECISION) AS value, m.unit_source_value AS unit,
         ROW_NUMBER() OVER (PARTITION BY m.person_id, mc.item
                            ORDER BY m.measurement_date DESC, m.measurement_id) AS rank
  FROM {schema}.measurement m
  JOIN (SELECT DISTINCT item, concept_id FROM measured_concept) mc ON mc.concept_id = m.measurement_concept_id
  JOIN index_person i ON i.person_id = m.person_id
  WHERE m.value_as_number IS NOT NULL
    AND m.measurement_date BETWEEN i.index_date - {window} AND i.index_date)
SELECT person_id, item, value, unit FROM candidate WHERE rank = 1 ORDER BY person_id, item"""


def _typed(patients: pd.DataFrame) -> pd.DataFrame:
    """Day counts and ages as nullable integers (PostgreSQL and DuckDB return different int types)."""
    patients = patients.copy()
    for column in ("person_id", "index_item", "age", "gender_concept_id", "prior_observation_days",
                   "followed_days", "switch_days", "stop_days", "disease_item", "n_diseases"):  # fmt: skip
        patients[column] = pd.array(pd.to_numeric(patients[column]), dtype="Int64")
    return patients


def _patient_ids(patients: pd.DataFrame, id_source: str) -> pd.Series:
    """The patient IDs: person_source_value (text, stripped) or person_id."""
    if id_source == "person_id":
        return patients["person_id"].astype(str)
    return patients["person_source_value"].fillna("").astype(str).str.strip()


def _exclusion_reasons(patients: pd.DataFrame, omop: dict) -> pd.Series:
    """The first reason each patient is excluded, or "" when included."""
    ids = patients["patient_id"]
    rules = [
        (patients["followed_days"].isna(), "the index date lies in no observation period"),
        (ids == "", "no patient ID (person_source_value is empty)"),
        (ids.duplicated(keep=False) & (ids != ""), "patient ID shared with another person_id"),
        (patients["prior_observation_days"].fillna(0) < omop["prior_observation_days"],
         f"fewer than {omop['prior_observation_days']} days of observation before index"),
        (patients["age"].fillna(-1) < omop["min_age"], f"younger than {omop['min_age']} at index (or no birth year)"),
    ]  # fmt: skip
    reasons = pd.Series("", index=patients.index)
    for applies, reason in reversed(rules):
        reasons = reasons.mask(applies.fillna(False).astype(bool), reason)
    return reasons


def failure_column(omop: dict) -> str:
    """The name of the early-failure outcome column, e.g. failure_12m."""
    return f"failure_{omop['failure_months']}m"


def failure_window_days(omop: dict) -> int:
    """The early-failure window in days (12 months = 365 days)."""
    return int(round(omop["failure_months"] * 365.25 / 12 - 0.25))


def _sheet(included: pd.DataFrame, omop: dict, measurements: pd.DataFrame | None) -> pd.DataFrame:
    """The sample sheet of the included patients, with outcomes and measurements as columns."""
    drugs, diseases = list(omop["index_drugs"]), list(omop["diseases"])
    event_days, _ = _events(included, omop["switch_grace_days"])
    switched = event_days.notna()
    time = event_days.where(switched, included["followed_days"])
    window = failure_window_days(omop)
    failure = np.where(switched & (event_days <= window), 1.0, np.where(included["followed_days"] >= window, 0.0, np.nan))
    sheet = pd.DataFrame(
        {
            "patient_id": included["patient_id"].to_numpy(),
            "person_id": included["person_id"].to_numpy(),
            "site": included["site"].to_numpy(dtype=object),
            "country": included["country"].to_numpy(dtype=object),
            "disease": included["disease_item"].map(dict(enumerate(diseases))).to_numpy(dtype=object),
            "treatment": included["index_item"].map(dict(enumerate(drugs))).to_numpy(dtype=object),
            "index_date": included["index_date"].to_numpy(),
            "age": included["age"].to_numpy(),
            "sex": included["gender_concept_id"].map(GENDER_CONCEPTS).to_numpy(dtype=object),
        }
    )
    if not diseases:
        sheet = sheet.drop(columns="disease")
    if measurements is not None:
        wide = _typed_measurements(measurements, omop).pivot(index="person_id", columns="column", values="value")
        for column in omop["measurements"]:
            values = wide[column] if column in wide else pd.Series(dtype=float)
            sheet[column] = sheet["person_id"].map(values).astype(float).to_numpy()
    sheet["time_to_switch_days"] = pd.array(time.to_numpy(), dtype="Int64")
    sheet["switched"] = switched.astype(int).to_numpy()
    sheet[failure_column(omop)] = pd.array(failure, dtype="Int64")
    return sheet.sort_values("patient_id", kind="stable").reset_index(drop=True)


def _events(patients: pd.DataFrame, grace: int) -> tuple[pd.Series, pd.Series]:
    """Days from index to the failure event (missing when censored), and whether it is a switch.

    A stop counts unless another index drug starts within ``grace`` days after the episode's end.
    """
    switch, stop = patients["switch_days"], patients["stop_days"]
    is_switch = switch.notna() & (stop.isna() | (switch <= stop + grace))
    return switch.where(is_switch, stop), is_switch.astype(bool)


def _typed_measurements(measurements: pd.DataFrame, omop: dict) -> pd.DataFrame:
    """Measurement rows with the column name of each item and numbers as floats."""
    names = list(omop["measurements"])
    measurements = measurements.copy()
    measurements["person_id"] = pd.to_numeric(measurements["person_id"]).astype("int64")
    measurements["column"] = [names[int(item)] for item in measurements["item"]]
    measurements["value"] = pd.to_numeric(measurements["value"]).astype(float)
    return measurements


def _report(patients, sheet, omop: dict, n_persons: int, measurements) -> pd.DataFrame:
    """The extraction report: each derivation step, its rule and the number of patients."""
    drugs = ", ".join(f"{name} ({len(ids)} concept(s) and descendants)" for name, ids in omop["index_drugs"].items())
    grace, window = omop["switch_grace_days"], failure_window_days(omop)
    switched = sheet["switched"] == 1
    _, is_switch = _events(patients[patients["reason"] == ""], grace)
    event_is_switch = is_switch.to_numpy()
    rows = [
        ("persons", "persons in the CDM", n_persons),
        ("index", f"first exposure to an index biologic: {drugs}", len(patients)),
        *[("excluded", reason, int(n)) for reason, n in patients.loc[patients["reason"] != "", "reason"]
          .value_counts().sort_index().items()],
        ("included", "patients in the derived sample sheet", len(sheet)),
        *[("treatment", f"index biologic {name}", int((sheet["treatment"] == name).sum())) for name in omop["index_drugs"]],
        ("outcome", "switch: another index biologic starts after index (and within the grace period of a stop)", int((switched & event_is_switch).sum())),
        ("outcome", f"stop: index-biologic episode (gaps <= {grace} days joined) ends and observation continues "
                    f"more than {grace} days after it, with no other index biologic within {grace} days", int((switched & ~event_is_switch).sum())),
        ("outcome", "censored at the end of the observation period holding the index date", int((~switched).sum())),
        (failure_column(omop), f"1: switch or stop within {window} days", int((sheet[failure_column(omop)] == 1).sum())),
        (failure_column(omop), f"0: followed {window} days without switch or stop", int((sheet[failure_column(omop)] == 0).sum())),
        (failure_column(omop), f"missing: followed fewer than {window} days without switch or stop",
         int(sheet[failure_column(omop)].isna().sum())),
        ("sex", "gender concept other than 8507 (M) or 8532 (F): sex missing", int(sheet["sex"].isna().sum())),
        ("site", "no care_site name: site missing", int(sheet["site"].isna().sum())),
    ]  # fmt: skip
    rows += _disease_rows(patients, sheet, omop) + _measurement_rows(sheet, omop, measurements)
    return pd.DataFrame(rows, columns=["step", "rule", "patients"])


def _disease_rows(patients, sheet, omop: dict) -> list[tuple]:
    """Report rows of the disease derivation (none without configured concept sets)."""
    if not omop["diseases"]:
        return []
    window = omop["diagnosis_window_days"]
    included = patients[patients["reason"] == ""]
    rows = [("disease", f"{name}: most condition records up to {window} days after index",
             int((sheet["disease"] == name).sum())) for name in omop["diseases"]]  # fmt: skip
    rows.append(("disease", "no condition of any configured set: disease missing", int(sheet["disease"].isna().sum())))
    rows.append(("disease", "conditions of more than one set (the set with most records is kept)",
                 int((included["n_diseases"] > 1).sum())))  # fmt: skip
    return rows


def _measurement_rows(sheet, omop: dict, measurements) -> list[tuple]:
    """Report rows of the baseline measurements: patients with a value, and the units recorded."""
    rows = []
    window = omop["measurement_window_days"]
    for item, column in enumerate(omop["measurements"]):
        found = int(sheet[column].notna().sum())
        of_column = measurements[(measurements["item"].astype(int) == item)
                                 & measurements["person_id"].astype("int64").isin(sheet["person_id"].astype("int64"))]  # fmt: skip
        units = of_column["unit"].fillna("no unit").value_counts().sort_index()
        described = ", ".join(f"{unit} ({n})" for unit, n in units.items()) or "none"
        rows.append((f"measurement {column}", f"nearest value in the {window} days up to index; units: {described}", found))
    return rows


def write_cdm(tables: dict[str, pd.DataFrame], connection, schema: str = "main") -> None:
    """Create the CDM tables of :data:`CDM_TABLES` in a schema and fill them (for the demo and tests).

    Parameters
    ----------
    tables
        Table name -> rows, with the columns of :data:`CDM_TABLES` (dates as ``datetime.date``).
    connection
        A writable DuckDB or psycopg connection.
    schema
        The schema to create the tables in (created if needed).
    """
    cursor = connection.cursor()
    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    postgres = type(connection).__module__.startswith("psycopg")
    for name, columns in CDM_TABLES.items():
        cursor.execute(f"CREATE TABLE {schema}.{name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
        rows = tables[name][list(columns)].astype(
            {column: "Int64" for column, sql_type in columns.items() if sql_type in ("INTEGER", "BIGINT")}
        )
        if postgres:
            rows = rows.apply(lambda c: c.dt.date if pd.api.types.is_datetime64_any_dtype(c) else c)
            with cursor.copy(f"COPY {schema}.{name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows.astype(object).where(rows.notna(), None).itertuples(index=False):
                    copy.write_row(row)
        else:
            connection.register("cdm_rows", rows)  # registered on the connection, not its cursors
            connection.execute(f"INSERT INTO {schema}.{name} SELECT * FROM cdm_rows")
            connection.unregister("cdm_rows")
    connection.commit()

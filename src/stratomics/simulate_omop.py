"""The demo cohort's clinical data as an OMOP CDM v5.4 database (DuckDB).

The database holds the same patients as the demo's sample sheet, written as a hospital's CDM would
hold them: biologic exposures in 8-week supplies with late doses, a switch to another biologic class
or a stop, unrelated drugs, diagnoses before index (some patients with a second disease), CRP and BMI
before index with older and later values that must not be taken, and observation periods. The
sample sheet that :func:`stratomics.omop.derive_sample_sheet` derives from it with
:data:`DEMO_OMOP` equals the demo's CSV sheet on every derived column.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from stratomics.omop import CDM_TABLES, GENDER_CONCEPTS, connect, write_cdm

#: Concept sets of the demo (standard concept ids; local ids >= 2,000,000,000 are the demo's own
#: clinical-drug concepts that descend from the ingredients). Look yours up in ATHENA.
DEMO_OMOP = {
    "index_drugs": {
        "anti-TNF": [937368, 1119119, 1151789],  # infliximab, adalimumab, etanercept
        "anti-integrin": [735843],  # natalizumab
        "anti-IL6R": [40171288],  # tocilizumab
        "anti-CD20": [1314273],  # rituximab
    },
    "diseases": {"IBD": [201606, 81893], "RA": [80809], "MS": [374919]},  # Crohn's, UC; RA; MS
    "measurements": {"bmi": [3038553], "crp_mg_l": [3020460]},
}
CONCEPT_NAMES = {
    937368: "infliximab", 1119119: "adalimumab", 1151789: "etanercept", 735843: "natalizumab",
    40171288: "tocilizumab", 1314273: "rituximab", 1305058: "methotrexate", 201606: "Crohn's disease",
    81893: "Ulcerative colitis", 80809: "Rheumatoid arthritis", 374919: "Multiple sclerosis",
    320128: "Essential hypertension", 3038553: "Body mass index", 3020460: "C reactive protein",
}  # fmt: skip
METHOTREXATE, HYPERTENSION = 1305058, 320128
LOCAL_CONCEPT = 2_000_000_000
SUPPLY_DAYS = 56
GRACE_DAYS = 60
FIRST_INDEX = dt.date(2018, 1, 1)


def write_demo_cdm(patients: pd.DataFrame, path: str | Path, seed: int) -> None:
    """Write the demo patients as a DuckDB OMOP CDM (replacing the file).

    Parameters
    ----------
    patients
        The demo sample sheet with outcomes (as written by :func:`stratomics.simulate.simulate_cohort`).
    path
        The DuckDB file.
    seed
        Seed of the CDM's own random draws (dates, doses, extra records).
    """
    path = Path(path)
    path.unlink(missing_ok=True)
    connection = connect(str(path), read_only=False)
    try:
        write_cdm(demo_cdm_tables(patients, seed), connection)
    finally:
        connection.close()


def demo_cdm_tables(patients: pd.DataFrame, seed: int) -> dict[str, pd.DataFrame]:
    """The CDM tables of the demo patients (see :data:`stratomics.omop.CDM_TABLES`).

    Parameters
    ----------
    patients
        The demo sample sheet with outcomes.
    seed
        Seed of the random draws.

    Returns
    -------
    Table name -> rows.
    """
    rng = np.random.default_rng([seed, 5_4])
    n = len(patients)
    drawn = [FIRST_INDEX + dt.timedelta(days=int(d)) for d in rng.integers(0, 4 * 365, n)]
    # the sample sheet's treatment start, when it has one, is the index date (the wearable windows count from it)
    index = ([dt.date.fromisoformat(day) for day in patients["treatment_start"]] if "treatment_start" in patients
             else drawn)  # fmt: skip
    timeline = _timeline(patients, rng)
    sites = sorted(patients["site"].unique())
    tables = {
        "location": pd.DataFrame({
            "location_id": np.arange(1, len(sites) + 1),
            "country_source_value": [patients.loc[patients["site"] == s, "country"].iloc[0] for s in sites],
        }),
        "care_site": pd.DataFrame({
            "care_site_id": np.arange(1, len(sites) + 1), "care_site_name": sites,
            "location_id": np.arange(1, len(sites) + 1),
        }),
        "person": _persons(patients, index, sites, rng),
        "observation_period": pd.DataFrame({
            "observation_period_id": np.arange(1, n + 1), "person_id": np.arange(1, n + 1),
            "observation_period_start_date": [d - dt.timedelta(days=int(b)) for d, b in
                                              zip(index, rng.integers(180, 1500, n))],
            "observation_period_end_date": [d + dt.timedelta(days=int(f)) for d, f in
                                            zip(index, timeline["followed"])],
            "period_type_concept_id": 32817,
        }),
        "drug_exposure": _exposures(patients, index, timeline, rng),
        "condition_occurrence": _conditions(patients, index, rng),
        "measurement": _measurements(patients, index, rng),
        "concept": _concepts(),
        "concept_ancestor": _ancestors(),
    }  # fmt: skip
    for name, columns in CDM_TABLES.items():
        for column, sql_type in columns.items():
            if sql_type == "DATE":
                tables[name][column] = pd.to_datetime(tables[name][column])
    return tables


def _timeline(patients: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Per patient: days followed after index, the event day and whether the event is a stop."""
    time = patients["time_to_switch_days"].to_numpy()
    switched = patients["switched"].to_numpy() == 1
    after_event = rng.integers(0, 500, len(patients))
    followed = np.where(switched, time + after_event, time)
    stop = switched & (after_event > GRACE_DAYS + 1) & (rng.random(len(patients)) < 0.3)
    return pd.DataFrame({"followed": followed, "event": np.where(switched, time, -1), "stop": stop})


def _persons(patients, index, sites, rng) -> pd.DataFrame:
    """Person rows: birth dates that give the sheet's age at index, gender, care site."""
    months = [int(rng.integers(1, d.month + 1)) for d in index]
    days = [int(rng.integers(1, (d.day if m == d.month else 28) + 1)) for d, m in zip(index, months)]
    gender = {label: concept for concept, label in GENDER_CONCEPTS.items()}
    return pd.DataFrame({
        "person_id": np.arange(1, len(patients) + 1),
        "gender_concept_id": patients["sex"].map(gender).to_numpy(),
        "year_of_birth": [d.year - int(age) for d, age in zip(index, patients["age"])],
        "month_of_birth": months, "day_of_birth": days,
        "care_site_id": patients["site"].map({s: i for i, s in enumerate(sites, start=1)}).to_numpy(),
        "person_source_value": patients["patient_id"].to_numpy(),
    })  # fmt: skip


def _exposures(patients, index, timeline, rng) -> pd.DataFrame:
    """Drug exposures: the index biologic up to the event (or end), then another class on a switch."""
    classes = list(DEMO_OMOP["index_drugs"])
    rows = []
    for person, (start, treatment, line) in enumerate(zip(index, patients["treatment"], timeline.itertuples()), 1):
        drug = int(rng.choice(DEMO_OMOP["index_drugs"][treatment]))
        until = line.event if line.event >= 0 else line.followed
        rows += _supplies(person, drug, start, 0, until - 1 if line.event >= 0 and not line.stop else until, rng)
        if line.event >= 0 and not line.stop:
            other = classes[(classes.index(treatment) + 1 + int(rng.integers(0, 3))) % len(classes)]
            second = int(DEMO_OMOP["index_drugs"][other][0])
            rows += _supplies(person, second, start, line.event, min(line.followed, line.event + 3 * SUPPLY_DAYS), rng)
        if rng.random() < 0.3:
            rows.append((person, METHOTREXATE, start - dt.timedelta(days=int(rng.integers(1, 400))), 28))
    frame = pd.DataFrame(rows, columns=["person_id", "drug_concept_id", "drug_exposure_start_date", "days_supply"])
    frame["drug_exposure_end_date"] = [
        s + dt.timedelta(days=int(d) - 1) for s, d in zip(frame["drug_exposure_start_date"], frame["days_supply"])
    ]
    frame["drug_exposure_id"] = np.arange(1, len(frame) + 1)
    frame["drug_type_concept_id"] = 32838
    return frame


def _supplies(person, drug, index, first_day, last_day, rng) -> list[tuple]:
    """Supplies of one drug covering days first_day..last_day after index, some doses late.

    Every other supply is recorded as the demo's local clinical-drug concept that descends from the
    ingredient, as a CDM records products rather than ingredients.
    """
    rows, day = [], first_day
    while day <= last_day:
        length = int(min(SUPPLY_DAYS, last_day - day + 1))
        concept = drug if len(rows) % 2 == 0 else LOCAL_CONCEPT + drug % 1_000_000
        rows.append((person, concept, index + dt.timedelta(days=int(day)), length))
        late = int(rng.integers(1, 40)) if rng.random() < 0.1 else 0  # a late dose, within the grace period
        day += length + (late if day + length + late <= last_day else 0)
    return rows


def _conditions(patients, index, rng) -> pd.DataFrame:
    """Diagnoses before index (2-3 records), a second disease for some patients, hypertension."""
    rows = []
    for person, (start, disease) in enumerate(zip(index, patients["disease"]), 1):
        concept = int(rng.choice(DEMO_OMOP["diseases"][disease]))
        for _ in range(int(rng.integers(2, 4))):
            rows.append((person, concept, start - dt.timedelta(days=int(rng.integers(0, 2000)))))
        if rng.random() < 0.05:
            other = [d for d in DEMO_OMOP["diseases"] if d != disease][int(rng.integers(0, 2))]
            rows.append((person, DEMO_OMOP["diseases"][other][0], start - dt.timedelta(days=int(rng.integers(0, 900)))))
        if rng.random() < 0.2:
            rows.append((person, HYPERTENSION, start - dt.timedelta(days=int(rng.integers(0, 2000)))))
    frame = pd.DataFrame(rows, columns=["person_id", "condition_concept_id", "condition_start_date"])
    frame["condition_occurrence_id"] = np.arange(1, len(frame) + 1)
    frame["condition_type_concept_id"] = 32817
    return frame


def _measurements(patients, index, rng) -> pd.DataFrame:
    """CRP and BMI within 60 days before index, plus older and later values that must be ignored."""
    rows = []
    units = {"crp_mg_l": "mg/L", "bmi": "kg/m2"}
    for column, (concept,) in DEMO_OMOP["measurements"].items():
        for person, (start, value) in enumerate(zip(index, patients[column]), 1):
            if pd.notna(value):
                rows.append((person, concept, start - dt.timedelta(days=int(rng.integers(0, 60))), value, units[column]))
            if rng.random() < 0.3:  # outside the 90-day window, or after index
                offset = int(rng.choice([-400, -120, 10]))
                rows.append((person, concept, start + dt.timedelta(days=offset), round(float(rng.uniform(1, 40)), 1),
                             units[column]))  # fmt: skip
    frame = pd.DataFrame(rows, columns=["person_id", "measurement_concept_id", "measurement_date",
                                        "value_as_number", "unit_source_value"])  # fmt: skip
    frame["measurement_id"] = np.arange(1, len(frame) + 1)
    frame["measurement_type_concept_id"] = 32817
    return frame


def _concepts() -> pd.DataFrame:
    """The concept rows of the demo: standard concepts named above and the local clinical drugs."""
    drugs = [c for concepts in DEMO_OMOP["index_drugs"].values() for c in concepts]
    rows = [(c, name, "", "", "", str(c)) for c, name in CONCEPT_NAMES.items()]
    rows += [(LOCAL_CONCEPT + c % 1_000_000, f"{CONCEPT_NAMES[c]} (demo product)", "Drug", "Local", "Clinical Drug",
              f"DEMO{c}") for c in drugs]  # fmt: skip
    return pd.DataFrame(rows, columns=list(CDM_TABLES["concept"]))


def _ancestors() -> pd.DataFrame:
    """Each concept is its own ancestor; the local clinical drugs descend from their ingredient."""
    drugs = [c for concepts in DEMO_OMOP["index_drugs"].values() for c in concepts]
    pairs = [(c, c, 0) for c in CONCEPT_NAMES] + [(c, LOCAL_CONCEPT + c % 1_000_000, 1) for c in drugs]
    frame = pd.DataFrame(pairs, columns=["ancestor_concept_id", "descendant_concept_id", "min_levels_of_separation"])
    frame["max_levels_of_separation"] = frame["min_levels_of_separation"]
    return frame

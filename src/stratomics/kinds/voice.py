"""Acoustic voice features (kind ``voice``): several recordings per patient, checked, then the median per patient.

The file has one row per recording (e.g. an openSMILE eGeMAPS export): an ID column (sample or
patient ID; several rows per ID), optionally a duration column, and one numeric column per
feature. A recording shorter than ``min_duration`` seconds, or missing more than
``max_missing_fraction`` of its features, fails QC: it is left out and reported (log and ingest
report). Each feature is then the median over the patient's kept recordings; ``n_recordings``
records how many there were. Preprocessing z-scores every feature.
"""

from __future__ import annotations

import logging

import pandas as pd

from stratomics.errors import StratomicsInputError
from stratomics.io import AssayTable, parse_numeric, read_text_table, uses_decimal_comma
from stratomics.kinds.base import ID_COLUMN_OPTION, AssayKind
from stratomics.kinds.table import preprocess_table

log = logging.getLogger(__name__)


def read_voice(path, *, source, known_ids, options) -> AssayTable:
    """Read per-recording acoustic features, drop recordings that fail QC, take the median per ID."""
    table, sep = read_text_table(path, sep=options.get("sep"))
    id_column = options.get("sample_column", table.columns[0])
    duration = options.get("duration_column")
    absent = [column for column in (id_column, duration) if column and column not in table.columns]
    if absent:
        raise StratomicsInputError(f"{path}: {source} has no column '{absent[0]}' (columns: "
                                   f"{', '.join(table.columns[:12])}). Set sample_column / duration_column to the "
                                   "file's own names.")  # fmt: skip
    features = [c for c in table.columns if c not in (id_column, duration, options.get("recording_column"))]
    numbers = parse_numeric(table[features + ([duration] if duration else [])], source=f"{source} ({path})",
                            na_values=options.get("na_values", []), decimal_comma=uses_decimal_comma(table, sep))  # fmt: skip
    reasons = _recording_qc(numbers, features, duration, options)
    excluded = pd.DataFrame({"sample_id": table.loc[reasons != "", id_column].to_numpy(),
                             "reason": reasons[reasons != ""].to_numpy()})  # fmt: skip
    if len(excluded):
        log.info("%s: %d of %d recordings fail QC and are left out (%s)", source, len(excluded), len(table),
                    "; ".join(f"{s}: {r}" for s, r in excluded.head(3).itertuples(index=False)))  # fmt: skip
    kept = numbers.loc[reasons == "", features].assign(id=table.loc[reasons == "", id_column].to_numpy())
    grouped = kept.groupby("id", sort=False)
    values = grouped[features].median()
    values.index.name = None
    sample_info = pd.DataFrame({"n_recordings": grouped.size().astype(float)}, index=values.index)
    return AssayTable(values=values, var=pd.DataFrame(index=features), sample_info=sample_info, excluded=excluded,
                      uns={"recordings": len(table), "recordings_failed_qc": len(excluded)})  # fmt: skip


def _recording_qc(numbers: pd.DataFrame, features: list[str], duration: str | None, options: dict) -> pd.Series:
    """Why each recording fails QC ("" when it passes): too short, or too many missing features."""
    reasons = pd.Series("", index=numbers.index)
    missing = numbers[features].isna().mean(axis=1)
    limit = options.get("max_missing_fraction", 0.5)
    reasons[missing > limit] = [f"recording QC: {m:.0%} of its features missing (more than {limit:.0%})"
                                for m in missing[missing > limit]]  # fmt: skip
    if duration:
        shortest = options.get("min_duration", 2.0)
        short = (numbers[duration] < shortest) | numbers[duration].isna()
        reasons[short] = [f"recording QC: duration {d:g} s (shorter than {shortest:g} s)" for d in numbers.loc[short, duration]]
    return reasons


KIND = AssayKind(
    name="voice",
    read=read_voice,
    preprocess=preprocess_table,
    options={
        "sample_column": ID_COLUMN_OPTION,
        "recording_column": {"type": "string", "description": "a column naming each recording (kept out of the features)."},
        "duration_column": {"type": "string", "description": "the column of recording durations in seconds (for min_duration)."},
        "min_duration": {"type": "number", "minimum": 0, "description": "recordings shorter than this (seconds) fail QC (default 2)."},
        "max_missing_fraction": {"type": "number", "minimum": 0, "maximum": 1, "description": "recordings missing a larger share of features fail QC (default 0.5)."},
    },
    shared_options=("sep", "na_values", "batch_correction"),
    integrated_by_default=False,
)  # fmt: skip

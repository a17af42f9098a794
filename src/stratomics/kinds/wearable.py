"""Wearable records (kind ``wearable``): daily and intraday data summarised per patient over a baseline window.

The file is a long table, one row per ID, time, metric and value (a Fitbit, Garmin or Apple Health
export reshaped long): the ID is a patient or device/sample ID; the time is a date, a timestamp, or
the number of days since the index date (fractions give the time of day). Per ID:

1. values that are text or outside the metric's plausible ``range`` are invalid: left out and
   reported (log, ``n_invalid_values``), never coerced;
2. days are counted from the patient's index date (``cohort.index_date``; without one, from the
   ID's first day) and only the baseline ``window`` is kept;
3. a day is a valid wear day when the intraday records cover at least ``min_wear_hours`` distinct
   clock hours (files without intraday records: every day with data); other days are excluded and
   counted (``n_nonwear_days``);
4. each metric becomes one value per valid day (its ``daily`` aggregation), summarised as mean,
   median, SD, coefficient of variation, weekday minus weekend mean (calendar dates only) and
   trend per week; intraday metrics also get a cosinor fit (statsmodels OLS of the value on the
   24-hour cosine and sine): mesor, amplitude and acrophase (clock hour of the peak);
5. ``valid_wear_fraction`` is the share of the window's days that are valid wear days; an ID with
   fewer than ``min_valid_days`` is excluded and reported in the ingest report.

Preprocessing z-scores every feature (:func:`stratomics.kinds.table.preprocess_table`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError
from stratomics.io import AssayTable, read_text_table
from stratomics.kinds.base import ID_COLUMN_OPTION, AssayKind
from stratomics.kinds.table import preprocess_table

log = logging.getLogger(__name__)

#: Daily summaries of every metric, in feature-name order.
DAILY_SUMMARIES = ("mean", "median", "sd", "cv", "weekday_minus_weekend", "trend_per_week")
#: Ways to turn a metric's records of one day into its daily value.
DAILY_AGGREGATIONS = ("mean", "sum", "median", "min", "max")
DEFAULT_WINDOW = (-28, -1)


def read_wearable(path, *, source, known_ids, options, index_dates=None) -> AssayTable:
    """Read wearable records and summarise each ID's valid wear days of the baseline window.

    Parameters
    ----------
    path, source, known_ids, options
        As for every kind's reader (:class:`stratomics.kinds.base.AssayKind`).
    index_dates
        Index date per patient and sample ID (``cohort.index_date``), or None.

    Returns
    -------
    One row per ID with valid wear: the features, and in ``sample_info`` the valid, non-wear and
    invalid counts; IDs without enough valid days are in ``excluded``.
    """
    table, _ = read_text_table(path, sep=options.get("sep"))
    names = _column_names(table, path, source, options)
    records, invalid = _parse_records(table, names, options)
    _warn_invalid(source, invalid, len(table))
    start, end = options.get("window", DEFAULT_WINDOW)
    records, calendar, no_date = _baseline_days(records, index_dates, (start, end))
    days, intraday = _wear_days(records, options.get("min_wear_hours", 10.0))
    features, counts = _summaries(records[records.set_index(["id", "day"]).index.isin(days.index[days["valid"]])],
                                  days, intraday, calendar=calendar, options=options)  # fmt: skip
    counts["valid_wear_fraction"] = counts["n_valid_days"] / (end - start + 1)
    counts["n_invalid_values"] = invalid.groupby("id").size().reindex(counts.index, fill_value=0).astype(float)
    excluded = _excluded(table[names["id"]].unique(), counts, no_date, source=source,
                         min_valid_days=options.get("min_valid_days", 4), window=(start, end))
    kept = counts.index.difference(excluded["sample_id"], sort=False)
    values = features.reindex(kept).assign(valid_wear_fraction=counts.loc[kept, "valid_wear_fraction"])
    values.index.name = None
    log.info("%s: %d IDs summarised over days %d to %d of the index date; %d non-wear days excluded", source,
             len(values), start, end, int(counts["n_nonwear_days"].sum()))  # fmt: skip
    return AssayTable(values=values, var=pd.DataFrame(index=values.columns),
                      sample_info=counts.loc[kept, ["n_valid_days", "n_nonwear_days", "n_invalid_values"]],
                      excluded=excluded, uns={"records": len(table), "invalid_values": len(invalid),
                                              "intraday_metrics": sorted(intraday)})  # fmt: skip


def _column_names(table: pd.DataFrame, path, source: str, options: dict) -> dict:
    """The ID, time, metric and value column names; a missing one is an input error."""
    names = {"id": options.get("sample_column", table.columns[0]), "time": options.get("time_column", "time"),
             "metric": options.get("metric_column", "metric"), "value": options.get("value_column", "value")}  # fmt: skip
    absent = [column for column in names.values() if column not in table.columns]
    if absent:
        raise StratomicsInputError(f"{path}: {source} has no column '{absent[0]}' (columns: "
                                   f"{', '.join(table.columns[:12])}). Set sample_column, time_column, metric_column "
                                   "and value_column to the file's own names.")  # fmt: skip
    return names


def _parse_records(table: pd.DataFrame, names: dict, options: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records with a parsed time and a plausible numeric value, and the invalid ones with the reason.

    Returns
    -------
    ``records`` (id, metric, time, value) and ``invalid`` (id, metric, time, value, reason).
    """
    wanted = options.get("metrics")
    raw = table[[names["id"], names["metric"], names["time"], names["value"]]].set_axis(["id", "metric", "time", "value"], axis=1)
    if wanted:
        raw = raw[raw["metric"].isin(list(wanted))]
    raw = raw[raw["value"].str.strip() != ""]
    value = pd.to_numeric(raw["value"].str.replace(",", ".", regex=False), errors="coerce")
    time = _parse_times(raw["time"])
    reason = pd.Series("", index=raw.index)
    reason[time.isna()] = "time is not a date, timestamp or number of days"
    reason[value.isna() & (reason == "")] = "not a number"
    for metric, spec in (wanted or {}).items():
        low, high = spec.get("range", (-np.inf, np.inf))
        outside = (raw["metric"] == metric) & ((value < low) | (value > high)) & (reason == "")
        reason[outside] = f"outside the plausible range [{low:g}, {high:g}]"
    records = raw.assign(time=time, value=value)[reason == ""]
    return records, raw[reason != ""].assign(reason=reason[reason != ""])


def _parse_times(raw: pd.Series) -> pd.Series:
    """Times as numbers of days (relative) when every time is a number, else as timestamps (NaT/NaN when unreadable)."""
    numbers = pd.to_numeric(raw.str.replace(",", ".", regex=False), errors="coerce")
    if numbers.notna().mean() > 0.5:
        return numbers.astype(float)
    times = pd.to_datetime(raw, errors="coerce", format="ISO8601")
    if times.isna().mean() > 0.5:
        times = pd.to_datetime(raw, errors="coerce", format="mixed", dayfirst=raw.str.match(r"\d{2}\.").any())
    return times.dt.tz_localize(None) if times.dt.tz is not None else times


def _warn_invalid(source: str, invalid: pd.DataFrame, n_records: int) -> None:
    """Name the first invalid values (ID, metric, time, value, why) in one warning."""
    if len(invalid):
        log.warning("%s: %d of %d values are invalid and left out (%s)", source, len(invalid), n_records,
                    "; ".join(f"{row.id} {row.metric} at {row.time}: '{row.value}' {row.reason}"
                              for row in invalid.head(5).itertuples()))  # fmt: skip


def _baseline_days(records: pd.DataFrame, index_dates, window) -> tuple[pd.DataFrame, bool, list]:
    """Records with their day relative to the index date and clock hour, within the window.

    Returns
    -------
    The records (with ``day``, ``hour`` and, for calendar dates, ``weekend``), whether the times are
    calendar dates, and the IDs without an index date.
    """
    start, end = window
    if records["time"].dtype.kind == "f":  # days since the index date
        day = np.floor(records["time"])
        records = records.assign(day=day.astype(int), hour=(records["time"] - day) * 24)
        return records[records["day"].between(start, end)], False, []
    date = records["time"].dt.normalize()
    if index_dates is None:  # the ID's first day is the window's first day
        anchor = date.groupby(records["id"]).transform("min") - pd.to_timedelta(start, unit="D")
    else:
        anchor = records["id"].map(index_dates)
    no_date = sorted(records.loc[anchor.isna(), "id"].unique())
    records = records.assign(day=(date - anchor).dt.days, hour=records["time"].dt.hour + records["time"].dt.minute / 60,
                             weekend=records["time"].dt.dayofweek >= 5)[anchor.notna()]  # fmt: skip
    records["day"] = records["day"].astype(int)
    return records[records["day"].between(start, end)], True, no_date


def _wear_days(records: pd.DataFrame, min_wear_hours: float) -> tuple[pd.DataFrame, set]:
    """Per ID and day: hours with intraday records and whether it is a valid wear day; the intraday metrics."""
    intraday = set(records.loc[records["hour"] > 0, "metric"].unique())
    days = records.groupby(["id", "day"]).size().rename("records").to_frame()
    if not intraday:
        log.info("wearable: no intraday records, so wear time cannot be checked; every day with data counts")
        return days.assign(wear_hours=np.nan, valid=True), intraday
    clock = records[records["metric"].isin(intraday)]
    hours = clock.assign(hour=np.floor(clock["hour"])).groupby(["id", "day"])["hour"].nunique()
    days["wear_hours"] = hours.reindex(days.index, fill_value=0)
    days["valid"] = days["wear_hours"] >= min_wear_hours
    return days, intraday


def _summaries(records: pd.DataFrame, days: pd.DataFrame, intraday: set, *, calendar: bool,
               options: dict) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Daily summaries (and cosinor fits) of every metric per ID, and the valid and non-wear day counts."""
    specs = options.get("metrics") or {}
    tables = []
    for metric, rows in records.groupby("metric", sort=True):
        spec = specs.get(metric, {})
        daily = _daily_values(rows, spec.get("daily", "mean"))
        tables.append(_day_statistics(daily, calendar=calendar).add_prefix(f"{metric}_"))
        if metric in intraday and spec.get("cosinor", True):
            tables.append(cosinor(rows).add_prefix(f"{metric}_"))
    counts = days.groupby(level="id").agg(n_valid_days=("valid", "sum"), n_days=("valid", "size"))
    counts["n_nonwear_days"] = counts.pop("n_days") - counts["n_valid_days"]
    features = pd.concat(tables, axis=1) if tables else pd.DataFrame(index=counts.index)
    return features, counts.astype(float)


def _daily_values(rows: pd.DataFrame, aggregation: str) -> pd.DataFrame:
    """One value per ID and day (the day's records aggregated), with the day's weekend flag when known."""
    keys = ["id", "day", "weekend"] if "weekend" in rows else ["id", "day"]
    return rows.groupby(keys)["value"].agg(aggregation).reset_index()


def _day_statistics(daily: pd.DataFrame, *, calendar: bool) -> pd.DataFrame:
    """Mean, median, SD, CV, weekday minus weekend mean and least-squares trend per week of the daily values."""
    by_id = daily.groupby("id")["value"]
    stats = pd.DataFrame({"mean": by_id.mean(), "median": by_id.median(), "sd": by_id.std()})
    stats["cv"] = stats["sd"] / stats["mean"].abs().where(stats["mean"] != 0)
    if calendar:
        means = daily.groupby(["id", "weekend"])["value"].mean().unstack().reindex(columns=[False, True])
        stats["weekday_minus_weekend"] = means[False] - means[True]
    centred = daily.assign(day=daily["day"] - daily.groupby("id")["day"].transform("mean"))
    sums = centred.assign(dv=centred["day"] * centred["value"], dd=centred["day"] ** 2).groupby("id")[["dv", "dd"]].sum()
    stats["trend_per_week"] = 7 * sums["dv"] / sums["dd"].where(sums["dd"] > 0)
    return stats[[s for s in DAILY_SUMMARIES if s in stats]]


def cosinor(rows: pd.DataFrame) -> pd.DataFrame:
    """Single-component 24-hour cosinor per ID: value ~ mesor + beta cos(2 pi h / 24) + gamma sin(2 pi h / 24).

    Parameters
    ----------
    rows
        Intraday records with ``id``, ``hour`` (clock time in hours) and ``value``.

    Returns
    -------
    Per ID: ``mesor``, ``amplitude`` (sqrt(beta^2 + gamma^2)) and ``acrophase_h`` (clock hour of the
    fitted peak, in [0, 24)).
    """
    import statsmodels.api as sm

    fits = {}
    for patient, data in rows.groupby("id", sort=False):
        angle = 2 * np.pi * data["hour"].to_numpy() / 24
        design = np.column_stack([np.ones(len(data)), np.cos(angle), np.sin(angle)])
        if len(data) < 4 or np.linalg.matrix_rank(design) < 3:
            continue
        mesor, beta, gamma = sm.OLS(data["value"].to_numpy(), design).fit().params
        fits[patient] = (mesor, np.hypot(beta, gamma), (np.arctan2(gamma, beta) * 24 / (2 * np.pi)) % 24)
    return pd.DataFrame.from_dict(fits, orient="index", columns=["mesor", "amplitude", "acrophase_h"])


def _excluded(ids, counts: pd.DataFrame, no_date: list, *, source: str, min_valid_days: int, window) -> pd.DataFrame:
    """IDs left out, with the reason: no index date, no record in the window, too few valid wear days."""
    reasons = {patient: "no index date (cohort.index_date) to place the baseline window" for patient in no_date}
    for patient in ids:
        if patient in reasons:
            continue
        if patient not in counts.index:
            reasons[patient] = f"no valid record in the baseline window (days {window[0]} to {window[1]})"
        elif counts.loc[patient, "n_valid_days"] < min_valid_days:
            reasons[patient] = (f"{int(counts.loc[patient, 'n_valid_days'])} valid wear days in the baseline window "
                                f"(fewer than min_valid_days {min_valid_days})")  # fmt: skip
    if reasons:
        log.warning("%s: %d of %d IDs are left out (%s)", source, len(reasons), len(ids),
                    "; ".join(f"{p}: {r}" for p, r in list(reasons.items())[:3]))  # fmt: skip
    return pd.DataFrame({"sample_id": list(reasons), "reason": list(reasons.values())}, columns=["sample_id", "reason"])


METRIC_OPTION = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "daily": {"type": "string", "enum": list(DAILY_AGGREGATIONS)},
        "range": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "cosinor": {"type": "boolean"},
    },
}

KIND = AssayKind(
    name="wearable",
    read=read_wearable,
    preprocess=preprocess_table,
    options={
        "sample_column": ID_COLUMN_OPTION,
        "time_column": {"type": "string", "description": "the column of dates, timestamps, or days since the index date as numbers (default time)."},
        "metric_column": {"type": "string", "description": "the column naming the metric of each row (default metric)."},
        "value_column": {"type": "string", "description": "the column of values (default value)."},
        "window": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2, "description": "the baseline window, first and last day relative to cohort.index_date (default [-28, -1]); without an index date, each ID's first days."},
        "min_wear_hours": {"type": "number", "minimum": 0, "maximum": 24, "description": "a day is a valid wear day when intraday records cover this many clock hours (default 10)."},
        "min_valid_days": {"type": "integer", "minimum": 2, "description": "IDs with fewer valid wear days in the window are left out and reported (default 4)."},
        "metrics": {"type": "object", "additionalProperties": METRIC_OPTION, "description": "per metric: daily (mean, sum, median, min or max of the day's records; default mean), range [low, high] (values outside are invalid and reported) and cosinor (default true for intraday metrics); when given, only these metrics are used."},
    },
    shared_options=("sep", "batch_correction"),
    integrated_by_default=False,
    reads_index_dates=True,
)  # fmt: skip

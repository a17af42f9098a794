"""Wearable kind: daily summaries and the cosinor fit against hand values, wear-time filter, bad input, the demo's effects."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from stratomics.errors import StratomicsInputError
from stratomics.kinds import KINDS

METRICS = {"heart_rate": {"range": [25, 230]}, "steps": {"daily": "sum", "range": [0, 100000]}}
INDEX = pd.Series(pd.to_datetime(["2024-03-12", "2024-03-12"]), index=["P1", "P2"])  # a Tuesday


def _read(path, index_dates=INDEX, **options):
    options = {"kind": "wearable", "metrics": METRICS, "window": [-10, -1], **options}
    return KINDS["wearable"].read(path, source="assay 'wearable'", known_ids=set(), options=options,
                                  index_dates=index_dates)  # fmt: skip


def _heart_rate(hour: np.ndarray) -> np.ndarray:
    return 70 + 10 * np.cos(2 * np.pi * (hour - 15) / 24)


def _write(path, extra: str = "") -> None:
    """P1 wears the watch 24 h on days -10..-1 (steps 1000 x day number); P2 only 5 hours on odd days."""
    rows = ["pid,time,metric,value"]
    for patient in ("P1", "P2"):
        for number in range(1, 11):
            date = pd.Timestamp("2024-03-01") + pd.Timedelta(days=number)
            rows.append(f"{patient},{date:%Y-%m-%d},steps,{500 * number}")
            rows.append(f"{patient},{date:%Y-%m-%d},steps,{500 * number}")  # two records: the daily sum
            hours = range(5) if patient == "P2" and number % 2 else range(24)
            rows += [f"{patient},{date:%Y-%m-%d} {h:02d}:30,heart_rate,{_heart_rate(h + 0.5):.6f}" for h in hours]
    path.write_text("\n".join(rows) + "\n" + extra)


def test_daily_summaries_and_cosinor_equal_hand_values(tmp_path):
    path = tmp_path / "wearable.csv"
    _write(path)
    table = _read(path)
    p1 = table.values.loc["P1"]
    steps = 1000 * np.arange(1, 11)  # days -10..-1 are 2024-03-02 (Saturday) .. 03-11
    weekend = pd.date_range("2024-03-02", periods=10).dayofweek >= 5
    assert p1["steps_mean"] == pytest.approx(steps.mean())
    assert p1["steps_sd"] == pytest.approx(steps.std(ddof=1))
    assert p1["steps_cv"] == pytest.approx(steps.std(ddof=1) / steps.mean())
    assert p1["steps_weekday_minus_weekend"] == pytest.approx(steps[~weekend].mean() - steps[weekend].mean())
    assert p1["steps_trend_per_week"] == pytest.approx(7 * np.polyfit(np.arange(-10, 0), steps, 1)[0])
    assert p1["heart_rate_mesor"] == pytest.approx(70, abs=1e-5)
    assert p1["heart_rate_amplitude"] == pytest.approx(10, abs=1e-5)
    assert p1["heart_rate_acrophase_h"] == pytest.approx(15, abs=1e-4)
    assert p1["valid_wear_fraction"] == 1.0
    # P2: the five odd days (5 hours of wear) are non-wear days, excluded from every metric and counted
    p2_steps = 1000 * np.arange(2, 11, 2)
    assert table.values.loc["P2", "steps_mean"] == pytest.approx(p2_steps.mean())
    assert table.sample_info.loc["P2", "n_nonwear_days"] == 5 and table.sample_info.loc["P2", "n_valid_days"] == 5
    assert table.values.loc["P2", "valid_wear_fraction"] == 0.5
    assert table.uns["intraday_metrics"] == ["heart_rate"]


def test_cosinor_matches_statsmodels_on_noisy_data():
    from stratomics.kinds.wearable import cosinor

    rng = np.random.default_rng(0)
    hour = rng.uniform(0, 24, 500)
    value = 60 + 5 * np.cos(2 * np.pi * (hour - 3) / 24) + rng.normal(0, 4, 500)  # peak at 03:00
    fit = cosinor(pd.DataFrame({"id": "P", "hour": hour, "value": value})).loc["P"]
    angle = 2 * np.pi * hour / 24
    params = sm.OLS(value, sm.add_constant(np.column_stack([np.cos(angle), np.sin(angle)]))).fit().params
    assert fit["amplitude"] == pytest.approx(np.hypot(params[1], params[2]), rel=1e-10)
    assert fit["acrophase_h"] == pytest.approx(3, abs=0.5)
    assert fit["mesor"] == pytest.approx(params[0], rel=1e-10)


def test_impossible_values_are_reported_and_ids_without_enough_wear_are_left_out(tmp_path, caplog):
    path = tmp_path / "wearable.csv"
    _write(path, extra="P1,2024-03-05 10:40,heart_rate,300\nP1,2024-03-05 11:40,heart_rate,--\nP3,2024-03-05,steps,10\n")
    table = _read(path, min_valid_days=6, index_dates=pd.concat([INDEX, pd.Series({"P3": pd.NaT})]))
    assert table.sample_info.loc["P1", "n_invalid_values"] == 2
    assert "2 of 428 values are invalid" in caplog.text
    assert "'300' outside the plausible range [25, 230]" in caplog.text and "'--' not a number" in caplog.text
    reasons = table.excluded.set_index("sample_id")["reason"]
    assert reasons["P2"] == "5 valid wear days in the baseline window (fewer than min_valid_days 6)"
    assert reasons["P3"].startswith("no index date")
    assert list(table.values.index) == ["P1"]


def test_days_since_the_index_date_as_numbers_and_a_missing_column(tmp_path):
    path = tmp_path / "wearable.csv"
    hours = np.arange(24) + 0.5
    rows = [f"P1,{day + h / 24:.6f},heart_rate,{_heart_rate(h):.6f}" for day in range(-6, 0) for h in hours]
    path.write_text("pid,day,metric,value\n" + "\n".join(rows) + "\n")
    table = _read(path, index_dates=None, time_column="day")
    assert table.values.loc["P1", "heart_rate_acrophase_h"] == pytest.approx(15, abs=1e-4)
    assert "heart_rate_weekday_minus_weekend" not in table.values  # no calendar dates, no weekdays
    assert table.sample_info.loc["P1", "n_valid_days"] == 6
    with pytest.raises(StratomicsInputError, match="has no column 'time'"):
        _read(path, index_dates=None)


def test_an_index_date_that_is_not_a_date_is_named():
    from stratomics.cohort import index_dates

    sheet = pd.DataFrame({"start": ["2024-01-05", "soon", ""]}, index=["P1", "P2", "P3"])
    with pytest.raises(StratomicsInputError, match="'soon' \\(patient P2\\)"):
        index_dates({"cohort": {"index_date": "start"}}, sheet, pd.DataFrame({"patient_id": []}))
    sheet.loc["P2", "start"] = "2024-02-01"
    dates = index_dates({"cohort": {"index_date": "start"}}, sheet, pd.DataFrame({"patient_id": ["P2"]}, index=["S9"]))
    assert dates["S9"] == pd.Timestamp("2024-02-01") and pd.isna(dates["P3"])


def test_the_demo_wearable_file_carries_its_planted_effects(tmp_path):
    from stratomics.simulate import WEARABLE_EFFECTS, simulate_cohort

    paths = simulate_cohort(tmp_path, n_patients=800, n_snps=200, n_genes=50, seed=0, scenario="realistic")
    sheet = pd.read_csv(paths["samples"]).set_index("patient_id")
    table = _read(paths["wearable"], index_dates=pd.to_datetime(sheet["treatment_start"]), window=[-14, -1],
                  sample_column="patient_id")  # fmt: skip
    assert table.sample_info["n_nonwear_days"].sum() > 0 and table.uns["invalid_values"] > 0
    truth = pd.read_csv(paths["endotypes"], sep="\t").set_index("patient_id").loc[table.values.index]
    causes = {"endotype E2": (truth["endotype"] == "E2").astype(float), "risk_factor": truth["risk_factor"]}
    for feature, (cause, effect) in WEARABLE_EFFECTS.items():
        r, p = stats.pearsonr(table.values[feature], causes[cause])
        assert p < 1e-6 and np.sign(r) == np.sign(effect), feature
    assert stats.pearsonr(table.values["heart_rate_acrophase_h"], truth["risk_factor"]).pvalue > 1e-3  # not planted

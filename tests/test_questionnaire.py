"""Questionnaire kind: scoring against a hand computation, invalid responses reported, bad definitions,
and the demo's planted associations recovered."""

import logging

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import demo_config
from stratomics.cohort import assay_to_anndata
from stratomics.errors import StratomicsInputError
from stratomics.kinds import KINDS
from stratomics.qc_record import Record

INSTRUMENTS = {
    "fatigue": {"items": ["fat1", "fat2", "fat3", "fat4"], "reverse": ["fat3"], "range": [1, 5], "score": "sum",
                "min_items": 3},
    "pain": {"items": ["pain1", "pain2"], "range": [0, 10]},
}  # fmt: skip


def _preprocessed(path, instruments=INSTRUMENTS, *, keep_items=False):
    spec = {"kind": "questionnaire", "path": str(path), "instruments": instruments}
    table = KINDS["questionnaire"].read(path, source="assay 'prom'", known_ids=set(), options=spec)
    adata = assay_to_anndata("prom", spec, table, rows=np.arange(len(table.values)),
                             patients=pd.Series(table.values.index))  # fmt: skip
    record = Record("prom", "questionnaire")
    return KINDS["questionnaire"].preprocess(adata, record, instruments=instruments, keep_items=keep_items), record


def test_scores_reverse_code_prorate_and_need_enough_valid_items(tmp_path, caplog):
    path = tmp_path / "prom.csv"
    path.write_text("patient_id,fat1,fat2,fat3,fat4,pain1,pain2\nP1,1,2,5,1,0,3\nP2,4,4,2,5,10,7\n"
                    "P3,three,3,3,,5,5\nP4,2,6,1,2,n/a,\n")  # fmt: skip
    with caplog.at_level(logging.WARNING):
        scores, record = _preprocessed(path, keep_items=True)
    table = pd.DataFrame(scores.X, index=scores.obs_names, columns=scores.var_names)
    # fatigue: fat3 reversed (6 - x), the mean of the answered items times 4; pain: the mean
    np.testing.assert_allclose(table.loc["P1", "fatigue"], (1 + 2 + 1 + 1) / 4 * 4)
    np.testing.assert_allclose(table.loc["P2", "fatigue"], (4 + 4 + 4 + 5) / 4 * 4)
    np.testing.assert_allclose(table.loc["P4", "fatigue"], (2 + 5 + 2) / 3 * 4)  # fat2 = 6 is invalid
    assert np.isnan(table.loc["P3", "fatigue"])  # 'three' invalid and one skipped: 2 of 4 valid
    np.testing.assert_allclose(table["pain"].to_numpy()[:3], [1.5, 8.5, 5.0])
    assert np.isnan(table.loc["P4", "pain"])
    assert list(scores.var["feature_type"]) == ["score"] * 2 + ["item"] * 6
    # invalid responses are left empty and listed per patient and item, never coerced
    assert np.isnan(table.loc["P4", "fat2"]) and np.isnan(table.loc["P3", "fat1"])
    removed = pd.DataFrame(record.removed).set_index("id")["reason"]
    assert removed.to_dict() == {"P3:fat1": "invalid response (not a number), left empty",
                                 "P4:fat2": "invalid response (outside the range 1-5), left empty"}  # fmt: skip
    assert "P3 fat1 = 'three' (not a number); P4 fat2 = '6' (outside 1-5)" in caplog.text
    assert "1 patient(s) have no fatigue score (fewer than 3 of its 4 items answered validly)" in caplog.text


def test_an_item_missing_from_the_file_is_named(tmp_path):
    path = tmp_path / "prom.csv"
    path.write_text("patient_id,fat1,fat2,fat4,pain1,pain2\nP1,1,2,1,0,3\n")
    with pytest.raises(StratomicsInputError, match="has no items fat3"):
        _preprocessed(path)


def test_a_questionnaire_without_instruments_is_a_config_error(tmp_path):
    from stratomics.config import validate_config

    config = demo_config(tmp_path)
    config["assays"]["questionnaire"] = {"kind": "questionnaire", "path": "prom.csv"}
    with pytest.raises(StratomicsInputError, match="assays.questionnaire \\(kind 'questionnaire'\\) needs the option "
                                                   "instruments"):  # fmt: skip
        validate_config(config, check_files=False)


def test_digital_assays_join_the_integration_only_when_listed(tmp_path):
    from stratomics.config import resolve, validate_config

    config = demo_config(tmp_path)
    config["assays"]["questionnaire"] = {"kind": "questionnaire", "path": "prom.csv", "instruments": INSTRUMENTS}
    config = validate_config(config, check_files=False)
    assert "questionnaire" not in resolve(config)["integrated_assays"]
    assert "questionnaire" in resolve(config)["feature_assays"]  # its scores are still tested
    config["integrate"]["assays"] = ["proteomics", "questionnaire"]
    assert resolve(config)["integrated_assays"] == ["proteomics", "questionnaire"]


def test_the_demo_questionnaire_carries_its_planted_associations(tmp_path):
    from stratomics.simulate import DEMO_INSTRUMENTS, simulate_cohort

    paths = simulate_cohort(tmp_path, n_patients=600, n_snps=200, n_genes=50, seed=1, scenario="realistic")
    instruments = {name: {**spec, "min_items": 2} for name, spec in DEMO_INSTRUMENTS.items()}
    scores, record = _preprocessed(paths["questionnaire"], instruments)
    truth = pd.read_csv(paths["endotypes"], sep="\t").set_index("patient_id").loc[scores.obs_names]
    table = pd.DataFrame(scores.X, index=scores.obs_names, columns=scores.var_names).join(truth)
    assert 0.7 < len(table) / 600 < 0.8
    assert 0 < len(record.removed) < 0.01 * len(table) * 8  # a few invalid answers, each reported
    e3 = table["endotype"] == "E3"
    assert stats.ttest_ind(table.loc[e3, "fatigue"].dropna(), table.loc[~e3, "fatigue"].dropna()).pvalue < 1e-6
    complete = table[["pain", "risk_factor"]].dropna()
    assert stats.pearsonr(complete["pain"], complete["risk_factor"]).pvalue < 1e-6
    assert stats.pearsonr(table.loc[~e3, "fatigue"].dropna(), table.loc[~e3, "risk_factor"].reindex(
        table.loc[~e3, "fatigue"].dropna().index)).pvalue > 1e-3  # fatigue is not the risk factor

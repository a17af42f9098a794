"""Voice kind: recording QC reported, the median per patient, bad input, and the demo's planted effect."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stratomics.errors import StratomicsInputError
from stratomics.kinds import KINDS

OPTIONS = {"kind": "voice", "recording_column": "rec", "duration_column": "dur"}


def _read(path, **options):
    return KINDS["voice"].read(path, source="assay 'voice'", known_ids=set(), options={**OPTIONS, **options})


def test_recordings_failing_qc_are_reported_and_the_rest_give_the_median_per_patient(tmp_path, caplog):
    path = tmp_path / "voice.csv"
    path.write_text("pid,rec,dur,f0,jitter,hnr\nP1,r1,10,30,0.02,8\nP1,r2,12,32,0.04,6\nP1,r3,9,40,0.03,\n"
                    "P2,r4,1.5,20,0.01,9\nP2,r5,8,22,,\nP3,r6,5,25,0.02,7\n")  # fmt: skip
    table = _read(path)
    assert list(table.values.index) == ["P1", "P3"]  # P2: one recording too short, one missing 2 of 3 features
    np.testing.assert_allclose(table.values.loc["P1"], [32, 0.03, 7])  # medians; hnr over the 2 observed
    assert table.sample_info.loc["P1", "n_recordings"] == 3
    assert table.excluded["reason"].tolist() == ["recording QC: duration 1.5 s (shorter than 2 s)",
                                                 "recording QC: 67% of its features missing (more than 50%)"]  # fmt: skip
    assert table.excluded["sample_id"].tolist() == ["P2", "P2"]
    assert "2 of 6 recordings fail QC" in caplog.text


def test_text_in_a_feature_and_a_missing_duration_column_are_named(tmp_path):
    path = tmp_path / "voice.csv"
    path.write_text("pid,rec,dur,f0\nP1,r1,10,high\n")
    with pytest.raises(StratomicsInputError, match="high"):
        _read(path)
    with pytest.raises(StratomicsInputError, match="has no column 'duration'"):
        _read(path, duration_column="duration")


def test_the_demo_voice_file_carries_its_planted_effect(tmp_path):
    from stratomics.simulate import VOICE_EFFECTS, simulate_cohort

    paths = simulate_cohort(tmp_path, n_patients=600, n_snps=200, n_genes=50, seed=2, scenario="realistic")
    table = _read(paths["voice"], recording_column="recording", duration_column="duration_s")
    assert len(table.excluded) > 0 and 0.55 < len(table.values) / 600 < 0.65
    risk = pd.read_csv(paths["endotypes"], sep="\t").set_index("patient_id").loc[table.values.index, "risk_factor"]
    for feature, effect in VOICE_EFFECTS.items():
        r, p = stats.pearsonr(table.values[feature], risk)
        assert p < 1e-6 and np.sign(r) == np.sign(effect), feature
    assert stats.pearsonr(table.values["loudness_sma3_amean"], risk).pvalue > 1e-3  # not planted

"""Membership probabilities: patients missing assays get the confidence their assays earn."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment
from test_stratify import planted_cohort

from stratomics.membership import assay_patterns
from stratomics.subgroups import assign_patients, integrate_and_stratify, subgroup_table


@pytest.mark.parametrize("seed", [0, 1])
def test_confidence_of_patients_with_one_assay_matches_their_accuracy(seed):
    mdata, truth = planted_cohort(n=600, missing=0.5, seed=seed)
    model, _ = integrate_and_stratify(mdata, ["big", "mid", "small"], integrate_options={"method": "mfa"},
                                      stratify_options={"n_resamples": 20}, seed=seed)  # fmt: skip
    groups = subgroup_table(mdata).set_index("patient_id")
    fitted = groups[groups["fitted"]]
    table = pd.crosstab(fitted["subgroup"].astype(str), truth[fitted.index])
    rows, columns = linear_sum_assignment(-table.to_numpy())
    correct = groups["subgroup"].astype(str).map(dict(zip(table.index[rows], table.columns[columns]))) == truth[groups.index]
    one_assay = (groups["n_integrated_assays"] == 1).to_numpy()
    accuracy, confidence = correct[one_assay].mean(), groups.loc[one_assay, "confidence"].mean()
    votes = model.stratification.assign(mdata.obsm["X_subgroup_space"][one_assay])[1].mean()
    assert accuracy < 0.9  # one assay does not tell the subgroups apart perfectly ...
    assert abs(confidence - accuracy) < 0.06, (confidence, accuracy)  # ... and the confidence says so
    assert votes - accuracy > 0.15  # the resampled clusterings' vote would not
    assert set(groups.loc[one_assay, "subgroup"]) == {"S1", "S2", "S3", "S4"}  # the smallest is reachable
    reassigned = assign_patients(model, mdata).set_index("patient_id").loc[groups.index]
    assert (reassigned["subgroup"] == groups["subgroup"].astype(str)).mean() > 0.99
    # placed again from the saved model (least squares rather than the fit's imputation): nearly the same
    np.testing.assert_allclose(reassigned.loc[one_assay, "confidence"], groups.loc[one_assay, "confidence"], atol=0.05)


def test_every_pattern_of_few_assays_and_only_observed_patterns_of_many():
    assert len(assay_patterns(["a", "b", "c"], [])) == 7
    many = [f"a{i}" for i in range(10)]
    observed = [frozenset(many), frozenset(many[:3]), frozenset(many[:3]), frozenset()]
    assert assay_patterns(many, observed) == [frozenset(many[:3]), frozenset(many)]

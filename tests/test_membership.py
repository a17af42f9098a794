"""Membership probabilities: patients missing assays get the confidence their assays earn."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.special import expit
from test_stratify import planted_cohort

from stratomics.membership import assay_patterns, calibration_temperature, fit_membership
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


def test_temperature_brings_a_small_sample_discriminant_towards_the_true_posterior():
    """Two Gaussian subgroups (identity covariance, means 1.2 apart along one of 12 axes), 60 training
    patients: the fitted discriminant is over-confident on new patients; divided by its cross-validated
    temperature, its probabilities are nearer the Bayes posterior, which is known exactly here."""
    rng = np.random.default_rng(3)
    dims, shift = 12, 1.2

    def patients(n):
        labels = rng.integers(0, 2, n)
        coordinates = rng.normal(size=(n, dims))
        coordinates[:, 0] += shift * labels
        return coordinates, labels

    train, train_labels = patients(60)
    new, _ = patients(4000)
    pattern = frozenset({"a"})
    membership = fit_membership(train_labels, 2, patterns=[pattern], coordinates_from=lambda _: train, seed=0)
    true = expit(shift * (new[:, 0] - shift / 2))  # probability of subgroup 1 under the model that made the data
    tempered = membership.probabilities(new, [pattern] * len(new))[:, 1]
    raw = membership.discriminants[pattern].predict_proba(new)[:, 1]

    def over_confidence(probability):  # mean confidence minus the expected accuracy of the most probable subgroup
        return np.maximum(probability, 1 - probability).mean() - np.where(probability > 0.5, true, 1 - true).mean()

    def cross_entropy(probability):  # expected log-loss against the true posterior
        return -(true * np.log(probability) + (1 - true) * np.log(1 - probability)).mean()

    assert membership.temperatures[pattern] > 1.2
    assert over_confidence(raw) > 0.06 and abs(over_confidence(tempered)) < 0.03
    assert cross_entropy(tempered) < cross_entropy(raw) - 0.02
    # a temperature of 1 reproduces scikit-learn's probabilities
    membership.temperatures[pattern] = 1.0
    np.testing.assert_allclose(membership.probabilities(new, [pattern] * len(new))[:, 1], raw, atol=1e-12)


def test_temperature_is_one_when_a_subgroup_is_too_small_to_cross_validate():
    coordinates = np.random.default_rng(0).normal(size=(20, 3))
    labels = np.r_[np.zeros(19, int), 1]
    assert calibration_temperature(coordinates, labels) == 1.0

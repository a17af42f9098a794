"""Membership probabilities: patients missing assays get the confidence their assays earn."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.special import expit, softmax
from sklearn.cluster import KMeans
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.mixture import GaussianMixture
from test_stratify import planted_cohort

from stratomics.membership import (
    assay_patterns,
    calibration_temperature,
    fit_discriminant,
    fit_membership,
    soft_memberships,
)
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
    one_hot = np.eye(2)[train_labels]
    discriminant = fit_discriminant(train, one_hot)
    temperature = calibration_temperature(train, one_hot, seed=0)
    true = expit(shift * (new[:, 0] - shift / 2))  # probability of subgroup 1 under the model that made the data
    raw = softmax(discriminant.scores(new), axis=1)[:, 1]
    tempered = softmax(discriminant.scores(new) / temperature, axis=1)[:, 1]

    def over_confidence(probability):  # mean confidence minus the expected accuracy of the most probable subgroup
        return np.maximum(probability, 1 - probability).mean() - np.where(probability > 0.5, true, 1 - true).mean()

    def cross_entropy(probability):  # expected log-loss against the true posterior
        return -(true * np.log(probability) + (1 - true) * np.log(1 - probability)).mean()

    assert temperature > 1.2
    assert over_confidence(raw) > 0.06 and abs(over_confidence(tempered)) < 0.03
    assert cross_entropy(tempered) < cross_entropy(raw) - 0.02
    # on hard subgroups the discriminant is scikit-learn's linear discriminant analysis
    reference = LinearDiscriminantAnalysis(solver="lsqr").fit(train, train_labels).predict_proba(new)[:, 1]
    np.testing.assert_allclose(raw, reference, atol=1e-5)  # up to the ridge added to the covariance


def test_discriminant_of_soft_memberships_is_the_m_step_of_scikit_learns_tied_mixture():
    rng = np.random.default_rng(5)
    coordinates = np.vstack([rng.normal(0, 1, (300, 3)), rng.normal(1.5, 1, (150, 3))])
    mixture = GaussianMixture(2, covariance_type="tied", tol=1e-10, max_iter=2000, random_state=0).fit(coordinates)
    memberships = mixture.predict_proba(coordinates)
    discriminant = fit_discriminant(coordinates, memberships)
    # equal up to EM's convergence (one more M-step moves the parameters by ~1e-5)
    np.testing.assert_allclose(discriminant.means, mixture.means_, atol=1e-4)
    np.testing.assert_allclose(discriminant.precision, mixture.precisions_, rtol=1e-3)
    np.testing.assert_allclose(softmax(discriminant.scores(coordinates), axis=1), memberships, atol=1e-4)


def two_overlapping_subgroups(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two Gaussian subgroups (35/65%) whose means are 2.5 SD apart, and their k-means cut."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < 0.35).astype(int)
    coordinates = rng.normal(size=(n, 2))
    coordinates[:, 0] += 2.5 * truth
    labels = KMeans(2, n_init=10, random_state=seed).fit_predict(coordinates)
    return coordinates, truth, labels if np.mean(labels == truth) > 0.5 else 1 - labels


def reliability_gaps(confidence: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """|accuracy - mean confidence| in each confidence bin holding at least 5% of the patients."""
    bins = np.digitize(confidence, [0.6, 0.8, 0.9, 0.95])
    return np.array([abs(correct[bins == b].mean() - confidence[bins == b].mean())
                     for b in np.unique(bins) if np.mean(bins == b) >= 0.05])  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1])
def test_confidence_where_two_subgroups_overlap_is_the_probability_of_being_right(seed):
    """k-means cuts through the overlap of two planted subgroups: the confidence of its subgroup,
    in every confidence bin, matches the share of patients whose planted subgroup it is; a
    discriminant of the hard k-means subgroups would call patients near the cut nearly certain."""
    coordinates, truth, labels = two_overlapping_subgroups(6000, seed)
    pattern = frozenset({"a"})
    membership = fit_membership(labels, 2, coordinates=coordinates, patterns=[pattern],
                                coordinates_from=lambda _: coordinates, seed=seed)  # fmt: skip
    confidence = membership.probabilities(coordinates, [pattern] * len(labels))[np.arange(len(labels)), labels]
    correct = labels == truth
    bayes = expit(np.log(0.35 / 0.65) + 2.5 * coordinates[:, 0] - 2.5**2 / 2)  # P(planted subgroup 1), exactly
    bayes_confidence = np.where(labels == 1, bayes, 1 - bayes)
    assert correct.mean() < 0.93 and abs(confidence.mean() - correct.mean()) < 0.02
    assert np.abs(confidence - bayes_confidence).mean() < 0.02
    # as close to the accuracy in every bin as the Bayes posterior itself (whose gaps are sampling error)
    assert reliability_gaps(confidence, correct).max() < max(0.05, reliability_gaps(bayes_confidence, correct).max() + 0.02)
    hard = np.eye(2)[labels]
    scores = fit_discriminant(coordinates, hard).scores(coordinates) / calibration_temperature(coordinates, hard)
    hard_confidence = softmax(scores, axis=1)[np.arange(len(labels)), labels]
    assert hard_confidence.mean() - correct.mean() > 0.05


def test_hard_subgroups_are_kept_when_the_mixture_moves_away_from_them(caplog):
    coordinates = np.random.default_rng(0).normal(size=(400, 2))
    labels = (np.arange(400) % 2).astype(int)  # subgroups unrelated to the coordinates
    memberships = soft_memberships(coordinates, labels, 2, seed=0)
    np.testing.assert_array_equal(memberships, np.eye(2)[labels])
    assert "not Gaussian-shaped" in caplog.text


def test_temperature_is_one_when_a_subgroup_is_too_small_to_cross_validate():
    coordinates = np.random.default_rng(0).normal(size=(20, 3))
    labels = np.r_[np.zeros(19, int), 1]
    assert calibration_temperature(coordinates, np.eye(2)[labels]) == 1.0

"""The alternative integrations: SNF against snfpy, MOFA+ (mofapy2) scoring, both through the subgroups."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from test_stratify import planted_cohort

from stratomics.errors import StratomicsInputError
from stratomics.integrate import METHODS, VARIANCE_COLUMNS, fit_integration
from stratomics.integrate.mofa import fit_mofa
from stratomics.integrate.snf import fuse, kernel, mean_nearest
from stratomics.subgroups import assign_patients, integrate_and_stratify, subgroup_table


@pytest.fixture
def snfpy(monkeypatch):
    """snfpy (the reference port of SNFtool) made to run with current scikit-learn."""
    snf = pytest.importorskip("snf")
    from sklearn.utils import validation

    def check_array(array, force_all_finite=True, **options):  # noqa: FBT002 (scikit-learn's old signature)
        return validation.check_array(array, ensure_all_finite=force_all_finite, **options)

    monkeypatch.setattr(snf.compute, "check_array", check_array)
    return snf


def test_affinities_and_fusion_agree_with_snfpy(snfpy):
    rng = np.random.default_rng(0)
    views = [rng.normal(size=(60, 8)), rng.normal(size=(60, 30)), rng.normal(size=(60, 3))]
    reference = snfpy.make_affinity(*views, metric="sqeuclidean", K=10, mu=0.5, normalize=False)
    ours = []
    for values, expected in zip(views, reference):
        distance = ((values[:, None, :] - values[None, :, :]) ** 2).sum(axis=2)
        nearest = mean_nearest(distance, 10, skip_self=True)
        affinity = kernel(distance, nearest, nearest, mu=0.5)
        np.testing.assert_allclose((affinity + affinity.T) / 2, expected, rtol=1e-10)
        ours.append((affinity + affinity.T) / 2)
    np.testing.assert_allclose(fuse(ours, k=10, iterations=20), snfpy.snf(*reference, K=10, t=20), rtol=1e-9)


@pytest.mark.parametrize("method", ["snf", "mofa"])
def test_planted_groups_are_recovered_and_new_patients_assigned(method):
    mdata, truth = planted_cohort(n=240, missing=0.2)
    model, table = integrate_and_stratify(mdata, ["big", "mid", "small"], integrate_options={"method": method},
                                          stratify_options={"n_resamples": 10, "k_values": [2, 3, 4, 5, 6]}, seed=2)  # fmt: skip
    groups = subgroup_table(mdata).set_index("patient_id")
    assert table.loc[table["chosen"], "k"].item() == 4
    assert groups["subgroup"].notna().all()  # patients missing assays placed too
    assert adjusted_rand_score(truth[groups.index], groups["subgroup"]) > 0.9
    held_back = mdata.obs_names[::4]
    cohort = type(mdata)({name: mdata[name][mdata[name].obs_names.isin(held_back)].copy() for name in ("big", "small")})
    assigned = assign_patients(model, cohort).set_index("patient_id")
    agreement = (assigned["subgroup"] == groups.loc[assigned.index, "subgroup"].astype(str)).mean()
    assert agreement > 0.9


def test_mofa_scoring_reproduces_the_trained_factors_and_is_seeded():
    mdata, _ = planted_cohort(n=200, missing=0.2)
    frames = {name: mdata[name].to_df() for name in ("big", "mid", "small")}
    model, scores = fit_mofa(frames, mdata.obs_names, n_factors=5, seed=3)
    rescored = model.transform(frames, mdata.obs_names)
    assert (np.abs(rescored - scores).max(axis=0) <= 0.15 * scores.std(axis=0) + 1e-12).all()
    assert (scores.std(axis=0) > 0.1).sum() >= 3  # the groups need three factors
    again = fit_mofa(frames, mdata.obs_names, n_factors=5, seed=3)[1]
    assert np.array_equal(scores, again)
    shares = model.variance.groupby("assay")["variance_explained"].sum()
    assert shares.between(0.05, 1).all()


def test_snf_without_enough_complete_patients_says_what_to_do():
    mdata, _ = planted_cohort(n=60, missing=0.7)
    frames = {name: mdata[name].to_df() for name in ("big", "mid", "small")}
    from stratomics.integrate.snf import fit_snf

    with pytest.raises(StratomicsInputError, match="every assay.*use method mfa"):
        fit_snf(frames, pd.Index(mdata.obs_names))


@pytest.mark.parametrize("method", list(METHODS))
def test_every_registered_method_keeps_the_declared_interface(method):
    mdata, _ = planted_cohort(n=120, missing=0.2)
    frames = {name: mdata[name].to_df() for name in ("big", "mid", "small")}
    model, scores = fit_integration(frames, mdata.obs_names, method=method, n_factors=4, seed=1,
                                    snf={"k": 10}, block_components=10)  # fmt: skip
    assert scores.shape == (120, 4) and not np.isnan(scores).any()  # every patient has the small assay
    assert list(model.variance.columns) == VARIANCE_COLUMNS
    assert set(model.variance["assay"]) == set(frames)
    assert sorted(model.variance["factor"].unique()) == [1, 2, 3, 4]
    assert model.variance["variance_explained"].between(-1e-9, 1 + 1e-9).all()
    placed = model.transform({"small": frames["small"]}, mdata.obs_names[:10])  # any subset of the assays
    assert placed.shape == (10, 4) and not np.isnan(placed).any()


@pytest.mark.parametrize("n_patients", [5000, 10000])
def test_mofa_gives_finite_factors_at_biobank_sizes(n_patients):
    # issue 20: at 5,000 and 10,000 patients an inactive factor's R^2 rounded below 0 and its sqrt scale made NaN scores
    rng = np.random.default_rng(0)
    patients = pd.Index([f"P{i}" for i in range(n_patients)])
    latent = rng.normal(size=(n_patients, 2))
    assays = {}
    for name, n_features in [("olink", 20), ("rna", 30)]:
        values = latent @ rng.normal(size=(2, n_features)) + rng.normal(size=(n_patients, n_features))
        measured = rng.random(n_patients) < 0.85
        assays[name] = pd.DataFrame(values[measured], index=patients[measured], columns=[f"{name}{j}" for j in range(n_features)])
    model, scores = fit_mofa(assays, patients, seed=0)
    has_assay = patients.isin(assays["olink"].index) | patients.isin(assays["rna"].index)
    assert np.isfinite(scores[has_assay]).all() and np.isnan(scores[~has_assay]).all()
    assert (model.variance.groupby("factor")["variance_explained"].max() >= 1e-3).all()  # switched-off factors dropped
    correlation = np.corrcoef(np.column_stack([scores[has_assay][:, :2], latent[has_assay]]).T)[:2, 2:]
    assert np.abs(correlation).max(axis=0).min() > 0.8  # both planted factors found

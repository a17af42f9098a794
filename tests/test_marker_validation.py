"""Held-out subgroup markers: tests, not descriptions (uniform p under no structure, power when planted)."""

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
from scipy import stats
from test_stratify import planted_cohort

from stratomics.associate import cluster_markers
from stratomics.marker_validation import HELD_OUT, held_out_markers, split_patients
from stratomics.subgroups import integrate_and_stratify

md.set_options(pull_on_update=False)
FORCED_K = {"n_resamples": 10, "k": 2, "k_values": [2]}


def noise_cohort(n=400, seed=0):
    """Two assays of independent noise: any subgroups found are an artefact of clustering."""
    rng = np.random.default_rng(seed)
    patients = pd.Index([f"p{i}" for i in range(n)])
    modalities = {name: ad.AnnData(rng.normal(size=(n, 40)), obs=pd.DataFrame(index=patients),
                                   var=pd.DataFrame(index=[f"{name}{j}" for j in range(40)]))
                  for name in ("left", "right")}  # fmt: skip
    return md.MuData({"clinical": ad.AnnData(obs=pd.DataFrame(index=patients)), **modalities})


def test_split_is_seeded_and_drawn_within_each_subgroup():
    subgroups = pd.Series(["S1"] * 60 + ["S2"] * 30 + [np.nan] * 10, index=[f"p{i}" for i in range(100)])
    held = split_patients(subgroups, holdout=0.3, seed=4)
    assert held.equals(split_patients(subgroups, holdout=0.3, seed=4)) and not held.equals(
        split_patients(subgroups, holdout=0.3, seed=5))
    assert subgroups[held].value_counts().to_dict() == {"S1": 18, "S2": 9}


def test_without_structure_held_out_p_values_are_uniform_while_descriptive_ones_are_not():
    mdata = noise_cohort()
    integrate_and_stratify(mdata, ["left", "right"], integrate_options={"method": "mfa"}, stratify_options=FORCED_K, seed=0)
    descriptive = pd.concat([cluster_markers(mdata[a], mdata.obs, "subgroup", covariates=[], assay=a) for a in ("left", "right")])
    assert (descriptive["p_value"] < 0.05).mean() > 0.2  # the features that made the split "differ"
    held = held_out_markers(mdata, ["left", "right"], tested=["left", "right"], covariates=[], holdout=0.4,
                            integrate_options={"method": "mfa"}, n_resamples=10, seed=0)  # fmt: skip
    assert len(held) == len(descriptive) and (held["note"] == HELD_OUT).all()
    assert set(held["n"]) == {160}  # 40% of 400, all assigned (each patient has the other assay)
    assert (held["p_value"] < 0.05).mean() < 0.12 and stats.kstest(held["p_value"], "uniform").pvalue > 0.01


def test_planted_markers_are_found_on_held_out_patients():
    mdata, _ = planted_cohort(n=400, seed=2)
    integrate_and_stratify(mdata, ["big", "mid", "small"], integrate_options={"method": "mfa"},
                           stratify_options={"n_resamples": 10, "k": 4, "k_values": [4]}, seed=0)  # fmt: skip
    held = held_out_markers(mdata, ["big", "mid", "small"], tested=["mid"], covariates=[], holdout=0.3,
                            integrate_options={"method": "mfa"}, n_resamples=10, seed=0)  # fmt: skip
    carrying = held["feature"].str.removeprefix("mid").astype(int) < 20  # a third of the 60 carry the groups
    by_feature = held.groupby("feature")["p_value"].min()
    assert (by_feature[by_feature.index.str.removeprefix("mid").astype(int) < 20] < 0.01).mean() > 0.8
    assert (held.loc[~carrying, "p_value"] < 0.05).mean() < 0.15  # 40 null features x 4 correlated contrasts
    assert set(held["outcome_or_contrast"].str.extract(r"(S\d)")[0]) == {"S1", "S2", "S3", "S4"}


def test_the_only_integrated_assay_cannot_be_validated(caplog):
    mdata = noise_cohort(n=200)
    integrate_and_stratify(mdata, ["left"], integrate_options={"method": "mfa"}, stratify_options=FORCED_K, seed=0)
    held = held_out_markers(mdata, ["left"], tested=["left", "right"], covariates=[], holdout=0.3,
                            integrate_options={"method": "mfa"}, n_resamples=5, seed=0)  # fmt: skip
    assert set(held["assay"]) == {"right"}  # not integrated: assigned from 'left', tested on its own values
    assert "'left' is the only integrated assay" in caplog.text


def test_no_split_without_a_holdout_share():
    subgroups = pd.Series(["S1", "S2"] * 10, index=[f"p{i}" for i in range(20)])
    assert split_patients(subgroups, holdout=0.0).empty

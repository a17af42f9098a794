"""Integration and subgroups: planted groups recovered, missing assays tolerated, seeds bind."""

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from stratomics.cli import main
from stratomics.integrate import fit_integration
from stratomics.model_file import save_model_file
from stratomics.stratify import consensus_cdf, consensus_cdf_table, fit_patients, select_k, stratify
from stratomics.subgroups import assign_patients, integrate_and_stratify, subgroup_table

md.set_options(pull_on_update=False)


def planted_cohort(n=300, k=4, seed=0, missing=0.3):
    """Three assays of different sizes sharing k planted groups; some patients lack assays."""
    rng = np.random.default_rng(seed)
    groups = rng.choice(k, size=n, p=np.array([0.4, 0.3, 0.2, 0.1][:k]) / sum([0.4, 0.3, 0.2, 0.1][:k]))
    patients = pd.Index([f"p{i}" for i in range(n)])
    modalities = {}
    for name, n_features in (("big", 1000), ("mid", 60), ("small", 12)):
        centres = rng.normal(0, 1.2, size=(k, n_features))
        centres[:, n_features // 3 :] = 0  # only a third of the features carry the groups
        values = centres[groups] + rng.normal(size=(n, n_features))
        present = rng.random(n) > (missing if name != "small" else 0)
        modalities[name] = ad.AnnData(values[present], obs=pd.DataFrame(index=patients[present]),
                                      var=pd.DataFrame(index=[f"{name}{j}" for j in range(n_features)]))  # fmt: skip
    clinical = ad.AnnData(obs=pd.DataFrame(index=patients))
    return md.MuData({"clinical": clinical, **modalities}), pd.Series(groups, index=patients)


def test_planted_groups_are_recovered_and_patients_missing_assays_get_labels():
    mdata, truth = planted_cohort()
    model, table = integrate_and_stratify(mdata, ["big", "mid", "small"], integrate_options={"method": "mfa"},
                                          stratify_options={"n_resamples": 20}, seed=1)  # fmt: skip
    assert model.stratification.k == 4 and table.loc[table["chosen"], "k"].item() == 4
    groups = subgroup_table(mdata)
    assert groups["subgroup"].notna().all()  # every patient has at least the small assay
    fitted = groups[groups["fitted"]]
    assert adjusted_rand_score(truth[fitted["patient_id"]], fitted["subgroup"]) > 0.95
    partial = groups[groups["n_integrated_assays"] < 3]  # assigned from fewer assays: less certain
    assert len(partial) > 100 and adjusted_rand_score(truth[partial["patient_id"]], partial["subgroup"]) > 0.7
    assert (groups.loc[groups["fitted"], "n_integrated_assays"] == 3).all()
    sizes = groups["subgroup"].value_counts()
    assert list(sizes.index) == ["S1", "S2", "S3", "S4"] and sizes.is_monotonic_decreasing


def test_block_weighting_keeps_a_small_assay_visible():
    mdata, _ = planted_cohort(missing=0)
    frames = {name: mdata[name].to_df() for name in ("big", "mid", "small")}
    model, _ = fit_integration(frames, mdata.obs_names, method="mfa", n_factors=3)
    explained = model.variance.groupby("assay")["variance_explained"].sum()
    assert (explained > 0.1).all() and (explained <= 1 + 1e-9).all()


def test_the_rule_picks_the_planted_k_on_clear_data():
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 6, size=(3, 5))
    embedding = centres[rng.integers(0, 3, 400)] + rng.normal(size=(400, 5))
    result, table = stratify(embedding, k_values=range(2, 7), n_resamples=20)
    assert result.k == 3 and table["pac"].min() < 0.05
    forced, _ = stratify(embedding, k=5, k_values=[2, 3], n_resamples=10)
    assert forced.k == 5
    unstable = pd.DataFrame({"setting": [2, 3], "k": [2, 3], "pac": [0.3, 0.0], "silhouette": [0.9, 0.1],
                             "smallest_subgroup": [50, 50], "supported": [True, True]})  # fmt: skip
    assert select_k(unstable, min_size=10, crisp_first=False) == 3  # stability first, silhouette second
    assert select_k(unstable.assign(supported=[True, False]), min_size=10, crisp_first=False) == 2  # beats the null
    assert select_k(unstable.assign(supported=False), min_size=10) is None
    gaps = pd.DataFrame({"setting": [2, 3, 4, 5], "k": [2, 3, 4, 5], "gap": [0.2, 0.5, 0.55, 0.6],
                         "gap_sd": [0.1] * 4, "pac": [0.3, 0.2, 0.1, 0.1], "smallest_subgroup": 50,
                         "mixture_bic": [500.0, 800.0, 700.0, 700.0], "supported": True})  # fmt: skip
    # no crisp k: among the k with PAC within 0.05 of the lowest, the lowest BIC, the smaller k on a tie
    assert select_k(gaps, min_size=10) == 4
    stable_three = gaps.assign(pac=[0.3, 0.14, 0.1, 0.1], mixture_bic=[500.0, 600.0, 700.0, 700.0])
    assert select_k(stable_three, min_size=10) == 3  # k = 2 fits best but is not stable; 3 is as stable as 4
    assert select_k(gaps.assign(pac=[0.0, 0.0, 0.0, 0.2]), min_size=10) == 4  # the finest crisp k comes first
    assert select_k(gaps.assign(smallest_subgroup=[50, 50, 5, 5]), min_size=10) == 3  # too small a subgroup
    assert table["null_p_value"].max() < 1e-6 and table["supported"].all()


def test_mixture_bic_of_one_component_is_the_normal_likelihood_and_one_factor_two_groups_give_k_2():
    from scipy import stats

    from stratomics.stratify import mixture_bic

    rng = np.random.default_rng(0)
    points = np.r_[rng.normal(0, 1, 480), rng.normal(2.5, 1, 320)][:, None]  # one factor, groups 2.5 SD apart
    log_likelihood = stats.norm.logpdf(points, points.mean(), points.std()).sum()  # maximum likelihood fit
    assert mixture_bic(points, 1) == pytest.approx(-2 * log_likelihood + 2 * np.log(len(points)), rel=1e-6)
    result, table = stratify(points, k_values=range(2, 6), n_resamples=10, seed=0)
    assert table.sort_values("pac")["k"].iloc[0] == 5  # in one dimension PAC says little: lowest at k = 5
    assert not (table["pac"] <= 0.01).any() and result.k == 2  # k = 2 is about as stable and fits best
    assert adjusted_rand_score(np.r_[np.zeros(480), np.ones(320)], result.labels) > 0.5


def test_gaussian_clouds_give_one_group_with_a_warning(caplog):
    one_group = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        embedding = rng.normal(size=(300, 8)) * np.linspace(2, 0.5, 8)  # one cloud, unequal axes
        result, table = stratify(embedding, k_values=range(2, 5), n_resamples=5, seed=seed)
        if result.k == 1:
            one_group += 1
            assert (result.labels == 0).all() and (result.confidence == 1).all()
            assert table.loc[table["chosen"], "k"].tolist() == [1] and len(table) == 4
    assert one_group >= 9  # the family-wise level is 5%
    assert "no subgroup structure" in caplog.text


def test_null_p_values_follow_the_within_share_of_k_means():
    from sklearn.cluster import KMeans

    from stratomics.stratify import within_share

    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 2))
    labels = KMeans(2, n_init=10, random_state=0).fit_predict(points)
    within = sum(((points[labels == c] - points[labels == c].mean(0)) ** 2).sum() for c in (0, 1))
    np.testing.assert_allclose(within_share(points, labels), within / ((points - points.mean(0)) ** 2).sum())


def test_hdbscan_finds_the_groups_and_flags_noise_with_zero_confidence():
    rng = np.random.default_rng(6)
    centres = rng.normal(0, 8, size=(3, 4))
    groups = rng.integers(0, 3, 300)
    embedding = np.vstack([centres[groups] + rng.normal(size=(300, 4)),
                           rng.uniform(-20, 20, size=(15, 4))])  # scattered points: noise  # fmt: skip
    result, table = stratify(embedding, algorithm="hdbscan", n_resamples=10)
    assert result.k == 3 and table["chosen"].sum() == 1
    assert adjusted_rand_score(groups, result.labels[:300]) > 0.95
    assert result.noise[300:].mean() > 0.5 and result.noise[:300].mean() < 0.05
    assert (result.confidence[result.noise] == 0).all() and len(result.labels) == 315


def test_leiden_finds_the_groups_and_is_seeded():
    rng = np.random.default_rng(8)
    groups = rng.integers(0, 4, 400)
    embedding = rng.normal(0, 6, size=(4, 5))[groups] + rng.normal(size=(400, 5))
    result, table = stratify(embedding, algorithm="leiden", n_resamples=10, seed=2)
    again, _ = stratify(embedding, algorithm="leiden", n_resamples=10, seed=2)
    assert result.k == 4 and adjusted_rand_score(groups, result.labels) > 0.95
    assert (result.labels == again.labels).all() and table["setting"].tolist() == [0.1, 0.2, 0.3, 0.5, 0.8, 1.2]


def test_same_seed_same_subgroups_and_tables():
    runs = []
    for _ in range(2):
        mdata, _ = planted_cohort(n=150)
        _, table = integrate_and_stratify(mdata, ["big", "mid", "small"], integrate_options={"method": "mfa"},
                                          stratify_options={"n_resamples": 10, "k_values": [2, 3, 4]}, seed=7)  # fmt: skip
        runs.append((subgroup_table(mdata).to_csv(), table.to_csv(), mdata.obsm["X_integrated"].tobytes()))
    assert runs[0] == runs[1]


def test_assignment_reproduces_the_labels_of_held_back_patients(tmp_path, capsys):
    mdata, _ = planted_cohort()
    model, _ = integrate_and_stratify(mdata, ["big", "mid", "small"], integrate_options={"method": "mfa"},
                                      stratify_options={"n_resamples": 10, "k": 4, "k_values": [4]})  # fmt: skip
    labels = subgroup_table(mdata).set_index("patient_id")["subgroup"]
    held_back = mdata.obs_names[::5]
    def cohort_of(assays):
        return md.MuData({name: mdata[name][mdata[name].obs_names.isin(held_back)].copy() for name in assays})

    assigned = assign_patients(model, cohort_of(("big", "mid", "small"))).set_index("patient_id")
    agreement = (assigned["subgroup"] == labels[assigned.index].astype(str)).mean()
    assert agreement > 0.95 and assigned["confidence"].between(0, 1).all()
    new = cohort_of(("big", "small"))  # a new site without the mid assay: still assigned
    without_mid = assign_patients(model, new)
    assert (without_mid["subgroup"] != "").all() and without_mid["n_integrated_assays"].max() == 2
    digest = save_model_file(model, tmp_path / "model.zip")
    new.write(tmp_path / "new.h5mu")
    assert main(["assign", "--model", str(tmp_path / "model.zip"), "--cohort", str(tmp_path / "new.h5mu"),
                 "--out", str(tmp_path / "a.tsv"), "--sha256", digest]) == 0  # fmt: skip
    written = pd.read_csv(tmp_path / "a.tsv", sep="\t")
    assert (written["subgroup"].to_numpy() == without_mid["subgroup"].to_numpy()).all()


def test_fit_patients_prefers_complete_patients():
    coverage = np.array([[1, 1, 1]] * 60 + [[1, 0, 1]] * 30 + [[0, 0, 0]] * 5, dtype=bool)
    assert fit_patients(coverage).sum() == 60
    assert fit_patients(coverage, minimum=80).sum() == 90
    assert fit_patients(coverage, fit_on="all").sum() == 90


def test_leave_one_site_out_agreement_is_high_for_site_free_subgroups():
    from stratomics.subgroups import leave_one_site_out

    mdata, _ = planted_cohort(n=240)
    mdata.obs["site"] = np.repeat(["A", "B", "C"], 80)
    mdata.obs["age"] = np.random.default_rng(0).normal(50, 10, 240)
    integrate_and_stratify(mdata, ["big", "mid", "small"], integrate_options={"method": "mfa"},
                           stratify_options={"n_resamples": 10, "k": 4, "k_values": [4]}, adjust_for=["age", "site"])  # fmt: skip
    table = leave_one_site_out(mdata, ["big", "mid", "small"], "site", k=4, integrate_options={"method": "mfa"}, n_resamples=5,
                               adjust_for=["age", "site"])  # fmt: skip
    assert table["site"].tolist() == ["A", "B", "C"] and (table["patients_left_out"] == 80).all()
    assert (table["patients_compared"] == 160).all() and (table["ari"] > 0.85).all()
    in_two_processes = leave_one_site_out(mdata, ["big", "mid", "small"], "site", k=4, integrate_options={"method": "mfa"},
                                          n_resamples=5, n_jobs=2, adjust_for=["age", "site"])  # fmt: skip
    pd.testing.assert_frame_equal(in_two_processes, table)


def test_block_weighting_keeps_a_small_assay_from_being_drowned_unlike_concatenated_pca():
    rng = np.random.default_rng(5)
    patients = pd.Index([f"p{i}" for i in range(300)])
    unrelated = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 2000))
    large = pd.DataFrame(unrelated + rng.normal(size=(300, 2000)), index=patients)
    small = pd.DataFrame(rng.normal(size=(300, 2)) @ rng.normal(size=(2, 10)) + rng.normal(size=(300, 10)) * 0.3,
                         index=patients)  # fmt: skip
    share = {}
    for method in ("mfa", "concat_pca"):
        model, _ = fit_integration({"large": large, "small": small}, patients, method=method, n_factors=3)
        share[method] = model.variance.groupby("assay")["variance_explained"].sum()["small"]
    assert share["mfa"] > 0.5 and share["concat_pca"] < 0.1, share


def test_subgroups_do_not_depend_on_the_number_of_threads():
    from threadpoolctl import threadpool_limits

    outputs = []
    for threads in (1, 2):
        mdata, _ = planted_cohort(n=200)
        with threadpool_limits(limits=threads):
            _, table = integrate_and_stratify(mdata, ["big", "mid", "small"], integrate_options={"method": "mfa"},
                                              stratify_options={"n_resamples": 10, "k_values": [2, 3, 4]}, seed=3)  # fmt: skip
        outputs.append((subgroup_table(mdata).to_csv(float_format="%.6g"), table.to_csv(float_format="%.6g")))
    assert outputs[0] == outputs[1]


def test_an_assay_on_a_handful_of_patients_is_left_out_of_integration_and_tests_by_name(caplog, tmp_path):
    from stratomics.cohort import write_cohort
    from stratomics.associate import assay_biomarkers, markers_of_groups

    mdata, truth = planted_cohort(n=200)
    rare = ad.AnnData(np.random.default_rng(1).normal(size=(3, 5)), obs=pd.DataFrame(index=mdata.obs_names[:3]))
    mdata = md.MuData({**mdata.mod, "rare": rare})
    mdata.obs["failure"] = np.tile([0.0, 1.0], 100)
    with caplog.at_level("WARNING"):
        integrate_and_stratify(mdata, ["big", "mid", "small", "rare"], integrate_options={"method": "mfa"}, min_patients=10,
                               stratify_options={"n_resamples": 10, "k_values": [2, 3, 4, 5]}, seed=1)  # fmt: skip
        tested = assay_biomarkers(mdata["rare"], mdata.obs, {"failure": {"type": "binary"}}, covariates=[], assay="rare",
                                  min_patients=10)  # fmt: skip
        markers = markers_of_groups(mdata["rare"], mdata.obs, ["subgroup"], covariates=[], assay="rare", min_patients=10)
    assert mdata.uns["integrate"]["assays"] == ["big", "mid", "small"]
    fitted = subgroup_table(mdata).query("fitted")
    written = tmp_path / "cohort.h5mu"  # the settings of each step are echoed and survive the file
    write_cohort(mdata, written)
    uns = md.read_h5mu(written).uns
    assert uns["integrate"]["params"]["method"] == "mfa" and uns["integrate"]["params"]["min_patients"] == 10
    assert list(uns["integrate"]["params"]["assays"]) == ["big", "mid", "small"]
    assert list(uns["stratify"]["params"]["k_values"]) == [2, 3, 4, 5] and uns["stratify"]["params"]["seed"] == 1
    assert len(fitted) > 50 and adjusted_rand_score(truth[fitted["patient_id"]], fitted["subgroup"]) > 0.95
    assert tested.empty and markers.empty
    assert "integrate: assay 'rare' is left out: measured on 3 patients, fewer than min_patients_per_assay (10)" in caplog.text
    assert "biomarkers: assay 'rare' is not tested: measured on 3 patients" in caplog.text


def test_consensus_cdf_area_is_the_integral_of_the_empirical_cdf():
    crisp = np.kron(np.eye(2), np.ones((3, 3)))  # two blocks of 3: 6 of 15 pairs together
    cdf, area = consensus_cdf(crisp)
    assert area == pytest.approx(9 / 15)  # flat at the share of pairs never together
    assert cdf[0] == pytest.approx(9 / 15) and cdf[50] == pytest.approx(9 / 15) and cdf[-1] == 1
    rng = np.random.default_rng(1)
    values = rng.beta(0.5, 0.5, size=(40, 40))
    consensus = np.triu(values, 1) + np.triu(values, 1).T
    pairs = consensus[np.triu_indices(40, 1)]
    grid = np.linspace(0, 1, 20_001)
    numeric = np.trapezoid((pairs[None, :] <= grid[:, None]).mean(axis=1), grid)  # integral of the ECDF
    assert consensus_cdf(consensus)[1] == pytest.approx(numeric, abs=1e-3)


def test_the_consensus_figure_draws_one_cdf_per_k_and_the_selection_rule():
    from matplotlib import pyplot as plt

    from stratomics.figures import consensus_and_selection
    from stratomics.plot import SMALLEST_FONT

    rng = np.random.default_rng(0)
    embedding = np.vstack([rng.normal(centre, 0.3, size=(40, 2)) for centre in ((0, 0), (3, 0), (0, 3))])
    result, table = stratify(embedding, k_values=range(2, 6), n_resamples=10, seed=0)
    assert table.loc[table["chosen"], "k"].item() == 3
    assert (table["delta_area"].iloc[1:] == table["cdf_area"].diff().iloc[1:] / table["cdf_area"].shift().iloc[1:]).all()
    from stratomics.stratify import consensus_for_k

    results = [consensus_for_k(embedding, k, n_resamples=10, seed=0) for k in range(2, 6)]
    labels = pd.Series([f"S{label + 1}" for label in result.labels])
    fig = consensus_and_selection(result.consensus, labels, pd.Series(result.confidence), selection=table,
                                  cdf=consensus_cdf_table(results))  # fmt: skip
    cdf_panel = next(ax for ax in fig.axes if ax.get_title() == "Consensus CDF")
    assert len(cdf_panel.get_lines()) == 4
    null_panel = next(ax for ax in fig.axes if ax.get_title().startswith("−log10 null p"))
    drawn = null_panel.get_lines()[0].get_ydata()
    assert drawn == pytest.approx(-np.log10(table["null_p_value"].clip(lower=1e-300)))
    assert null_panel.get_lines()[-1].get_ydata()[0] == pytest.approx(-np.log10(0.05 / 4))  # Bonferroni over 4 k
    bic_panel = next(ax for ax in fig.axes if ax.get_title().startswith("Mixture BIC"))
    assert bic_panel.get_lines()[0].get_ydata() == pytest.approx(table["mixture_bic"])
    letters = [text.get_text() for ax in fig.axes for text in ax.texts if len(text.get_text()) == 1]
    assert letters[-5:] == list("abcde")
    sizes = [text.get_fontsize() for text in fig.findobj(plt.Text) if text.get_text().strip()]
    assert min(sizes) >= SMALLEST_FONT
    plt.close(fig)


def test_the_consensus_figure_of_a_cohort_without_structure_titles_k_1():
    from matplotlib import pyplot as plt

    from stratomics.figures import consensus_and_selection
    from stratomics.stratify import consensus_for_k

    embedding = np.random.default_rng(0).normal(size=(120, 4))
    result, table = stratify(embedding, k_values=range(2, 5), n_resamples=5, seed=0)
    assert result.k == 1  # k = 1 is chosen but has no consensus CDF to draw
    cdf = consensus_cdf_table([consensus_for_k(embedding, k, n_resamples=5, seed=0) for k in range(2, 5)])
    fig = consensus_and_selection(result.consensus, pd.Series(["S1"] * 120), pd.Series(result.confidence),
                                  selection=table, cdf=cdf)  # fmt: skip
    assert fig._suptitle.get_text().startswith("Chosen: k = 1")
    plt.close(fig)


def test_large_cohort_resamples_keep_the_reference_pairs_co_drawn():
    """Above max_resample_size: each resample holds `fraction` of the reference patients, so their
    consensus rests on ~fraction^2 of the resamples; a uniform draw left it on none or one (PAC ~ 0)."""
    from stratomics.stratify import _resample, consensus_for_k

    rng = np.random.default_rng(7)
    reference = np.sort(rng.choice(20_000, 300, replace=False))
    others = np.setdiff1d(np.arange(20_000), reference)
    sample = _resample(rng, 20_000, reference, others, fraction=0.8, max_size=1000)
    assert len(sample) == 1000 == len(np.unique(sample)) and np.isin(reference, sample).sum() == 240
    small = _resample(np.random.default_rng(3), 900, reference[:10], others[:890], fraction=0.8, max_size=1000)
    np.testing.assert_array_equal(small, np.sort(np.random.default_rng(3).choice(900, 720, replace=False)))  # as before
    one_cloud = np.random.default_rng(8).normal(size=(20_000, 1))
    settings = {"n_resamples": 30, "max_resample_size": 1000, "max_consensus_patients": 300, "seed": 1}
    large, subsample = (consensus_for_k(values, 4, **settings).pac for values in (one_cloud, one_cloud[:1200]))
    assert large > 0.05 and subsample > 0.05  # splitting one Gaussian into 4 is ambiguous at any size

"""Paper figures: what they draw is checked against the data (censoring, numbers at risk, thresholds, text size)."""

import os
import subprocess
import sys

import anndata as ad
import matplotlib
import mudata as md
import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt

from stratomics import figures
from stratomics.outcomes import kaplan_meier_table, table_one
from stratomics.plot import SMALLEST_FONT
from stratomics.subgroups import umap_table


@pytest.fixture(scope="module")
def cohort():
    rng = np.random.default_rng(3)
    n = 300
    subgroup = pd.Categorical(rng.choice(["S1", "S2"], n), categories=["S1", "S2"])
    return pd.DataFrame({"subgroup": subgroup, "age": rng.normal(50, 10, n), "sex": rng.choice(["F", "M"], n),
                         "days": np.ceil(rng.uniform(1, 900, n)), "event": (rng.random(n) < 0.5).astype(int)})  # fmt: skip


@pytest.fixture(scope="module")
def associations():
    rng = np.random.default_rng(4)
    n = 400
    p = np.concatenate([rng.uniform(size=n - 5), [1e-9, 1e-8, 1e-7, 1e-6, 1e-5]])
    from statsmodels.stats.multitest import multipletests

    return pd.DataFrame({"assay": "olink", "feature": [f"rs{i}" for i in range(n)], "feature_name": [f"P{i}" for i in range(n)],
                         "outcome_or_contrast": "failure", "estimate": rng.normal(0, 0.3, n) + np.sign(rng.normal(size=n)) * (p < 1e-4),
                         "p_value": p, "q_value": multipletests(p, method="fdr_bh")[1], "effect": "log odds ratio per SD",
                         "chrom": rng.integers(1, 23, n).astype(str), "pos": rng.integers(1, 10**8, n)})  # fmt: skip


def text_sizes(fig) -> list[float]:
    return [text.get_fontsize() for text in fig.findobj(matplotlib.text.Text) if text.get_text().strip()]


def test_kaplan_meier_marks_each_censoring_and_counts_patients_still_followed_at_clinical_times(cohort):
    curves = kaplan_meier_table(cohort, "days", "event")
    fig = figures.kaplan_meier(curves, 0.5, outcome="switch")
    ax, ax_risk = fig.axes
    censored_times = {group: set(part.loc[part["event"] == 0, "days"]) for group, part in cohort.groupby("subgroup", observed=True)}
    marks = [line for line in ax.get_lines() if line.get_marker() == "|"]
    assert [set(line.get_xdata()) for line in marks] == [censored_times["S1"], censored_times["S2"]]
    assert list(ax_risk.get_xticks()) == [0, 90, 180, 365, 730]
    s1 = cohort[cohort["subgroup"] == "S1"]
    shown = {(round(text.get_position()[0]), text.get_position()[1]): text.get_text() for text in ax_risk.texts}
    assert shown[(365, 0)] == str((s1["days"] >= 365).sum()) and shown[(0, 0)] == str(len(s1))
    assert not ax.collections  # no confidence band unless asked
    assert figures.kaplan_meier(curves, 0.5, outcome="switch", confidence_bands=True).axes[0].collections
    plt.close("all")


def test_significance_lines_sit_at_the_fdr_threshold_actually_passed(associations):
    fig = figures.manhattan_qq(associations, 1.0, outcome="failure")
    passing = associations.loc[associations["q_value"] < 0.05, "p_value"].max()
    levels = sorted(line.get_ydata()[0] for line in fig.axes[0].get_lines() if line.get_linestyle() in ("--", ":"))
    assert levels == pytest.approx(sorted([-np.log10(passing), -np.log10(5e-8)]))
    volcano = figures.volcano(associations, outcome="failure")
    assert [line.get_ydata()[0] for line in volcano.axes[0].get_lines()] == pytest.approx([-np.log10(passing)])
    low, high = volcano.axes[0].get_xlim()
    assert low == pytest.approx(-high)  # symmetric effect axis
    two_assays = associations.assign(assay=np.where(np.arange(len(associations)) % 2, "olink", "rna"),
                                     adjustment="fdr_bh within outcome_or_contrast+model")  # one FDR family
    lines = [ax.get_lines()[0].get_ydata()[0] for ax in figures.volcano(two_assays, outcome="failure").axes[:2]]
    assert lines == pytest.approx([-np.log10(passing)] * 2)
    plt.close("all")


def test_no_text_in_the_paper_figures_is_smaller_than_the_journal_minimum(cohort, associations):
    made = [figures.kaplan_meier(kaplan_meier_table(cohort, "days", "event"), 0.5, outcome="switch"),
            figures.manhattan_qq(associations, 1.0, outcome="failure"),
            figures.volcano(associations, outcome="failure"),
            figures.table_figure(table_one(cohort, ["age", "sex"]))]  # fmt: skip
    for fig in made:
        assert min(text_sizes(fig)) >= SMALLEST_FONT
    plt.close("all")


def test_embedding_shows_the_confidence_on_a_colour_bar_and_legends_outside_the_data():
    rng = np.random.default_rng(5)
    n = 200
    coordinates = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "embedding_1": rng.normal(size=n),
                                "embedding_2": rng.normal(size=n), "method": "umap"})  # fmt: skip
    obs = pd.DataFrame({"subgroup": rng.choice(["S1", "S2", "S10"], n), "site": rng.choice(["LUX", "BEL"], n),
                        "subgroup_confidence": rng.choice([0.44, 0.8, 1.0], n)},  # few levels, still a colour bar
                       index=coordinates["patient_id"])  # fmt: skip
    fig = figures.embedding(coordinates, obs, ["subgroup", "subgroup_confidence", "site"])
    fig.canvas.draw()
    subgroup_ax, confidence_ax, site_ax = fig.axes[:3]
    colour_bar = fig.axes[-1]
    assert colour_bar.get_ylabel() == "Subgroup confidence" and colour_bar.get_ylim() == (0.0, 1.0)
    assert confidence_ax.get_legend() is None and confidence_ax.get_title() == "Subgroup confidence"
    assert (subgroup_ax.get_xlabel(), subgroup_ax.get_ylabel()) == ("UMAP 1", "UMAP 2")
    assert [text.get_text() for text in subgroup_ax.get_legend().get_texts()] == ["S1", "S2", "S10"]
    for ax in (subgroup_ax, site_ax):
        legend = ax.get_legend().get_window_extent()
        assert legend.x0 >= ax.get_window_extent().x1 - 1  # right of the panel, over no point
    assert min(text_sizes(fig)) >= SMALLEST_FONT
    plt.close("all")


def test_forest_has_a_reference_row_counts_one_ratio_range_and_numbers_outside_the_data():
    rows = [{"outcome": outcome, "model": model, "term": f"subgroup[S{j + 2}]", "estimate": estimate,
             "ci_low": estimate - width, "ci_high": estimate + width, "ratio": np.exp(estimate), "p_value": 0.01,
             "n": 700, "n_events": 250}
            for outcome, model, width in (("failure_12m", "logistic", 0.3), ("time_to_switch", "cox", 0.9))
            for j, estimate in enumerate((0.4, -0.3))]  # fmt: skip
    fig = figures.forest(pd.DataFrame(rows))
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["failure 12m (700 patients, 250 events)",
                                                 "time to switch (700 patients, 250 events)"]  # fmt: skip
    assert [label.get_text() for label in panels[0].get_yticklabels()] == ["S1 (reference)", "S2 vs S1", "S3 vs S1"]
    assert panels[0].get_xlim() == panels[1].get_xlim()  # one x range
    assert panels[1].get_xlim()[0] < np.exp(-1.2) and panels[1].get_xlim()[1] > np.exp(1.3)
    numbers = [ax for ax in fig.axes if not ax.get_title()][0]
    assert numbers.get_yticklabels()[1].get_text() == f"{np.exp(0.4):.2f} ({np.exp(0.1):.2f}-{np.exp(0.7):.2f}), p = 0.01"
    for label in numbers.get_yticklabels():  # right of the data, inside the figure
        assert label.get_window_extent().x0 >= panels[0].get_window_extent().x1
        assert label.get_window_extent().x1 <= fig.bbox.x1
    assert min(text_sizes(fig)) >= SMALLEST_FONT
    plt.close("all")


def test_factor_overview_draws_the_tables_it_is_given():
    from stratomics.factor_figures import factor_overview

    rng = np.random.default_rng(5)
    variance = pd.DataFrame([(f, a, rng.uniform(0, 0.2)) for f in range(1, 6) for a in ("rna", "flow")],
                            columns=["factor", "assay", "variance_explained"])  # fmt: skip
    selection = pd.DataFrame({"factor": [f"factor_{f}" for f in range(1, 6)], "kept": [False, True, False, True, False]})
    variables = [("age", "characteristic", "Spearman rho"), ("site", "characteristic", "eta"),
                 ("switch", "outcome", "Somers' D")]  # fmt: skip
    associations = pd.DataFrame([(f, v, kind, measure, rng.uniform(-0.5, 0.5), 0.5) for f in range(1, 6)
                                 for v, kind, measure in variables],
                                columns=["factor", "variable", "kind", "measure", "association", "q_value"])  # fmt: skip
    associations.loc[(associations["factor"] == 2) & (associations["variable"] == "switch"), ["association", "q_value"]] = [0.6, 0.001]
    features = pd.DataFrame([(f, "rna", f"g{f}_{i}", f"GENE{f}_{i}", 0.9 - 0.05 * i, i + 1) for f in range(1, 6) for i in range(12)],
                            columns=["factor", "assay", "feature", "feature_name", "correlation", "rank"])  # fmt: skip
    fig = factor_overview(variance, selection, associations=associations, features=features, top=8)
    titled = {ax.get_title(): ax for ax in fig.axes}
    ax_variance, ax_associations = titled["Variance explained"], titled["Characteristics and outcomes (*: q < 0.05)"]
    assert [t.get_text() for t in ax_variance.get_xticklabels()] == ["F1", "F2*", "F3", "F4*", "F5"]
    image = ax_associations.collections[0].get_array().reshape(3, 5)
    assert image[2, 1] == pytest.approx(0.6)  # the outcome row last, under the characteristics
    assert [t.get_text() for t in ax_associations.get_yticklabels()] == ["age (ρ)", "site (η)", "switch (D)"]
    assert [t.get_text() for t in ax_associations.texts if t.get_text()] == ["*", "b"]  # one star and the panel letter
    feature_axes = [ax for ax in fig.axes if ax.get_title().startswith("Factor")]
    assert [ax.get_title() for ax in feature_axes] == ["Factor 2", "Factor 4"]
    names = [t.get_text() for t in feature_axes[0].get_yticklabels()]
    assert names == [f"GENE2_{i}" for i in range(8)][::-1]  # the first-ranked at the top
    assert min(text_sizes(fig)) >= SMALLEST_FONT
    plt.close("all")


def test_marker_heatmap_shows_scaled_subgroup_means_with_names_and_an_assay_bar():
    import anndata as ad
    import mudata as md

    from stratomics.subgroups import scaled_group_means

    rng = np.random.default_rng(6)
    patients = [f"p{i}" for i in range(90)]
    subgroup = np.repeat(["S1", "S2", "S3"], 30)
    modalities = {}
    for assay, scale in (("rna", 1.0), ("olink", 50.0)):  # the scale of an assay must not matter
        values = rng.normal(size=(90, 6)) * scale
        values[subgroup == "S2", 0] += 2 * scale
        values[::7, 1] = np.nan
        modalities[assay] = ad.AnnData(values, obs=pd.DataFrame(index=patients),
                                       var=pd.DataFrame({"gene_name": [f"{assay.upper()}{j}" for j in range(6)]},
                                                        index=[f"{assay}_id{j}" for j in range(6)]))  # fmt: skip
    mdata = md.MuData(modalities)
    mdata.obs["subgroup"] = pd.Categorical(subgroup)
    means = scaled_group_means(mdata, ["rna", "olink"]).set_index(["assay", "feature", "level"])
    column = pd.Series(modalities["olink"].X[:, 1], index=patients).dropna()
    z = (column - column.mean()) / column.std(ddof=1)
    assert means.loc[("olink", "olink_id1", "S3"), "scaled_mean"] == pytest.approx(z[subgroup[z.index.str[1:].astype(int)] == "S3"].mean())
    assert means.loc[("olink", "olink_id1", "S3"), "n"] == (subgroup[z.index.str[1:].astype(int)] == "S3").sum()
    markers = pd.DataFrame([(a, f"{a}_id{j}", f"{a.upper()}{j}", f"subgroup: {s} vs rest", p)
                            for a in ("rna", "olink") for j in range(6) for s, p in zip(("S1", "S2", "S3"), rng.uniform(size=3))],
                           columns=["assay", "feature", "feature_name", "outcome_or_contrast", "p_value"])  # fmt: skip
    markers.loc[markers["feature"].str.endswith("id0") & markers["outcome_or_contrast"].str.contains("S2"), "p_value"] = 1e-12
    fig = figures.marker_heatmap(markers, means.reset_index(), top=2)
    ax_assay, ax = fig.axes[0], fig.axes[1]
    labels = [t.get_text() for t in ax_assay.get_yticklabels()]
    assert len(labels) == 6 and {"RNA0", "OLINK0"} <= set(labels[2:4])  # S2's top two: the planted feature in both assays
    drawn = ax.collections[0].get_array().reshape(6, 3)
    row = labels.index("OLINK0")
    assert drawn[row, 1] == pytest.approx(means.loc[("olink", "olink_id0", "S2"), "scaled_mean"]) and drawn[row, 1] > 0.8
    assert [a.get_ylabel() for a in fig.axes][-1] == "mean (SD units)"  # the colour bar
    assert min(text_sizes(fig)) >= SMALLEST_FONT
    plt.close("all")


def test_prediction_figure_leads_with_the_gain_over_clinical_and_shows_each_site():
    rows = []
    for validation in ("nested_cv", "loso_pooled", "loso_A", "loso_B"):
        for feature_set, auc, gain in (("clinical", 0.70, None), ("clinical_biomarkers", 0.74, 0.04)):
            rows.append({"outcome": "failure", "model": "elastic_net", "feature_set": feature_set, "validation": validation,
                         "metric": "auc", "estimate": auc, "ci_low": auc - 0.03, "ci_high": auc + 0.03})  # fmt: skip
            if gain is not None:
                rows.append({**rows[-1], "metric": "auc_gain_over_clinical", "estimate": gain, "ci_low": 0.01, "ci_high": 0.07})
    fig = figures.prediction_performance(pd.DataFrame(rows))
    gain_ax, auc_ax = fig.axes[0], fig.axes[1]
    assert gain_ax.get_xlabel() == "AUC gain over clinical (95% CI)" and auc_ax.get_xlabel() == "AUC (95% CI)"
    assert [t.get_text() for t in gain_ax.get_yticklabels()] == ["clinical + biomarkers"]
    drawn_gains = np.concatenate([line.get_xdata() for line in gain_ax.get_lines() if line.get_marker() == "o"])
    assert sorted(drawn_gains) == [0.04, 0.04]  # nested CV and pooled leave-one-site-out
    site_ticks = [line for line in auc_ax.get_lines() if line.get_label() == "each held-out site"]
    assert len(site_ticks) == 1 and len(site_ticks[0].get_xdata()) == 4  # two sites x two predictor sets
    assert auc_ax.get_xlim()[0] > 0.5  # the axis uses the panel, not the range from chance
    assert min(text_sizes(fig)) >= SMALLEST_FONT


def test_prediction_curves_draw_the_calibration_band_risk_histogram_and_survival_calibration_at_the_horizon():
    from stratomics.predict import horizon_calibration, risk_curves

    rng = np.random.default_rng(5)
    risk = rng.uniform(0.05, 0.9, 500)
    y = (rng.random(500) < risk).astype(int)
    time, event = rng.exponential(400, 500), (rng.random(500) < 0.7).astype(int)
    tables = []
    for feature_set in ("clinical", "all"):
        tables.append(risk_curves(y, risk, seed=0).assign(outcome="failure_12m", feature_set=feature_set))
        tables.append(horizon_calibration(time, event, risk, horizon=365).assign(outcome="time_to_switch", feature_set=feature_set))
    fig = figures.prediction_curves(pd.concat(tables).assign(model="elastic_net"), horizon=365)
    shown = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in shown] == ["failure 12m: ROC", "calibration", "decision curve",
                                                "time to switch: calibration at 365 days"]  # fmt: skip
    calibration, survival = shown[1], shown[3]
    assert len(calibration.collections) == 2  # one 95% band per predictor set
    bars = [patch for patch in calibration.patches if patch.get_height() != 0]
    assert sum(patch.get_height() > 0 for patch in bars) <= 20 and any(patch.get_height() < 0 for patch in bars)
    observed = np.asarray(survival.containers[0].lines[0].get_ydata(), float)  # first set's Kaplan-Meier observed risks
    expected = horizon_calibration(time, event, risk, horizon=365).query("curve == 'calibration_horizon'")["y"]
    assert observed == pytest.approx(expected.to_numpy())
    assert min(text_sizes(fig)) >= SMALLEST_FONT
    plt.close("all")


def _label_boxes(fig, names):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [(text.axes, text.get_window_extent(renderer)) for text in fig.findobj(matplotlib.text.Text)
            if text.get_text() in names]  # fmt: skip


def test_volcano_and_manhattan_labels_do_not_overlap_and_stay_inside_their_panel(associations):
    crowded = associations.copy()  # ten strong features with nearly the same estimate and p-value
    crowded.loc[:9, ["estimate", "p_value"]] = np.c_[0.5 + 0.002 * np.arange(10), 1e-12 * (1 + 0.01 * np.arange(10))]
    crowded.loc[:9, "feature_name"] = [f"Protein name {i}" for i in range(10)]
    made = {"volcano": (figures.volcano(crowded, outcome="failure", label_top=6), [named for named in
                        figures.named_labels(crowded.loc[:5])]),  # fmt: skip
            "manhattan": (figures.manhattan_qq(crowded.assign(chrom="1", pos=1000 * np.arange(len(crowded))), 1.0,
                                               outcome="failure", label_top=6), list(crowded.loc[:5, "feature"]))}  # fmt: skip
    for name, (fig, labels) in made.items():
        boxes = _label_boxes(fig, set(labels))
        assert len(boxes) == 6, name
        for i, (ax, box) in enumerate(boxes):
            panel = ax.get_window_extent()
            assert panel.x0 - 1 <= box.x0 and box.x1 <= panel.x1 + 1 and panel.y0 - 1 <= box.y0 and box.y1 <= panel.y1 + 1
            assert not any(box.overlaps(other) for _, other in boxes[i + 1:]), name
    assert figures.named_labels(crowded.loc[:0])[0] == "Protein name 0"
    assert figures.short_label("a very long protein name indeed", 14) == "a very long p…"
    plt.close("all")


def _space(dimensions: int, n: int = 60) -> md.MuData:
    """A MuData whose subgroup space has ``dimensions`` columns, the first patient not placed."""
    scores = np.random.default_rng(dimensions).normal(size=(n, dimensions))
    scores[0] = np.nan
    mdata = md.MuData({"labs": ad.AnnData(np.zeros((n, 1)), obs=pd.DataFrame(index=[f"P{i}" for i in range(n)]))})
    mdata.obsm["X_subgroup_space"] = scores
    return mdata


def test_embedding_of_a_space_with_one_or_two_dimensions_is_the_space_itself():
    flat, plane = _space(1), _space(2)
    line = umap_table(flat, seed=3)
    assert line["method"].unique().tolist() == ["subgroup_space_jittered"] and len(line) == 59  # P0 not placed
    np.testing.assert_array_equal(line["embedding_1"], flat.obsm["X_subgroup_space"][1:, 0])
    assert line["embedding_2"].between(-1, 1).all() and line["embedding_2"].std() > 0.3
    pd.testing.assert_frame_equal(line, umap_table(flat, seed=3))  # seeded
    assert not line["embedding_2"].equals(umap_table(flat, seed=4)["embedding_2"])
    table = umap_table(plane)
    np.testing.assert_array_equal(table[["embedding_1", "embedding_2"]], plane.obsm["X_subgroup_space"][1:])
    obs = pd.DataFrame({"subgroup": "S1"}, index=line["patient_id"])
    ax = figures.embedding(line, obs, ["subgroup"]).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Subgroup space", "Random jitter")
    plt.close("all")


UMAP_IN_A_NEW_PROCESS = """
import sys
import numpy as np
from stratomics.subgroups import UMAP_MODULES, cache_umap_compilation
cache_umap_compilation()
import umap
from importlib import import_module
from numba.core.registry import CPUDispatcher
points = np.random.default_rng(0).normal(size=(300, 5))
np.save(sys.argv[1], umap.UMAP(random_state=0, n_jobs=1).fit_transform(points))
hits = sum(sum(f.stats.cache_hits.values()) for name in UMAP_MODULES for f in vars(import_module(name)).values()
           if isinstance(f, CPUDispatcher))
print(hits)
"""


def test_umap_compiled_code_is_reused_by_the_next_process_with_the_same_embedding(tmp_path):
    """umap-learn's numba functions are cached on disk: a second process loads them rather than compiling."""
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    hits = [int(subprocess.run([sys.executable, "-c", UMAP_IN_A_NEW_PROCESS, str(tmp_path / f"run{i}.npy")],
                               env=environment, capture_output=True, text=True, check=True).stdout.split()[-1])
            for i in range(2)]  # fmt: skip
    assert hits[0] == 0 and hits[1] > 0
    assert list((tmp_path / "numba").rglob("*.nbi"))
    np.testing.assert_array_equal(np.load(tmp_path / "run0.npy"), np.load(tmp_path / "run1.npy"))

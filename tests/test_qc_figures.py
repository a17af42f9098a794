"""QC figures: per-feature and per-sample panels, labelled thresholds, % variance, sample genotype metrics."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt

from stratomics.kinds.genotypes import sample_genotype_metrics, sex_mismatches
from stratomics.plot import SMALLEST_FONT
from stratomics.preprocess import preprocess_assay
from stratomics.qc_figures import assay_qc


def genotypes(n_samples=300, n_autosomal=400, n_x=150, seed=0):
    """Dosages in HWE on the autosomes; on X, males (first half) hemizygous (0 or 2), females in HWE."""
    rng = np.random.default_rng(seed)
    frequency = rng.uniform(0.1, 0.5, n_autosomal + n_x)
    dosages = rng.binomial(2, frequency, size=(n_samples, len(frequency))).astype(float)
    males = np.arange(n_samples) < n_samples // 2
    dosages[np.ix_(males, np.arange(n_autosomal, len(frequency)))] = 2.0 * rng.binomial(
        1, frequency[n_autosomal:], size=(males.sum(), n_x))  # fmt: skip
    dosages[rng.random(dosages.shape) < 0.01] = np.nan
    var = pd.DataFrame({"chrom": ["1"] * n_autosomal + ["X"] * n_x, "pos": np.arange(len(frequency)),
                        "a1": "A", "a2": "G"}, index=[f"rs{i}" for i in range(len(frequency))])  # fmt: skip
    obs = pd.DataFrame({"site": np.tile(["A", "B"], n_samples // 2)}, index=[f"P{i}" for i in range(n_samples)])
    return ad.AnnData(dosages, obs=obs, var=var), males


def test_sample_heterozygosity_and_the_x_inbreeding_coefficient_separate_the_sexes():
    adata, males = genotypes()
    metrics = sample_genotype_metrics(adata)
    autosomal = adata.X[:, :400]
    expected = np.nansum(autosomal == 1, axis=1) / np.isfinite(autosomal).sum(axis=1)
    np.testing.assert_allclose(metrics["heterozygosity"], expected)
    f = metrics["x_inbreeding_f"].to_numpy()
    assert f[males].min() > 0.95 > 0.5 > f[~males].max() and abs(f[~males].mean()) < 0.05  # plink: F > 0.8 male
    assert metrics.equals(metrics.loc[adata.obs_names])
    without_x = sample_genotype_metrics(adata[:, :400].copy())
    assert without_x["x_inbreeding_f"].isna().all()


def fonts_and_letters(figure):
    texts = [text for text in figure.findobj(plt.Text) if text.get_text().strip()]
    letters = [text.get_text() for ax in figure.axes for text in ax.texts if len(text.get_text()) == 1]
    return min(text.get_fontsize() for text in texts), letters


def test_genotype_qc_figure_has_sample_panels_labelled_thresholds_and_pca_variance(caplog):
    adata, males = genotypes()
    adata.obs["reported_sex"] = np.where(males, "male", "female").astype(object)
    swapped = adata.obs_names[[0, 1, 299]]  # two males reported female, one female reported male
    adata.obs.loc[swapped, "reported_sex"] = ["female", "female", "male"]
    adata.obs.loc[adata.obs_names[5], "reported_sex"] = np.nan  # unknown in the .fam: not a mismatch
    result = preprocess_assay(adata, "snps", {"kind": "genotypes"}, batch="site", seed=1)
    np.testing.assert_allclose(result.obs["missing_fraction"], np.isnan(result.X).mean(axis=1))
    assert (result.var["chrom"] == "X").sum() == 150  # HWE on X among females: hemizygous males fail it otherwise
    called, truth = result.obs["genetic_sex"], np.where(males, "male", "female")
    assert ((called == truth) | (called == "ambiguous")).all() and (called == "ambiguous").mean() < 0.03
    assert list(result.obs_names[sex_mismatches(result.obs)]) == list(swapped)
    assert "genotypes: 3 samples whose chromosome X inbreeding F disagrees with the sex in the .fam" in caplog.text
    assert "P299: reported male, F " in caplog.text
    figure = assay_qc(result, "snps", batch="site")
    drawn = [ax for ax in figure.axes if ax.axison]
    titles = [ax.get_title() for ax in drawn]
    assert titles == ["SNP call rate", "Allele frequency", "Hardy-Weinberg", "Call rate", "Heterozygosity",
                      "Sex check: 3 mismatched", "QC PCA"]  # fmt: skip
    sex_panel = drawn[5]
    assert [text.get_text() for text in sex_panel.get_legend().get_texts()] == ["female", "male", "unknown", "mismatch"]
    marked = next(line for line in sex_panel.get_lines() if line.get_label() == "mismatch").get_xdata()
    np.testing.assert_allclose(sorted(marked), sorted(result.obs.loc[swapped, "x_inbreeding_f"]))
    labels = {text.get_text() for ax in drawn for text in ax.texts}
    assert {"0.95", "0.01", "p 1e-06", "0.9", "mean\u00b13 SD", "0.2", "0.8"} <= labels
    scaled = result.X - np.nanmean(result.X, axis=0)
    scaled = np.nan_to_num(scaled / np.nanstd(result.X, axis=0, ddof=1))
    singular = np.linalg.svd(scaled - scaled.mean(axis=0), compute_uv=False) ** 2
    share = singular / singular.sum()
    assert drawn[-1].get_xlabel() == f"PC1 ({share[0]:.1%})" and drawn[-1].get_ylabel() == f"PC2 ({share[1]:.1%})"
    smallest, letters = fonts_and_letters(figure)
    assert smallest >= SMALLEST_FONT and letters == list("abcdefg")
    plt.close(figure)


def test_olink_qc_figure_draws_each_sample_median_and_iqr_by_plate():
    rng = np.random.default_rng(3)
    plates = np.repeat(["p1", "p2", "p3"], 40)
    npx = rng.normal(5, 1, (120, 30))
    adata = ad.AnnData(npx, obs=pd.DataFrame({"plate": plates, "site": np.tile(["A", "B"], 60)},
                                             index=[f"s{i}" for i in range(120)]),
                       layers={"lod": np.full_like(npx, 2.0), "qc_warning": np.zeros_like(npx)})  # fmt: skip
    result = preprocess_assay(adata, "olink", {"kind": "olink_npx"}, batch="site")
    np.testing.assert_allclose(result.obs["median_npx"], np.median(result.X, axis=1))
    np.testing.assert_allclose(result.obs["iqr_npx"], np.subtract(*np.percentile(result.X, [75, 25], axis=1)))
    figure = assay_qc(result, "olink", batch="site")
    sample_panel = next(ax for ax in figure.axes if ax.get_title() == "Sample QC")
    assert [text.get_text() for text in sample_panel.get_legend().get_texts()] == ["p1", "p2", "p3"]
    limits = sorted(line.get_ydata()[0] for line in sample_panel.get_lines() if line.get_linestyle() == "--"
                    and len(set(line.get_ydata())) == 1)  # fmt: skip
    iqr = result.obs["iqr_npx"]
    assert limits == pytest.approx([iqr.mean() - 3 * iqr.std(), iqr.mean() + 3 * iqr.std()])
    assert fonts_and_letters(figure)[0] >= SMALLEST_FONT
    plt.close(figure)

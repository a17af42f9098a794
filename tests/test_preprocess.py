"""Preprocessing numbers checked against independent computations and reference tools."""

import math
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy.stats import gmean

from stratomics.errors import StratomicsInputError

from stratomics.kinds.cell_frequency import clr_by_parent
from stratomics.kinds.concentration import preprocess_concentration
from stratomics.kinds.genotypes import hwe_exact_p, preprocess_genotypes, sex_mismatches
from stratomics.kinds.olink_npx import preprocess_olink
from stratomics.kinds.rna_counts import fit_dispersion_trend, median_of_ratios, variance_stabilise
from stratomics.preprocess import centre_batches, combat, drop_uninformative, preprocess_assay, preprocess_cohort
from stratomics.qc_record import Record


def record():
    return Record("test", "test")


# --- RNA ---


def test_size_factors_follow_the_deseq2_formula():
    rng = np.random.default_rng(1)
    counts = rng.poisson(50, size=(6, 40)) * np.array([1, 2, 3, 1, 1, 4])[:, None]
    counts[0, :3] = 0  # genes with a zero are left out of the geometric means
    usable = (counts > 0).all(axis=0)
    reference = [np.median(counts[j, usable] / gmean(counts[:, usable], axis=0)) for j in range(6)]
    np.testing.assert_allclose(median_of_ratios(counts), reference, rtol=1e-12)


def test_size_factors_of_a_scaled_library_scale_with_it():
    counts = np.array([[10, 20, 30, 40], [20, 40, 60, 80]])
    np.testing.assert_allclose(median_of_ratios(counts), [1 / np.sqrt(2), np.sqrt(2)])


def test_vst_is_the_integral_of_one_over_the_nb_standard_deviation():
    a0, a1 = 0.1, 1.5
    q = np.geomspace(0.5, 1e5, 200)
    step = q * 1e-6
    derivative = (variance_stabilise(q + step, a0, a1) - variance_stabilise(q - step, a0, a1)) / (2 * step)
    variance = q * (1 + a1) + a0 * q**2  # NB variance with dispersion a0 + a1 / q
    # constant slope per SD, scaled so that large counts are on the log2 scale
    np.testing.assert_allclose(derivative * np.sqrt(variance), np.sqrt(a0) / np.log(2), rtol=1e-5)
    assert abs(variance_stabilise(np.array([1e9]), a0, a1)[0] - np.log2(1e9)) < 1e-3


def test_dispersion_trend_recovers_the_simulated_one():
    rng = np.random.default_rng(7)
    size_factors = rng.lognormal(0, 0.2, 300)
    means = np.geomspace(5, 2000, 1500)
    dispersion = 0.1 + 2.0 / means
    mu = size_factors[:, None] * means
    counts = rng.poisson(rng.gamma(1 / dispersion, mu * dispersion))
    a0, a1 = fit_dispersion_trend(counts / size_factors[:, None], size_factors)
    assert a0 == pytest.approx(0.1, rel=0.1) and a1 == pytest.approx(2.0, rel=0.25)


# --- Genotypes ---


def exact_hwe_p(het: int, hom1: int, hom2: int) -> float:
    """HWE exact p by enumerating every heterozygote count with exact fractions."""
    n, minor = het + hom1 + hom2, min(2 * hom1 + het, 2 * hom2 + het)
    prob = {}
    for h in range(minor % 2, minor + 1, 2):
        rare, common = (minor - h) // 2, n - h - (minor - h) // 2
        if common < 0:
            continue
        prob[h] = Fraction(math.factorial(n) * 2**h * math.factorial(minor) * math.factorial(2 * n - minor),
                           math.factorial(rare) * math.factorial(h) * math.factorial(common)
                           * math.factorial(2 * n))  # fmt: skip
    return float(sum(p for p in prob.values() if p <= prob[het]))


@pytest.mark.parametrize("het,hom1,hom2", [(50, 25, 25), (0, 50, 50), (10, 85, 5), (57, 14, 29),
                                           (3, 0, 97), (1, 0, 0), (40, 30, 30), (21, 5, 74)])  # fmt: skip
def test_hwe_exact_p_matches_exact_enumeration(het, hom1, hom2):
    assert hwe_exact_p([het], [hom1], [hom2])[0] == pytest.approx(exact_hwe_p(het, hom1, hom2), rel=1e-9)


@pytest.mark.parametrize("het,hom1,hom2", [(20, 190, 190), (200, 100, 100), (0, 300, 100), (150, 25, 225),
                                           (396, 2, 2), (2, 397, 1)])  # fmt: skip
def test_hwe_exact_p_keeps_its_relative_precision_far_in_the_tails(het, hom1, hom2):
    # p from 1e-100 to 1: the walk stops where the probabilities fall below 1e-17 of the observed count's
    assert hwe_exact_p([het], [hom1], [hom2])[0] == pytest.approx(exact_hwe_p(het, hom1, hom2), rel=1e-12)


def naive_code_counts(packed: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Each sample's two-bit code, unpacked one by one: SNPs x samples at ``rows``."""
    return (packed[:, rows >> 2] >> ((rows & 3) << 1)) & 3


@pytest.mark.parametrize("n_samples,n_snps", [(13, 600), (803, 300), (70_001, 3)])
def test_genotype_counts_by_byte_equal_counting_each_sample(n_samples, n_snps):
    # 70,001 samples: more bytes than one pass of 16-bit fields holds; 600 SNPs: more than the 8-bit lanes hold
    from stratomics.kinds.genotype_kernels import add_sample_counts, code_counts

    rng = np.random.default_rng(n_samples)
    packed = rng.integers(0, 256, size=(n_snps, -(-n_samples // 4)), dtype=np.uint8)
    selected, on_x, x_expected_het = rng.random(n_snps) < 0.8, rng.random(n_snps) < 0.1, rng.random(n_snps)
    for rows in (np.arange(n_samples), rng.permutation(n_samples)[:-5], rng.permutation(n_samples)[: n_samples // 3]):
        codes = naive_code_counts(packed, rows)
        expected = np.stack([(codes == code).sum(axis=1) for code in range(4)], axis=1)
        np.testing.assert_array_equal(code_counts(packed, rows), expected)
        counts, x_expected = np.zeros((4, len(rows)), dtype=np.int32), np.zeros(len(rows))
        add_sample_counts(packed, rows, selected, on_x=on_x, x_expected_het=x_expected_het, counts=counts,
                          x_expected=x_expected)  # fmt: skip
        autosomal, x = codes[selected & ~on_x], codes[selected & on_x]
        np.testing.assert_array_equal(counts, [(codes[selected] != 1).sum(0), (autosomal != 1).sum(0),
                                               (autosomal == 2).sum(0), (x == 2).sum(0)])  # fmt: skip
        np.testing.assert_allclose(x_expected, x_expected_het[selected & on_x] @ (x != 1))


@pytest.mark.skipif(shutil.which("plink2") is None, reason="plink2 not installed (CI installs it)")
def test_hwe_exact_p_matches_plink2_hardy(tmp_path):
    from bed_reader import to_bed

    rng = np.random.default_rng(3)
    genotypes = rng.binomial(2, rng.uniform(0.05, 0.5, 60), size=(300, 60)).astype(np.float32)
    genotypes[:, :10] = rng.choice([0.0, 2.0], size=(300, 10))  # out of equilibrium
    to_bed(tmp_path / "g.bed", genotypes, properties={"sid": [f"s{i}" for i in range(60)]})
    subprocess.run(["plink2", "--bfile", str(tmp_path / "g"), "--hardy", "--out", str(tmp_path / "h"),
                    "--threads", "1"], check=True, capture_output=True)  # fmt: skip
    plink = pd.read_csv(tmp_path / "h.hardy", sep="\t").set_index("ID")
    counts = {g: (genotypes == g).sum(axis=0) for g in (0, 1, 2)}
    ours = pd.Series(hwe_exact_p(counts[1], counts[2], counts[0]), index=[f"s{i}" for i in range(60)])
    np.testing.assert_allclose(ours[plink.index], plink["P"], rtol=1e-4, atol=1e-300)


def test_genotype_filters_remove_bad_snps_and_samples():
    rng = np.random.default_rng(0)
    dosages = rng.binomial(2, 0.3, size=(200, 6)).astype(np.float32)
    dosages[:60, 1] = np.nan  # 70% call rate
    dosages[:, 2] = 0  # monomorphic
    dosages[:, 3] = rng.choice([0.0, 2.0], size=200)  # no heterozygotes
    dosages[5, :] = np.nan  # a sample without calls
    adata = ad.AnnData(dosages, obs=pd.DataFrame(index=[f"p{i}" for i in range(200)]),
                       var=pd.DataFrame(index=[f"rs{i}" for i in range(6)]))  # fmt: skip
    rec = record()
    result = preprocess_genotypes(adata, rec)
    assert result.var_names.tolist() == ["rs0", "rs4", "rs5"]
    assert "p5" not in result.obs_names and result.n_obs == 199
    reasons = {r["id"]: r["reason"] for r in rec.removed}
    assert reasons["rs1"].startswith("SNP call rate") and reasons["rs2"].startswith("MAF")
    assert reasons["rs3"].startswith("HWE") and reasons["p5"].startswith("sample call rate")
    freq = np.nanmean(result.X[:, 0]) / 2
    assert result.var.loc["rs0", "maf"] == pytest.approx(min(freq, 1 - freq))


def test_genotypes_streamed_from_the_bed_in_chunks_equal_genotypes_in_memory(tmp_path, monkeypatch):
    from bed_reader import to_bed

    from stratomics.associate import genotype_scan
    from stratomics.kinds import genotypes as genotype_kind
    from stratomics.kinds.genotypes import read_plink

    rng = np.random.default_rng(5)
    n, m = 240, 90
    dosages = rng.binomial(2, rng.uniform(0.02, 0.5, m), size=(n, m)).astype(np.float32)
    dosages[rng.random((n, m)) < 0.02] = np.nan
    dosages[:40, 3] = np.nan  # SNP call rate
    dosages[7, :30] = np.nan  # sample call rate
    dosages[:, 5] = rng.choice([0.0, 2.0], size=n)  # HWE
    dosages[:, 8] = 0  # monomorphic
    males = rng.random(n) < 0.5
    dosages[np.ix_(males, np.arange(70, m))] = 2 * rng.binomial(1, 0.3, size=(males.sum(), m - 70))
    chrom = ["1"] * 40 + ["2"] * 30 + ["X"] * 20
    sex = np.where(males, 1, 2)
    to_bed(tmp_path / "g.bed", dosages, properties={"iid": [f"P{i}" for i in range(n)], "chromosome": chrom,
                                                     "sex": sex, "sid": [f"rs{i}" for i in range(m)]})  # fmt: skip
    table = read_plink(tmp_path / "g", source="t")
    on_disk = ad.AnnData(obs=table.sample_info.iloc[::-1], var=table.var, uns={"ingest": table.uns})  # rows reordered
    in_memory = ad.AnnData(dosages[::-1], obs=on_disk.obs.copy(), var=on_disk.var.copy())
    for adata in (on_disk, in_memory):
        adata.obs.index = adata.obs.index.astype(str)
    monkeypatch.setattr(genotype_kind, "CHUNK_VALUES", 7 * n)  # 13 chunks of 7 SNPs from the .bed
    streamed = preprocess_assay(on_disk, "snps", {"kind": "genotypes"}, seed=2)
    monkeypatch.setattr(genotype_kind, "CHUNK_VALUES", 10**9)
    whole = preprocess_assay(in_memory, "snps", {"kind": "genotypes"}, seed=2)
    assert streamed.X is None and whole.X is not None
    assert streamed.var_names.equals(whole.var_names) and streamed.obs_names.equals(whole.obs_names)
    assert {"rs3", "rs5", "rs8"} <= set(whole.uns["removed"]["id"]) and "P7" in set(whole.uns["removed"]["id"])
    pd.testing.assert_frame_equal(streamed.var, whole.var)
    pd.testing.assert_frame_equal(streamed.obs, whole.obs)
    pd.testing.assert_frame_equal(streamed.uns["feature_qc"], whole.uns["feature_qc"])
    # float32 dosages, a float32 PCA (a QC plot): the same coordinates to 1e-4 whatever the memory layout
    np.testing.assert_allclose(np.abs(streamed.obsm["X_qc_pca"]), np.abs(whole.obsm["X_qc_pca"]), atol=1e-4)
    assert streamed.obs["genetic_sex"].notna().all() and not sex_mismatches(streamed.obs).any()
    obs = pd.DataFrame({"y": rng.normal(size=n), "age": rng.normal(50, 10, n)}, index=[f"P{i}" for i in range(n)])
    scans = [genotype_scan(adata, obs, "y", spec={"type": "continuous"}, covariates=["age"], snps=slice(3, 50),
                           chunk_size=9) for adata in (streamed, whole)]  # fmt: skip
    pd.testing.assert_frame_equal(*scans)
    assert len(scans[0]) == 47 and scans[0]["p_value"].notna().all()


# --- Cell frequencies ---


def test_clr_within_parent_matches_log_ratio_to_the_geometric_mean():
    frequencies = np.array([[60.0, 30.0, 50.0, 50.0], [20.0, 70.0, 0.0, 100.0]])
    parents = np.array(["A", "A", "B", "B"])
    clr, remainder = clr_by_parent(frequencies, parents)
    assert remainder == {"A": True, "B": False}
    first = np.array([60.0, 30.0, 10.0])  # with the remainder 100 - 90
    np.testing.assert_allclose(clr[0, :2], np.log(first / gmean(first))[:2])
    pseudo = 10.0  # half the smallest positive frequency replaces the zero
    second = np.array([pseudo, 100.0])
    np.testing.assert_allclose(clr[1, 2:], np.log(second / gmean(second)))


# --- Olink and concentrations ---


def test_olink_plate_normalisation_lod_and_qc_warnings():
    rng = np.random.default_rng(2)
    plates = np.repeat(["p1", "p2"], 50)
    npx = rng.normal(5, 1, (100, 3)) + np.where(plates == "p2", 1.5, 0)[:, None]
    lod = np.full_like(npx, 4.0) + np.where(plates == "p2", 1.5, 0)[:, None]
    warned = np.zeros_like(npx)
    warned[0, :] = 1
    adata = ad.AnnData(npx, obs=pd.DataFrame({"plate": plates}, index=[f"s{i}" for i in range(100)]),
                       layers={"lod": lod, "qc_warning": warned})  # fmt: skip
    result = preprocess_olink(adata, record(), below_lod="lod")
    assert np.isnan(result.X[0]).all()
    medians = [np.nanmedian(result.X[plates == p], axis=0) for p in ("p1", "p2")]
    np.testing.assert_allclose(medians[0], medians[1], atol=1e-12)
    below = npx < lod
    below[0] = False
    assert result.var["below_lod_fraction"].iloc[0] == pytest.approx(below[1:, 0].mean())
    shifted_lod = lod - (lod - np.where(plates == "p2", 1.5, 0)[:, None] - 4.0)  # lod moves with plate
    assert np.all(result.X[1:][below[1:]] >= 3.0) and np.isfinite(shifted_lod).all()


def test_censored_concentrations_are_set_at_their_limits_then_log2():
    values = np.array([[np.nan, 10.0], [8.0, np.nan], [np.nan, 0.0], [4.0, 20.0]])
    censored = np.array([[-1, 0], [0, 1], [0, 0], [0, 0]], dtype=float)
    var = pd.DataFrame({"lloq": [2.0, 4.0], "uloq": [100.0, 50.0]}, index=["IL6", "TNF"])
    adata = ad.AnnData(values, var=var, layers={"censored": censored})
    result = preprocess_concentration(adata, record(), below_lloq="half_lloq")
    expected = np.log2([[1.0, 10.0], [8.0, 50.0], [np.nan, 2.0], [4.0, 20.0]])
    np.testing.assert_allclose(result.X, expected)
    assert result.var["below_lloq_fraction"].tolist() == [1 / 3, 1 / 4]


# --- Shared steps ---


def test_uninformative_features_are_removed_and_recorded():
    values = np.array([[1.0, np.nan, 5.0, 1.0], [2.0, np.nan, 5.0, np.nan], [3.0, np.nan, 5.0, np.nan]])
    adata = ad.AnnData(values, var=pd.DataFrame(index=["ok", "empty", "constant", "single"]))
    rec = record()
    result = drop_uninformative(adata, rec)
    assert result.var_names.tolist() == ["ok"]
    assert {r["id"]: r["reason"] for r in rec.removed} == {
        "empty": "missing in every sample", "constant": "constant across samples",
        "single": "observed in a single sample"}  # fmt: skip


def test_a_column_constant_in_the_file_is_removed_although_clr_makes_it_vary(caplog):
    rng = np.random.default_rng(3)
    frequencies = np.column_stack([rng.uniform(10, 60, 30), rng.uniform(5, 30, 30), np.full(30, 12.5)])
    var = pd.DataFrame({"parent": "Lymphocytes"}, index=["CD4", "CD8", "filled_down"])
    adata = ad.AnnData(frequencies, obs=pd.DataFrame(index=[f"s{i}" for i in range(30)]), var=var)
    clr, _ = clr_by_parent(frequencies, var["parent"].to_numpy())
    assert np.ptp(clr[:, 2]) > 0.1  # the transformation alone would keep it
    result = preprocess_assay(adata, "flow", {"kind": "cell_frequency"})
    assert result.var_names.tolist() == ["CD4", "CD8"]
    removed = result.uns["removed"].set_index("id")["reason"]
    assert removed["filled_down"] == "constant in the file (every value equal)"
    assert "removed 1 features: constant in the file" in caplog.text


def test_combat_keeps_missing_values_and_equalises_batch_means():
    rng = np.random.default_rng(4)
    batch = np.repeat(["a", "b", "c"], 30)
    values = rng.normal(size=(90, 5)) + np.repeat([0.0, 2.0, -1.0], 30)[:, None]
    adata = ad.AnnData(values, obs=pd.DataFrame({"site": batch}, index=[f"s{i}" for i in range(90)]))
    adata.X[3, 1] = np.nan
    corrected = combat(adata, "site")
    assert np.isnan(corrected[3, 1]) and np.isfinite(np.delete(corrected.ravel(), 3 * 5 + 1)).all()
    means = pd.DataFrame(corrected).groupby(batch).mean()
    assert np.ptp(means.to_numpy(), axis=0).max() < 0.5  # from 3.0 before correction


def test_preprocessing_the_demo_records_everything(small_demo):
    from stratomics.cohort import build_cohort

    _, config = small_demo
    config = {**config, "preprocess": {"batch_correction": "combat", "combat_covariates": []}}
    raw = build_cohort(config).mdata
    mdata = preprocess_cohort(raw, config)
    assert mdata.obs_names.tolist() == raw.obs_names.tolist()
    for name in config["assays"]:
        adata = mdata[name]
        removed = adata.uns["removed"]
        features = set(removed.loc[removed["axis"] == "feature", "id"])
        assert set(raw[name].var_names) <= set(adata.var_names) | features
        # only a questionnaire makes new features: one score per instrument
        assert set(adata.var_names) - set(raw[name].var_names) == set(config["assays"][name].get("instruments", {}))
        assert not set(adata.var_names) & features
        assert adata.obsm["X_qc_pca"].shape == (adata.n_obs, 2)
    assert mdata["proteomics"].uns["preprocess"]["batch_correction"] == "combat"
    assert "batch_correction" not in mdata["genotypes"].uns["preprocess"]
    rna = mdata["rna"]
    np.testing.assert_allclose(rna.obs["size_factor"], median_of_ratios(rna.layers["counts"]))
    rna.obs["site"] = raw.obs.loc[rna.obs_names, "site"].to_numpy()
    assert len({qc_png(rna) for _ in range(2)}) == 1  # the QC figure's jitter is seeded


def qc_png(adata) -> bytes:
    import io

    import matplotlib.pyplot as plt

    from stratomics.qc_figures import assay_qc

    figure, buffer = assay_qc(adata, "rna", batch="site"), io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def test_assay_option_overrides_the_cohort_batch_correction(small_demo):
    from stratomics.cohort import build_cohort
    from stratomics.preprocess import assay_with_clinical

    _, config = small_demo
    raw = build_cohort(config).mdata
    adata = assay_with_clinical(raw["cytokines"], raw.obs, ["site"])
    spec = {**config["assays"]["cytokines"], "batch_correction": "none"}
    result = preprocess_assay(adata, "cytokines", spec, batch="site", batch_correction="combat")
    assert "X_qc_pca_uncorrected" not in result.obsm


def test_batch_centring_equalises_batch_means_and_keeps_missing_values():
    batch = np.repeat(["a", "b"], 4)
    values = np.array([[1.0], [2.0], [3.0], [np.nan], [11.0], [12.0], [13.0], [14.0]])
    adata = ad.AnnData(values, obs=pd.DataFrame({"site": batch}, index=[f"s{i}" for i in range(8)]))
    corrected = centre_batches(adata, "site")
    overall = np.nanmean(values)
    np.testing.assert_allclose(corrected[:3, 0], [1 - 2 + overall, overall, 3 - 2 + overall])
    np.testing.assert_allclose(corrected[4:, 0], values[4:, 0] - 12.5 + overall)
    assert np.isnan(corrected[3, 0])


COMBAT_DATA = Path(__file__).parent / "data/combat"


@pytest.mark.parametrize(("covariates", "reference"), [((), "sva_plain.tsv"),
                                                       (("disease", "age"), "sva_disease_age.tsv")])  # fmt: skip
def test_combat_matches_sva_with_and_without_protected_covariates(covariates, reference):
    values = pd.read_csv(COMBAT_DATA / "values.tsv", sep="\t", index_col=0)
    samples = pd.read_csv(COMBAT_DATA / "samples.tsv", sep="\t", index_col=0)
    adata = ad.AnnData(values.T.to_numpy(), obs=samples)
    expected = pd.read_csv(COMBAT_DATA / reference, sep="\t", index_col=0).T.to_numpy()
    np.testing.assert_allclose(combat(adata, "batch", covariates), expected, rtol=0, atol=1e-6)


def test_combat_keeps_the_protected_disease_effect():
    values = pd.read_csv(COMBAT_DATA / "values.tsv", sep="\t", index_col=0).T
    samples = pd.read_csv(COMBAT_DATA / "samples.tsv", sep="\t", index_col=0)
    adata = ad.AnnData(values.to_numpy(), obs=samples)
    corrected = combat(adata, "batch", ["disease"])
    ra = (samples["disease"] == "RA").to_numpy()
    effect = corrected[ra].mean(axis=0) - corrected[~ra].mean(axis=0)
    assert abs(effect.mean() - 1.2) < 0.25  # planted 1.2; unprotected ComBat removes part of it
    assert abs(corrected.mean() - values.to_numpy().mean()) < 0.1  # no shift of the data


def test_combat_names_a_confounded_batch_and_a_missing_covariate():
    obs = pd.DataFrame({"site": list("aabbcc"), "disease": ["IBD", "IBD", "IBD", "IBD", "RA", "RA"]},
                       index=[f"s{i}" for i in range(6)])  # fmt: skip
    adata = ad.AnnData(np.random.default_rng(0).normal(size=(6, 3)), obs=obs)
    with pytest.raises(StratomicsInputError, match="confounded.*batch 'a' has only disease = 'IBD'"):
        combat(adata, "site", ["disease"])
    adata.obs["disease"] = ["IBD", "RA", "IBD", "RA", None, "RA"]
    with pytest.raises(StratomicsInputError, match="covariate 'disease' is missing for 1 sample.*s4"):
        combat(adata, "site", ["disease"])


def test_table_kind_transforms_scales_and_keeps_binary_features():
    from stratomics.kinds.table import preprocess_table

    values = np.array([[1.0, 0, 0, 7], [3, 1, 0, 7], [7, 0, 0, 7], [15, 1, 0, 7]])
    adata = ad.AnnData(values, obs=pd.DataFrame(index=[f"s{i}" for i in range(4)]),
                       var=pd.DataFrame(index=["expr", "mutated", "never_mutated", "constant"]))  # fmt: skip
    rec = record()
    result = preprocess_table(adata, rec, transform="log2p1", scale="none")
    np.testing.assert_allclose(result.X[:, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(result.X[:, 1:3], values[:, 1:3])  # binary: kept 0/1
    zscored = preprocess_table(adata, record()).X
    np.testing.assert_allclose(zscored[:, 0], (values[:, 0] - 6.5) / np.std(values[:, 0], ddof=1))
    assert (zscored[:, 3] == 7).all()  # constant: left for drop_uninformative to report as constant
    removed = record()
    drop_uninformative(ad.AnnData(zscored, var=adata.var), removed)
    assert {r["id"]: r["reason"] for r in removed.removed} == {"never_mutated": "constant across samples",
                                                                "constant": "constant across samples"}  # fmt: skip
    with pytest.raises(StratomicsInputError, match="log2 is not defined for feature 'expr', sample 's0', value -1"):
        preprocess_table(ad.AnnData(values - 2, var=adata.var, obs=adata.obs), record(), transform="log2")


def test_combat_protecting_a_site_confounded_disease_keeps_the_null_tests_at_their_level():
    """Nygaard et al. 2016: tests on ComBat-corrected values without the batch are anti-conservative
    when the groups are unbalanced across batches; stratomics tests the values before correction
    with the batch as a covariate."""
    from stratomics.associate import outcome_biomarkers

    rng = np.random.default_rng(0)
    per_site, n_features = 100, 1000
    sites = np.repeat(["A", "B", "C", "D"], per_site)
    ibd = np.concatenate([rng.random(per_site) < share for share in (0.8, 0.6, 0.4, 0.2)]).astype(int)
    patients = [f"p{i}" for i in range(len(sites))]
    values = rng.normal(0, 0.8, size=(4, n_features))[np.repeat(np.arange(4), per_site)]
    values += rng.normal(size=(len(sites), n_features))  # site offsets, no disease effect at all
    obs = pd.DataFrame({"site": sites, "disease": np.where(ibd, "IBD", "RA"), "ibd": ibd}, index=patients)
    adata = ad.AnnData(values, obs=obs[["site", "disease"]].copy(),
                       var=pd.DataFrame(index=[f"f{j}" for j in range(n_features)]))  # fmt: skip
    corrected = preprocess_assay(adata, "x", {"kind": "table", "transform": "none", "scale": "none"}, batch="site",
                                 batch_correction="combat", combat_covariates=["disease"], seed=0)  # fmt: skip
    ours = outcome_biomarkers(corrected, obs, "ibd", spec={"type": "binary"}, covariates=["site"], assay="x")
    naive = outcome_biomarkers(ad.AnnData(corrected.X, obs=pd.DataFrame(index=patients), var=corrected.var), obs,
                               "ibd", spec={"type": "binary"}, covariates=[], assay="x")  # fmt: skip
    assert (ours["p_value"] < 0.05).mean() <= 0.055
    assert (naive["p_value"] < 0.05).mean() > 0.075  # what the corrected values alone would give

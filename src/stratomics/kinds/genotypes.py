"""PLINK 1 genotypes (kind ``genotypes``): .bed/.bim/.fam reader, SNP and sample call rates, MAF and Hardy-Weinberg filters."""

from __future__ import annotations

import logging
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy.special import gammaln

from stratomics.errors import StratomicsInputError
from stratomics.io import (AssayTable, check_unique_features)
from stratomics.kinds.base import AssayKind
from stratomics.plot import SMALLEST_FONT, colours, histogram, sd_limits, threshold_line
from stratomics.qc_record import Record

log = logging.getLogger(__name__)


def read_plink(prefix, *, source, known_ids=None, options=None) -> AssayTable:
    """Read PLINK 1 genotypes (.bed/.bim/.fam) as additive dosages of allele A1 (kind ``genotypes``).

    Returns
    -------
    An assay table with samples (fam IID) x SNPs (bim ID), values 0/1/2 counts of A1 and NaN where
    missing; var holds chrom, pos, a1, a2.
    """
    from bed_reader import open_bed

    prefix = Path(str(prefix).removesuffix(".bed"))
    paths = {ext: prefix.with_name(prefix.name + ext) for ext in (".bed", ".bim", ".fam")}
    for file in paths.values():
        if not file.is_file():
            raise StratomicsInputError(
                f"{source}: {file} not found; a PLINK 1 data set needs {prefix}.bed, .bim and "
                ".fam. Give the path without extension (the prefix)."
            )
    fam = _read_plink_text(paths[".fam"], ["fid", "iid", "father", "mother", "sex", "phenotype"])
    bim = _read_plink_text(paths[".bim"], ["chrom", "snp", "cm", "pos", "a1", "a2"])
    _check_bed(paths[".bed"], n_samples=len(fam), n_snps=len(bim))
    check_unique_features(pd.Index(bim["snp"]), f"{source} ({paths['.bim']})")
    with open_bed(paths[".bed"], iid_count=len(fam), sid_count=len(bim), num_threads=1) as bed:
        dosages = bed.read(dtype="float32", num_threads=1)
    var = bim.set_index("snp")[["chrom", "pos", "a1", "a2"]]
    var["pos"] = var["pos"].astype(int)
    sample_index = pd.Index(fam["iid"], name="sample_id")
    return AssayTable(
        values=pd.DataFrame(dosages, index=sample_index, columns=var.index),
        var=var,
        sample_info=pd.DataFrame({"fid": fam["fid"].to_numpy(), "reported_sex": pd.Categorical(fam["sex"].map(FAM_SEX), categories=["female", "male"])},
                                 index=sample_index),  # fmt: skip
    )


def _read_plink_text(path: Path, columns: list[str]) -> pd.DataFrame:
    """Read a whitespace-separated .fam or .bim file, checking its number of columns."""
    table = pd.read_csv(path, sep=r"\s+", header=None, dtype=str)
    if table.empty or table.shape[1] != len(columns):
        raise StratomicsInputError(
            f"{path}: expected {len(columns)} whitespace-separated columns "
            f"({' '.join(columns)}), found {0 if table.empty else table.shape[1]}."
        )
    return table.set_axis(columns, axis=1)


def _check_bed(path: Path, *, n_samples: int, n_snps: int) -> None:
    """Check the .bed magic number and that its size matches the .fam and .bim."""
    with open(path, "rb") as handle:
        magic = handle.read(3)
    if magic != b"\x6c\x1b\x01":
        raise StratomicsInputError(
            f"{path}: not a SNP-major PLINK 1 .bed file (magic bytes {magic.hex()}). "
            "Convert it with plink --make-bed."
        )
    expected = 3 + n_snps * ((n_samples + 3) // 4)
    actual = path.stat().st_size
    if actual != expected:
        raise StratomicsInputError(
            f"{path}: the .bed has {actual} bytes, but {n_samples} samples in the .fam and "
            f"{n_snps} SNPs in the .bim need {expected}. The three files disagree: "
            "regenerate them together (plink --make-bed)."
        )


def hwe_exact_p(n_het: np.ndarray, n_hom1: np.ndarray, n_hom2: np.ndarray) -> np.ndarray:
    """Hardy-Weinberg exact test p-values (Wigginton et al. 2005), vectorised over SNPs.

    The p-value sums the probabilities of every heterozygote count no more likely than the observed
    one, given the number of genotyped samples and of minor alleles (relative tolerance 1e-7, as in
    PLINK).

    Parameters
    ----------
    n_het, n_hom1, n_hom2
        Genotype counts per SNP.

    Returns
    -------
    One p-value per SNP (1 for a monomorphic SNP).
    """
    n_het, n_hom1, n_hom2 = (np.asarray(a, dtype=np.int64) for a in (n_het, n_hom1, n_hom2))
    n = n_het + n_hom1 + n_hom2
    n_minor = np.minimum(2 * n_hom1 + n_het, 2 * n_hom2 + n_het)
    p_values = np.ones(len(n))
    keys = pd.DataFrame({"n": n, "minor": n_minor, "het": n_het})
    for (samples, minor), group in keys.groupby(["n", "minor"]):
        if minor == 0:
            continue
        het = np.arange(minor % 2, minor + 1, 2)
        hom_minor = (minor - het) // 2
        hom_major = samples - het - hom_minor
        valid = hom_major >= 0
        het, hom_minor, hom_major = het[valid], hom_minor[valid], hom_major[valid]
        log_prob = het * np.log(2) - gammaln(het + 1) - gammaln(hom_minor + 1) - gammaln(hom_major + 1)
        prob = np.exp(log_prob - log_prob.max())
        prob /= prob.sum()
        observed = prob[np.searchsorted(het, group["het"].to_numpy())]
        tail = prob[None, :] <= observed[:, None] * (1 + 1e-7)
        p_values[group.index] = np.minimum((tail * prob[None, :]).sum(axis=1), 1.0)
    return p_values


def genotype_metrics(dosages: np.ndarray, index) -> pd.DataFrame:
    """Per-SNP call rate, minor-allele frequency and HWE exact p from A1 dosages (NaN = missing)."""
    called = np.isfinite(dosages)
    counts = {g: (dosages == g).sum(axis=0) for g in (0, 1, 2)}
    n_called = called.sum(axis=0)
    a1_frequency = (counts[1] + 2 * counts[2]) / np.maximum(2 * n_called, 1)
    return pd.DataFrame(
        {
            "call_rate": n_called / len(dosages),
            "maf": np.minimum(a1_frequency, 1 - a1_frequency),
            "a1_frequency": a1_frequency,
            "hwe_p": hwe_exact_p(counts[1], counts[0], counts[2]),
        },
        index=index,
    )


def preprocess_genotypes(
    adata: ad.AnnData,
    record: Record,
    *,
    min_call_rate: float = 0.95,
    min_sample_call_rate: float = 0.9,
    min_maf: float = 0.01,
    min_hwe_p: float = 1e-6,
) -> ad.AnnData:
    """SNP call rate, sample call rate, MAF and HWE filters (in this order); additive A1 dosage.

    Returns
    -------
    Dosages of A1 (0/1/2, NaN missing) of the kept SNPs and samples, with QC metrics in var/obs.
    """
    metrics = genotype_metrics(adata.X, adata.var_names)
    record.add_metrics(metrics)
    adata = record.drop(adata, metrics["call_rate"].to_numpy() < min_call_rate,
                        f"SNP call rate below {min_call_rate}")  # fmt: skip
    sample_rate = np.isfinite(adata.X).mean(axis=1)
    adata.obs["call_rate"] = sample_rate
    adata = record.drop(adata, sample_rate < min_sample_call_rate,
                        f"sample call rate below {min_sample_call_rate}", axis="sample")  # fmt: skip
    metrics = genotype_metrics(adata.X, adata.var_names)
    adata = record.drop(adata, metrics["maf"].to_numpy() < min_maf, f"MAF below {min_maf}")
    adata = record.drop(adata, x_aware_hwe_p(adata) < min_hwe_p, f"HWE exact p below {min_hwe_p:g}")
    adata.var = adata.var.join(genotype_metrics(adata.X, adata.var_names).assign(hwe_p=x_aware_hwe_p(adata)))
    adata.obs = adata.obs.join(sample_genotype_metrics(adata))
    adata.obs["genetic_sex"] = genetic_sex(adata.obs["x_inbreeding_f"])
    _warn_sex_mismatches(adata.obs)
    record.params.update(min_call_rate=min_call_rate, min_sample_call_rate=min_sample_call_rate,
                         min_maf=min_maf, min_hwe_p=min_hwe_p, coding="additive dosage of A1", unit="A1 allele dosage")  # fmt: skip
    return adata


#: Chromosome codes of X in .bim files (plink writes 23 for X).
X_CHROMOSOME = ("X", "23", "chrX")
#: Sex codes of a .fam file (0 or anything else: unknown).
FAM_SEX = {"1": "male", "2": "female"}
#: plink ``--check-sex`` limits of the X inbreeding F: female below the first, male above the second.
SEX_F_LIMITS = (0.2, 0.8)


def sample_genotype_metrics(adata: ad.AnnData) -> pd.DataFrame:
    """Per-sample heterozygosity over autosomal SNPs and, when the file has chromosome X SNPs, the X
    inbreeding coefficient F (plink ``--check-sex``: near 1 for males, near 0 for females).

    Returns
    -------
    Columns heterozygosity and x_inbreeding_f (NaN without X SNPs), one row per sample.
    """
    on_x = _on_x(adata.var)
    dosages = np.asarray(adata.X, dtype=float)
    autosomal = dosages[:, ~on_x]
    heterozygosity = (autosomal == 1).sum(axis=1) / np.maximum(np.isfinite(autosomal).sum(axis=1), 1)
    return pd.DataFrame({"heterozygosity": heterozygosity, "x_inbreeding_f": _x_inbreeding(dosages[:, on_x])},
                        index=adata.obs_names)  # fmt: skip


def _on_x(var: pd.DataFrame) -> np.ndarray:
    """Which SNPs lie on chromosome X."""
    return var["chrom"].astype(str).isin(X_CHROMOSOME).to_numpy() if "chrom" in var else np.zeros(len(var), bool)


def x_aware_hwe_p(adata: ad.AnnData) -> np.ndarray:
    """HWE exact p of each SNP; on chromosome X among the samples reported female only (as plink does:
    males are hemizygous), NaN (not filtered) when no sample is reported female."""
    p = genotype_metrics(adata.X, adata.var_names)["hwe_p"].to_numpy()
    on_x = _on_x(adata.var)
    if on_x.any():
        females = (_reported_sex(adata.obs) == "female").to_numpy()
        p[on_x] = genotype_metrics(adata.X[np.ix_(females, on_x)], adata.var_names[on_x])["hwe_p"] if females.any() else np.nan
    return p


def genetic_sex(x_inbreeding_f: pd.Series) -> pd.Series:
    """Sex from the X inbreeding F with plink's limits: female, male or ambiguous (NaN without X SNPs)."""
    female, male = SEX_F_LIMITS
    sex = np.select([x_inbreeding_f < female, x_inbreeding_f > male, x_inbreeding_f.notna()],
                    ["female", "male", "ambiguous"], default=None)  # fmt: skip
    return pd.Series(pd.Categorical(sex, categories=["female", "male", "ambiguous"]), index=x_inbreeding_f.index)


def _reported_sex(obs: pd.DataFrame) -> pd.Series:
    """The .fam's sex of each sample (female, male or NaN; all NaN when obs has none)."""
    return obs.get("reported_sex", pd.Series(np.nan, index=obs.index)).astype(object)


def sex_mismatches(obs: pd.DataFrame) -> pd.Series:
    """Samples whose genetic sex (female or male) differs from the sex reported in the .fam."""
    reported, genetic = _reported_sex(obs), obs["genetic_sex"].astype(object)
    return reported.isin(FAM_SEX.values()) & genetic.isin(FAM_SEX.values()) & (reported != genetic)


def _warn_sex_mismatches(obs: pd.DataFrame) -> None:
    """One warning naming the samples whose X chromosome disagrees with their reported sex (kept)."""
    mismatched = obs[sex_mismatches(obs)]
    if len(mismatched):
        shown = "; ".join(f"{sample}: reported {row.reported_sex}, F {row.x_inbreeding_f:.2f}"
                          for sample, row in mismatched.head(10).iterrows())  # fmt: skip
        log.warning("genotypes: %d samples whose chromosome X inbreeding F disagrees with the sex in the .fam "
                    "(female below F %g, male above %g): %s%s. They are kept; check for sample swaps or a wrong "
                    "sex code.", len(mismatched), *SEX_F_LIMITS, shown, " ..." if len(mismatched) > 10 else "")  # fmt: skip


def _x_inbreeding(x_dosages: np.ndarray) -> np.ndarray:
    """Per-sample F = 1 - observed / expected heterozygous X genotypes (expected from the cohort's frequencies)."""
    if x_dosages.shape[1] == 0:
        return np.full(len(x_dosages), np.nan)
    called = np.isfinite(x_dosages)
    frequency = np.nanmean(x_dosages, axis=0) / 2
    expected = np.where(called, 2 * frequency * (1 - frequency), 0).sum(axis=1)
    observed = (x_dosages == 1).sum(axis=1)
    return 1 - observed / np.where(expected > 0, expected, np.nan)


def _sample_call_rate_panel(ax, *, adata, **_):
    histogram(ax, adata.obs["call_rate"], title="Call rate", xlabel="call rate",
              threshold=adata.uns["preprocess"]["min_sample_call_rate"])  # fmt: skip


def _heterozygosity_panel(ax, *, adata, **_):
    histogram(ax, adata.obs["heterozygosity"], title="Heterozygosity", xlabel="heterozygous share")
    sd_limits(ax, adata.obs["heterozygosity"])


def _sex_check_panel(ax, *, adata, **_):
    f = adata.obs["x_inbreeding_f"]
    if f.isna().all():
        ax.text(0.5, 0.5, "no chromosome X\nSNPs in the file", ha="center", va="center", transform=ax.transAxes,
                fontsize=SMALLEST_FONT)  # fmt: skip
        ax.set(title="Sex check", xticks=[], yticks=[])
        return
    reported = _reported_sex(adata.obs).fillna("unknown")
    groups = [group for group in ("female", "male", "unknown") if (reported == group).any()]
    by_sex = dict(zip(("female", "male", "unknown"), colours()[1:3] + ["#bdbdbd"]))
    ax.hist([f[reported == group].dropna() for group in groups], bins=40, stacked=True, linewidth=0,
            color=[by_sex[group] for group in groups], label=groups)  # fmt: skip
    for limit in SEX_F_LIMITS:
        threshold_line(ax, limit, f"{limit:g}")
    mismatched = sex_mismatches(adata.obs)
    ax.plot(f[mismatched], np.full(mismatched.sum(), 0.04), "v", color="black", ms=4, label="mismatch",
            transform=ax.get_xaxis_transform())  # fmt: skip
    ax.legend(frameon=False, fontsize=SMALLEST_FONT, title="reported", title_fontsize=SMALLEST_FONT,
              loc="upper left", bbox_to_anchor=(1.0, 1.0), handlelength=0.8, handletextpad=0.3)  # outside the data
    ax.set(title=f"Sex check: {int(mismatched.sum())} mismatched", xlabel="X inbreeding F", ylabel="count")


def _call_rate_panel(ax, *, adata, qc, **_):
    histogram(ax, qc["call_rate"], title="SNP call rate", xlabel="call rate", log=True,
              threshold=adata.uns["preprocess"]["min_call_rate"])  # fmt: skip


def _maf_panel(ax, *, adata, qc, **_):
    histogram(ax, qc["maf"], title="Allele frequency", xlabel="minor-allele frequency",
              threshold=adata.uns["preprocess"]["min_maf"])  # fmt: skip


def _hwe_panel(ax, *, adata, qc, **_):
    histogram(ax, -np.log10(qc["hwe_p"].clip(lower=1e-300)), title="Hardy-Weinberg",
              xlabel="-log10 exact p", log=True,
              threshold=-np.log10(adata.uns["preprocess"]["min_hwe_p"]),
              threshold_label=f"p {adata.uns['preprocess']['min_hwe_p']:g}")  # fmt: skip


KIND = AssayKind(
    name="genotypes",
    read=read_plink,
    preprocess=preprocess_genotypes,
    options={
        "min_call_rate": {"type": "number", "minimum": 0, "maximum": 1, "description": "minimum SNP call rate."},
        "min_sample_call_rate": {"type": "number", "minimum": 0, "maximum": 1, "description": "minimum sample call rate."},
        "min_maf": {"type": "number", "minimum": 0, "maximum": 0.5, "description": "minimum minor-allele frequency."},
        "min_hwe_p": {"type": "number", "minimum": 0, "maximum": 1, "description": "minimum Hardy-Weinberg exact-test p-value."},
    },
    preprocess_options=("min_call_rate", "min_sample_call_rate", "min_maf", "min_hwe_p"),
    shared_options=(),
    qc_panels=(_call_rate_panel, _maf_panel, _hwe_panel),
    sample_qc_panels=(_sample_call_rate_panel, _heterozygosity_panel, _sex_check_panel),
    missingness_panels=False,
)  # fmt: skip

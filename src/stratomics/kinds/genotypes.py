"""PLINK 1 genotypes (kind ``genotypes``): .bed/.bim/.fam reader, SNP and sample call rates, MAF and Hardy-Weinberg filters."""

from __future__ import annotations

import logging
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError
from stratomics.io import (AssayTable, check_unique_features)
from stratomics.kinds.base import AssayKind
from stratomics.plot import SMALLEST_FONT, colours, histogram, sd_limits, threshold_line
from stratomics.qc_record import Record

log = logging.getLogger(__name__)


def read_plink(prefix, *, source, known_ids=None, options=None) -> AssayTable:
    """Read the samples and SNPs of PLINK 1 genotypes (.bed/.bim/.fam, kind ``genotypes``); the dosages
    stay in the .bed and are read a chunk of SNPs at a time (:func:`read_dosages`).

    Returns
    -------
    An assay table with one row per sample (fam IID) and no value columns; sample_info holds the row of
    each sample in the .bed (``bed_row``), var (one row per SNP, bim ID) chrom, pos, a1, a2 and the
    SNP's column in the .bed (``bed_column``); uns["bed"] the .bed path and its dimensions.
    """
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
    var = bim.set_index("snp")[["chrom", "pos", "a1", "a2"]]
    var["pos"] = var["pos"].astype(int)
    var["bed_column"] = np.arange(len(var))
    sample_index = pd.Index(fam["iid"], name="sample_id")
    sex = pd.Categorical(fam["sex"].map(FAM_SEX), categories=["female", "male"])
    return AssayTable(
        values=pd.DataFrame(index=sample_index),
        var=var,
        sample_info=pd.DataFrame({"fid": fam["fid"].to_numpy(), "reported_sex": sex, "bed_row": np.arange(len(fam))},
                                 index=sample_index),  # fmt: skip
        uns={"bed": {"path": str(paths[".bed"]), "n_samples": len(fam), "n_snps": len(bim)}},
    )


#: Genotype values held in memory at once while reading a .bed (float32: 4 bytes each, 200 MB).
CHUNK_VALUES = 50_000_000


def snp_chunks(adata: ad.AnnData):
    """Consecutive slices of the SNPs of ``adata``, each small enough to hold :data:`CHUNK_VALUES` values."""
    size = max(1, CHUNK_VALUES // max(adata.n_obs, 1))
    return (slice(start, min(adata.n_vars, start + size)) for start in range(0, adata.n_vars, size))


def read_dosages(adata: ad.AnnData, snps: slice | np.ndarray, rows: np.ndarray | None = None, *,
                 order: str = "F") -> np.ndarray:  # fmt: skip
    """A1 dosages (0/1/2, NaN missing) of some SNPs of a genotype AnnData, from ``X`` or, for an assay read
    by :func:`read_plink` (X None), from its .bed.

    Parameters
    ----------
    adata
        Genotypes: samples x SNPs.
    snps
        The SNPs to read (positions in ``adata.var``).
    rows
        The samples to read (positions in ``adata.obs``); all by default.
    order
        "F" (column-major: one SNP's values together) or "C" (row-major: one sample's values together).

    Returns
    -------
    A float32 array, samples (in ``rows`` order) x SNPs.
    """
    rows = np.arange(adata.n_obs) if rows is None else np.asarray(rows)
    if adata.X is not None:
        return np.asarray(np.asarray(adata.X[:, snps], dtype=np.float32)[rows], order=order)
    from bed_reader import open_bed

    bed = _bed_file(adata)
    file_rows = adata.obs["bed_row"].to_numpy()[rows]
    file_columns = adata.var["bed_column"].to_numpy()[snps]
    with open_bed(bed["path"], iid_count=bed["n_samples"], sid_count=bed["n_snps"], num_threads=1) as handle:
        return handle.read(index=np.s_[file_rows, file_columns], dtype="float32", order=order, num_threads=1)


def _bed_file(adata: ad.AnnData) -> dict:
    """The .bed an assay read by :func:`read_plink` refers to (path, n_samples, n_snps), checked to be there
    and of the size the .fam and .bim gave at ingest."""
    bed = adata.uns["ingest"]["bed"]
    if not Path(bed["path"]).is_file():
        raise StratomicsInputError(
            f"genotypes: the dosages are read from {bed['path']} (as named at ingest), which is not there now "
            f"(working directory {Path.cwd()}). Put the .bed/.bim/.fam back, or run the workflow again from ingest."
        )
    _check_bed(Path(bed["path"]), n_samples=bed["n_samples"], n_snps=bed["n_snps"])
    return bed


#: The .bed code of each A1 dosage 0, 1 and 2 (two bits; :mod:`stratomics.kinds.genotype_kernels`).
DOSAGE_CODES = (3, 2, 0)
MISSING_CODE = 1


def genotype_codes(adata: ad.AnnData, snps: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two-bit genotype codes of some SNPs as a .bed holds them, and where each sample of ``adata`` is in them.

    Returns
    -------
    SNPs x bytes (four samples to a byte), read from the .bed of an assay read by :func:`read_plink` or
    packed from X (where a value other than 0, 1 or 2 counts as missing), and each sample's position (int64).
    """
    if adata.X is not None:
        return pack_dosages(np.asarray(adata.X[:, snps])), np.arange(adata.n_obs, dtype=np.int64)
    bed = _bed_file(adata)
    packed = np.memmap(bed["path"], dtype=np.uint8, mode="r", offset=3,
                       shape=(bed["n_snps"], (bed["n_samples"] + 3) // 4))  # fmt: skip
    return np.asarray(packed[adata.var["bed_column"].to_numpy()[snps]]), adata.obs["bed_row"].to_numpy(dtype=np.int64)


def pack_dosages(dosages: np.ndarray) -> np.ndarray:
    """Samples x SNPs A1 dosages as .bed codes, SNPs x bytes (four samples to a byte, the first in the lowest bits)."""
    n, m = dosages.shape
    codes = np.zeros((m, -(-n // 4) * 4), dtype=np.uint8)  # the last byte's unused bits 0, as plink writes them
    codes[:, :n] = MISSING_CODE
    for dosage, code in enumerate(DOSAGE_CODES):
        codes[:, :n][dosages.T == dosage] = code
    quads = codes.reshape(m, -1, 4)
    return quads[..., 0] | quads[..., 1] << 2 | quads[..., 2] << 4 | quads[..., 3] << 6


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
    """Hardy-Weinberg exact test p-values (Wigginton et al. 2005), compiled, one SNP at a time.

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
    from stratomics.kinds.genotype_kernels import exact_p_values  # compiled: imported when first needed

    return exact_p_values(*(np.asarray(counts, dtype=np.int64) for counts in (n_het, n_hom1, n_hom2)))


def genotype_metrics(counts: np.ndarray, index, *, hwe: bool = True) -> pd.DataFrame:
    """Per-SNP call rate, minor-allele and A1 frequency, HWE exact p (NaN without ``hwe``) and called samples
    from the number of samples with each code (SNPs x 4, :func:`stratomics.kinds.genotype_kernels.code_counts`)."""
    two_a1, missing, het, no_a1 = counts.T
    n_called = two_a1 + het + no_a1
    a1_frequency = (het + 2 * two_a1) / np.maximum(2 * n_called, 1)
    with np.errstate(invalid="ignore"):
        call_rate = n_called / (n_called + missing)
    return pd.DataFrame(
        {
            "call_rate": call_rate,
            "maf": np.minimum(a1_frequency, 1 - a1_frequency),
            "a1_frequency": a1_frequency,
            "hwe_p": hwe_exact_p(het, no_a1, two_a1) if hwe else np.nan,
            "n_called": n_called,
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
    """SNP call rate, sample call rate, MAF and HWE filters (in this order), then monomorphic SNPs; additive
    A1 dosage. The dosages are read a chunk of SNPs at a time (:func:`snp_chunks`), in two passes (the SNP and
    sample call rates, then the rest), so that memory does not grow with the number of SNPs.

    Returns
    -------
    The kept SNPs and samples (with their dosages when ``adata`` held them in X, with X None when they stay
    in the .bed) and the QC metrics: var call_rate, maf, a1_frequency, hwe_p; obs call_rate,
    missing_fraction, heterozygosity, x_inbreeding_f, genetic_sex.
    """
    metrics, called = _first_pass(adata, min_call_rate)
    record.add_metrics(metrics)
    adata = record.drop(adata, metrics["call_rate"].to_numpy() < min_call_rate,
                        f"SNP call rate below {min_call_rate}")  # fmt: skip
    adata.obs["call_rate"] = called / adata.n_vars if adata.n_vars else np.nan
    adata = record.drop(adata, adata.obs["call_rate"].to_numpy() < min_sample_call_rate,
                        f"sample call rate below {min_sample_call_rate}", axis="sample")  # fmt: skip
    metrics, samples = _final_pass(adata, min_maf=min_maf, min_hwe_p=min_hwe_p)
    record.add_metrics(metrics[["maf", "a1_frequency", "hwe_p", "missing_fraction"]])  # as the filters saw them
    adata = record.drop(adata, metrics["maf"].to_numpy() < min_maf, f"MAF below {min_maf}")
    adata = record.drop(adata, metrics.loc[adata.var_names, "hwe_p"].to_numpy() < min_hwe_p,
                        f"HWE exact p below {min_hwe_p:g}")  # fmt: skip
    uninformative = metrics.loc[adata.var_names, ["maf", "n_called"]]
    adata = record.drop(adata, (uninformative["maf"] == 0) | (uninformative["n_called"] < 2),
                        "monomorphic or called in fewer than 2 samples")  # fmt: skip
    adata.var = adata.var.join(metrics.loc[adata.var_names, ["call_rate", "maf", "a1_frequency", "hwe_p"]])
    adata.obs = adata.obs.join(samples)
    adata.obs["genetic_sex"] = genetic_sex(adata.obs["x_inbreeding_f"])
    _warn_sex_mismatches(adata.obs)
    record.params.update(min_call_rate=min_call_rate, min_sample_call_rate=min_sample_call_rate,
                         min_maf=min_maf, min_hwe_p=min_hwe_p, coding="additive dosage of A1", unit="A1 allele dosage")  # fmt: skip
    return adata


def _first_pass(adata: ad.AnnData, min_call_rate: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-SNP metrics over all samples (:func:`genotype_metrics`, HWE left to the final pass) and each
    sample's called genotypes among the SNPs whose call rate is at least ``min_call_rate``, in one pass."""
    from stratomics.kinds.genotype_kernels import code_counts

    tables, sums = [], SampleSums(adata.n_obs)
    for snps in snp_chunks(adata):
        packed, rows = genotype_codes(adata, snps)
        tables.append(genotype_metrics(code_counts(packed, rows), adata.var_names[snps], hwe=False).drop(columns="n_called"))
        selected = tables[-1]["call_rate"].to_numpy() >= min_call_rate
        sums.add(packed, rows, selected)
    return pd.concat(tables), sums.counts[0].astype(float)


def _final_pass(adata: ad.AnnData, *, min_maf: float, min_hwe_p: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-SNP metrics (on chromosome X, HWE among the samples reported female, NaN without any;
    ``n_called``, ``missing_fraction``) and per-sample metrics over the SNPs that pass the MAF and HWE filters
    (:func:`sample_genotype_metrics`), in one pass."""
    from stratomics.kinds.genotype_kernels import code_counts

    on_x = _on_x(adata.var)
    females = (_reported_sex(adata.obs) == "female").to_numpy()
    tables, sums = [], SampleSums(adata.n_obs)
    for snps in snp_chunks(adata):
        packed, rows = genotype_codes(adata, snps)
        metrics = genotype_metrics(code_counts(packed, rows), adata.var_names[snps])
        chunk_on_x = on_x[snps]
        if chunk_on_x.any():  # males are hemizygous: HWE among females only, as plink
            x_metrics = genotype_metrics(code_counts(packed[chunk_on_x], rows[females]), metrics.index[chunk_on_x])
            metrics.loc[chunk_on_x, "hwe_p"] = x_metrics["hwe_p"].to_numpy() if females.any() else np.nan
        metrics["missing_fraction"] = 1 - metrics["call_rate"]
        kept = ((metrics["maf"] >= min_maf) & ~(metrics["hwe_p"] < min_hwe_p) & (metrics["maf"] > 0)
                & (metrics["n_called"] >= 2)).to_numpy()  # fmt: skip
        sums.add(packed, rows, kept, on_x=chunk_on_x, a1_frequency=metrics["a1_frequency"].to_numpy())
        tables.append(metrics)
    return pd.concat(tables), sums.metrics(adata.obs_names)


class SampleSums:
    """Per-sample counts over SNP chunks: called genotypes, called and heterozygous autosomal genotypes, and the
    observed and expected heterozygous X genotypes (:func:`sample_genotype_metrics`)."""

    def __init__(self, n_samples: int):
        self.counts, self.x_expected = np.zeros((4, n_samples), dtype=np.int32), np.zeros(n_samples)
        self.n_snps = self.n_x_snps = 0

    def add(self, packed: np.ndarray, rows: np.ndarray, selected: np.ndarray, *, on_x: np.ndarray | None = None,
            a1_frequency: np.ndarray | None = None) -> None:  # fmt: skip
        """Add the selected SNPs of a chunk of codes (:func:`genotype_codes`), given which lie on chromosome X
        and their A1 frequencies (without them: none on X, and only the called counts are meaningful)."""
        from stratomics.kinds.genotype_kernels import add_sample_counts

        on_x = np.zeros(len(selected), bool) if on_x is None else on_x
        a1_frequency = np.zeros(len(selected)) if a1_frequency is None else a1_frequency
        add_sample_counts(packed, rows, selected, on_x=on_x, x_expected_het=2 * a1_frequency * (1 - a1_frequency),
                          counts=self.counts, x_expected=self.x_expected)  # fmt: skip
        self.n_snps += int(selected.sum())
        self.n_x_snps += int((selected & on_x).sum())

    def metrics(self, index: pd.Index) -> pd.DataFrame:
        """missing_fraction, heterozygosity and x_inbreeding_f (NaN without X SNPs) of each sample."""
        called, autosomal_called, autosomal_het, x_observed = self.counts.astype(float)
        x_f = 1 - x_observed / np.where(self.x_expected > 0, self.x_expected, np.nan)
        return pd.DataFrame({
            "missing_fraction": 1 - called / self.n_snps if self.n_snps else np.nan,
            "heterozygosity": autosomal_het / np.maximum(autosomal_called, 1),
            "x_inbreeding_f": x_f if self.n_x_snps else np.nan,
        }, index=index)  # fmt: skip


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
    from stratomics.kinds.genotype_kernels import code_counts

    on_x, sums = _on_x(adata.var), SampleSums(adata.n_obs)
    for snps in snp_chunks(adata):
        packed, rows = genotype_codes(adata, snps)
        frequency = genotype_metrics(code_counts(packed, rows), adata.var_names[snps])["a1_frequency"].to_numpy()
        sums.add(packed, rows, np.ones(len(frequency), bool), on_x=on_x[snps], a1_frequency=frequency)
    return sums.metrics(adata.obs_names)[["heterozygosity", "x_inbreeding_f"]]


def _on_x(var: pd.DataFrame) -> np.ndarray:
    """Which SNPs lie on chromosome X."""
    return var["chrom"].astype(str).isin(X_CHROMOSOME).to_numpy() if "chrom" in var else np.zeros(len(var), bool)


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
    values_on_disk=True,
)  # fmt: skip

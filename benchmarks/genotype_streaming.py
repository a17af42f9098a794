"""Genotypes streamed from the .bed: time and peak memory of the workflow's genotype steps against plink2, in one run.

    python benchmarks/genotype_streaming.py                     # 5,000 patients x 50,000 and 500,000 SNPs
    python benchmarks/genotype_streaming.py --patients 2000 --snps 20000 200000

For each number of SNPs it writes a PLINK 1 .bed (1% missing calls, 5 covariates, a quantitative
phenotype), then runs, each in a fresh process so that its peak memory is its own:
- ingest + QC: ``read_plink`` (samples and SNPs only), the ingest AnnData and ``preprocess_assay``
  (call rate, MAF and HWE filters in two passes over the .bed), against ``plink2 --geno --mind --maf
  --hwe --make-bed``;
- the scan: ``genotype_scan`` (linear, 5 covariates) over all kept SNPs in two processes at once,
  as two one-thread ``genotype_scan_chunk`` jobs on 2 cores, against ``plink2 --glm`` with 2 threads.
Peak memory that does not grow with the number of SNPs is the point of streaming.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 0
#: PLINK 1 .bed codes of the A1 dosage 0, 1, 2 (two bits per call; 0b01 is missing).
BED_CODES = np.array([0b11, 0b10, 0b00], dtype=np.uint8)
MISSING_CODE = 0b01


def write_bed(folder: Path, n: int, m: int, rng) -> None:
    """A SNP-major .bed with .bim and .fam, written 20,000 SNPs at a time (HWE genotypes, 1% missing)."""
    with open(folder / "g.bed", "wb") as bed:
        bed.write(b"\x6c\x1b\x01")
        for start in range(0, m, 20_000):
            count = min(m, start + 20_000) - start
            frequency = rng.uniform(0.02, 0.5, count).astype(np.float32)
            draws = rng.random((count, n), dtype=np.float32)
            dosage = (draws < frequency[:, None] ** 2).astype(np.uint8) + (draws < 1 - (1 - frequency[:, None]) ** 2)
            codes = BED_CODES[dosage]
            codes[rng.random((count, n), dtype=np.float32) < 0.01] = MISSING_CODE
            padded = np.zeros((count, -(-n // 4) * 4), dtype=np.uint8)
            padded[:, :n] = codes
            quads = padded.reshape(count, -1, 4)
            bed.write((quads[..., 0] | quads[..., 1] << 2 | quads[..., 2] << 4 | quads[..., 3] << 6).tobytes())
    ids = [f"s{i}" for i in range(n)]
    pd.DataFrame({"fid": ids, "iid": ids, "father": 0, "mother": 0, "sex": rng.choice([1, 2], n), "phenotype": -9}).to_csv(
        folder / "g.fam", sep="\t", header=False, index=False)  # fmt: skip
    pd.DataFrame({"chrom": np.repeat(np.arange(1, 23), -(-m // 22))[:m], "snp": [f"rs{i}" for i in range(m)], "cm": 0,
                  "pos": np.arange(1, m + 1), "a1": "A", "a2": "G"}).to_csv(folder / "g.bim", sep="\t", header=False, index=False)  # fmt: skip
    design = rng.normal(size=(n, 5))
    phenotype = rng.normal(size=n) + 0.2 * design[:, 0]
    table = pd.DataFrame(design, columns=[f"c{i}" for i in range(5)]).assign(**{"#FID": ids, "IID": ids, "y": phenotype})
    table[["#FID", "IID", "y", *[f"c{i}" for i in range(5)]]].to_csv(folder / "pheno.txt", sep="\t", index=False)


def check_writer(folder: Path) -> None:
    """The hand-written .bed reads back as bed_reader reads a file it wrote itself (first 200 SNPs)."""
    from bed_reader import open_bed, to_bed

    with open_bed(folder / "g.bed") as bed:
        ours = bed.read(index=np.s_[:, :200], dtype="float32")
    to_bed(folder / "check.bed", ours)
    with open_bed(folder / "check.bed") as bed:
        np.testing.assert_array_equal(bed.read(dtype="float32"), ours)
    assert np.isnan(ours).mean() > 0.005 and set(np.unique(ours[np.isfinite(ours)])) == {0.0, 1.0, 2.0}


def peak_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def ingest_and_qc(folder: Path, queue) -> None:
    """The ingest and preprocess_genotypes steps as the workflow runs them; writes g.h5ad."""
    from stratomics.cohort import assay_to_anndata
    from stratomics.kinds.genotypes import read_plink
    from stratomics.preprocess import preprocess_assay

    start = time.perf_counter()
    spec = {"kind": "genotypes", "path": str(folder / "g")}
    table = read_plink(folder / "g", source="benchmark")
    patients = pd.Series(table.values.index.to_numpy())
    adata = assay_to_anndata("genotypes", spec, table, rows=np.arange(len(patients)), patients=patients)
    adata.obs.index.name = None
    result = preprocess_assay(adata, "genotypes", spec)
    result.write_h5ad(folder / "g.h5ad")
    queue.put((time.perf_counter() - start, peak_mib(), result.n_vars, result.n_obs))


def scan_part(folder: Path, part: int, queue) -> None:
    """One of two genotype_scan_chunk jobs: half of the kept SNPs, one thread."""
    import anndata as ad

    from stratomics.associate import genotype_scan

    start = time.perf_counter()
    adata = ad.read_h5ad(folder / "g.h5ad")
    obs = pd.read_csv(folder / "pheno.txt", sep="\t", index_col="IID")
    bounds = np.linspace(0, adata.n_vars, 3).astype(int)
    table = genotype_scan(adata, obs, "y", spec={"type": "continuous"}, covariates=[f"c{i}" for i in range(5)],
                          snps=slice(bounds[part], bounds[part + 1]), chunk_size=5000)  # fmt: skip
    table.to_csv(folder / f"scan{part}.tsv", sep="\t", index=False)
    queue.put((time.perf_counter() - start, peak_mib()))


def in_processes(target, folder: Path, parts=(None,)) -> list:
    """Run ``target`` in fresh (spawned) processes at once, one per part; their reports."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=target, args=(folder, *([] if part is None else [part])), kwargs={"queue": queue})
                 for part in parts]  # fmt: skip
    for process in processes:
        process.start()
    reports = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    return reports


def plink2(folder: Path, *arguments) -> float:
    start = time.perf_counter()
    subprocess.run(["plink2", "--bfile", str(folder / "g"), "--threads", "2", *arguments], check=True, capture_output=True)
    return time.perf_counter() - start


def row(step: str, tool: str, seconds: float, memory: str = "", note: str = "") -> None:
    print(f"{step:<14} {tool:<58} {seconds:>8.1f} s {memory:>11}   {note}", flush=True)


def run(n: int, m: int) -> None:
    rng = np.random.default_rng(SEED)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_bed(folder, n, m, rng)
        check_writer(folder)
        label = f"{n:,} x {m:,}"
        ((seconds, memory, kept, samples),) = in_processes(ingest_and_qc, folder)
        row(label, "stratomics ingest + QC (two passes over the .bed)", seconds, f"{memory:,.0f} MiB",
            f"{kept:,} SNPs and {samples:,} samples kept")  # fmt: skip
        reports = in_processes(scan_part, folder, parts=(0, 1))
        scan_time = max(seconds for seconds, _ in reports)
        row(label, "stratomics scan, 2 one-thread jobs at once (linear, 5 cov.)", scan_time,
            f"{max(memory for _, memory in reports):,.0f} MiB", "peak memory of the larger job")  # fmt: skip
        if not shutil.which("plink2"):
            row(label, "plink2: not installed (apt-get install plink2)", float("nan"))
            return
        qc_time = plink2(folder, "--geno", "0.05", "--mind", "0.1", "--maf", "0.01", "--hwe", "1e-6",
                         "--make-bed", "--out", str(folder / "qc"))  # fmt: skip
        row(label, "plink2 --geno --mind --maf --hwe --make-bed (2 threads)", qc_time, "",
            f"stratomics/plink2 time {seconds / qc_time:.2f}")  # fmt: skip
        glm_time = plink2(folder, "--pheno", str(folder / "pheno.txt"), "--pheno-name", "y", "--covar",
                          str(folder / "pheno.txt"), "--covar-name", "c0-c4", "--glm", "hide-covar",
                          "--out", str(folder / "out"))  # fmt: skip
        ours = pd.concat([pd.read_csv(folder / f"scan{part}.tsv", sep="\t") for part in (0, 1)]).set_index("feature")
        theirs = pd.read_csv(folder / "out.y.glm.linear", sep="\t").set_index("ID")
        shared = theirs.index.intersection(ours.index)
        difference = np.max(np.abs(np.log10(ours.loc[shared, "p_value"]) - np.log10(theirs.loc[shared, "P"])))
        row(label, "plink2 --glm linear (2 threads)", glm_time, "",
            f"stratomics/plink2 time {scan_time / glm_time:.2f}; max |log10 p difference| {difference:.1e} "
            f"over {len(shared):,} SNPs")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--snps", type=int, nargs="+", default=[50_000, 500_000])
    arguments = parser.parse_args()
    print(f"{'patients x SNPs':<14} {'step':<58} {'time':>10} {'peak memory':>11}   comparison")
    for snps in arguments.snps:
        run(arguments.patients, snps)

"""Speed and agreement of stratomics' association engine against the reference tools, in one run.

    python benchmarks/associate_speed.py            # all cases (a few minutes on 2 cores)
    python benchmarks/associate_speed.py ols cox    # some cases

Cases: ols (vs a statsmodels OLS loop and R limma lmFit+eBayes), logistic (vs a statsmodels Logit
loop), cox (vs a lifelines CoxPHFitter loop), ordinal (vs a statsmodels OrderedModel loop), genetic (vs plink2 --glm), biobank (50,000 patients x
3,000 proteins x 10 covariates). Each case runs in its own process so that its peak memory is its
own. Needs statsmodels, lifelines, and for the external references Rscript with limma and plink2.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 0


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def covariates(n: int, k: int, rng) -> np.ndarray:
    return np.column_stack([np.ones(n), rng.normal(size=(n, k))])


def best_of(function, repeats: int = 5):
    """The result of the last call and the shortest wall time of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, min(times)


def row(case, tool, seconds, agreement=""):
    print(f"{case:<10} {tool:<58} {seconds:>9.3f} s   {agreement}", flush=True)


def case_ols():
    import statsmodels.api as sm

    from stratomics.associate.linear import contrast_test, fit_features, moderate

    rng = np.random.default_rng(SEED)
    n, m = 800, 5000
    design = covariates(n, 5, rng)
    design[:, 1] = rng.integers(0, 2, n)  # the group of interest
    values = rng.normal(size=(n, m)) * rng.uniform(0.5, 2, m) + design[:, 1:2] * 0.2
    frame = pd.DataFrame(design, columns=["Intercept", "group", "c1", "c2", "c3", "c4"])
    contrast_test(moderate(fit_features(values[:, :50], frame)), [0, 1, 0, 0, 0, 0], moderated=True)
    _ = sm.OLS(values[:, 0], design).fit().pvalues  # warm-up: first calls load code paths
    def ours_run():
        fit = fit_features(values, frame)
        return contrast_test(fit, [0, 1, 0, 0, 0, 0]), contrast_test(moderate(fit), [0, 1, 0, 0, 0, 0], moderated=True)

    (ours, moderated), ours_time = best_of(ours_run)
    start = time.perf_counter()
    estimates, p_values = np.empty(m), np.empty(m)
    for j in range(m):  # the same numbers: estimate, standard error and p-value of the coefficient
        fitted = sm.OLS(values[:, j], design).fit()
        estimates[j], _, p_values[j] = fitted.params[1], fitted.bse[1], fitted.pvalues[1]
    loop_time = time.perf_counter() - start
    difference = max(np.max(np.abs(ours["estimate"] / estimates - 1)), np.max(np.abs(ours["p_value"] / p_values - 1)))
    row("ols", f"stratomics fit_features + eBayes ({n}x{m})", ours_time)
    row("ols", "statsmodels OLS loop", loop_time,
        f"speed-up {loop_time / ours_time:.0f}x, max relative difference {difference:.1e}")  # fmt: skip
    missing_values_row(values, design, frame)
    if shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as folder:
            np.savetxt(f"{folder}/y.txt", values.T)
            np.savetxt(f"{folder}/x.txt", design)
            script = (f"suppressMessages(library(limma)); y <- as.matrix(read.table('{folder}/y.txt')); "
                      f"x <- as.matrix(read.table('{folder}/x.txt')); "
                      "t <- system.time(fit <- eBayes(lmFit(y, x)))[['elapsed']]; "
                      f"write(c(t, fit$p.value[, 2]), '{folder}/out.txt', ncolumns = 1)")  # fmt: skip
            if subprocess.run(["Rscript", "-e", script], capture_output=True).returncode == 0:
                out = np.loadtxt(f"{folder}/out.txt")
                difference = np.max(np.abs(moderated["p_value"].to_numpy() / out[1:] - 1))
                row("ols", "R limma lmFit + eBayes (fit only, no I/O)", out[0],
                    f"stratomics {out[0] / ours_time:.1f}x faster, moderated p max rel. diff. {difference:.1e}")  # fmt: skip
                return
    row("ols", "R limma: not installed (apt-get install r-bioc-limma)", float("nan"))


def missing_values_row(values, design, frame):
    """The linear case again with 5% missing values in 30% of the features, as users have them."""
    import statsmodels.api as sm

    from stratomics.associate.linear import contrast_test, fit_features, moderate

    rng = np.random.default_rng(SEED + 1)
    values = values.copy()
    holes = rng.random(values.shape) < 0.05
    holes[:, rng.random(values.shape[1]) >= 0.3] = False
    values[holes] = np.nan
    ours, ours_time = best_of(lambda: contrast_test(moderate(fit_features(values, frame)), [0, 1, 0, 0, 0, 0]))
    start = time.perf_counter()
    p_values = np.empty(values.shape[1])
    for j in range(values.shape[1]):
        observed = np.isfinite(values[:, j])
        p_values[j] = sm.OLS(values[observed, j], design[observed]).fit().pvalues[1]
    loop_time = time.perf_counter() - start
    plain = contrast_test(fit_features(values, frame), [0, 1, 0, 0, 0, 0])
    difference = np.max(np.abs(plain["p_value"] / p_values - 1))
    row("ols", "stratomics, 5% missing in 30% of the features", ours_time)
    row("ols", "statsmodels OLS loop on each feature's observed patients", loop_time,
        f"speed-up {loop_time / ours_time:.0f}x, max relative difference {difference:.1e}")  # fmt: skip


def case_logistic():
    import statsmodels.api as sm

    from stratomics.associate.predictor import fit_logistic_predictor

    rng = np.random.default_rng(SEED)
    n, m = 800, 5000
    design = covariates(n, 5, rng)
    complete = rng.normal(size=(n, m))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.4 * complete[:, 0] - 0.4)))).astype(float)
    with_missing = np.where(rng.random((n, m)) < 0.1, np.nan, complete)
    fit_logistic_predictor(y, with_missing[:, :50], design)  # warm-up (compiles on a first run)
    for label, values in (("complete", complete), ("10% missing", with_missing)):
        ours, ours_time = best_of(lambda: fit_logistic_predictor(y, values, design).table(range(m)))
        _, one_thread = best_of(lambda: fit_logistic_predictor(y, values, design, threads=1).table(range(m)))
        start = time.perf_counter()
        p_values = np.empty(m)
        for j in range(m):
            kept = np.isfinite(values[:, j])
            fitted = sm.Logit(y[kept], np.column_stack([values[kept, j], design[kept]])).fit(disp=0, tol=1e-10)
            _, _, p_values[j] = fitted.params[0], fitted.bse[0], fitted.pvalues[0]
        loop_time = time.perf_counter() - start
        difference = np.max(np.abs(ours["p_value"].to_numpy() / p_values - 1))
        row("logistic", f"stratomics batched Newton ({n}x{m}, {label})", ours_time)
        row("logistic", "  the same on one thread", one_thread)
        row("logistic", "statsmodels Logit loop", loop_time,
            f"speed-up {loop_time / ours_time:.0f}x ({loop_time / one_thread:.0f}x on one thread), "
            f"max relative difference of p {difference:.1e}")  # fmt: skip


def case_cox():
    from lifelines import CoxPHFitter

    from stratomics.associate.cox import fit_cox_predictor

    rng = np.random.default_rng(SEED)
    n, m, looped = 800, 5000, 250
    design = rng.normal(size=(n, 5))
    values = rng.normal(size=(n, m))
    time_to_event = np.ceil(rng.exponential(365 * np.exp(-0.3 * values[:, 0])))
    event = (rng.random(n) < 0.6).astype(int)
    fit_cox_predictor(time_to_event, event, values[:, :50], covariates=design)  # warm-up
    ours, ours_time = best_of(lambda: fit_cox_predictor(time_to_event, event, values, covariates=design).table(range(m)), 1)
    start = time.perf_counter()
    p_values = []
    for j in range(looped):
        frame = pd.DataFrame(np.column_stack([values[:, j], design]), columns=[f"v{i}" for i in range(6)])
        frame["time"], frame["event"] = time_to_event, event
        # lifelines' precision 1e-12 stops one Newton step short (estimates off by 1e-7)
        fitted = CoxPHFitter().fit(frame, "time", "event", fit_options={"precision": 1e-14})
        p_values.append(fitted.summary.loc["v0", "p"])
    loop_time = (time.perf_counter() - start) * m / looped
    difference = np.max(np.abs(ours["p_value"].to_numpy()[:looped] / np.array(p_values) - 1))
    row("cox", f"stratomics batched Newton, Efron ({n}x{m})", ours_time)
    row("cox", f"lifelines CoxPHFitter loop ({looped} fits, x{m // looped})", loop_time,
        f"speed-up {loop_time / ours_time:.0f}x, max relative difference of p {difference:.1e}")  # fmt: skip


def case_ordinal():
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    from stratomics.associate.ordinal import fit_ordinal_predictor

    rng = np.random.default_rng(SEED)
    n, m, looped = 800, 2000, 100
    design = rng.normal(size=(n, 5))
    values = np.where(rng.random((n, m)) < 0.05, np.nan, rng.normal(size=(n, m)))
    codes = np.digitize(0.4 * np.nan_to_num(values[:, 0]) + design[:, 0] * 0.3 + rng.logistic(size=n), [-1, 0.5, 2])
    ours, ours_time = best_of(lambda: fit_ordinal_predictor(codes, values, design).table(range(m)), 3)
    start = time.perf_counter()
    p_values = []
    for j in range(looped):
        kept = np.isfinite(values[:, j])
        fitted = OrderedModel(codes[kept], np.column_stack([values[kept, j], design[kept]]), distr="logit")
        p_values.append(fitted.fit(method="newton", disp=0, maxiter=200).pvalues[0])
    loop_time = (time.perf_counter() - start) * m / looped
    difference = np.max(np.abs(ours["p_value"].to_numpy()[:looped] / np.array(p_values) - 1))
    row("ordinal", f"stratomics batched Newton, proportional odds ({n}x{m}, 5% missing)", ours_time)
    row("ordinal", f"statsmodels OrderedModel loop ({looped} fits, x{m // looped})", loop_time,
        f"speed-up {loop_time / ours_time:.0f}x, max relative difference of p {difference:.1e}")  # fmt: skip


def case_genetic():
    from bed_reader import open_bed, to_bed

    from stratomics.associate.genetic import scan_snps

    rng = np.random.default_rng(SEED)
    n, m = 5000, 50_000
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        frequencies = rng.uniform(0.05, 0.5, m)
        iids = [f"s{i}" for i in range(n)]
        for start in range(0, m, 10_000):  # write in blocks to keep memory low
            block = rng.binomial(2, frequencies[start : start + 10_000], size=(n, 10_000)).astype(np.float32)
            block[rng.random(block.shape) < 0.01] = np.nan
            np.save(folder / f"block{start}.npy", block)
        dosages = np.hstack([np.load(folder / f"block{s}.npy") for s in range(0, m, 10_000)])
        sids = [f"rs{i}" for i in range(m)]
        to_bed(folder / "g.bed", dosages, properties={"iid": iids, "fid": iids, "sid": sids,
                                                      "chromosome": ["1"] * m, "bp_position": np.arange(1, m + 1)})  # fmt: skip
        del dosages
        design = covariates(n, 5, rng)
        quantitative = rng.normal(size=n) + design[:, 1] * 0.2
        binary = (rng.random(n) < 1 / (1 + np.exp(-(design[:, 1] * 0.3 - 0.5)))).astype(int)
        pd.DataFrame({"#FID": iids, "IID": iids, "y": quantitative, "case": binary + 1}).to_csv(
            folder / "pheno.txt", sep="\t", index=False)  # fmt: skip
        pd.DataFrame(design[:, 1:], columns=[f"c{i}" for i in range(5)]).assign(**{"#FID": iids, "IID": iids})[
            ["#FID", "IID", *[f"c{i}" for i in range(5)]]].to_csv(folder / "covar.txt", sep="\t", index=False)  # fmt: skip
        for model, phenotype, values in (("linear", "y", quantitative), ("logistic", "case", binary.astype(float))):
            start = time.perf_counter()
            with open_bed(folder / "g.bed", num_threads=2) as bed:
                ours = scan_snps(lambda chunk: bed.read(index=np.s_[:, chunk], dtype="float32", num_threads=2),
                                 pd.Index(sids), values, covariates=design, model=model, chunk_size=5000)  # fmt: skip
            ours_time = time.perf_counter() - start
            row("genetic", f"stratomics {model} scan from .bed ({n}x{m}, 5 cov.)", ours_time)
            if not shutil.which("plink2"):
                row("genetic", "plink2: not installed (apt-get install plink2)", float("nan"))
                continue
            start = time.perf_counter()
            subprocess.run(["plink2", "--bfile", str(folder / "g"), "--pheno", str(folder / "pheno.txt"),
                            "--pheno-name", phenotype, "--covar", str(folder / "covar.txt"), "--glm", "hide-covar",
                            "no-firth", "--threads", "2", "--out", str(folder / "out")], check=True, capture_output=True)  # fmt: skip
            plink_time = time.perf_counter() - start
            plink = pd.read_csv(next(folder.glob(f"out.{phenotype}.glm.*")), sep="\t").set_index("ID")
            plink = plink[plink["P"].notna()]
            difference = np.max(np.abs(np.log10(ours.loc[plink.index, "p_value"]) - np.log10(plink["P"])))
            row("genetic", f"plink2 --glm {model} (2 threads)", plink_time,
                f"stratomics/plink2 time {ours_time / plink_time:.2f}, max |log10 p difference| {difference:.1e}")  # fmt: skip


def case_biobank():
    from stratomics.associate.linear import contrast_test, fit_features, moderate
    from stratomics.associate.moments import available_threads

    rng = np.random.default_rng(SEED)
    n, m = 50_000, 3_000
    design = covariates(n, 10, rng)
    values = rng.normal(size=(n, m))
    values[rng.random(values.shape) < 0.02] = np.nan  # proteins missing in 2% of patients
    frame = pd.DataFrame(design, columns=[f"x{i}" for i in range(11)])
    table, seconds = best_of(lambda: contrast_test(moderate(fit_features(values, frame)), np.eye(11)[1],
                                                   moderated=True), 3)  # fmt: skip
    row("biobank", f"stratomics linear + eBayes ({n}x{m}, 10 cov.)", seconds,
        f"{table['p_value'].notna().sum()} proteins tested, peak memory {peak_mib() / 1024:.1f} GiB "
        f"(the data alone: {values.nbytes / 2**30:.1f} GiB)")  # fmt: skip
    bandwidth = copy_bandwidth()
    bound = values.nbytes / bandwidth
    row("biobank", "reading the data once at the machine's copy bandwidth", bound,
        f"{bandwidth / 1e9:.1f} GB/s (read + write, STREAM copy); the fit takes {seconds / bound:.1f}x this bound")
    threads = available_threads()
    flops, rate = 2 * n * m * design.shape[1], threads * dgemm_rate()
    row("biobank", f"X'y products at the peak of square matrix products ({threads} thr.)", flops / rate,
        f"{flops / 1e9:.1f} GFLOP at {rate / 1e9:.0f} GFLOP/s; the fit takes {seconds / (flops / rate):.1f}x this "
        f"bound, {seconds / max(bound, flops / rate):.1f}x the larger of the two")  # fmt: skip


def dgemm_rate(size: int = 2000) -> float:
    """Floating-point operations per second of one thread's 2,000 x 2,000 float64 matrix product (best of five)."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(SEED).normal(size=(size, size))
    with threadpool_limits(1):
        _, seconds = best_of(lambda: a @ a)
    return 2 * size**3 / seconds


def copy_bandwidth(gib: float = 1.0) -> float:
    """Memory bandwidth in bytes per second: best of five copies of a 1 GiB array (bytes read + written)."""
    source = np.ones(int(gib * 2**30) // 8)
    target = np.zeros_like(source)  # pages touched before the timing
    _, seconds = best_of(lambda: np.copyto(target, source))
    return 2 * source.nbytes / seconds


CASES = {"ols": case_ols, "logistic": case_logistic, "cox": case_cox, "ordinal": case_ordinal, "genetic": case_genetic,
         "biobank": case_biobank}  # fmt: skip

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--in-process":
        CASES[sys.argv[2]]()
        print(f"{sys.argv[2]:<10} peak memory of this case: {peak_mib():.0f} MiB", flush=True)
    else:
        print(f"{'case':<10} {'tool':<58} {'time':>11}   comparison")
        for name in sys.argv[1:] or CASES:
            subprocess.run([sys.executable, __file__, "--in-process", name], check=True)

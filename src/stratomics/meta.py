"""Meta-analysis of per-site estimates: inverse-variance fixed effect and DerSimonian-Laird random
effects, with Cochran's Q, I^2 and tau^2, for every feature at once.

For one feature with site estimates b_i and standard errors s_i (weights w_i = 1 / s_i^2):
fixed effect b = sum w b / sum w with SE 1 / sqrt(sum w); Q = sum w (b_i - b)^2 on k - 1 degrees of
freedom; tau^2 = max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w)); random effects with weights
1 / (s_i^2 + tau^2); I^2 = max(0, (Q - (k - 1)) / Q). This is what METAL computes for the fixed
effect and what statsmodels' ``combine_effects(method_re="chi2")`` computes for both (the tests
compare them), except that statsmodels lets tau^2 go negative when Q < k - 1.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from stratomics.associate.multiple import adjust_p

log = logging.getLogger(__name__)

META_COLUMNS = ["n_sites", "n", "estimate_fixed", "std_error_fixed", "p_value_fixed", "estimate_random",
                "std_error_random", "ci_low_random", "ci_high_random", "p_value_random", "q_statistic",
                "q_p_value", "i2", "tau2"]  # fmt: skip


#: Largest ratio of a site's share of the inverse-variance weight to its share of the patients: the
#: precision of one model grows with n, so a site far above it sent an implausible standard error
#: (one SE of 1e-6 would set the pooled estimate alone).
MAX_WEIGHT_TO_N_SHARE = 20


def plausible_site_rows(estimates: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The site estimates a meta-analysis may use; every rejected one is named (site, key, why).

    Rejected: a non-finite estimate or standard error, a standard error that is not positive, an
    ``n`` that is not a positive whole number (a suppressed, empty one is kept), and (with two sites
    or more) a site whose share of the weight exceeds :data:`MAX_WEIGHT_TO_N_SHARE` times its share of the patients.
    """
    rows = estimates.astype({"estimate": float, "std_error": float, "n": float})
    reasons = pd.Series("", index=rows.index)
    reasons[~np.isfinite(rows["estimate"]) | ~np.isfinite(rows["std_error"])] = "a non-finite estimate or SE"
    reasons[(reasons == "") & ~(rows["std_error"] > 0)] = "a standard error that is not positive"
    n = rows["n"]
    reasons[(reasons == "") & n.notna() & ~((n > 0) & (n == n.round()))] = "n that is not a positive whole number"
    valid = rows[reasons == ""].assign(weight=lambda frame: 1 / frame["std_error"] ** 2)
    totals = valid.groupby(keys)[["weight", "n"]].transform("sum")
    sites = valid.groupby(keys)["site"].transform("size")
    too_precise = (sites > 1) & (valid["weight"] / totals["weight"] > MAX_WEIGHT_TO_N_SHARE * valid["n"] / totals["n"])
    reasons[too_precise[too_precise].index] = "a standard error too small for its n (it would outweigh the other sites)"
    for index in reasons.index[reasons != ""]:
        row = rows.loc[index]
        log.warning("meta: site %s, %s: rejected for %s (estimate %s, SE %s, n %s)", row["site"],
                    ", ".join(str(row[k]) for k in keys), reasons[index], row["estimate"], row["std_error"], row["n"])  # fmt: skip
    return rows[reasons == ""]


def meta_analyse(estimates: pd.DataFrame, keys: list[str], *, fdr_method: str = "fdr_bh") -> pd.DataFrame:
    """Fixed- and random-effects meta-analysis of site estimates, one row per key.

    Parameters
    ----------
    estimates
        One row per site and key: the ``keys`` columns, ``site``, ``estimate``, ``std_error`` and
        ``n``. Rows without an estimate or SE (suppressed, not estimable) are left out.
    keys
        Columns that identify one analysis (e.g. assay, feature, outcome_or_contrast, model).
    fdr_method
        Adjustment of the random-effects p-values within each outcome or contrast ("fdr_bh" or
        "bonferroni"), written to ``q_value``.

    Returns
    -------
    The keys, :data:`META_COLUMNS` and ``q_value``.
    """
    usable = plausible_site_rows(estimates.dropna(subset=["estimate", "std_error"]), keys)
    if usable.empty:  # e.g. one subgroup: no subgroup effect anywhere
        log.warning("meta: no site has an estimate for %s; the meta-analysis table is empty", ", ".join(keys))
        return pd.DataFrame(columns=[*keys, *META_COLUMNS, "q_value"])
    weight = 1 / usable["std_error"] ** 2
    frame = usable.assign(w=weight, wb=weight * usable["estimate"], wbb=weight * usable["estimate"] ** 2,
                          ww=weight**2, s2=usable["std_error"] ** 2)  # fmt: skip
    grouped = frame.groupby(keys, sort=False)
    sums = grouped[["w", "wb", "wbb", "ww", "n"]].sum()
    sums["n_sites"] = grouped.size()
    fixed = sums["wb"] / sums["w"]
    df = sums["n_sites"] - 1
    q = (sums["wbb"] - sums["wb"] ** 2 / sums["w"]).clip(lower=0).where(df > 0, 0.0)
    tau2 = ((q - df) / (sums["w"] - sums["ww"] / sums["w"])).clip(lower=0).where(df > 0, 0.0)
    site_tau2 = frame[keys].merge(tau2.rename("tau2").reset_index(), on=keys, how="left")["tau2"].to_numpy()
    random_weight = 1 / (frame["s2"] + site_tau2)
    frame = frame.assign(rw=random_weight, rwb=random_weight * frame["estimate"])
    random_sums = frame.groupby(keys, sort=False)[["rw", "rwb"]].sum()
    random = random_sums["rwb"] / random_sums["rw"]
    se_fixed, se_random = 1 / np.sqrt(sums["w"]), 1 / np.sqrt(random_sums["rw"])
    z = stats.norm.ppf(0.975)
    table = pd.DataFrame({
        "n_sites": sums["n_sites"], "n": sums["n"], "estimate_fixed": fixed, "std_error_fixed": se_fixed,
        "p_value_fixed": 2 * stats.norm.sf(np.abs(fixed / se_fixed)),
        "estimate_random": random, "std_error_random": se_random,
        "ci_low_random": random - z * se_random, "ci_high_random": random + z * se_random,
        "p_value_random": 2 * stats.norm.sf(np.abs(random / se_random)),
        "q_statistic": q, "q_p_value": np.where(df > 0, stats.chi2.sf(q, df.clip(lower=1)), np.nan),
        "i2": np.where((q > 0) & (df > 0), ((q - df) / q).clip(lower=0), 0.0), "tau2": tau2,
    }).reset_index()  # fmt: skip
    family = [column for column in ("outcome_or_contrast", "model") if column in keys]
    groups = table.groupby(family, sort=False).groups.values() if family else [table.index]
    table["q_value"] = np.nan
    for rows in groups:
        table.loc[rows, "q_value"] = adjust_p(table.loc[rows, "p_value_random"].to_numpy(), fdr_method)
    return table

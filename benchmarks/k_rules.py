"""Rules for the number of subgroups, replayed on model-selection tables with a known answer.

``python benchmarks/stratify_quality.py suite --out suite.tsv`` writes ``suite_model_selection.tsv``:
for every run (scenario, seed, method) and every k, PAC, silhouette, gap, the test against the
Gaussian null, the BIC of a Gaussian mixture with k components and one shared covariance, and the
ARI of that k's subgroups against the planted endotypes. ``--shapes`` makes such tables from
subgroup spaces drawn directly (600 patients, 4 seeds): three Gaussian groups, the same groups with
skewed (gamma) noise, two groups on a single factor, and one skewed cloud without groups, to see
which rules survive shapes the simulated cohorts do not produce. Every rule below chooses among the
same supported k (those that beat the null, smallest subgroup large enough), so the comparison
isolates the rule. Prints the ARI and k per scenario and rule, the mean over runs, and the best k
in hindsight.

    python benchmarks/k_rules.py suite_model_selection.tsv
    python benchmarks/k_rules.py --shapes
"""

from __future__ import annotations

import argparse
import re

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from stratomics.stratify import CRISP_PAC, choose, consensus_for_k, select_k


def eligible(run: pd.DataFrame) -> pd.DataFrame:
    """The supported k >= 2 of one run whose smallest subgroup is large enough (as the rule text says)."""
    min_size = int(re.search(r"subgroup >= (\d+)", run["rule"].iloc[0]).group(1))
    supported = run[run["supported"] & (run["k"] >= 2)]
    large = supported[supported["smallest_subgroup"] >= min_size]
    return (large if not large.empty else supported).sort_values("k")


def gap_rule(table: pd.DataFrame) -> int:
    """Tibshirani's: the smallest k whose gap is at least the next k's gap minus its error."""
    gap, error = table["gap"].to_numpy(), table["gap_sd"].to_numpy()
    first = [i for i in range(len(table) - 1) if gap[i] >= gap[i + 1] - error[i + 1]]
    return int(table["k"].iloc[first[0] if first else -1])


def crisp_else(fallback):
    """The largest crisp k (PAC <= CRISP_PAC), else the fallback rule."""
    def rule(table: pd.DataFrame) -> int:
        crisp = table[table["pac"] <= CRISP_PAC]
        return int(crisp["k"].iloc[-1]) if not crisp.empty else fallback(table)
    return rule


def lowest(column: str):
    """The k with the lowest value of ``column`` (the smaller k on a tie)."""
    return lambda table: int(table.sort_values([column, "k"])["k"].iloc[0])


RULES = {
    "stratomics (crisp, else PAC within 0.05, lowest BIC)": lambda t: select_k(t.assign(setting=t["k"]), min_size=0),
    "crisp, else lowest PAC (previous)": crisp_else(lowest("pac")),
    "crisp, else gap (before that)": crisp_else(gap_rule),
    "gap (Tibshirani)": gap_rule,
    "lowest PAC": lowest("pac"),
    "lowest mixture BIC": lowest("mixture_bic"),
    "crisp, else lowest mixture BIC": crisp_else(lowest("mixture_bic")),
    "best silhouette": lambda t: int(t.sort_values(["silhouette", "k"], ascending=[False, True])["k"].iloc[0]),
    "largest gap": lambda t: int(t.sort_values(["gap", "k"], ascending=[False, True])["k"].iloc[0]),
}


def replay(selection: pd.DataFrame) -> pd.DataFrame:
    """One row per run and rule: the k chosen and its ARI (one group scores 1 where none was planted, else 0)."""
    rows = []
    for (scenario, seed, method), run in selection.groupby(["scenario", "seed", "method"]):
        table = eligible(run)
        for name, rule in RULES.items():
            k = int(rule(table)) if not table.empty else 1
            planted_none = scenario.startswith("no_structure")
            if planted_none or k == 1:  # one group: right only where none was planted
                ari = float(planted_none and k == 1)
            else:
                ari = float(run.loc[run["k"] == k, "ari_fitted"].iloc[0])
            rows.append({"scenario": scenario, "seed": seed, "method": method, "rule": name, "k": k, "ari": ari})
    return pd.DataFrame(rows)


def drawn_space(shape: str, seed: int, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """A subgroup space of one shape and its planted groups (all 0 for the cloud without groups)."""
    rng = np.random.default_rng([seed, len(shape)])
    if shape == "two groups on one factor":
        truth = (rng.random(n) < 0.4).astype(int)
        return (2.5 * truth + rng.normal(size=n))[:, None], truth
    if shape == "no_structure (one skewed cloud)":
        cloud = np.c_[rng.lognormal(0, 0.6, n), rng.normal(size=n), rng.gamma(2, size=n)]
        return (cloud - cloud.mean(0)) / cloud.std(0), np.zeros(n, dtype=int)
    truth = rng.choice(3, n, p=[0.45, 0.35, 0.2])
    centres = np.array([[0, 0, 0], [2.2, 0, 0], [0, 2.2, 0]])
    noise = (rng.gamma(1.5, size=(n, 3)) - 1.5) / np.sqrt(1.5) if "skewed" in shape else rng.normal(size=(n, 3))
    return centres[truth] + noise, truth


SHAPES = ("three Gaussian groups", "three skewed groups", "two groups on one factor", "no_structure (one skewed cloud)")


def shape_tables(seeds: int = 4) -> pd.DataFrame:
    """The model-selection table of every shape and seed (k = 2-8, 20 resamples), with each k's ARI."""
    tables = []
    for shape in SHAPES:
        for seed in range(seeds):
            space, truth = drawn_space(shape, seed)
            results = [consensus_for_k(space, k, n_resamples=20, seed=seed) for k in range(2, 9)]
            _, table = choose(results, space, seed=seed)
            table = table[table["k"] >= 2].assign(scenario=shape, seed=seed, method="drawn subgroup space")
            table["ari_fitted"] = [adjusted_rand_score(truth, r.final_labels(space)) for r in results]
            tables.append(table)
    return pd.concat(tables, ignore_index=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="?", help="a *_model_selection.tsv of the benchmark suite")
    parser.add_argument("--shapes", action="store_true", help="draw the subgroup spaces of SHAPES instead")
    args = parser.parse_args()
    selection = shape_tables() if args.shapes else pd.read_csv(args.tables, sep="\t")
    runs = replay(selection)
    by_scenario = runs.pivot_table(index=["method", "scenario"], columns="rule", values="ari").round(2)
    chosen = runs.pivot_table(index=["method", "scenario"], columns="rule", values="k",
                              aggfunc=lambda k: "/".join(map(str, k)))  # fmt: skip
    hindsight = selection[selection["k"] >= 2].groupby(["scenario", "seed", "method"])["ari_fitted"].max()
    hindsight[hindsight.index.get_level_values("scenario").str.startswith("no_structure")] = 1.0
    print("ARI (fitted patients), mean of seeds\n", by_scenario.T.to_markdown(), "\n")
    print("k per seed\n", chosen.T.to_markdown(), "\n")
    print("mean over runs\n", runs.groupby(["method", "rule"])["ari"].mean().round(3).to_markdown(), "\n")
    print("best k in hindsight, mean over runs:", hindsight.groupby(level="method").mean().round(3).to_dict())


if __name__ == "__main__":
    main()

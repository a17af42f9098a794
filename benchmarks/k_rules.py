"""Rules for the number of subgroups, replayed on the model-selection tables of the benchmark suite.

``python benchmarks/stratify_quality.py suite --out suite.tsv`` writes ``suite_model_selection.tsv``:
for every run (scenario, seed, method) and every k, PAC, silhouette, gap, the test against the
Gaussian null, the ARI of that k's subgroups against the planted endotypes and the BIC of a
Gaussian mixture with k components and one shared covariance. Every rule below
chooses among the same supported k (those that beat the null, smallest subgroup large enough), so
the comparison isolates the rule. Prints the ARI and k per scenario and rule, the mean over runs,
and the best k in hindsight.

    python benchmarks/k_rules.py suite_model_selection.tsv
"""

from __future__ import annotations

import re
import sys

import pandas as pd

from stratomics.stratify import CRISP_PAC, select_k


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


RULES = {
    "stratomics (crisp, else lowest PAC)": lambda t: select_k(t.assign(setting=t["k"]), min_size=0),
    "crisp, else gap (previous)": crisp_else(gap_rule),
    "gap (Tibshirani)": gap_rule,
    "lowest PAC": lambda t: int(t.sort_values(["pac", "k"])["k"].iloc[0]),
    "best silhouette": lambda t: int(t.sort_values(["silhouette", "k"], ascending=[False, True])["k"].iloc[0]),
    "largest gap": lambda t: int(t.sort_values(["gap", "k"], ascending=[False, True])["k"].iloc[0]),
}


#: Where the suite's tables hold each k's BIC of a tied-covariance Gaussian mixture (``mixture_bic``).
MIXTURE_RULES = {"lowest mixture BIC": lambda t: int(t.sort_values(["mixture_bic", "k"])["k"].iloc[0])}


def replay(selection: pd.DataFrame) -> pd.DataFrame:
    """One row per run and rule: the k chosen and its ARI (one group scores 1 where none was planted, else 0)."""
    rules = {**RULES, **(MIXTURE_RULES if "mixture_bic" in selection else {})}
    rows = []
    for (scenario, seed, method), run in selection.groupby(["scenario", "seed", "method"]):
        table = eligible(run)
        for name, rule in rules.items():
            k = int(rule(table)) if not table.empty else 1
            planted_none = scenario == "no_structure"
            ari = float(k == 1) if planted_none or k == 1 else float(run.loc[run["k"] == k, "ari_fitted"].iloc[0])
            rows.append({"scenario": scenario, "seed": seed, "method": method, "rule": name, "k": k, "ari": ari})
    return pd.DataFrame(rows)


def main():
    selection = pd.read_csv(sys.argv[1], sep="\t")
    runs = replay(selection)
    by_scenario = runs.pivot_table(index=["method", "scenario"], columns="rule", values="ari").round(2)
    chosen = runs.pivot_table(index=["method", "scenario"], columns="rule", values="k",
                              aggfunc=lambda k: "/".join(map(str, k)))  # fmt: skip
    hindsight = selection[selection["k"] >= 2].groupby(["scenario", "seed", "method"])["ari_fitted"].max()
    hindsight[hindsight.index.get_level_values("scenario") == "no_structure"] = 1.0
    print("ARI (fitted patients), mean of seeds\n", by_scenario.to_markdown(), "\n")
    print("k per seed\n", chosen.to_markdown(), "\n")
    print("mean over runs\n", runs.groupby(["method", "rule"])["ari"].mean().round(3).to_markdown(), "\n")
    print("best k in hindsight, mean over runs:", hindsight.groupby(level="method").mean().round(3).to_dict())


if __name__ == "__main__":
    main()

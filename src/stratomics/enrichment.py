"""Gene-set enrichment of the marker and biomarker rankings against a user's GMT file.

Each ranking is one assay's features for one contrast or outcome, ordered by the signed test
statistic. Features are matched to the gene sets by name (gene symbol, Olink ``Assay``) or by ID,
whichever matches more, case-insensitively; several features of one gene keep the one with the
largest absolute statistic (GSEA's "max probe" collapse). The test is GSEA preranked
(Subramanian et al., PNAS 2005) from gseapy, with gene-set permutations and the configured seed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import gseapy
import numpy as np
import pandas as pd

from stratomics.associate import DESCRIPTIVE
from stratomics.errors import StratomicsInputError

log = logging.getLogger(__name__)

#: Columns of :func:`enrichment_table`.
ENRICHMENT_COLUMNS = [
    "source", "assay", "outcome_or_contrast", "gene_set", "set_size", "matched", "es", "nes", "p_value",
    "q_value", "leading_edge", "note",
]  # fmt: skip

#: Note on rankings of markers of subgroups that were defined on the same assay.
DESCRIPTIVE_RANKING = "descriptive: the subgroups were defined on this assay"


def read_gmt(path: str | Path) -> dict[str, list[str]]:
    """Gene sets of a GMT file: one set per line, name, description, then its genes, tab-separated.

    Gene names are upper-cased and de-duplicated; blank lines are skipped.

    Parameters
    ----------
    path
        The GMT file (e.g. an MSigDB or Reactome download).

    Returns
    -------
    Gene names by set name, in file order.

    Raises
    ------
    StratomicsInputError
        If the file is missing, a line has no gene, a set name repeats, or there is no set.
    """
    if not Path(path).is_file():
        raise StratomicsInputError(f"enrichment.gene_sets: '{path}' does not exist; point it at a GMT file or set it to null.")
    sets: dict[str, list[str]] = {}
    for number, line in enumerate(Path(path).read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        genes = list(dict.fromkeys(gene.strip().upper() for gene in fields[2:] if gene.strip()))
        name = fields[0].strip()
        if not genes:
            raise StratomicsInputError(
                f"{path}, line {number}: set '{name[:80]}' has no gene after its name and description. A GMT line "
                "is tab-separated: name, description, then one gene per field."
            )
        if name in sets:
            raise StratomicsInputError(f"{path}, line {number}: the set name '{name}' appears twice; names must be unique.")
        sets[name] = genes
    if not sets:
        raise StratomicsInputError(f"{path}: no gene set in the file.")
    return sets


def ranking_scores(rows: pd.DataFrame, universe: set[str]) -> pd.Series:
    """One assay's signed statistics for one contrast or outcome, keyed by gene name or feature ID.

    Every feature with a statistic stays in the ranking (genes outside the sets count as misses).

    Parameters
    ----------
    rows
        Rows of a result table (columns feature, feature_name, statistic) for one ranking.
    universe
        Every gene named by the gene sets, upper-case: the key (name or ID) that matches more of it is used.

    Returns
    -------
    Statistic by upper-case key, highest first (ties by key), one entry per key.
    """
    rows = rows[np.isfinite(rows["statistic"].to_numpy(dtype=float))]
    ids = rows["feature"].astype(str).str.upper()
    names = rows["feature_name"].fillna("").astype(str).str.upper()
    names = names.where(names != "", ids)
    keys = names if names.isin(universe).sum() >= ids.isin(universe).sum() else ids
    scores = pd.DataFrame({"gene": keys.to_numpy(), "score": rows["statistic"].to_numpy(dtype=float)})
    strongest = scores.loc[scores["score"].abs().groupby(scores["gene"]).idxmax()]
    ordered = strongest.sort_values(["score", "gene"], ascending=[False, True])
    return pd.Series(ordered["score"].to_numpy(), index=ordered["gene"].to_numpy(), dtype=float)


def prerank(scores: pd.Series, gene_sets: dict[str, list[str]], *, settings: dict) -> pd.DataFrame:
    """GSEA preranked of one ranking against the sets with ``min_size`` to ``max_size`` matched genes.

    Parameters
    ----------
    scores
        Statistic by gene name (:func:`ranking_scores`).
    gene_sets
        Gene names by set name (:func:`read_gmt`).
    settings
        ``min_size``, ``max_size``, ``permutations`` and ``seed``.

    Returns
    -------
    One row per tested set: gene_set, set_size, matched, es, nes, p_value (nominal, at least
    1 / (permutations + 1)), q_value (GSEA's FDR over the ranking's sets, same floor), leading_edge.
    Empty when no set has enough matched genes.
    """
    present = set(scores.index)
    matched = {name: sum(gene in present for gene in genes) for name, genes in gene_sets.items()}
    kept = {name: gene_sets[name] for name, n in matched.items() if settings["min_size"] <= n <= settings["max_size"]}
    columns = ["gene_set", "set_size", "matched", "es", "nes", "p_value", "q_value", "leading_edge"]
    if not kept:
        return pd.DataFrame(columns=columns)
    result = gseapy.prerank(
        scores, kept, min_size=settings["min_size"], max_size=settings["max_size"],
        permutation_num=settings["permutations"], seed=settings["seed"], threads=1, no_plot=True, outdir=None,
    ).res2d  # fmt: skip
    floor = 1.0 / (settings["permutations"] + 1)
    table = pd.DataFrame({
        "gene_set": result["Term"].astype(str),
        "set_size": [len(gene_sets[name]) for name in result["Term"]],
        "matched": [matched[name] for name in result["Term"]],
        "es": result["ES"].astype(float),
        "nes": result["NES"].astype(float),
        "p_value": result["NOM p-val"].astype(float).clip(lower=floor),
        "q_value": result["FDR q-val"].astype(float).clip(lower=floor),
        "leading_edge": result["Lead_genes"].astype(str),
    })  # fmt: skip
    return table.sort_values(["q_value", "p_value", "gene_set"], ignore_index=True)


def enrichment_table(results: dict[str, pd.DataFrame], gene_sets: dict[str, list[str]], *, settings: dict) -> pd.DataFrame:
    """GSEA preranked of every signed ranking of the result tables (one per assay and contrast or outcome).

    F-test rows (overall contrasts) have no sign and are left out; assays with no set of
    ``min_size`` matched genes are skipped and logged.

    Parameters
    ----------
    results
        Result tables (:data:`stratomics.associate.RESULT_COLUMNS`) by source name, e.g. "markers".
    gene_sets
        Gene names by set name (:func:`read_gmt`).
    settings
        ``min_size``, ``max_size``, ``permutations`` and ``seed``.

    Returns
    -------
    :data:`ENRICHMENT_COLUMNS`, one row per ranking and tested set.
    """
    universe = {gene for genes in gene_sets.values() for gene in genes}
    tables = []
    for source, result in results.items():
        signed = result[result["effect"] != "F"]
        for (assay, label), rows in signed.groupby(["assay", "outcome_or_contrast"], sort=True):
            scores = ranking_scores(rows, universe)
            table = prerank(scores, gene_sets, settings=settings)
            if table.empty:
                log.info("enrichment: %s %s '%s': %d of %d features match a gene-set gene, no set has %d of them; "
                         "not tested", source, assay, label, scores.index.isin(universe).sum(), len(rows),
                         settings["min_size"])  # fmt: skip
                continue
            note = DESCRIPTIVE_RANKING if rows["note"].eq(DESCRIPTIVE).any() else ""
            tables.append(table.assign(source=source, assay=assay, outcome_or_contrast=label, note=note))
    if not tables:
        log.warning("enrichment: no ranking matched %d genes of any set (features are matched by name or ID); "
                    "check that the GMT uses the assays' gene symbols or IDs", settings["min_size"])  # fmt: skip
        return pd.DataFrame(columns=ENRICHMENT_COLUMNS)
    return pd.concat(tables, ignore_index=True)[ENRICHMENT_COLUMNS]

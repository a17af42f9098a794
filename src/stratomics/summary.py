"""The report's landing page: the key numbers of a run and a methods paragraph, as reStructuredText.

:func:`summary_rst` reads the result tables (any of them may be absent: a run without subgroups,
genotypes or prediction) and says what was found, including when nothing was: no subgroup
structure, no biomarker below the FDR threshold, a prediction that does not beat the clinical model.
Snakemake renders the text (``snakemake --report``) as the report's first page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stratomics.tables import format_p_value

__all__ = ["Q_THRESHOLD", "summary_rst"]

#: FDR threshold of the counts of significant biomarkers.
Q_THRESHOLD = 0.05
#: Packages named in the methods paragraph (when the provenance lists them).
METHOD_PACKAGES = ("mofapy2", "scikit-learn", "statsmodels", "lifelines", "scikit-survival", "scanpy", "snakemake")


def summary_rst(tables: dict, *, config: dict, resolved: dict, provenance: dict) -> str:
    """The landing page of the report.

    Parameters
    ----------
    tables
        Result tables by name (``coverage``, ``clusters``, ``selection``, ``stability``, ``outcomes``,
        ``biomarkers``, ``genotypes``, ``enrichment``, ``performance``); a missing or None entry leaves its part out.
    config, resolved
        The run's validated config and what :func:`stratomics.config.resolve` derives from it.
    provenance
        The run's provenance record (date, stratomics_commit, versions).

    Returns
    -------
    reStructuredText (raw for Jinja: Snakemake renders the report text as a template).
    """
    sections = [
        _title(provenance),
        _cohort_section(tables.get("coverage"), resolved.get("batch")),
        _subgroup_section(tables.get("clusters"), tables.get("selection"), tables.get("stability")),
        _outcome_section(tables.get("outcomes")),
        _biomarker_section(tables.get("biomarkers"), tables.get("genotypes")),
        _enrichment_section(tables.get("enrichment"), config.get("enrichment", {})),
        _prediction_section(tables.get("performance")),
        _methods_section(config, resolved, provenance, tables.get("biomarkers")),
    ]
    text = "\n\n".join(section for section in sections if section) + "\n"
    return "{% raw %}\n" + text + "{% endraw %}\n"


def _heading(text: str, underline: str = "-") -> str:
    return f"{text}\n{underline * len(text)}"


def _title(provenance: dict) -> str:
    commit = str(provenance.get("stratomics_commit", "not a git checkout"))
    commit = commit[:10] if all(c in "0123456789abcdef" for c in commit) else commit
    return (f"{_heading('stratomics results', '=')}\n\nRun of {provenance.get('date', 'unknown date')} "
            f"(stratomics {commit}, seed {provenance.get('seed', 'unknown')}). The figures follow in paper order "
            "under **Figures**; every table is under its step.")  # fmt: skip


def _cohort_section(coverage: pd.DataFrame | None, batch: str | None) -> str:
    """Patients (and batches, e.g. sites), and patients per assay."""
    if coverage is None:
        return ""
    assays = [c for c in coverage.columns if c not in ("patient_id", batch, "n_assays")]
    where = f" in {coverage[batch].nunique()} {batch} groups" if batch in coverage else ""
    lines = [_heading("Cohort"), "", f"**{len(coverage)} patients**{where}; per assay:", ""]
    for assay in assays:
        n = int(coverage[assay].sum())
        lines.append(f"- {assay}: {n} ({100 * n / max(len(coverage), 1):.0f}%)")
    without = int((coverage[assays].sum(axis=1) == 0).sum()) if assays else 0
    if without:
        lines += ["", f"{without} patients have no assay (clinical data only)."]
    return "\n".join(lines)


def _subgroup_section(clusters: pd.DataFrame | None, selection: pd.DataFrame | None,
                      stability: pd.DataFrame | None) -> str:  # fmt: skip
    """k and how it was chosen, fitted and assigned patients, subgroup sizes, stability across sites."""
    if clusters is None or selection is None:
        return ""
    chosen = selection[selection["chosen"].astype(bool)].iloc[0]
    lines = [_heading("Subgroups"), ""]
    if int(chosen["k"]) == 1:
        return "\n".join([*lines, "**No subgroup structure**: no number of subgroups beat the Gaussian null "
                                  f"(rule: {chosen['rule']}). The cohort is reported as one group."])  # fmt: skip
    fitted = clusters["fitted"].astype(str).str.lower() == "true"
    placed = clusters["subgroup"].notna()
    sizes = clusters.loc[placed, "subgroup"].value_counts().sort_index()
    lines += [f"**k = {int(chosen['k'])}** (rule: {chosen['rule']}; PAC {chosen['pac']:.3f}, "
              f"against the Gaussian null {_p(chosen['null_p_value'])}).", "",
              f"Defined on {int(fitted.sum())} patients, assigned to {int((placed & ~fitted).sum())} more; "
              f"{int((~placed).sum())} without an integrated assay. Sizes: "
              + ", ".join(f"{name} {n}" for name, n in sizes.items()) + "."]  # fmt: skip
    if stability is not None and stability["ari"].notna().any():
        lines += ["", f"Leaving one site out: ARI {stability['ari'].min():.2f}-{stability['ari'].max():.2f} "
                      f"against the full-cohort subgroups ({stability['ari'].notna().sum()} sites)."]  # fmt: skip
    return "\n".join(lines)


def _outcome_section(outcomes: pd.DataFrame | None) -> str:
    """One line per outcome: the global test of the subgroups."""
    if outcomes is None or outcomes.empty:
        return ""
    lines = [_heading("Subgroups and outcomes"), ""]
    for name, rows in outcomes.groupby("outcome", sort=False):
        first = rows.iloc[0]
        lines.append(f"- {name}: {first['test']} {_p(first['test_p_value'])}"
                     f" (permutation {_p(first['permutation_p_value'])}; n = {int(first['n'])})")  # fmt: skip
    return "\n".join(lines)


def _biomarker_section(biomarkers: pd.DataFrame | None, genotypes: pd.DataFrame | None) -> str:
    """Per outcome: features below the FDR threshold per assay, and the strongest one."""
    tables = [table for table in (biomarkers, genotypes) if table is not None and not table.empty]
    if not tables:
        return ""
    tested = pd.concat(tables, ignore_index=True)
    tested = tested[tested["p_value"].notna()]
    lines = [_heading("Biomarkers (covariate-adjusted)"), ""]
    for outcome, rows in tested.groupby("outcome_or_contrast", sort=False):
        hits = rows[rows["q_value"] < Q_THRESHOLD]
        counts = rows.groupby("assay", sort=False).agg(tested=("p_value", "size"),
                                                      hits=("q_value", lambda q: int((q < Q_THRESHOLD).sum())))  # fmt: skip
        counts = counts.sort_values("hits", ascending=False, kind="stable")
        text = f"- {outcome}: " + ", ".join(f"{assay} {row.hits} of {row.tested}" for assay, row in counts.iterrows())
        if len(hits):
            best = hits.nsmallest(1, "p_value").iloc[0]
            text += f"; strongest {best['feature_name']} ({best['assay']}, {_p(best['p_value'])})"
        lines.append(text)
    return "\n".join([*lines, "", f"(features at q < {Q_THRESHOLD:g} of those tested)"])


def _enrichment_section(enrichment: pd.DataFrame | None, settings: dict) -> str:
    """Per ranking with a set at q < 0.05: how many sets pass and the strongest; or why none was run."""
    if not settings.get("gene_sets"):
        return "\n".join([_heading("Gene-set enrichment"), "",
                          "Not run: no GMT file is configured (enrichment.gene_sets)."])  # fmt: skip
    if enrichment is None:
        return ""
    lines = [_heading("Gene-set enrichment (GSEA preranked)"), ""]
    rankings = enrichment.groupby(["source", "assay", "outcome_or_contrast"], sort=False)
    for (source, assay, label), rows in rankings:
        hits = rows[rows["q_value"] < Q_THRESHOLD]
        if len(hits):
            best = hits.sort_values(["q_value", "p_value", "gene_set"]).iloc[0]
            lines.append(f"- {source}, {assay}, {label}: {len(hits)} of {len(rows)} sets; strongest {best['gene_set']} "
                         f"(NES {best['nes']:.2f}, {_p(best['q_value']).replace('p', 'q', 1)})")  # fmt: skip
    if len(lines) == 2:
        lines.append(f"No gene set at q < {Q_THRESHOLD:g} in any of the {rankings.ngroups} rankings tested.")
    else:
        lines += ["", f"(sets at GSEA FDR q < {Q_THRESHOLD:g} of those tested, in {rankings.ngroups} rankings; "
                      "subgroup markers of integrated assays are descriptive)"]  # fmt: skip
    return "\n".join(lines)


def _enrichment_method(settings: dict) -> str:
    """The methods sentence on gene-set enrichment (empty when none was configured)."""
    if not settings.get("gene_sets"):
        return ""
    return (f" The marker and biomarker rankings (signed statistics) were tested for enrichment of the gene sets of "
            f"{Path(settings['gene_sets']).name} with GSEA preranked (gseapy; {settings.get('permutations', 1000)} "
            f"permutations; sets with {settings.get('min_size', 15)}-{settings.get('max_size', 500)} matched genes).")


def _p(value: float) -> str:
    """"p = 0.18" or "p < 0.001"."""
    shown = format_p_value(value)
    return f"p {shown[0]} {shown[1:]}" if shown[:1] in "<>" else f"p = {shown}"


def _prediction_section(performance: pd.DataFrame | None) -> str:
    """Nested cross-validated discrimination of the clinical model and the gain of each added set."""
    if performance is None or performance.empty:
        return ""
    rows = performance[performance["validation"] == "nested_cv"]
    lines = [_heading("Prediction (nested cross-validation)"), ""]
    for (outcome, model), part in rows.groupby(["outcome", "model"], sort=False):
        metric = "auc" if (part["metric"] == "auc").any() else "c_index"
        base = part[(part["metric"] == metric) & (part["feature_set"] == "clinical")]
        gains = part[part["metric"] == f"{metric}_gain_over_clinical"]
        text = f"- {outcome}, {model}: clinical {metric.replace('_', '-')} {_estimate(base)}"
        for _, gain in gains.iterrows():
            verdict = "better" if gain["ci_low"] > 0 else "worse" if gain["ci_high"] < 0 else "no clear difference"
            text += (f"; +{gain['feature_set'].removeprefix('clinical_')} {gain['estimate']:+.3f} "
                     f"[{gain['ci_low']:+.3f}, {gain['ci_high']:+.3f}] ({verdict})")  # fmt: skip
        lines.append(text)
    return "\n".join(lines)


def _estimate(rows: pd.DataFrame) -> str:
    """estimate [ci_low, ci_high] of a one-row selection, or "not estimated"."""
    if rows.empty or not np.isfinite(rows["estimate"].iloc[0]):
        return "not estimated"
    row = rows.iloc[0]
    return f"{row['estimate']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


def _methods_section(config: dict, resolved: dict, provenance: dict, biomarkers: pd.DataFrame | None) -> str:
    """A methods paragraph generated from the resolved config and the package versions."""
    cohort, integrate, stratify = config["cohort"], config.get("integrate", {}), config.get("stratify", {})
    adjust_for = resolved.get("subgroup_space", {}).get("adjust_for", [])
    covariates = resolved.get("associate_covariates", cohort.get("covariates", []))
    versions = provenance.get("versions", {})
    adjustment = ""
    if biomarkers is not None and "adjustment" in biomarkers and biomarkers["adjustment"].notna().any():
        adjustment = f" (multiple testing: {biomarkers['adjustment'].dropna().iloc[0].replace('fdr_bh', 'Benjamini-Hochberg')})"
    packages = ", ".join(f"{name} {versions[name]}" for name in METHOD_PACKAGES if name in versions)
    k_rule = (f"k fixed at {stratify['k']}" if stratify.get("k") else
              f"k chosen among {stratify.get('k_min', 2)}-{stratify.get('k_max', 8)} by consensus clustering "
              f"({stratify.get('n_resamples', 100)} resamples), requiring each k to beat a Gaussian null")  # fmt: skip
    text = (f"Assays ({', '.join(resolved.get('integrated_assays', []))}) were integrated with "
            f"{integrate.get('method', 'mofa')}; the factors were adjusted for {', '.join(adjust_for) or 'no covariates'} "
            "and patients clustered with "
            f"{stratify.get('algorithm', 'kmeans')}, {k_rule}. Biomarkers were tested per feature against each "
            f"outcome ({', '.join(cohort.get('outcomes', {}))}) adjusted for "
            f"{', '.join(covariates) or 'nothing'}{adjustment}.{_enrichment_method(config.get('enrichment', {}))}"
            f" Seed {config.get('seed', 0)}."
            + (f" Software: {packages}." if packages else ""))  # fmt: skip
    return "\n".join([_heading("Methods (generated from the configuration)"), "", text])

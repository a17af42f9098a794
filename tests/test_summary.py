"""The report's landing page: the numbers it states come from the tables, "no result" is said, and the
text renders as Snakemake renders it (Jinja2, then docutils) without errors."""

import numpy as np
import pandas as pd
from docutils.core import publish_parts
from jinja2 import Environment

from stratomics.summary import summary_rst

CONFIG = {"seed": 7, "cohort": {"covariates": ["age", "sex"], "outcomes": {"failure": {"type": "binary"}}},
          "integrate": {"method": "mofa"}, "stratify": {"k_min": 2, "k_max": 6, "n_resamples": 50}}  # fmt: skip
RESOLVED = {"integrated_assays": ["rna", "olink"], "batch": "centre", "subgroup_space": {"adjust_for": ["age", "sex", "site"]},
            "associate_covariates": ["age", "sex", "site"]}  # fmt: skip
PROVENANCE = {"date": "2026-12-02", "stratomics_commit": "abcdef1234567", "seed": 7,
              "versions": {"mofapy2": "0.7.5", "statsmodels": "0.15.0"}}  # fmt: skip


def rendered(text: str) -> str:
    """The HTML body as Snakemake's report makes it; a reST error (level 2 and up) raises."""
    template = Environment(trim_blocks=True, lstrip_blocks=True).from_string(text).render()
    return publish_parts(template, writer="html", settings_overrides={"halt_level": 2})["html_body"]


def tables(k: int) -> dict:
    coverage = pd.DataFrame({"patient_id": [f"p{i}" for i in range(50)], "centre": ["A", "B"] * 25,
                             "rna": [1] * 40 + [0] * 10, "olink": [1] * 30 + [0] * 20})  # fmt: skip
    coverage["n_assays"] = coverage[["rna", "olink"]].sum(axis=1)
    labels = [f"S{1 + i % k}" for i in range(40)] + [None] * 10
    clusters = pd.DataFrame({"patient_id": coverage["patient_id"], "subgroup": labels, "fitted": [True] * 30 + [False] * 20})
    selection = pd.DataFrame({"k": [1, 2, 3], "pac": [np.nan, 0.2, 0.01], "null_p_value": [np.nan, 0.3, 1e-5],
                              "chosen": [k == 1, False, k == 3], "rule": "beats the Gaussian null"})  # fmt: skip
    biomarkers = pd.DataFrame({"assay": ["rna"] * 3 + ["olink"] * 2, "feature_name": ["G1", "G2", "G3", "P1", "P2"],
                               "outcome_or_contrast": "failure", "p_value": [1e-6, 0.2, 0.5, 1e-3, 0.9],
                               "q_value": [5e-6, 0.3, 0.6, 0.04, 0.9], "adjustment": "fdr_bh within outcome"})  # fmt: skip
    performance = pd.DataFrame({"model": "elastic_net", "feature_set": ["clinical", "clinical_biomarkers"],
                                "validation": "nested_cv", "metric": ["auc", "auc_gain_over_clinical"],
                                "estimate": [0.71, 0.04], "ci_low": [0.66, 0.01], "ci_high": [0.76, 0.07],
                                "outcome": "failure"})  # fmt: skip
    outcomes = pd.DataFrame({"outcome": ["failure"], "test": ["likelihood ratio"], "test_p_value": [0.0123],
                             "permutation_p_value": [0.02], "n": [40]})  # fmt: skip
    return {"coverage": coverage, "clusters": clusters, "selection": selection, "biomarkers": biomarkers,
            "performance": performance, "outcomes": outcomes, "genotypes": None}  # fmt: skip


def test_landing_page_states_the_numbers_of_the_tables():
    text = summary_rst(tables(3), config=CONFIG, resolved=RESOLVED, provenance=PROVENANCE)
    html = rendered(text)
    assert "50 patients" in html and "in 2 centre groups" in html
    assert "rna: 40 (80%)" in html and "olink: 30 (60%)" in html
    assert "k = 3" in html and "Defined on 30 patients, assigned to 10 more; 10 without an integrated assay" in html
    assert "S1 14, S2 13, S3 13" in html
    assert "likelihood ratio p = 0.012" in html
    assert "failure: rna 1 of 3, olink 1 of 2; strongest G1 (rna, p &lt; 0.001)" in html
    assert "clinical auc 0.710 [0.660, 0.760]; +biomarkers +0.040 [+0.010, +0.070] (better)" in html
    assert "integrated with mofa; the factors were adjusted for age, sex, site" in html
    assert "Seed 7" in html and "mofapy2 0.7.5" in html and "abcdef1234" in html
    assert "Leaving one site out" not in html  # no stability table: nothing said about it


def test_no_structure_is_said_and_absent_steps_are_left_out():
    found = tables(1)
    found["clusters"]["subgroup"] = "S1"
    text = summary_rst({**found, "performance": None, "biomarkers": None, "outcomes": None}, config=CONFIG,
                       resolved=RESOLVED, provenance={})  # fmt: skip
    html = rendered(text)
    assert "No subgroup structure" in html and "k = " not in html
    assert "Prediction (nested" not in html and "Biomarkers (covariate" not in html
    assert "not a git checkout" in html


def test_enrichment_is_summarised_per_ranking_or_said_to_be_not_configured():
    enrichment = pd.DataFrame({"source": "markers", "assay": "rna", "outcome_or_contrast": ["subgroup: S1 vs rest"] * 3
                               + ["subgroup: S2 vs rest"], "gene_set": ["HALLMARK_A", "HALLMARK_B", "HALLMARK_C", "HALLMARK_A"],
                               "nes": [2.31, -1.9, 0.4, 0.3], "p_value": [0.001, 0.002, 0.5, 0.6],
                               "q_value": [0.0005, 0.01, 0.7, 0.8]})  # fmt: skip
    configured = {**CONFIG, "enrichment": {"gene_sets": "h.gmt"}}
    html = rendered(summary_rst({**tables(3), "enrichment": enrichment}, config=configured, resolved=RESOLVED,
                                provenance=PROVENANCE))  # fmt: skip
    assert "markers, rna, subgroup: S1 vs rest: 2 of 3 sets; strongest HALLMARK_A (NES 2.31, q &lt; 0.001)" in html
    assert "S2 vs rest:" not in html and "in 2 rankings" in html
    assert "gene sets of h.gmt with GSEA preranked (gseapy; 1000 permutations; sets with 15-500" in html
    html = rendered(summary_rst({**tables(3), "enrichment": enrichment.assign(q_value=0.5)}, config=configured,
                                resolved=RESOLVED, provenance=PROVENANCE))  # fmt: skip
    assert "No gene set at q &lt; 0.05 in any of the 2 rankings tested" in html
    html = rendered(summary_rst(tables(3), config=CONFIG, resolved=RESOLVED, provenance=PROVENANCE))
    assert "Not run: no GMT file is configured (enrichment.gene_sets)" in html


def test_template_syntax_in_names_is_not_evaluated():
    found = tables(3)
    found["biomarkers"].loc[0, "feature_name"] = "{{ 7 * 7 }}"
    html = rendered(summary_rst(found, config=CONFIG, resolved=RESOLVED, provenance=PROVENANCE))
    assert "{{ 7 * 7 }}" in html and "49" not in html


def test_report_keeps_the_rows_with_the_smallest_p_value_or_rank():
    from stratomics.tables import top_rows

    table = pd.DataFrame({"feature": list("abcdef"), "p_value": [0.5, np.nan, 0.01, 0.2, 0.01, 0.9]})
    assert list(top_rows(table, 3)["feature"]) == ["c", "e", "d"]  # ties in file order
    assert list(top_rows(table, 10)["feature"])[-1] == "b"  # untested rows last
    ranked = pd.DataFrame({"factor": [1, 1, 2, 2], "rank": [1, 2, 1, 2], "feature": list("wxyz")})
    assert list(top_rows(ranked, 2)["feature"]) == ["w", "y"]

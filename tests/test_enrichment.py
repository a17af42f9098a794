"""Gene-set enrichment: GMT parsing, feature matching, and GSEA preranked on planted sets, with the
enrichment score checked against the running-sum statistic of Subramanian et al. (PNAS 2005)."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from stratomics.associate import DESCRIPTIVE
from stratomics.enrichment import DESCRIPTIVE_RANKING, enrichment_table, prerank, ranking_scores, read_gmt
from stratomics.enrichment_figures import RING_Q, enrichment_dotplot
from stratomics.errors import StratomicsInputError
from stratomics.plot import SMALLEST_FONT

SETTINGS = {"min_size": 10, "max_size": 500, "permutations": 1000, "seed": 3}


def gsea_running_sum_es(scores: pd.Series, members: set[str]) -> float:
    """The published enrichment score (weight 1): the extreme of P_hit - P_miss down the ranked list."""
    ordered = scores.sort_values(ascending=False)
    hit = ordered.index.isin(members)
    weights = np.where(hit, np.abs(ordered.to_numpy()), 0.0)
    running = np.cumsum(weights / weights.sum() - (~hit) / (~hit).sum())
    return float(running[np.argmax(np.abs(running))])


@pytest.fixture(scope="module")
def planted():
    """Marker rows of 600 genes (two assays' worth) where set UP is shifted up and DOWN down in one contrast."""
    rng = np.random.default_rng(11)
    genes = [f"GENE{j}" for j in range(600)]
    statistic = rng.normal(size=600)
    statistic[:30] += 2.0
    statistic[30:60] -= 2.0
    rows = pd.DataFrame({"assay": "rna", "feature": [f"ENSG{j:05d}" for j in range(600)], "feature_name": genes,
                         "outcome_or_contrast": "subgroup: 1 vs rest", "effect": "difference in means",
                         "statistic": statistic, "note": ""})  # fmt: skip
    overall = rows.assign(outcome_or_contrast="subgroup: overall", effect="F", statistic=statistic**2)
    sets = {"UP": genes[:30] + genes[300:310], "DOWN": genes[30:60], "RANDOM": list(rng.choice(genes[60:], 40, replace=False)),
            "TINY": genes[:5]}  # fmt: skip
    return pd.concat([rows, overall], ignore_index=True), sets


def test_read_gmt_upper_cases_deduplicates_and_names_the_bad_line(tmp_path):
    path = tmp_path / "sets.gmt"
    path.write_text("A\tdesc\til6\tIL6\tTNF\n\nB\thttp://x\tCXCL9\t\n")
    assert read_gmt(path) == {"A": ["IL6", "TNF"], "B": ["CXCL9"]}
    path.write_text("A\tdesc\tIL6\nB\tdesc only\n")
    with pytest.raises(StratomicsInputError, match=r"line 2: set 'B' has no gene"):
        read_gmt(path)
    path.write_text("A\td\tIL6\nA\td\tTNF\n")
    with pytest.raises(StratomicsInputError, match="line 2: the set name 'A' appears twice"):
        read_gmt(path)
    with pytest.raises(StratomicsInputError, match="does not exist"):
        read_gmt(tmp_path / "missing.gmt")


def test_features_match_by_name_or_id_and_one_gene_keeps_its_strongest_feature():
    rows = pd.DataFrame({"feature": ["OID1", "OID2", "OID3", "OID4"], "feature_name": ["IL6", "il6", "TNF", "CD4"],
                         "statistic": [1.0, -3.0, 2.0, np.nan]})  # fmt: skip
    scores = ranking_scores(rows, {"IL6", "TNF", "CD4"})
    assert scores.to_dict() == {"TNF": 2.0, "IL6": -3.0}
    by_id = ranking_scores(rows, {"OID1", "OID3"})
    assert by_id.to_dict() == {"OID3": 2.0, "OID1": 1.0, "OID2": -3.0}


def test_planted_sets_are_enriched_in_their_direction_and_the_random_set_is_not(planted):
    rows, sets = planted
    table = enrichment_table({"markers": rows}, sets, settings=SETTINGS)
    assert set(table["outcome_or_contrast"]) == {"subgroup: 1 vs rest"}  # the F ranking has no sign
    result = table.set_index("gene_set")
    assert "TINY" not in result.index  # 5 genes < min_size
    assert result.loc["UP", "nes"] > 1.5 and result.loc["UP", "q_value"] < 0.01
    assert result.loc["DOWN", "nes"] < -1.5 and result.loc["DOWN", "q_value"] < 0.01
    assert result.loc["RANDOM", "q_value"] > 0.1
    assert result.loc["UP", "p_value"] == pytest.approx(1 / 1001)  # floored, never 0
    assert result.loc["UP", "matched"] == 40
    assert set(result.loc["UP", "leading_edge"].split(";")) <= set(sets["UP"])


def test_enrichment_score_matches_the_published_running_sum(planted):
    rows, sets = planted
    signed = rows[rows["effect"] != "F"]
    scores = ranking_scores(signed, {gene for genes in sets.values() for gene in genes})
    assert len(scores) == 600  # genes outside every set stay in the ranking
    table = prerank(scores, sets, settings=SETTINGS).set_index("gene_set")
    for name in ("UP", "DOWN", "RANDOM"):
        assert table.loc[name, "es"] == pytest.approx(gsea_running_sum_es(scores, set(sets[name])), abs=1e-6)


def test_enrichment_is_deterministic_and_marks_descriptive_rankings(planted):
    rows, sets = planted
    descriptive = rows.assign(note=DESCRIPTIVE)
    first = enrichment_table({"markers": descriptive}, sets, settings=SETTINGS)
    second = enrichment_table({"markers": descriptive}, sets, settings=SETTINGS)
    pd.testing.assert_frame_equal(first, second)
    assert (first["note"] == DESCRIPTIVE_RANKING).all()


def test_no_matching_gene_gives_an_empty_table_and_a_warning(planted, caplog):
    rows, _ = planted
    table = enrichment_table({"markers": rows}, {"OTHER": [f"X{j}" for j in range(20)]}, settings=SETTINGS)
    assert table.empty
    assert "no ranking matched" in caplog.text


def test_dot_plot_rings_significant_sets_and_keeps_text_readable(planted):
    rows, sets = planted
    table = enrichment_table({"markers": rows, "biomarkers": rows.assign(outcome_or_contrast="failure_12m")}, sets,
                             settings=SETTINGS)  # fmt: skip
    fig = enrichment_dotplot(table, top=2)
    markers_panel = fig.axes[0]
    assert [t.get_text() for t in markers_panel.get_yticklabels()] == ["DOWN", "UP"]  # two smallest q, ties by name
    dots = markers_panel.collections[0]
    assert len(dots.get_offsets()) == 2
    rings = dots.get_edgecolors()
    assert len(rings) == 2 and all(edge[3] > 0 for edge in rings)  # both q < RING_Q
    assert (table.loc[table["gene_set"].isin(["UP", "DOWN"]), "q_value"] < RING_Q).all()
    assert min(t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()) >= SMALLEST_FONT
    assert {ax.get_title() for ax in fig.axes} >= {"Markers", "Biomarkers"}

"""Readers: formats real exports use, round trips against the simulator, clear errors."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from stratomics.errors import StratomicsInputError
from stratomics.io import read_text_table
from stratomics.kinds import read_assay
from stratomics.kinds.cell_frequency import read_cell_frequency
from stratomics.kinds.concentration import parse_concentrations, read_concentration
from stratomics.kinds.genotypes import genotype_codes, pack_dosages, read_dosages, read_plink
from stratomics.kinds.olink_npx import read_olink_npx
from stratomics.kinds.rna_counts import read_rna_counts
from stratomics.kinds.table import read_table_assay

KNOWN = {"P1", "P2", "P3"}


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def read_table(path, **options):
    return read_table_assay(path, source="test", known_ids=KNOWN, options=options)


@pytest.mark.parametrize(
    "text",
    [
        "id,a,b\nP1,1.5,2\nP2,3,4\n",
        "id;a;b\r\nP1;1,5;2\r\nP2;3;4\r\n",  # Windows line endings, decimal comma
        "\ufeffid\ta\tb\nP1\t1.5\t2\nP2\t3\t4\n",  # UTF-8 BOM, tabs
        "feature,P1,P2\na,1.5,3\nb,2,4\n",  # samples in columns
    ],
)
def test_wide_table_formats_read_the_same(tmp_path, text):
    assay = read_table(write(tmp_path / "t.csv", text))
    expected = pd.DataFrame({"a": [1.5, 3.0], "b": [2.0, 4.0]}, index=["P1", "P2"])
    np.testing.assert_array_equal(assay.values.loc[["P1", "P2"], ["a", "b"]], expected)


def test_missing_tokens_and_configured_na_values(tmp_path):
    path = write(tmp_path / "t.csv", "id,a,b,c\nP1,NA,,n.d.\nP2,1,2,3\n")
    with pytest.raises(StratomicsInputError, match=r"column 'c' line 2 has value 'n\.d\.'"):
        read_table(path)
    assay = read_table(path, na_values=["n.d."])
    assert assay.values.loc["P1"].isna().all()
    assert assay.values.loc["P2"].tolist() == [1.0, 2.0, 3.0]


def test_non_numeric_value_error_names_file_column_line_and_value(tmp_path):
    path = write(tmp_path / "t.csv", "id,IL6\nP1,1\nP2,2\nP3,high\n")
    with pytest.raises(StratomicsInputError) as err:
        read_table(path)
    message = str(err.value)
    assert "column 'IL6' line 4" in message and "'high'" in message and "na_values" in message


@pytest.mark.parametrize("value", ["inf", "-Infinity"])
def test_an_infinite_value_is_reported_like_any_other_non_number(tmp_path, value):
    path = write(tmp_path / "t.csv", f"id,IL6,TNF\nP1,1,2\nP2,{value},3\n")
    with pytest.raises(StratomicsInputError, match=f"column 'IL6' line 3 has value '{value}', which is not a finite number"):
        read_table(path)


def test_non_numeric_value_in_transposed_table_names_the_file_line(tmp_path):
    path = write(tmp_path / "t.csv", "feature,P1,P2\na,1,2\nb,3,oops\n")
    with pytest.raises(StratomicsInputError, match=r"line 3 column 'P2'.*'oops'"):
        read_table(path)


@pytest.mark.parametrize("text,problem", [("", "empty"), ("  \n\n", "empty"),
                                          ("id,a,b\n", "header but no data")])  # fmt: skip
def test_empty_and_header_only_files(tmp_path, text, problem):
    with pytest.raises(StratomicsInputError, match=problem):
        read_table(write(tmp_path / "t.csv", text))


@pytest.mark.parametrize("text,problem", [
    ("patient_id,site,age\nP1,DE,40\nP2,FR,50,extra\n", "header has 3 fields but line 3 has 4"),
    ("patient_id,site,age\nP1,DE\nP2,FR,50\n", "header has 3 fields but line 2 has 2"),
])  # fmt: skip
def test_rows_with_more_or_fewer_fields_than_the_header_name_the_line(tmp_path, text, problem):
    with pytest.raises(StratomicsInputError, match=f"s.csv: the {problem}.*quote"):
        read_text_table(write(tmp_path / "s.csv", text))


def test_trailing_separators_blank_lines_and_quoted_separators_are_read(tmp_path):
    text = 'patient_id,note,age,\n\nP1,"a, b",40,\r\nP2,c,50,\n'
    table, sep = read_text_table(write(tmp_path / "s.csv", text))
    assert sep == "," and table.columns.tolist() == ["patient_id", "note", "age"]
    assert table.to_numpy().tolist() == [["P1", "a, b", "40"], ["P2", "c", "50"]]


@pytest.mark.parametrize("content,kind", [(b"PK\x03\x04rest of a zip", "Excel workbook"),
                                          (b"id,a\x00\x01\x02", "binary file")])  # fmt: skip
def test_a_spreadsheet_saved_as_csv_is_named_with_what_to_do(tmp_path, content, kind):
    path = tmp_path / "samples.csv"
    path.write_bytes(content)
    with pytest.raises(StratomicsInputError, match=f"samples.csv: this is an? {kind}.*save it as CSV"):
        read_text_table(path)


def test_unknown_orientation_asks_for_the_option(tmp_path):
    path = write(tmp_path / "t.csv", "x,a\nQ1,1\n")
    with pytest.raises(StratomicsInputError, match="orientation"):
        read_table(path)
    assert read_table(path, orientation="samples_in_rows").values.index.tolist() == ["Q1"]


def test_repeated_feature_names_are_an_error(tmp_path):
    with pytest.raises(StratomicsInputError, match="feature 'a' appears 2 times"):
        read_table(write(tmp_path / "t.csv", "id,a,a\nP1,1,2\n"))


def test_censored_concentrations_are_flagged_with_their_limits():
    cells = pd.DataFrame({"IL6": ["<LLOQ", "OOR <", "< 1,5", "12.5", "*3.25", "OOR >", "> 900"]})
    values, layers = parse_concentrations(cells, source="test")
    np.testing.assert_array_equal(layers["censored"]["IL6"], [-1, -1, -1, 0, 0, 1, 1])
    np.testing.assert_array_equal(values["IL6"].iloc[3:5], [12.5, 3.25])
    assert values["IL6"].iloc[[0, 1, 2, 5, 6]].isna().all()
    assert layers["limit"]["IL6"].iloc[2] == 1.5 and layers["limit"]["IL6"].iloc[6] == 900


def test_concentration_limits_come_from_cells_then_the_limits_file(tmp_path):
    data = write(tmp_path / "c.csv", "id,IL6,TNF\nP1,<2,<LLOQ\nP2,5,8\nP3,>ULOQ,9\n")
    limits = write(tmp_path / "l.csv", "analyte,lloq,uloq\nIL6,1,50\nTNF,4,60\n")
    assay = read_concentration(data, source="t", known_ids=KNOWN, options={"limits": str(limits)})
    assert assay.var.loc["IL6", "lloq"] == 2  # the cell's own limit wins
    assert assay.var.loc["TNF", "lloq"] == 4 and assay.var.loc["IL6", "uloq"] == 50


def test_limits_file_columns_are_mapped_from_the_config_and_a_missing_one_is_named(tmp_path):
    data = write(tmp_path / "c.csv", "id,IL6,TNF\nP1,<LLOQ,3\nP2,5,8\n")
    limits = write(tmp_path / "l.csv", "Analyte,LLOQ_pg_ml,ULOQ_pg_ml\nIL6,1.5,50\nTNF,4,60\n")
    options = {"limits": str(limits), "limits_columns": {"lloq": "lloq_pg_ml", "uloq": "uloq_pg_ml"}}
    assay = read_concentration(data, source="t", known_ids=KNOWN, options=options)
    assert assay.var.loc["IL6", "lloq"] == 1.5 and assay.var.loc["TNF", "uloq"] == 60
    with pytest.raises(StratomicsInputError, match="no column for lloq \\('lloq'\\), uloq.*limits_columns"):
        read_concentration(data, source="t", known_ids=KNOWN, options={"limits": str(limits)})


def test_flow_paths_give_parents_and_summary_rows_are_excluded(tmp_path):
    text = ("Sample:\tLymphocytes/T cells | Freq. of Parent (%)\tLymphocytes/T cells/CD4+ | Freq. "
            "of Parent (%)\nP1\t60\t55\nP2\t70\t65.5\nMean\t65\t60.25\nSD\t7\t7\n")
    assay = read_cell_frequency(write(tmp_path / "f.tsv", text), source="t", known_ids=KNOWN,
                                options={})  # fmt: skip
    assert assay.var["parent"].tolist() == ["Lymphocytes", "Lymphocytes/T cells"]
    assert assay.values.index.tolist() == ["P1", "P2"]
    assert sorted(assay.excluded["sample_id"]) == ["Mean", "SD"]


def test_flat_flow_names_take_parents_from_a_hierarchy_file_or_are_warned_about(tmp_path, caplog):
    data = write(tmp_path / "f.csv", "id,CD4,CD8,Naive CD4,Memory CD4\nP1,60,30,40,55\nP2,55,35,45,50\n")
    hierarchy = write(tmp_path / "h.csv", "Population,Parent\nCD4,\nCD8,\nNaive CD4,CD4\nMemory CD4,CD4\n")
    assay = read_cell_frequency(data, source="t", known_ids=KNOWN, options={"hierarchy": str(hierarchy)})
    assert assay.var["parent"].tolist() == ["", "", "CD4", "CD4"]
    assert "one composition" not in caplog.text
    read_cell_frequency(data, source="t", known_ids=KNOWN, options={})
    assert "treated as one composition" in caplog.text and "hierarchy file" in caplog.text
    partial = write(tmp_path / "p.csv", "population,parent\nCD4,\nCD8,\n")
    with pytest.raises(StratomicsInputError, match="population 'Naive CD4' of t is not in the hierarchy file"):
        read_cell_frequency(data, source="t", known_ids=KNOWN, options={"hierarchy": str(partial)})


def test_flow_frequency_outside_0_100_is_an_error(tmp_path):
    path = write(tmp_path / "f.csv", "id,A/B\nP1,120\n")
    with pytest.raises(StratomicsInputError, match="outside 0-100"):
        read_cell_frequency(path, source="t", known_ids=KNOWN, options={})


@pytest.mark.parametrize("value,problem", [("-3", "count -3"), ("2.5", "count 2.5")])
def test_negative_or_fractional_rna_counts_are_errors(tmp_path, value, problem):
    path = write(tmp_path / "r.tsv", f"gene_id\tP1\tP2\nG1\t4\t{value}\nG2\t1\t2\n")
    with pytest.raises(StratomicsInputError, match=f"sample 'P2' gene 'G1' has {problem}"):
        read_rna_counts(path, source="t", known_ids=KNOWN, options={})


def test_olink_export_round_trips_against_the_simulator(small_demo):
    folder, config = small_demo
    known = set(pd.read_csv(folder / "sample_map.csv")["sample_id"])
    assay = read_olink_npx(folder / "olink_npx.csv", source="t", known_ids=known, options={})
    raw = pd.read_csv(folder / "olink_npx.csv", sep=";", decimal=",")
    samples = raw[~raw["SampleID"].str.startswith("CONTROL")]
    first = samples.iloc[0]
    row = np.flatnonzero((assay.values.index == first.SampleID)
                         & (assay.sample_info["plate"] == first.PlateID).to_numpy())[0]  # fmt: skip
    assert assay.values.iloc[row][first.OlinkID] == pytest.approx(first.NPX)
    assert assay.layers["lod"].iloc[row][first.OlinkID] == pytest.approx(first.LOD)
    n_runs = samples[["SampleID", "PlateID"]].drop_duplicates().shape[0]
    assert assay.values.shape == (n_runs, raw["OlinkID"].nunique())
    assert assay.layers["qc_warning"].to_numpy().sum() == (samples["QC_Warning"] == "WARN").sum()
    assert set(assay.excluded["sample_id"]) == set(raw.loc[raw["SampleID"].str.startswith("CONTROL"), "SampleID"])


def test_olink_missing_column_is_named(tmp_path):
    path = write(tmp_path / "o.csv", "SampleID;OlinkID;Assay;Panel;PlateID;LOD;NPX\nP1;O1;IL6;I;p1;1;2\n")
    with pytest.raises(StratomicsInputError, match="missing QC_Warning"):
        read_olink_npx(path, source="t", known_ids=KNOWN, options={})


def test_plink_round_trip_and_disagreeing_files(tmp_path):
    from bed_reader import to_bed

    genotypes = np.array([[0, 1, 2, np.nan], [2, 2, 1, 0], [1, 0, 0, 1], [0, 0, 1, 1],
                          [2, 1, np.nan, 0]], dtype=np.float32)  # fmt: skip
    iids = ["P1", "P2", "P3", "P4", "P5"]
    to_bed(tmp_path / "g.bed", genotypes, properties={"iid": iids, "sex": [1, 2, 0, 2, 1]})
    assay = read_plink(tmp_path / "g", source="t")
    assert assay.values.shape == (5, 0)  # the dosages stay in the .bed
    assert assay.values.index.tolist() == iids
    adata = ad.AnnData(obs=assay.sample_info, var=assay.var, uns={"ingest": assay.uns})
    np.testing.assert_array_equal(read_dosages(adata, slice(None)), genotypes)
    packed, rows = genotype_codes(adata, slice(None))  # the .bed's bytes, as packed from dosages in memory
    np.testing.assert_array_equal(packed, pack_dosages(genotypes))
    assert rows.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(read_dosages(adata, np.array([3, 1]), rows=np.array([4, 0, 2])),
                                  genotypes[[4, 0, 2]][:, [3, 1]])  # fmt: skip
    subset = adata[[1, 3]][:, [2, 3]].copy()  # after QC filters: the file's rows and columns are kept
    np.testing.assert_array_equal(read_dosages(subset, slice(0, 2)), genotypes[[1, 3]][:, [2, 3]])
    (tmp_path / "g.bed").rename(tmp_path / "moved.bed")
    with pytest.raises(StratomicsInputError, match=r"dosages are read from .*g\.bed .* not there now"):
        read_dosages(adata, slice(None))
    (tmp_path / "moved.bed").rename(tmp_path / "g.bed")
    assert assay.sample_info["reported_sex"].astype(object).fillna("unknown").tolist() == ["male", "female", "unknown", "female", "male"]
    fam = (tmp_path / "g.fam").read_text().splitlines()
    (tmp_path / "g.fam").write_text("\n".join(fam[:3]) + "\n")  # samples lost from the .fam
    with pytest.raises(StratomicsInputError, match="3 samples in the .fam and 4 SNPs"):
        read_plink(tmp_path / "g", source="t")


def test_unknown_kind_is_an_error(tmp_path):
    with pytest.raises(StratomicsInputError, match="unknown kind 'proteome'"):
        read_assay("x", {"kind": "proteome", "path": "x.csv"}, KNOWN)

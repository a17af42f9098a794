"""Readers for each assay kind, robust to what real exports contain.

Every reader returns an :class:`AssayTable`: one row per sample as it appears in the file (sample IDs
may repeat), before samples are mapped to patients. Text tables may use comma, semicolon or tab
separators, decimal commas, a UTF-8 BOM and Windows line endings, and wide tables may have samples
in rows or in columns.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError

log = logging.getLogger(__name__)

#: Cell values read as missing in every file; an assay's ``na_values`` adds to these.
DEFAULT_NA_VALUES = ("", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "#N/A")
#: Feature-annotation columns recognised in wide tables with samples in columns.
DEFAULT_ANNOTATION_COLUMNS = ("gene_name", "gene_symbol", "symbol", "gene_biotype", "description")
#: Row labels of summary rows that flow-cytometry software appends to its tables.
SUMMARY_ROWS = ("mean", "sd", "median", "cv", "min", "max")
OLINK_COLUMNS = ("SampleID", "OlinkID", "Assay", "Panel", "PlateID", "QC_Warning", "LOD", "NPX")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+(?:[eE][+-]?\d+)?$")


@dataclass
class AssayTable:
    """Measurements of one assay file, one row per sample as it appears in the file.

    Attributes
    ----------
    values
        Samples x features, float; the index holds sample IDs as written in the file.
    var
        One row per feature (index = the columns of ``values``) with its annotation.
    sample_info
        Per-sample columns (e.g. plate), aligned with ``values``. A non-empty ``qc_failed`` entry
        marks a sample that failed the assay's own QC, with the reason.
    layers
        Extra matrices aligned with ``values`` (e.g. the LOD of each value, censoring flags).
    excluded
        Rows of the file that are not patient samples (controls, summary rows): sample_id, reason.
    uns
        What the reader noticed and the user should know (e.g. the separator and decimal mark).
    """

    values: pd.DataFrame
    var: pd.DataFrame
    sample_info: pd.DataFrame
    layers: dict[str, pd.DataFrame] = field(default_factory=dict)
    excluded: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"sample_id": [], "reason": []}, dtype=str)
    )
    uns: dict = field(default_factory=dict)


def read_text_table(path: str | Path, *, sep: str | None = None) -> tuple[pd.DataFrame, str]:
    """Read a delimited text file as strings, sniffing the separator.

    Parameters
    ----------
    path
        The file.
    sep
        The separator; sniffed from the header line (tab, semicolon, then comma) when None.

    Returns
    -------
    The table with every cell as a stripped string (no missing-value parsing) and the separator.
    """
    path = Path(path)
    if not path.is_file():
        raise StratomicsInputError(f"{path}: file not found. Check the path in config.yaml.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.warning("%s is not UTF-8; reading it as Latin-1", path)
        text = raw.decode("latin-1")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        raise StratomicsInputError(f"{path}: the file is empty. Export the table again.")
    if sep is None:
        header = lines[0]
        sep = "\t" if "\t" in header else ";" if ";" in header else ","
    table = pd.read_csv(
        io.StringIO("\n".join(lines)), sep=sep, dtype=str, keep_default_na=False, na_filter=False
    )
    if table.empty:
        raise StratomicsInputError(
            f"{path}: the file has a header but no data rows. Export the table with its data."
        )
    header = next(csv.reader([lines[0]], delimiter=sep))  # pandas would rename repeated names
    table.columns = [name.strip() for name in header] if len(header) == table.shape[1] else [
        str(name).strip() for name in table.columns
    ]
    return table.apply(lambda column: column.str.strip()), sep


def uses_decimal_comma(cells: pd.DataFrame, sep: str) -> bool:
    """Tell whether numbers in a table use a decimal comma (only possible when sep is not a comma)."""
    if sep == ",":
        return False
    sample = cells.head(200).to_numpy().ravel()
    return any(_DECIMAL_COMMA.match(str(cell)) for cell in sample)


def parse_numeric(
    cells: pd.DataFrame,
    *,
    source: str,
    na_values: tuple[str, ...] | list[str] = (),
    decimal_comma: bool = False,
    rows_are_lines: bool = True,
) -> pd.DataFrame:
    """Convert string cells to floats, or fail naming the column, line and value.

    Parameters
    ----------
    cells
        Strings as read from the file, in the file's orientation.
    source
        How to name the file in messages (e.g. "assay 'cytokines' (data/cyto.csv)").
    na_values
        Extra strings that mean missing, on top of :data:`DEFAULT_NA_VALUES`.
    decimal_comma
        Read "1,5" as 1.5.
    rows_are_lines
        False when ``cells`` was transposed, so that messages name file lines correctly.

    Returns
    -------
    A float frame with the same shape, index and columns, NaN where missing.
    """
    missing = cells.isin(set(DEFAULT_NA_VALUES) | set(na_values))
    text = cells.mask(missing, "")
    if decimal_comma:
        text = text.apply(lambda column: column.str.replace(",", ".", regex=False))
    numbers = text.apply(lambda column: pd.to_numeric(column.replace("", np.nan), errors="coerce"))
    bad = numbers.isna().to_numpy() & ~missing.to_numpy()
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        value = cells.iat[row, col]
        if rows_are_lines:
            where = f"column '{cells.columns[col]}' line {row + 2}"  # line 1 is the header
        else:
            where = f"line {col + 2} column '{cells.index[row]}'"
        raise StratomicsInputError(
            f"{source}: {where} has value '{value}', which is not a number "
            f"({int(bad.sum())} such cells in all). Mark missing values as empty or NA, "
            f"or list '{value}' under na_values for this assay in config.yaml."
        )
    return numbers.astype(float)


def orient_wide_table(
    table: pd.DataFrame,
    *,
    source: str,
    orientation: str,
    known_ids: set[str],
    annotation_columns: tuple[str, ...] | list[str],
) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """Split a wide table into sample x feature cells and feature annotations.

    Parameters
    ----------
    table
        The file as strings, first column holding row labels.
    source
        How to name the file in messages.
    orientation
        "samples_in_rows", "samples_in_columns" or "auto" (decided by which side holds more
        ``known_ids``).
    known_ids
        Sample IDs from the sample map and patient IDs from the sample sheet.
    annotation_columns
        Non-sample columns that annotate features when samples are in columns.

    Returns
    -------
    Cells (samples x features, strings, in file orientation undone), feature annotation and
    whether samples were in rows.
    """
    id_column = table.columns[0]
    row_labels = table[id_column]
    if orientation == "auto":
        in_rows = row_labels.isin(known_ids).sum()
        in_columns = sum(name in known_ids for name in table.columns[1:])
        if in_rows == 0 and in_columns == 0:
            raise StratomicsInputError(
                f"{source}: neither the first column nor the header holds any sample ID from the "
                f"sample map or patient ID from the sample sheet (first row label "
                f"'{row_labels.iloc[0]}', first column '{table.columns[1]}'). Check the IDs, or "
                "set orientation: samples_in_rows or samples_in_columns for this assay."
            )
        orientation = "samples_in_rows" if in_rows >= in_columns else "samples_in_columns"
    if orientation == "samples_in_rows":
        cells = table.drop(columns=id_column).set_axis(row_labels, axis=0)
        return cells, pd.DataFrame(index=cells.columns), True
    annotations = [name for name in table.columns[1:] if name in annotation_columns]
    feature_ids = row_labels.rename("feature")
    var = table[annotations].set_axis(feature_ids, axis=0)
    cells = table.drop(columns=[id_column, *annotations]).set_axis(feature_ids, axis=0).T
    return cells, var, False


def check_unique_features(names: pd.Index, source: str) -> None:
    """Fail when a feature name repeats in a file."""
    repeated = names[names.duplicated()]
    if len(repeated):
        raise StratomicsInputError(
            f"{source}: feature '{repeated[0]}' appears {int((names == repeated[0]).sum())} times "
            f"({len(repeated.unique())} repeated names in all). Give each feature a unique name."
        )


def read_wide(
    path: str | Path,
    *,
    source: str,
    known_ids: set[str],
    na_values=(),
    orientation: str = "auto",
    annotation_columns=DEFAULT_ANNOTATION_COLUMNS,
    sep: str | None = None,
    parse=parse_numeric,
) -> AssayTable:
    """Read a wide numeric table (samples x features, either orientation).

    Parameters
    ----------
    path, source, known_ids, na_values, orientation, annotation_columns, sep
        See :func:`read_text_table`, :func:`parse_numeric` and :func:`orient_wide_table`.
    parse
        The cell parser, called like :func:`parse_numeric`; may return a (values, layers) pair.

    Returns
    -------
    The assay table.
    """
    table, sep = read_text_table(path, sep=sep)
    cells, var, in_rows = orient_wide_table(
        table,
        source=source,
        orientation=orientation,
        known_ids=known_ids,
        annotation_columns=annotation_columns,
    )
    check_unique_features(cells.columns, source)
    parsed = parse(
        cells,
        source=source,
        na_values=na_values,
        decimal_comma=uses_decimal_comma(cells, sep),
        rows_are_lines=in_rows,
    )
    values, layers = parsed if isinstance(parsed, tuple) else (parsed, {})
    values.index.name = "sample_id"
    return AssayTable(
        values=values,
        var=var.reindex(values.columns),
        sample_info=pd.DataFrame(index=values.index),
        layers=layers,
        uns={"separator": sep, "samples_in_rows": in_rows},
    )


def split_summary_rows(assay: AssayTable) -> AssayTable:
    """Move summary rows (Mean, SD, ...) appended by analysis software to ``excluded``."""
    is_summary = assay.values.index.str.lower().isin(SUMMARY_ROWS)
    if not is_summary.any():
        return assay
    summary_ids = assay.values.index[is_summary]
    excluded = pd.DataFrame({"sample_id": summary_ids, "reason": "summary row, not a sample"})
    return AssayTable(
        values=assay.values[~is_summary],
        var=assay.var,
        sample_info=assay.sample_info[~is_summary],
        layers={name: layer[~is_summary] for name, layer in assay.layers.items()},
        excluded=pd.concat([assay.excluded, excluded], ignore_index=True),
        uns=assay.uns,
    )


def read_table_assay(path, *, source, known_ids, options) -> AssayTable:
    """Read a generic wide numeric table (kind ``table``)."""
    return read_wide(path, source=source, known_ids=known_ids, **_wide_options(options))


def read_cell_frequency(path, *, source, known_ids, options) -> AssayTable:
    """Read flow-cytometry population frequencies (kind ``cell_frequency``).

    Column names are gating paths ("Lymphocytes/T cells/CD4+"); a FlowJo suffix such as
    " | Freq. of Parent (%)" is removed. The parent of a population is given by the ``hierarchy``
    file (columns population, parent) when there is one, else by its path without the last
    element; with flat names and no hierarchy, every population is one composition (warned).
    Percentages must lie in [0, 100] (fractions in [0, 1] are recognised and rescaled).
    """
    assay = split_summary_rows(
        read_wide(path, source=source, known_ids=known_ids, **_wide_options(options))
    )
    populations = [name.split(" | ")[0].strip() for name in assay.values.columns]
    check_unique_features(pd.Index(populations), source)
    values = assay.values.set_axis(populations, axis=1)
    low, high = np.nanmin(values.to_numpy()), np.nanmax(values.to_numpy())
    if low < 0 or high > 100:
        column = values.columns[((values < 0) | (values > 100)).any()][0]
        raise StratomicsInputError(
            f"{source}: population '{column}' has a frequency outside 0-100 "
            f"(range {low:g} to {high:g}). Export frequencies as percentages of the parent."
        )
    if high <= 1:
        log.warning("%s: all frequencies are <= 1, reading them as fractions", source)
        values = values * 100
    if options.get("hierarchy"):
        parents = _read_hierarchy(options["hierarchy"], populations, source)
    else:
        parents = [name.rsplit("/", 1)[0] if "/" in name else "" for name in populations]
        if not any(parents):
            log.warning("%s: population names are not gating paths and no hierarchy file is given, so all %d "
                        "populations are treated as one composition (one parent); give the assay a hierarchy "
                        "file (columns population, parent) if they have different parents", source,
                        len(populations))  # fmt: skip
    var = pd.DataFrame({"parent": parents}, index=pd.Index(populations, name="population"))
    assay.values, assay.var = values, var
    return assay


def _read_hierarchy(path, populations: list[str], source: str) -> list[str]:
    """The parent of each population from a hierarchy file (columns population, parent; any case)."""
    table, _ = read_text_table(path)
    table = _rename_case_insensitive(table, ("population", "parent"))
    if not {"population", "parent"} <= set(table.columns):
        raise StratomicsInputError(
            f"{path}: the hierarchy file for {source} needs columns population and parent; found {list(table.columns)}."
        )
    parents = table.assign(parent=table["parent"].fillna("").astype(str)).set_index("population")["parent"]
    absent = [name for name in populations if name not in parents.index]
    if absent:
        raise StratomicsInputError(
            f"{path}: population '{absent[0]}' of {source} is not in the hierarchy file ({len(absent)} missing); "
            "add a row population,parent for each (an empty parent for top-level populations)."
        )
    return [parents[name] for name in populations]


def read_rna_counts(path, *, source, known_ids, options) -> AssayTable:
    """Read an RNA-seq count matrix (kind ``rna_counts``; genes x samples or samples x genes)."""
    assay = read_wide(path, source=source, known_ids=known_ids, **_wide_options(options))
    counts = assay.values.to_numpy()
    bad = (counts < 0) | (np.abs(counts - np.round(counts)) > 1e-9)
    if np.nan_to_num(bad, nan=False).any():
        row, col = (int(i[0]) for i in np.nonzero(np.nan_to_num(bad, nan=False)))
        raise StratomicsInputError(
            f"{source}: sample '{assay.values.index[row]}' gene '{assay.values.columns[col]}' has "
            f"count {counts[row, col]:g}; RNA-seq counts must be non-negative integers. Use raw "
            "counts (featureCounts/HTSeq), or round estimated counts (salmon/kallisto) first."
        )
    return assay


def parse_concentrations(
    cells: pd.DataFrame,
    *,
    source: str,
    na_values=(),
    decimal_comma: bool = False,
    rows_are_lines: bool = True,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Parse concentrations with censoring marks.

    Recognised: "<LLOQ", "< 1.2", "OOR <", "<OOR" (below the lower limit), ">ULOQ", "> 5000",
    "OOR >" (above the upper limit), and "*12.3" (a value extrapolated beyond the standard curve,
    kept as 12.3).

    Returns
    -------
    Values (NaN where censored or missing) and layers ``censored`` (-1 below, +1 above, 0 otherwise)
    and ``limit`` (the limit written in the cell, NaN when it names no number).
    """
    text = cells.apply(lambda column: column.str.replace("*", "", regex=False))
    below = text.apply(lambda c: c.str.match(r"^(<|OOR\s*<|below)", case=False))
    above = text.apply(lambda c: c.str.match(r"^(>|OOR\s*>|above)", case=False))
    censored = below | above
    limit_text = text.where(censored, "").apply(
        lambda c: c.str.extract(r"([+-]?\d+(?:[.,]\d+)?(?:[eE][+-]?\d+)?)", expand=False)
    )
    limits = limit_text.apply(lambda c: pd.to_numeric(c.str.replace(",", "."), errors="coerce"))
    values = parse_numeric(
        text.mask(censored, ""),
        source=source,
        na_values=na_values,
        decimal_comma=decimal_comma,
        rows_are_lines=rows_are_lines,
    )
    flags = below.astype(float) * -1 + above.astype(float)
    return values, {"censored": flags, "limit": limits.astype(float)}


def read_concentration(path, *, source, known_ids, options) -> AssayTable:
    """Read cytokine concentrations with limits of quantification (kind ``concentration``).

    The limits of each analyte come from the cells ("< 1.2"), or from an optional ``limits`` file
    (columns analyte, lloq, uloq); failing both, the lowest/highest quantified value is used and a
    warning says so.
    """
    assay = split_summary_rows(
        read_wide(
            path,
            source=source,
            known_ids=known_ids,
            parse=parse_concentrations,
            **_wide_options(options),
        )
    )
    censored, limit = assay.layers["censored"], assay.layers["limit"]
    lloq = limit.where(censored < 0).min()
    uloq = limit.where(censored > 0).max()
    if options.get("limits"):
        lloq, uloq = _read_limits(options["limits"], assay.values.columns, source, lloq, uloq,
                                  columns=options.get("limits_columns"))  # fmt: skip
    for name, bound, side, fallback in (
        ("lloq", lloq, censored < 0, assay.values.min()),
        ("uloq", uloq, censored > 0, assay.values.max()),
    ):
        unknown = bound.isna() & side.any()
        if unknown.any():
            log.warning(
                "%s: no %s for %s; using the %s quantified value",
                source,
                name.upper(),
                ", ".join(unknown.index[unknown]),
                "lowest" if name == "lloq" else "highest",
            )
        assay.var[name] = bound.fillna(fallback)
    assay.layers = {"censored": censored}
    return assay


def _read_limits(path, analytes, source, lloq, uloq, columns=None):
    """Read per-analyte limits of quantification (analyte, lloq, uloq); cells take precedence.

    ``columns`` maps the roles analyte, lloq and uloq to the file's own column names (e.g.
    ``{lloq: lloq_pg_ml}``); names are matched ignoring case.
    """
    table, sep = read_text_table(path)
    names = {role: (columns or {}).get(role, role) for role in ("analyte", "lloq", "uloq")}
    by_lower = {str(column).lower(): column for column in table.columns}
    missing = [f"{role} ('{name}')" for role, name in names.items() if name.lower() not in by_lower]
    if missing:
        raise StratomicsInputError(
            f"{path}: the limits file for {source} has no column for {', '.join(missing)}; found "
            f"{list(table.columns)}. Name the columns under limits_columns for this assay in config.yaml "
            "(e.g. limits_columns: {lloq: lloq_pg_ml, uloq: uloq_pg_ml})."
        )
    table = table.rename(columns={by_lower[name.lower()]: role for role, name in names.items()})
    table = table.set_index("analyte")
    numbers = parse_numeric(
        table[["lloq", "uloq"]],
        source=f"limits file {path}",
        decimal_comma=uses_decimal_comma(table, sep),
    )
    numbers = numbers.reindex(analytes)
    return lloq.fillna(numbers["lloq"]), uloq.fillna(numbers["uloq"])


def read_olink_npx(path, *, source, known_ids, options) -> AssayTable:
    """Read an Olink NPX long export (kind ``olink_npx``).

    One row per sample, plate and assay; columns SampleID, OlinkID, Assay, Panel, PlateID,
    QC_Warning, LOD, NPX (UniProt and Assay_Warning optional; names matched case-insensitively).
    A sample measured on several plates gives one row per plate. Control samples (``control_pattern``)
    are excluded. A QC warning (anything but PASS) masks that sample's values on that panel; a
    sample warned on every panel has failed QC.
    """
    table, sep = read_text_table(path, sep=options.get("sep"))
    table = _rename_case_insensitive(table, OLINK_COLUMNS + ("UniProt", "Assay_Warning"))
    missing = [name for name in OLINK_COLUMNS if name not in table.columns]
    if missing:
        raise StratomicsInputError(
            f"{source}: an Olink long export needs columns {', '.join(OLINK_COLUMNS)}; missing "
            f"{', '.join(missing)} (found {', '.join(table.columns)}). Export NPX data in long "
            "format from NPX Signature/NPX Manager, or use kind: table for a wide table."
        )
    numbers = parse_numeric(
        table[["NPX", "LOD"]],
        source=source,
        na_values=options.get("na_values", ()),
        decimal_comma=uses_decimal_comma(table[["NPX", "LOD"]], sep),
    )
    control = table["SampleID"].str.contains(options.get("control_pattern", r"(?i)control"))
    excluded = pd.DataFrame(
        {"sample_id": table.loc[control, "SampleID"].unique(), "reason": "Olink control sample"}
    )
    table, numbers = table[~control], numbers[~control]
    warned = ~table["QC_Warning"].str.upper().isin({"PASS", ""})
    if "Assay_Warning" in table.columns:
        warned |= ~table["Assay_Warning"].str.upper().isin({"PASS", ""})
    long = table.assign(NPX=numbers["NPX"], LOD=numbers["LOD"], warned=warned)
    key = ["SampleID", "PlateID", "OlinkID"]
    repeated = long.duplicated(key)
    if repeated.any():
        first = long[repeated].iloc[0]
        raise StratomicsInputError(
            f"{source}: {int(repeated.sum())} rows repeat a measurement of the same sample, assay "
            f"and plate (first: sample '{first.SampleID}', {first.OlinkID} on plate "
            f"{first.PlateID}, line {int(long.index[repeated][0]) + 2}). Remove the repeated rows."
        )
    wide = long.pivot(index=["SampleID", "PlateID"], columns="OlinkID")
    runs = wide.index.to_frame(index=False)
    var_columns = ["Assay", "Panel"] + (["UniProt"] if "UniProt" in long.columns else [])
    var = long.drop_duplicates("OlinkID").set_index("OlinkID")[var_columns].sort_index()
    sample_index = pd.Index(runs["SampleID"], name="sample_id")

    def layer(name):
        return wide[name].reindex(columns=var.index).set_axis(sample_index, axis=0)

    warned_matrix = layer("warned").astype(float).fillna(0).astype(bool)
    panels_warned = _panels_fully_warned(warned_matrix, var["Panel"])
    n_panels = var["Panel"].nunique()
    qc_failed = panels_warned.apply(
        lambda panels: f"QC warning on all {n_panels} panels" if len(panels) == n_panels else ""
    )
    sample_info = pd.DataFrame(
        {"plate": runs["PlateID"].to_numpy(), "qc_failed": qc_failed.to_numpy()},
        index=sample_index,
    )
    return AssayTable(
        values=layer("NPX").astype(float),
        var=var,
        sample_info=sample_info,
        layers={"lod": layer("LOD").astype(float), "qc_warning": warned_matrix.astype(float)},
        excluded=excluded,
        uns={"separator": sep},
    )


def _panels_fully_warned(warned: pd.DataFrame, panel: pd.Series) -> pd.Series:
    """For each sample row, the panels on which every value carries a QC warning."""
    by_panel = warned.T.groupby(panel.to_numpy()).all().T
    return by_panel.apply(lambda row: tuple(row.index[row.to_numpy()]), axis=1)


def _rename_case_insensitive(table: pd.DataFrame, names) -> pd.DataFrame:
    """Rename columns that match ``names`` up to case to their canonical spelling."""
    canonical = {name.lower(): name for name in names}
    return table.rename(columns=lambda c: canonical.get(c.lower(), c))


def read_plink(prefix, *, source, known_ids=None, options=None) -> AssayTable:
    """Read PLINK 1 genotypes (.bed/.bim/.fam) as additive dosages of allele A1 (kind ``genotypes``).

    Returns
    -------
    An assay table with samples (fam IID) x SNPs (bim ID), values 0/1/2 counts of A1 and NaN where
    missing; var holds chrom, pos, a1, a2.
    """
    from bed_reader import open_bed

    prefix = Path(str(prefix).removesuffix(".bed"))
    paths = {ext: prefix.with_name(prefix.name + ext) for ext in (".bed", ".bim", ".fam")}
    for file in paths.values():
        if not file.is_file():
            raise StratomicsInputError(
                f"{source}: {file} not found; a PLINK 1 data set needs {prefix}.bed, .bim and "
                ".fam. Give the path without extension (the prefix)."
            )
    fam = _read_plink_text(paths[".fam"], ["fid", "iid", "father", "mother", "sex", "phenotype"])
    bim = _read_plink_text(paths[".bim"], ["chrom", "snp", "cm", "pos", "a1", "a2"])
    _check_bed(paths[".bed"], n_samples=len(fam), n_snps=len(bim))
    check_unique_features(pd.Index(bim["snp"]), f"{source} ({paths['.bim']})")
    with open_bed(paths[".bed"], iid_count=len(fam), sid_count=len(bim), num_threads=1) as bed:
        dosages = bed.read(dtype="float32", num_threads=1)
    var = bim.set_index("snp")[["chrom", "pos", "a1", "a2"]]
    var["pos"] = var["pos"].astype(int)
    sample_index = pd.Index(fam["iid"], name="sample_id")
    return AssayTable(
        values=pd.DataFrame(dosages, index=sample_index, columns=var.index),
        var=var,
        sample_info=pd.DataFrame({"fid": fam["fid"].to_numpy()}, index=sample_index),
    )


def _read_plink_text(path: Path, columns: list[str]) -> pd.DataFrame:
    """Read a whitespace-separated .fam or .bim file, checking its number of columns."""
    table = pd.read_csv(path, sep=r"\s+", header=None, dtype=str)
    if table.empty or table.shape[1] != len(columns):
        raise StratomicsInputError(
            f"{path}: expected {len(columns)} whitespace-separated columns "
            f"({' '.join(columns)}), found {0 if table.empty else table.shape[1]}."
        )
    return table.set_axis(columns, axis=1)


def _check_bed(path: Path, *, n_samples: int, n_snps: int) -> None:
    """Check the .bed magic number and that its size matches the .fam and .bim."""
    with open(path, "rb") as handle:
        magic = handle.read(3)
    if magic != b"\x6c\x1b\x01":
        raise StratomicsInputError(
            f"{path}: not a SNP-major PLINK 1 .bed file (magic bytes {magic.hex()}). "
            "Convert it with plink --make-bed."
        )
    expected = 3 + n_snps * ((n_samples + 3) // 4)
    actual = path.stat().st_size
    if actual != expected:
        raise StratomicsInputError(
            f"{path}: the .bed has {actual} bytes, but {n_samples} samples in the .fam and "
            f"{n_snps} SNPs in the .bim need {expected}. The three files disagree: "
            "regenerate them together (plink --make-bed)."
        )


def _wide_options(options: dict) -> dict:
    """The options of a wide-table reader taken from an assay's config entry."""
    keys = ("na_values", "orientation", "annotation_columns", "sep")
    return {key: options[key] for key in keys if key in options}


READERS = {
    "olink_npx": read_olink_npx,
    "concentration": read_concentration,
    "cell_frequency": read_cell_frequency,
    "rna_counts": read_rna_counts,
    "genotypes": read_plink,
    "table": read_table_assay,
}


def read_assay(name: str, spec: dict, known_ids: set[str]) -> AssayTable:
    """Read one assay from its config entry.

    Parameters
    ----------
    name
        The assay's name in config.yaml.
    spec
        Its config entry: ``kind``, ``path`` and the reader options.
    known_ids
        Sample and patient IDs, used to tell the orientation of wide tables.

    Returns
    -------
    The assay table.
    """
    kind = spec["kind"]
    if kind not in READERS:
        raise StratomicsInputError(
            f"assay '{name}': unknown kind '{kind}'. Use one of: {', '.join(READERS)}."
        )
    source = f"assay '{name}' ({spec['path']})"
    return READERS[kind](spec["path"], source=source, known_ids=known_ids, options=spec)

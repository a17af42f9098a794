"""Reading what real exports contain: text tables, numbers, wide tables (the readers of each assay
kind, built on these, are in :mod:`stratomics.kinds`).

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
    _check_not_binary(path, raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.warning("%s is not UTF-8; reading it as Latin-1", path)
        text = raw.decode("latin-1")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise StratomicsInputError(f"{path}: the file is empty. Export the table again.")
    if sep is None:
        header = next(line for line in text.split("\n") if line.strip())
        sep = "\t" if "\t" in header else ";" if ";" in header else ","
    header, rows = _rows_of_equal_length(path, text, sep)
    if not rows:
        raise StratomicsInputError(
            f"{path}: the file has a header but no data rows. Export the table with its data."
        )
    table = pd.DataFrame(rows, columns=range(len(header)), dtype=str)
    table.columns = [name.strip() for name in header]
    return table.apply(lambda column: column.str.strip()), sep


def _check_not_binary(path: Path, raw: bytes) -> None:
    """Stop on a spreadsheet or other binary file given where a text table belongs."""
    if raw[:4] == b"PK\x03\x04" or raw[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" or b"\x00" in raw[:4096]:
        kind = "an Excel workbook" if raw[:2] in (b"PK", b"\xd0\xcf") else "a binary file"
        raise StratomicsInputError(
            f"{path}: this is {kind}, not a delimited text table. Open it in the spreadsheet program "
            "and save it as CSV (comma or semicolon) or as tab-separated text, then point config.yaml at that file."
        )


def _rows_of_equal_length(path: Path, text: str, sep: str) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows; blank lines skipped, empty trailing fields (a trailing
    separator) ignored, and any other row with more or fewer fields than the header refused."""
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    header, rows, ragged = None, [], []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = row
            while len(header) > 1 and not header[-1].strip():
                header = header[:-1]
            continue
        while len(row) > len(header) and not row[-1].strip():
            row = row[:-1]
        if len(row) != len(header):
            ragged.append((reader.line_num, len(row)))
        rows.append(row)
    if ragged:
        shown = "; ".join(f"line {line} has {n}" for line, n in ragged[:5])
        more = f" (and {len(ragged) - 5} more rows)" if len(ragged) > 5 else ""
        raise StratomicsInputError(
            f"{path}: the header has {len(header)} fields but {shown}{more}. A separator inside a value "
            "(e.g. an unquoted comma in free text) or a missing cell shifts the columns: quote such values "
            "or export the table again with a tab or semicolon separator."
        )
    return header, rows


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
    bad = ~np.isfinite(numbers.to_numpy(dtype=float)) & ~missing.to_numpy()  # text, and inf (not a measurement)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        value = cells.iat[row, col]
        if rows_are_lines:
            where = f"column '{cells.columns[col]}' line {row + 2}"  # line 1 is the header
        else:
            where = f"line {col + 2} column '{cells.index[row]}'"
        raise StratomicsInputError(
            f"{source}: {where} has value '{value}', which is not a finite number "
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


def rename_case_insensitive(table: pd.DataFrame, names) -> pd.DataFrame:
    """Rename columns that match ``names`` up to case to their canonical spelling."""
    canonical = {name.lower(): name for name in names}
    return table.rename(columns=lambda c: canonical.get(c.lower(), c))


def wide_options(options: dict) -> dict:
    """The options of a wide-table reader taken from an assay's config entry."""
    keys = ("na_values", "orientation", "annotation_columns", "sep")
    return {key: options[key] for key in keys if key in options}



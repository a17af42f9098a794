"""The one convention for result tables: tab-separated, no index, floats to 6 significant digits.

Every TSV the workflow writes goes through :func:`write_table`, so reruns are byte-identical and
the tables of two versions can be compared with ``cmp``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: printf format of floating-point values in result tables.
FLOAT_FORMAT = "%.6g"


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a result table as TSV (no index, floats as :data:`FLOAT_FORMAT`).

    Parameters
    ----------
    table
        The table.
    path
        Where to write it.
    """
    table.to_csv(path, sep="\t", index=False, float_format=FLOAT_FORMAT)


def format_p_value(value) -> str:
    """A p-value as journals print it: 2 significant digits, '<0.001' below that, empty when missing."""
    if pd.isna(value):
        return ""
    return "<0.001" if value < 0.001 else f"{value:.2g}"


def write_word_table(table: pd.DataFrame, path: str | Path, *, title: str, note: str = "") -> None:
    """Write a table as an editable Word document (title, one header row, ``note`` below), for a manuscript.

    Columns whose name ends in ``p_value`` are printed as :func:`format_p_value`; a characteristic
    repeated on consecutive rows is printed once. Landscape when the table has more than 7 columns.

    Parameters
    ----------
    table
        The table (e.g. Table 1 of :func:`stratomics.outcomes.table_one`).
    path
        The .docx file to write.
    title, note
        Caption above the table and footnote below it.
    """
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.shared import Pt

    shown = table.copy()
    for column in shown.columns[shown.columns.str.endswith("p_value")]:
        shown[column] = shown[column].map(format_p_value)
    if "characteristic" in shown:
        shown["characteristic"] = shown["characteristic"].where(shown["characteristic"] != shown["characteristic"].shift(), "")
    shown = shown.fillna("").astype(str)
    document = Document()
    document.core_properties.created = document.core_properties.modified = pd.Timestamp("2000-01-01").to_pydatetime()
    if shown.shape[1] > 7:
        section = document.sections[0]
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = section.page_height, section.page_width
    document.add_paragraph().add_run(title).bold = True
    grid = document.add_table(rows=1 + len(shown), cols=shown.shape[1])
    for column, name in enumerate(shown.columns):
        grid.cell(0, column).paragraphs[0].add_run(name.replace("_", " ")).bold = True
    for row, values in enumerate(shown.itertuples(index=False), start=1):
        for column, value in enumerate(values):
            grid.cell(row, column).text = value
    for cell in (cell for row in grid.rows for cell in row.cells):
        for run in cell.paragraphs[0].runs:
            run.font.size = Pt(8)
    if note:
        document.add_paragraph(note).runs[0].font.size = Pt(8)
    _save_reproducibly(document, path)


def _save_reproducibly(document, path: str | Path) -> None:
    """Save a Word document with fixed zip time stamps, so that reruns give identical bytes."""
    import io
    import zipfile

    buffer = io.BytesIO()
    document.save(buffer)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w") as target:
        for entry in source.infolist():
            fixed = zipfile.ZipInfo(entry.filename, date_time=(2000, 1, 1, 0, 0, 0))
            target.writestr(fixed, source.read(entry.filename), compress_type=zipfile.ZIP_DEFLATED)


#: Rows of a large table that the HTML report embeds (the full table stays in results/).
REPORT_ROWS = 1000
#: The column that orders a table's rows for the report (smallest first), by the table's columns.
REPORT_ORDER = ("p_value", "rank")


def top_rows(table: pd.DataFrame, n: int = REPORT_ROWS) -> pd.DataFrame:
    """The ``n`` first rows by the first of :data:`REPORT_ORDER` the table has (smallest first, missing
    values last, ties in file order); the table itself when it has none of them."""
    order_by = next((column for column in REPORT_ORDER if column in table), None)
    if order_by is None:
        return table.head(n)
    return table.sort_values(order_by, kind="stable", na_position="last").head(n)

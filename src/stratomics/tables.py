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

"""Concentrations with limits of quantification (kind ``concentration``, e.g. cytokine immunoassays): censoring marks, limits, imputation below the LLOQ."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError
from stratomics.io import (AssayTable, parse_numeric, read_text_table, read_wide,
                           split_summary_rows, uses_decimal_comma, wide_options)
from stratomics.kinds.base import AssayKind
from stratomics.plot import colours
from stratomics.qc_record import Record

log = logging.getLogger(__name__)


_BELOW_LLOQ = {"half_lloq": 0.5, "lloq_sqrt2": 1 / np.sqrt(2), "lloq": 1.0}


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
            **wide_options(options),
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


def preprocess_concentration(
    adata: ad.AnnData,
    record: Record,
    *,
    below_lloq: str = "half_lloq",
    max_censored_fraction: float = 0.8,
) -> ad.AnnData:
    """Put censored concentrations at their limits, drop mostly-censored analytes, take log2.

    Parameters
    ----------
    adata
        Concentrations with ``layers["censored"]`` (-1 below LLOQ, +1 above ULOQ) and
        ``var["lloq"]``, ``var["uloq"]``. Measured values <= 0 count as below the LLOQ.
    record
        Where parameters and removals are recorded.
    below_lloq
        Value for results below the LLOQ: "half_lloq" (LLOQ/2), "lloq_sqrt2" (LLOQ/sqrt 2), "lloq".
    max_censored_fraction
        Analytes with a larger fraction of censored values are removed.

    Returns
    -------
    log2 concentrations, with the censoring flags kept in ``layers["censored"]``.
    """
    values = adata.X.copy()
    censored = adata.layers["censored"].copy()
    censored[values <= 0] = -1
    lloq = adata.var["lloq"].to_numpy() * _BELOW_LLOQ[below_lloq]
    values = np.where(censored < 0, lloq, np.where(censored > 0, adata.var["uloq"].to_numpy(), values))
    observed = np.isfinite(values)
    result = ad.AnnData(np.log2(values), obs=adata.obs.copy(), var=adata.var.copy())
    result.layers["censored"] = censored
    result.var["below_lloq_fraction"] = (censored < 0).sum(axis=0) / np.maximum(observed.sum(0), 1)
    result.var["above_uloq_fraction"] = (censored > 0).sum(axis=0) / np.maximum(observed.sum(0), 1)
    record.add_metrics(result.var[["below_lloq_fraction", "above_uloq_fraction"]])
    record.params.update(below_lloq=below_lloq, max_censored_fraction=max_censored_fraction,
                         transform="log2", unit="log2 concentration")  # fmt: skip
    fraction = result.var["below_lloq_fraction"] + result.var["above_uloq_fraction"]
    return record.drop(
        result, (fraction > max_censored_fraction).to_numpy(),
        f"more than {max_censored_fraction:.0%} of values outside the limits of quantification",
    )  # fmt: skip


def _censored_panel(ax, *, adata, qc, **_):
    order = qc.sort_values("below_lloq_fraction")
    ax.barh(order["feature"], order["below_lloq_fraction"], color=colours()[0],
            label="< LLOQ")  # fmt: skip
    ax.barh(order["feature"], order["above_uloq_fraction"], left=order["below_lloq_fraction"],
            color=colours()[1], label="> ULOQ")  # fmt: skip
    ax.axvline(adata.uns["preprocess"]["max_censored_fraction"], color=colours()[3],
               ls="--", lw=1)  # fmt: skip
    ax.tick_params(axis="y", labelsize=5)
    ax.set(title="Censored values", xlabel="fraction of samples")
    ax.legend(frameon=False, fontsize=6)


KIND = AssayKind(
    name="concentration",
    read=read_concentration,
    preprocess=preprocess_concentration,
    options={
        "limits": {"type": "string", "description": "file with columns analyte, lloq, uloq (or as named in limits_columns)."},
        "limits_columns": {"type": "object", "additionalProperties": False, "properties": {"analyte": {"type": "string"}, "lloq": {"type": "string"}, "uloq": {"type": "string"}}, "description": "the limits file's own column names, e.g. {lloq: lloq_pg_ml, uloq: uloq_pg_ml}; matched ignoring case."},
        "below_lloq": {"enum": ["half_lloq", "lloq_sqrt2", "lloq"], "description": "value given to results below the LLOQ."},
        "max_censored_fraction": {"type": "number", "minimum": 0, "maximum": 1, "description": "drop analytes with more censored values."},
    },
    preprocess_options=("below_lloq", "max_censored_fraction"),
    qc_panels=(_censored_panel,),
)  # fmt: skip

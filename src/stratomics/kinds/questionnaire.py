"""Patient-reported outcome questionnaires (kind ``questionnaire``): item responses scored per instrument.

The file has one row per patient (or sample) and one column per item. Each instrument of the
assay's ``instruments`` option names its items, the reverse-coded ones, the response range, the
scoring rule (``mean`` of the answered items, or ``sum``: that mean times the number of items, the
usual prorated sum) and the fewest items that must be answered for a score. A response that is not
a number, or lies outside the range, is invalid: it is left empty, never coerced, and reported per
patient and item (in the ingest log and in ``results/qc/preprocess_removed.tsv``).
"""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError
from stratomics.io import DEFAULT_NA_VALUES, AssayTable, read_text_table
from stratomics.kinds.base import AssayKind
from stratomics.qc_record import Record

log = logging.getLogger(__name__)

#: Codes of the ``invalid`` layer.
NOT_A_NUMBER, OUT_OF_RANGE = 1.0, 2.0


def _items(instruments: dict) -> dict[str, tuple[str, dict]]:
    """Item -> (instrument, its definition), in the order the instruments list them."""
    return {item: (name, spec) for name, spec in instruments.items() for item in spec["items"]}


def read_questionnaire(path, *, source, known_ids, options) -> AssayTable:
    """Read item responses (kind ``questionnaire``); invalid responses become NaN, flagged in ``layers["invalid"]``.

    The first column (or ``id_column``) holds the sample or patient IDs; every item of every
    instrument must be a column.
    """
    table, _ = read_text_table(path, sep=options.get("sep"))
    id_column = options.get("id_column", table.columns[0])
    items = _items(options["instruments"])
    missing = [item for item in items if item not in table.columns]
    if id_column not in table.columns or missing:
        what = f"ID column '{id_column}'" if id_column not in table.columns else f"items {', '.join(missing)}"
        raise StratomicsInputError(
            f"{path}: {source} has no {what} (columns: {', '.join(table.columns[:12])}). Name the columns as the "
            "instrument definition in config.yaml does, or fix the definition."
        )
    cells = table.set_index(id_column)[list(items)]
    empty = cells.isin(set(DEFAULT_NA_VALUES) | set(options.get("na_values", [])))
    numbers = cells.mask(empty).apply(lambda column: pd.to_numeric(column.str.replace(",", "."), errors="coerce"))
    low = pd.Series({item: spec["range"][0] for item, (_, spec) in items.items()})
    high = pd.Series({item: spec["range"][1] for item, (_, spec) in items.items()})
    text = ~empty & numbers.isna()
    outside = numbers.lt(low) | numbers.gt(high)
    invalid = pd.DataFrame(np.where(text, NOT_A_NUMBER, np.where(outside, OUT_OF_RANGE, 0.0)), index=cells.index,
                           columns=cells.columns)  # fmt: skip
    _warn_invalid(source, cells, invalid, low, high)
    var = pd.DataFrame({"instrument": [items[i][0] for i in items], "reverse": [i in items[i][1].get("reverse", [])
                        for i in items], "low": low, "high": high}, index=list(items))  # fmt: skip
    return AssayTable(values=numbers.mask(invalid > 0).astype(float), var=var,
                      sample_info=pd.DataFrame(index=cells.index), layers={"invalid": invalid},
                      uns={"invalid_responses": int((invalid > 0).sum().sum())})  # fmt: skip


def _warn_invalid(source: str, cells: pd.DataFrame, invalid: pd.DataFrame, low, high) -> None:
    """One warning naming the first invalid responses (ID, item, value, why) and their count."""
    where = invalid.stack()
    where = where[where > 0]
    if where.empty:
        return
    shown = [f"{sample} {item} = '{cells.at[sample, item]}' ("
             f"{'not a number' if code == NOT_A_NUMBER else f'outside {low[item]:g}-{high[item]:g}'})"
             for (sample, item), code in where.head(5).items()]  # fmt: skip
    log.warning("%s: %d invalid response(s), left empty (not coerced): %s%s. Each is listed per patient and item "
                "in results/qc/preprocess_removed.tsv", source, len(where), "; ".join(shown),
                ", ..." if len(where) > 5 else "")  # fmt: skip


def score_instruments(adata: ad.AnnData, instruments: dict) -> pd.DataFrame:
    """Score every instrument for every patient.

    Parameters
    ----------
    adata
        Item responses (NaN where unanswered or invalid), ``var["low"]``/``var["high"]`` per item.
    instruments
        Name -> {items, reverse, range, score (mean or sum), min_items}.

    Returns
    -------
    Patients x instruments; NaN where fewer than ``min_items`` items were answered.
    """
    scores = {}
    for name, spec in instruments.items():
        responses = adata[:, spec["items"]].X.astype(float)
        low, high = spec["range"]
        reverse = np.isin(spec["items"], spec.get("reverse", []))
        responses = np.where(reverse, low + high - responses, responses)
        answered = np.isfinite(responses).sum(axis=1)
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(np.where(answered[:, None] > 0, responses, 0.0), axis=1)
        score = mean * (len(spec["items"]) if spec.get("score", "mean") == "sum" else 1)
        scores[name] = np.where(answered >= spec.get("min_items", len(spec["items"])), score, np.nan)
    return pd.DataFrame(scores, index=adata.obs_names)


def preprocess_questionnaire(adata: ad.AnnData, record: Record, *, instruments: dict | None = None,
                             keep_items: bool = False) -> ad.AnnData:  # fmt: skip
    """Score the instruments (and keep the items as ordinal features when asked); record invalid responses.

    ``instruments`` is the assay's definition (required; see :func:`score_instruments`).

    Returns
    -------
    One feature per instrument score (``var["feature_type"]`` score), then the items if ``keep_items``.
    """
    if not instruments:
        raise StratomicsInputError(f"assay '{record.assay}': a questionnaire needs its instruments (config option "
                                   "instruments: name -> {items, range, ...}).")  # fmt: skip
    invalid = pd.DataFrame(adata.layers["invalid"], index=adata.obs_names, columns=adata.var_names).stack()
    for (patient, item), code in invalid[invalid > 0].items():
        reason = ("not a number" if code == NOT_A_NUMBER else
                  f"outside the range {adata.var.at[item, 'low']:g}-{adata.var.at[item, 'high']:g}")  # fmt: skip
        record.removed.append({"assay": record.assay, "axis": "value", "id": f"{patient}:{item}",
                               "reason": f"invalid response ({reason}), left empty"})  # fmt: skip
    scores = score_instruments(adata, instruments)
    unscored = scores.isna().sum()
    for name, count in unscored[unscored > 0].items():
        log.warning("assay '%s': %d patient(s) have no %s score (fewer than %d of its %d items answered validly)",
                    record.assay, count, name, instruments[name].get("min_items", len(instruments[name]["items"])),
                    len(instruments[name]["items"]))  # fmt: skip
    var = pd.DataFrame({"instrument": scores.columns, "feature_type": "score"}, index=scores.columns)
    result = ad.AnnData(scores.to_numpy(float), obs=adata.obs.copy(), var=var)
    if keep_items:
        items = ad.AnnData(adata.X.astype(float), obs=adata.obs.copy(),
                           var=adata.var[["instrument"]].assign(feature_type="item"))  # fmt: skip
        result = ad.concat([result, items], axis=1, merge="first")
    record.params.update(instruments=instruments, keep_items=keep_items, unit="score points",
                         invalid_responses=int((invalid > 0).sum()))  # fmt: skip
    record.add_metrics(pd.DataFrame({"unscored_patients": unscored.astype(float)}))
    return result


INSTRUMENT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["items", "range"],
    "properties": {
        "items": {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "the item columns."},
        "reverse": {"type": "array", "items": {"type": "string"}, "description": "reverse-coded items (scored low + high - response)."},
        "range": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "lowest and highest valid response, e.g. [1, 5]."},
        "score": {"enum": ["mean", "sum"], "description": "mean of the answered items, or their prorated sum (mean x number of items); default mean."},
        "min_items": {"type": "integer", "minimum": 1, "description": "fewest valid answers for a score (default: every item)."},
    },
}  # fmt: skip

KIND = AssayKind(
    name="questionnaire",
    read=read_questionnaire,
    preprocess=preprocess_questionnaire,
    options={
        "instruments": {"type": "object", "minProperties": 1, "additionalProperties": INSTRUMENT_SCHEMA, "description": "instrument name -> {items, reverse, range, score, min_items}."},
        "keep_items": {"type": "boolean", "description": "also keep the items as ordinal features (default: scores only)."},
        "id_column": {"type": "string", "description": "the column of sample or patient IDs (default: the first)."},
    },
    preprocess_options=("instruments", "keep_items"),
    shared_options=("sep", "na_values", "batch_correction"),
    required_options=("instruments",),
    integrated_by_default=False,
)  # fmt: skip

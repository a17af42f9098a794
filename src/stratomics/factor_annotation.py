"""What the integrated factors mean: the features that load on them and the patient characteristics
and outcomes they go with (the views MOFA+ users publish next to the variance explained).

- :func:`factor_features`: each feature's Pearson correlation with each factor over the patients
  who have the feature (defined for every integration method and comparable across assays), with
  the method's own weight where it has one (MOFA+ weights, MFA/PCA loadings).
- :func:`factor_associations`: each factor against each characteristic and outcome, on one scale
  from -1 to 1: Spearman's rho for numbers, two-level and ordered columns, eta (the square root of
  the one-way ANOVA R^2, unsigned) for categories with more levels, Somers' D (2 C - 1, positive
  when a higher factor goes with earlier events) with the Cox model's Wald p-value for follow-up
  times. These are unadjusted, descriptive associations with Benjamini-Hochberg q-values over the
  whole table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from stratomics.associate import adjust_p, feature_names
from stratomics.outcome_types import ordinal_codes, outcome_type

__all__ = ["ASSOCIATION_COLUMNS", "FEATURE_COLUMNS", "factor_associations", "factor_features",
           "masked_correlation", "method_weights"]  # fmt: skip

#: Columns of the feature table.
FEATURE_COLUMNS = ["factor", "assay", "feature", "feature_name", "correlation", "weight", "n", "rank"]
#: Columns of the association table.
ASSOCIATION_COLUMNS = ["factor", "variable", "kind", "measure", "association", "p_value", "q_value", "n", "note"]
#: Fewest patients with both values for an association to be computed.
MIN_PATIENTS = 10


def masked_correlation(values: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of every column of ``values`` (NaN = missing) with every column of ``scores``
    over the rows where both are known, without a loop over features.

    Parameters
    ----------
    values
        Patients x features, NaN where missing.
    scores
        Patients x factors, no missing values.

    Returns
    -------
    Features x factors correlations (NaN where fewer than 3 pairs or no spread) and the number of
    pairs per feature.
    """
    known = ~np.isnan(values)
    x, mask = np.where(known, values, 0.0), known.astype(float)
    n = mask.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sum_x, sum_z = x.sum(axis=0), mask.T @ scores
        covariance = x.T @ scores - sum_x[:, None] * sum_z / n[:, None]
        variance_x = (x**2).sum(axis=0) - sum_x**2 / n
        variance_z = mask.T @ scores**2 - sum_z**2 / n[:, None]
        correlation = covariance / np.sqrt(variance_x[:, None] * variance_z)
    correlation[(n < 3) | ~(variance_x > 1e-12 * np.maximum(n, 1)), :] = np.nan
    return np.clip(correlation, -1.0, 1.0), n.astype(int)


def factor_features(mdata, scores: np.ndarray, assays: list[str], *, weights: dict | None = None) -> pd.DataFrame:
    """Every feature's correlation with every factor, ranked within each factor by its absolute value.

    Parameters
    ----------
    mdata
        The cohort with the integrated assays.
    scores
        Patients (``mdata.obs_names``) x factors, NaN rows for patients without any assay.
    assays
        The integrated assays.
    weights
        Per assay, the method's features x factors weights (:func:`method_weights`); None: none.

    Returns
    -------
    One row per factor and feature (:data:`FEATURE_COLUMNS`); factors numbered from 1.
    """
    tables = []
    patients = pd.Index(mdata.obs_names)
    for assay in assays:
        adata = mdata[assay]
        values = adata.to_df().astype(float).rename(columns=str)
        rows = patients.get_indexer(values.index)
        keep = (rows >= 0) & ~np.isnan(scores[np.maximum(rows, 0)]).any(axis=1)
        correlation, n = masked_correlation(values.to_numpy(dtype=float)[keep], scores[rows[keep]])
        table = pd.DataFrame(correlation, index=values.columns, columns=range(1, scores.shape[1] + 1))
        table = table.rename_axis(index="feature", columns="factor").stack(future_stack=True).rename("correlation")
        table = table.reset_index().assign(assay=assay, n=np.repeat(n, scores.shape[1]))
        table["feature_name"] = table["feature"].map(feature_names(adata))
        table["weight"] = _weight_column(table, (weights or {}).get(assay))
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    order = table.assign(size=-table["correlation"].abs()).sort_values(["factor", "size", "assay", "feature"])
    table = order.drop(columns="size").reset_index(drop=True)
    table["rank"] = table.groupby("factor").cumcount() + 1
    return table[FEATURE_COLUMNS]


def _weight_column(table: pd.DataFrame, weights: pd.DataFrame | None) -> np.ndarray:
    """The method's weight of each (feature, factor) row; NaN where the method has none."""
    if weights is None:
        return np.full(len(table), np.nan)
    stacked = weights.set_axis(range(1, weights.shape[1] + 1), axis=1).stack()
    return stacked.reindex(pd.MultiIndex.from_arrays([table["feature"], table["factor"]])).to_numpy()


def method_weights(model) -> dict | None:
    """The integration method's per-assay feature weights (features x factors), or None for a method
    without feature weights (SNF)."""
    return model.feature_weights() if hasattr(model, "feature_weights") else None


def factor_associations(obs: pd.DataFrame, scores: np.ndarray, *, characteristics: list[str],
                        outcomes: dict) -> pd.DataFrame:  # fmt: skip
    """Each factor against each patient characteristic and outcome.

    Parameters
    ----------
    obs
        Patient table (rows aligned with ``scores``).
    scores
        Patients x factors, NaN rows for patients without any assay.
    characteristics
        Sample-sheet columns (e.g. the Table 1 columns); absent ones and outcome columns are skipped.
    outcomes
        The config's outcomes (name -> spec).

    Returns
    -------
    One row per factor and variable (:data:`ASSOCIATION_COLUMNS`); a variable that cannot be
    related (fewer than :data:`MIN_PATIENTS` patients, one level) has NaN values and a note.
    """
    rows = []
    outcome_columns = {column for name, spec in outcomes.items() for column in outcome_type(spec, name).columns(name, spec)}
    for column in characteristics:
        if column in obs and column not in outcome_columns:
            rows += _column_rows(obs[column], scores, variable=column, kind="characteristic")
    for name, spec in outcomes.items():
        otype = outcome_type(spec, name)
        columns = otype.columns(name, spec)
        if otype.time_to_event:
            rows += _survival_rows(obs[columns[0]], obs[columns[1]], scores, variable=name)
        else:
            values = ordinal_codes(obs[columns[0]], spec.get("levels")) if otype.model == "ordinal" else obs[columns[0]]
            rows += _column_rows(values, scores, variable=name, kind="outcome", ordered=otype.model == "ordinal")
    table = pd.DataFrame(rows, columns=ASSOCIATION_COLUMNS)
    table["q_value"] = adjust_p(table["p_value"].to_numpy(dtype=float))
    return table


def _column_rows(values: pd.Series, scores: np.ndarray, *, variable: str, kind: str,
                 ordered: bool = False) -> list[dict]:  # fmt: skip
    """Rows of one characteristic or non-survival outcome against every factor."""
    numeric = pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype)
    levels = sorted(values.dropna().unique().tolist(), key=str)
    measure = "Spearman rho" if numeric or ordered or len(levels) == 2 else "eta"
    if measure == "Spearman rho" and not numeric:
        variable = f"{variable} ({levels[1]} vs {levels[0]})"
        values = (values == levels[1]).astype(float).where(values.notna())
    rows = []
    for factor in range(scores.shape[1]):
        known = values.notna().to_numpy() & ~np.isnan(scores[:, factor])
        x, z = values.to_numpy()[known], scores[known, factor]
        row = {"factor": factor + 1, "variable": variable, "kind": kind, "measure": measure, "n": int(known.sum())}
        if known.sum() < MIN_PATIENTS or len(set(x.tolist())) < 2:
            rows.append({**row, "association": np.nan, "p_value": np.nan,
                         "note": f"{known.sum()} patients with {len(set(x.tolist()))} distinct value(s)"})  # fmt: skip
            continue
        association, p_value = _spearman(x, z) if measure == "Spearman rho" else _eta(x, z)
        rows.append({**row, "association": association, "p_value": p_value, "note": ""})
    return rows


def _spearman(x: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Spearman's rho and its p-value."""
    result = stats.spearmanr(x.astype(float), z)
    return float(result.statistic), float(result.pvalue)


def _eta(x: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Eta (square root of the between-group share of the sum of squares) and the one-way ANOVA p-value."""
    groups = [z[x == level] for level in pd.unique(x)]
    between = sum(len(group) * (group.mean() - z.mean()) ** 2 for group in groups)
    return float(np.sqrt(between / np.sum((z - z.mean()) ** 2))), float(stats.f_oneway(*groups).pvalue)


def _survival_rows(time: pd.Series, event: pd.Series, scores: np.ndarray, *, variable: str) -> list[dict]:
    """Rows of one follow-up time against every factor: Somers' D (Harrell's C as lifelines) and the
    Cox model's Wald p-value (Efron ties, as lifelines' CoxPHFitter), all factors in one pass."""
    from stratomics.associate.cox import fit_cox_predictor
    from stratomics.prediction_metrics import concordance_index

    followed = time.notna().to_numpy() & event.notna().to_numpy()
    time, event, scores = time.to_numpy(float)[followed], event.to_numpy(float)[followed], scores[followed]
    p_values = fit_cox_predictor(time, event, scores, covariates=np.empty((len(time), 0)),
                                 threads=1).table(range(scores.shape[1]))["p_value"].to_numpy()  # fmt: skip
    rows = []
    for factor in range(scores.shape[1]):
        known = ~np.isnan(scores[:, factor])
        row = {"factor": factor + 1, "variable": variable, "kind": "outcome", "measure": "Somers' D",
               "n": int(known.sum())}  # fmt: skip
        if known.sum() < MIN_PATIENTS or event[known].sum() == 0:
            rows.append({**row, "association": np.nan, "p_value": np.nan,
                         "note": f"{known.sum()} patients, {int(event[known].sum())} events"})  # fmt: skip
            continue
        harrell = concordance_index(time[known], event[known], scores[known, factor], weights=np.ones((1, known.sum())))[0]
        rows.append({**row, "association": 2 * harrell - 1, "p_value": float(p_values[factor]), "note": ""})
    return rows

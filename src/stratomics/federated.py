"""Disclosure control for what a site exports: only aggregates, no cell below a minimum count.

Every exported table passes through :func:`suppress_small_cells`: a count below ``min_count`` (default
5; DataSHIELD's default is 3) is blanked together with the values computed from it, and where a
table carries its own total, one more cell of the same column is blanked so the suppressed one cannot
be recovered by subtraction (secondary suppression). Each blanked cell is listed in the disclosure
log. :func:`scan_export` refuses an export folder that contains a patient or sample identifier, an
identifier column, or a count below the minimum.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError
from stratomics.outcome_types import outcome_type
from stratomics.tables import write_table

logger = logging.getLogger(__name__)

IDENTIFIER_COLUMNS = {"patient_id", "sample_id", "barcode", "subject_id"}
LOG_COLUMNS = ["file", "row", "column", "reason"]


def suppress_small_cells(table: pd.DataFrame, counts: dict[str, list[str]], *, min_count: int, file: str,
                         key: list[str], total_row: pd.Series | None = None):  # fmt: skip
    """Blank counts below ``min_count`` and the values that depend on them.

    Parameters
    ----------
    table
        The aggregate table.
    counts
        Count column -> the columns computed from it (blanked with it).
    min_count
        Smallest count that may be shown.
    file
        Name of the exported file, for the log.
    key
        Columns that name a row in the log.
    total_row
        Boolean mask of rows that are totals of the others: where a column has exactly one blanked
        cell among the other rows, the smallest remaining cell of that column is blanked too.

    Returns
    -------
    The suppressed table and its disclosure-log rows.
    """
    table = table.copy()
    log = []

    def blank(rows, column, reason):
        for row in rows:
            log.append({"file": file, "row": "/".join(str(table.at[row, k]) for k in key), "column": column,
                        "reason": reason})  # fmt: skip
        table.loc[rows, [column, *counts[column]]] = np.nan

    for column in counts:
        values = pd.to_numeric(table[column], errors="coerce")
        small = table.index[values.notna() & (values < min_count)]
        blank(small, column, f"count below {min_count}")
        if total_row is not None:
            inner = table.index[~total_row.reindex(table.index, fill_value=False)]
            hidden = inner.intersection(small)
            if len(hidden) == 1:
                shown = values[inner.difference(hidden)].dropna()
                if not shown.empty:
                    blank([shown.idxmin()], column, "secondary: would reveal a suppressed cell from the total")
    return table, log


def scan_export(folder: str | Path, identifiers, *, min_count: int, count_columns: set[str]) -> None:
    """Refuse an export that could identify a patient.

    Parameters
    ----------
    folder
        The export folder (every file in it is read as text).
    identifiers
        Patient and sample identifiers of the site: none may appear in any file.
    min_count
        Smallest count allowed in the ``count_columns`` of any TSV.
    count_columns
        Columns holding patient counts.

    Raises
    ------
    StratomicsInputError
        Naming the file and what was found.
    """
    tokens = {str(i) for i in identifiers}
    numeric = {token for token in tokens if _is_number(token)}
    if numeric:  # "5" in "a count below 5" is not patient 5: such IDs are kept out by the identifier-column check
        logger.warning("export scan: %d patient or sample IDs are plain numbers (e.g. '%s'); they cannot be told apart "
                    "from counts in the text, so the scan looks for them only as identifier columns. Prefer IDs "
                    "with letters", len(numeric), min(numeric, key=lambda token: (len(token), token)))  # fmt: skip
    tokens -= numeric
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        words = set(text.replace("\t", " ").replace(",", " ").replace('"', " ").split())
        found = sorted(words & tokens)
        if found:
            raise StratomicsInputError(f"export {path}: contains the identifier '{found[0]}'; nothing may be sent.")
        if path.suffix != ".tsv":
            continue
        table = pd.read_csv(path, sep="\t")
        identifying = IDENTIFIER_COLUMNS & set(table.columns)
        if identifying:
            raise StratomicsInputError(f"export {path}: has the identifier column '{sorted(identifying)[0]}'.")
        for column in count_columns & set(table.columns):
            values = pd.to_numeric(table[column], errors="coerce")
            if (values < min_count).any():
                raise StratomicsInputError(
                    f"export {path}: column '{column}' shows a count of {int(values[values < min_count].iloc[0])}, "
                    f"below the minimum of {min_count}."
                )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


ESTIMATE_VALUES = ["estimate", "std_error", "ci_low", "ci_high", "statistic", "p_value"]
COUNT_COLUMNS = {"n", "n_events", "n_without_event", "n_patients", "at_risk", "n_subgroup"}


def feature_scales(mdata, assays: list[str]) -> dict[str, pd.Series]:
    """Per-feature SDs of the whole (discovery) cohort, shipped to sites so estimates share a scale."""
    from stratomics.associate import tested_layer

    return {name: mdata[name].to_df(layer=tested_layer(mdata[name])).std(ddof=1) for name in assays}


def _feature_estimates(mdata, subgroups, outcomes, covariates, scales):
    from stratomics.associate import outcome_biomarkers

    tables = []
    for assay, scale in scales.items():
        for name, spec in outcomes.items():
            try:
                tables.append(outcome_biomarkers(mdata[assay], mdata.obs, name, spec=spec, covariates=covariates, assay=assay, scale=scale))
            except StratomicsInputError as err:  # too few patients at this site for the model
                logger.warning("site export: %s ~ %s not estimable here: %s", assay, name, err)
    table = pd.concat(tables, ignore_index=True)
    table["n_without_event"] = table["n"] - table["n_events"]
    columns = ["assay", "feature", "outcome_or_contrast", "model", "effect", *ESTIMATE_VALUES, "n", "n_events",
               "n_without_event"]  # fmt: skip
    return table[columns]


def subgroup_counts(obs: pd.DataFrame, subgroups: pd.Series, outcomes: dict) -> pd.DataFrame:
    """Patients, and patients with and without the event of each binary or survival outcome, per
    subgroup and for all assigned patients (row ``all``); an outcome without events adds no column."""
    rows = []
    for level, members in [*obs.groupby(subgroups, observed=True), ("all", obs[subgroups.notna()])]:
        row = {"subgroup": level, "n_patients": len(members)}
        for name, spec in outcomes.items():
            event = outcome_type(spec, name).event_column(name, spec)
            if event is None:  # a continuous outcome has no events to count
                continue
            known = members[event].dropna()
            row[f"{name}_events"], row[f"{name}_without_event"] = int(known.sum()), int((known == 0).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def _km_at_times(obs, subgroups, outcomes, times):
    from lifelines import KaplanMeierFitter

    rows = []
    for name, spec in outcomes.items():
        if not outcome_type(spec, name).time_to_event:
            continue
        for level, members in obs.groupby(subgroups, observed=True):
            data = members[[spec["time"], spec["event"]]].dropna()
            fitter = KaplanMeierFitter().fit(data[spec["time"]], data[spec["event"]])
            for time in times:
                at_risk = int((data[spec["time"]] >= time).sum())
                survival = float(fitter.survival_function_at_times(time).iloc[0])
                rows.append({"outcome": name, "subgroup": level, "time": time, "at_risk": at_risk,
                             "survival": survival})  # fmt: skip
    return pd.DataFrame(rows, columns=["outcome", "subgroup", "time", "at_risk", "survival"])


def _feature_summary(mdata, subgroups, assays):
    rows = []
    for assay in assays:
        values = mdata[assay].to_df()
        groups = subgroups.reindex(values.index)
        for level in groups.dropna().unique():
            part = values[groups == level]
            rows.append(pd.DataFrame({"assay": assay, "feature": values.columns, "subgroup": level,
                                      "n": part.notna().sum().to_numpy(), "mean": part.mean().to_numpy(),
                                      "variance": part.var(ddof=1).to_numpy()}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def site_export(mdata, model, *, outcomes: dict, covariates: list[str], folder: str | Path,
                scales: dict[str, pd.Series] | None = None, min_count: int = 5, km_times=(90, 180, 365)) -> pd.DataFrame:  # fmt: skip
    """Analyse one site's patients and write only disclosure-controlled aggregates.

    Parameters
    ----------
    mdata
        The site's preprocessed cohort.
    model
        The shipped subgroup model (:func:`stratomics.subgroups.strip_patient_data`).
    outcomes, covariates
        As in the config; covariates that do not vary within the site (the site itself) are dropped.
    scales
        Whole-cohort feature SDs per assay (:func:`feature_scales`; default: those shipped in the
        model); assays the site has for fewer than ``min_count`` patients are left out.
    folder
        Export folder to write.
    min_count
        Smallest count that may leave the site.
    km_times
        Times at which Kaplan-Meier estimates are exported.

    Returns
    -------
    The disclosure log (also written as ``disclosure_log.tsv``).
    """
    from stratomics.outcomes import subgroup_outcomes
    from stratomics.subgroups import assign_patients

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scales = model.scales if scales is None else scales
    scales = {assay: scale for assay, scale in scales.items() if assay in mdata.mod and mdata[assay].n_obs >= min_count}
    obs = mdata.obs
    varying = [c for c in covariates if obs[c].nunique(dropna=True) > 1]
    assigned = assign_patients(model, mdata).set_index("patient_id")["subgroup"].replace("", np.nan)
    obs = obs.assign(subgroup=pd.Categorical(assigned.reindex(obs.index), categories=sorted(assigned.dropna().unique())))
    subgroups = obs["subgroup"]
    estimate_counts = {"n": ESTIMATE_VALUES, "n_events": ESTIMATE_VALUES, "n_without_event": ESTIMATE_VALUES}
    counts = subgroup_counts(obs, subgroups, outcomes)
    sizes = counts.set_index("subgroup")["n_patients"]
    effects = subgroup_outcomes(obs, outcomes, varying, n_permutations=0)
    effects["n_subgroup"] = effects["term"].str.extract(r"\[(.*)\]")[0].map(sizes).to_numpy()
    tables = {
        "feature_estimates.tsv": (_feature_estimates(mdata, subgroups, outcomes, varying, scales), estimate_counts,
                                  ["assay", "feature", "outcome_or_contrast"], None),
        "subgroup_counts.tsv": (counts, {c: [] for c in counts.columns if c != "subgroup"}, ["subgroup"],
                                counts["subgroup"] == "all"),
        "subgroup_effects.tsv": (effects[["outcome", "model", "term", "estimate", "std_error", "n_subgroup"]],
                                 {"n_subgroup": ["estimate", "std_error"]}, ["outcome", "term"], None),
        "kaplan_meier.tsv": (_km_at_times(obs, subgroups, outcomes, km_times), {"at_risk": ["survival"]},
                             ["outcome", "subgroup", "time"], None),
        "subgroup_feature_summary.tsv": (_feature_summary(mdata, subgroups, list(scales)), {"n": ["mean", "variance"]},
                                         ["assay", "feature", "subgroup"], None),
    }  # fmt: skip
    log = []
    for name, (table, count_map, key, total) in tables.items():
        safe, rows = suppress_small_cells(table, count_map, min_count=min_count, file=name, key=key, total_row=total)
        write_table(safe, folder / name)
        log += rows
    log = pd.DataFrame(log, columns=LOG_COLUMNS)
    write_table(log, folder / "disclosure_log.tsv")
    identifiers = list(mdata.obs_names) + [i for name in mdata.mod for i in mdata[name].obs_names]
    scan_export(folder, identifiers, min_count=min_count,
                count_columns=COUNT_COLUMNS | {c for c in counts.columns if c.endswith(("_events", "_event"))})  # fmt: skip
    return log


def combine_exports(folders: dict[str, str | Path], *, fdr_method: str = "fdr_bh") -> dict[str, pd.DataFrame]:
    """Meta-analyse the site exports (central mode).

    Parameters
    ----------
    folders
        Site name -> its export folder.
    fdr_method
        See :func:`stratomics.meta.meta_analyse`.

    Returns
    -------
    "features": per-feature meta-analysis (assay, feature, outcome_or_contrast, model and
    :data:`stratomics.meta.META_COLUMNS`); "subgroups": pooled subgroup hazard / odds ratios;
    "site_estimates": the site rows that went in (for forest plots).
    """
    from stratomics.meta import meta_analyse

    def read(name):
        tables = []
        for site, folder in folders.items():
            path = Path(folder) / name
            if not path.is_file():
                raise StratomicsInputError(f"meta: site {site} has no {name} in {folder}; rerun its site export.")
            tables.append(pd.read_csv(path, sep="\t").assign(site=site))
        return pd.concat(tables, ignore_index=True)

    estimates = read("feature_estimates.tsv")
    effects = read("subgroup_effects.tsv").rename(columns={"n_subgroup": "n", "outcome": "outcome_or_contrast"})
    return {"features": meta_analyse(estimates, ["assay", "feature", "outcome_or_contrast", "model"], fdr_method=fdr_method),
            "subgroups": meta_analyse(effects, ["outcome_or_contrast", "model", "term"], fdr_method=fdr_method),
            "site_estimates": estimates}  # fmt: skip

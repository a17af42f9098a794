"""Disclosure control for what a site exports: only aggregates, no cell below a minimum count.

One suppression plan covers every table of an export (:func:`subgroup_plan`): a subgroup, or an
outcome's events in a subgroup, below ``min_count`` (default 5; DataSHIELD's default is 3) is
hidden in every table, with complementary cells hidden until the total minus the shown cells
holds at least ``min_count`` patients, so no difference across tables reveals a hidden cell.
Per-feature counts are floored to a multiple of ``min_count``; Kaplan-Meier estimates are shown
only where the risk set and the events since the last shown time reach it; means need as many
values not censored at a limit of quantification. Each blanked cell is listed in the disclosure
log. :func:`scan_export` refuses an export folder that contains a patient or sample identifier, an
identifier column, or a count below the minimum. Repeated releases are checked by
:mod:`stratomics.releases`.
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
                         key: list[str]):  # fmt: skip
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

    Returns
    -------
    The suppressed table and its disclosure-log rows.
    """
    table = table.copy()
    log = []
    for column, dependent in counts.items():
        values = pd.to_numeric(table[column], errors="coerce")
        small = table.index[values.notna() & (values < min_count)]
        log += blank_cells(table, small, [column, *dependent], file=file, key=key, reason=f"{column} below {min_count}")
    return table, log


def blank_cells(table: pd.DataFrame, rows, columns: list[str], *, file: str, key: list[str], reason: str) -> list[dict]:
    """Blank ``columns`` of ``rows`` in place (rows already blank are skipped); return their log rows."""
    shown = [row for row in rows if table.loc[row, columns].notna().any()]
    table.loc[shown, columns] = np.nan
    return [{"file": file, "row": "/".join(str(table.at[row, k]) for k in key), "column": columns[0], "reason": reason}
            for row in shown]  # fmt: skip


def protected_cells(cells: pd.DataFrame, *, min_count: int, hidden: dict | None = None) -> dict:
    """Which cells of a set that sums to a published total must be hidden (one plan for every table).

    A cell (row) with any count below ``min_count`` is hidden (primary suppression). The hidden
    cells together are the total minus the shown ones, so while their sum is below ``min_count`` in
    any column, the shown cell with the smallest count is hidden too (complementary suppression):
    no difference of published numbers then isolates fewer than ``min_count`` patients.

    Parameters
    ----------
    cells
        One row per cell (e.g. per subgroup), one column per count.
    min_count
        Smallest count that may be shown.
    hidden
        Cells hidden already (e.g. subgroups hidden for their size), with their reasons.

    Returns
    -------
    Hidden cell -> the reason.
    """
    hidden = dict(hidden or {})
    for cell, row in cells.iterrows():
        if cell not in hidden and (row < min_count).any():
            hidden[cell] = f"count below {min_count}"
    while hidden and (cells.loc[list(hidden)].sum() < min_count).any():
        shown = cells.drop(index=list(hidden))
        if shown.empty:
            break
        hidden[shown.min(axis=1).idxmin()] = "complementary: the total minus the shown cells would reveal a small one"
    return hidden


def floor_counts(table: pd.DataFrame, columns: list[str], *, base: int, file: str) -> tuple[pd.DataFrame, list[dict]]:
    """Counts floored to a multiple of ``base`` (115 means 115 to 119), so that the difference of two
    counts (patients without one feature, their events) cannot be read exactly."""
    table = table.copy()
    present = [column for column in columns if column in table]
    for column in present:
        table[column] = np.floor(pd.to_numeric(table[column]) / base) * base
    return table, [{"file": file, "row": "all", "column": column,
                    "reason": f"floored to a multiple of {base} ({base * 23} means {base * 23} to {base * 24 - 1})"}
                   for column in present]  # fmt: skip


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
FEATURE_COUNTS = ["n", "n_events", "n_without_event", "n_smallest_category"]
COUNT_COLUMNS = {*FEATURE_COUNTS, "n_quantified", "n_patients", "at_risk", "n_subgroup"}


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
                table = outcome_biomarkers(mdata[assay], mdata.obs, name, spec=spec, covariates=covariates, assay=assay,
                                           scale=scale)  # fmt: skip
            except StratomicsInputError as err:  # too few patients at this site for the model
                logger.warning("site export: %s ~ %s not estimable here: %s", assay, name, err)
                continue
            if spec["type"] == "ordinal":
                smallest = _smallest_category(mdata[assay], mdata.obs, name, spec, covariates)
                table["n_smallest_category"] = table["feature"].map(smallest).to_numpy()
            tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    table["n_smallest_category"] = table.get("n_smallest_category", np.nan)
    table["n_without_event"] = table["n"] - table["n_events"]
    columns = ["assay", "feature", "outcome_or_contrast", "model", "effect", *ESTIMATE_VALUES, *FEATURE_COUNTS]
    return table[columns]


def _smallest_category(assay, obs, outcome, spec, covariates) -> pd.Series:
    """Per feature, the patients in the rarest category of an ordinal outcome among those tested."""
    from stratomics.outcome_types import ordinal_codes

    column = outcome_type(spec, outcome).columns(outcome, spec)[0]
    frame = obs.loc[assay.obs_names, [column, *covariates]]
    known = frame.notna().all(axis=1).to_numpy()
    codes = ordinal_codes(frame[column], spec.get("levels")).to_numpy()[known].astype(int)
    measured = assay.to_df().notna().to_numpy()[known]
    per_category = np.stack([measured[codes == code].sum(axis=0) for code in np.unique(codes)])
    return pd.Series(per_category.min(axis=0), index=assay.var_names)


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


def subgroup_plan(counts: pd.DataFrame, *, min_count: int) -> dict:
    """The cells every subgroup table of an export hides (:func:`protected_cells`).

    Returns
    -------
    None -> the subgroups hidden for their size (in every table), and each binary or survival
    outcome -> the subgroups whose events or non-events are hidden for it (those included).
    """
    cells = counts[counts["subgroup"] != "all"].set_index("subgroup")
    plan = {None: protected_cells(cells[["n_patients"]], min_count=min_count)}
    for column in cells.columns:
        if column.endswith("_events"):
            outcome = column.removesuffix("_events")
            plan[outcome] = protected_cells(cells[[column, f"{outcome}_without_event"]], min_count=min_count,
                                            hidden=plan[None])  # fmt: skip
    return plan


def _planned_counts(counts, plan, min_count):
    """Subgroup counts with the plan's cells blanked, then any small total."""
    file, counts, log = "subgroup_counts.tsv", counts.copy(), []
    for outcome, hidden in plan.items():
        columns = list(counts.columns.drop("subgroup")) if outcome is None else [f"{outcome}_events",
                                                                                 f"{outcome}_without_event"]  # fmt: skip
        for subgroup, reason in hidden.items():
            log += blank_cells(counts, counts.index[counts["subgroup"] == subgroup], columns, file=file,
                               key=["subgroup"], reason=reason)  # fmt: skip
    safe, small = suppress_small_cells(counts, {c: [] for c in counts.columns if c != "subgroup"}, min_count=min_count,
                                       file=file, key=["subgroup"])  # fmt: skip
    return safe, log + small


def _planned_effects(effects, plan, sizes):
    """Subgroup effects, blank where the subgroup or the outcome's reference subgroup is hidden."""
    file, log = "subgroup_effects.tsv", []
    effects = effects.assign(subgroup=effects["term"].str.extract(r"\[(.*)\]")[0].to_numpy())
    effects["n_subgroup"] = effects["subgroup"].map(sizes)
    values = ["estimate", "std_error", "n_subgroup"]
    for outcome, rows in effects.groupby("outcome", sort=False):
        hidden = plan.get(outcome, plan[None])
        reference = sorted(set(sizes.index) - set(rows["subgroup"]))
        if reference and reference[0] in hidden:
            log += blank_cells(effects, rows.index, values, file=file, key=["outcome", "term"],
                               reason=f"the reference subgroup {reference[0]} is hidden ({hidden[reference[0]]})")  # fmt: skip
            continue
        for subgroup, reason in hidden.items():
            log += blank_cells(effects, rows.index[rows["subgroup"] == subgroup], values, file=file,
                               key=["outcome", "term"], reason=reason)  # fmt: skip
    return effects.drop(columns="subgroup"), log


def kaplan_meier_at_times(obs: pd.DataFrame, subgroups: pd.Series, outcomes: dict, *, times, plan: dict,
                          min_count: int) -> tuple[pd.DataFrame, list[dict]]:  # fmt: skip
    """Kaplan-Meier survival per subgroup at ``times``, only where the risk set and the events since
    the last shown time both reach ``min_count`` (a time with fewer events is left out, which
    coarsens the curve); subgroups the plan (:func:`subgroup_plan`) hides are left out.

    Returns
    -------
    The table (outcome, subgroup, time, at_risk, survival) and its disclosure-log rows.
    """
    from lifelines import KaplanMeierFitter

    rows, log = [], []
    for name, spec in outcomes.items():
        if not outcome_type(spec, name).time_to_event:
            continue
        for level, members in obs.groupby(subgroups, observed=True):
            data = members[[spec["time"], spec["event"]]].dropna()
            fitter = KaplanMeierFitter().fit(data[spec["time"]], data[spec["event"]])
            shown_until = -np.inf
            for time in sorted(times):
                at_risk = int((data[spec["time"]] >= time).sum())
                events = int(data[spec["event"]][data[spec["time"]].between(shown_until, time, inclusive="right")].sum())
                reason = plan.get(name, plan[None]).get(level) or (
                    f"at risk below {min_count}" if at_risk < min_count
                    else f"{events} events since the last shown time, below {min_count}" if events < min_count
                    else None)  # fmt: skip
                row = {"outcome": name, "subgroup": level, "time": time, "at_risk": at_risk,
                       "survival": float(fitter.survival_function_at_times(time).iloc[0])}  # fmt: skip
                if reason:
                    row.update(at_risk=np.nan, survival=np.nan)
                    log.append({"file": "kaplan_meier.tsv", "row": f"{name}/{level}/{time}", "column": "at_risk",
                                "reason": reason})  # fmt: skip
                else:
                    shown_until = time
                rows.append(row)
    return pd.DataFrame(rows, columns=["outcome", "subgroup", "time", "at_risk", "survival"]), log


def subgroup_feature_summary(mdata, subgroups: pd.Series, assays: list[str], *, hidden: dict,
                             min_count: int) -> tuple[pd.DataFrame, list[dict]]:  # fmt: skip
    """Mean and variance per feature and subgroup, shown where the subgroup is not ``hidden`` and at
    least ``min_count`` patients have a value that is not censored at a limit of quantification
    (a mean of one quantified value and imputed ones would be that patient's value); counts floored.

    Returns
    -------
    The table and its disclosure-log rows.
    """
    rows = []
    for assay in assays:
        values = mdata[assay].to_df()
        censored = mdata[assay].to_df(layer="censored") if "censored" in mdata[assay].layers else values * 0
        groups = subgroups.reindex(values.index)
        for level in groups.dropna().unique():
            part, quantified = values[groups == level], (censored[groups == level] == 0) & values[groups == level].notna()
            rows.append(pd.DataFrame({"assay": assay, "feature": values.columns, "subgroup": level,
                                      "n": part.notna().sum().to_numpy(), "n_quantified": quantified.sum().to_numpy(),
                                      "mean": part.mean().to_numpy(), "variance": part.var(ddof=1).to_numpy()}))  # fmt: skip
    table = pd.concat(rows, ignore_index=True)
    file, key, log = "subgroup_feature_summary.tsv", ["assay", "feature", "subgroup"], []
    for subgroup, reason in hidden.items():
        log += blank_cells(table, table.index[table["subgroup"] == subgroup], ["n", "n_quantified", "mean", "variance"],
                           file=file, key=key, reason=reason)  # fmt: skip
    table, small = suppress_small_cells(table, {"n": ["n_quantified", "mean", "variance"],
                                                "n_quantified": ["mean", "variance"]},
                                        min_count=min_count, file=file, key=key)  # fmt: skip
    table, floored = floor_counts(table, ["n", "n_quantified"], base=min_count, file=file)
    return table, log + small + floored


def site_export(mdata, model, *, outcomes: dict, covariates: list[str], folder: str | Path,
                scales: dict[str, pd.Series] | None = None, min_count: int = 5, km_times=(90, 180, 365),
                releases: str | Path | None = None, allow_close_release: bool = False) -> pd.DataFrame:  # fmt: skip
    """Analyse one site's patients and write only disclosure-controlled aggregates.

    One suppression plan (:func:`subgroup_plan`) covers every subgroup table, so no total or
    difference across tables reveals a hidden cell; per-feature counts are floored to a multiple
    of ``min_count``; Kaplan-Meier estimates are coarsened to times with enough events.

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
    releases
        The site's release record (:mod:`stratomics.releases`); None: not checked nor recorded.
    allow_close_release
        Release even when the patients differ from an earlier release by fewer than ``min_count``.

    Returns
    -------
    The disclosure log (also written as ``disclosure_log.tsv``).
    """
    from stratomics.outcomes import subgroup_outcomes
    from stratomics.releases import check_release, record_release, release_sets
    from stratomics.subgroups import assign_patients

    folder = Path(folder)
    scales = model.scales if scales is None else scales
    scales = {assay: scale for assay, scale in scales.items() if assay in mdata.mod and mdata[assay].n_obs >= min_count}
    obs = mdata.obs
    varying = [c for c in covariates if obs[c].nunique(dropna=True) > 1]
    assigned = assign_patients(model, mdata).set_index("patient_id")["subgroup"].replace("", np.nan)
    obs = obs.assign(subgroup=pd.Categorical(assigned.reindex(obs.index), categories=sorted(assigned.dropna().unique())))
    subgroups = obs["subgroup"]
    if releases is not None:
        sets = release_sets(mdata, subgroups, outcomes=outcomes, assays=list(scales))
        check_release(releases, sets, min_count=min_count, allow=allow_close_release)
    counts = subgroup_counts(obs, subgroups, outcomes)
    plan = subgroup_plan(counts, min_count=min_count)
    sizes = counts[counts["subgroup"] != "all"].set_index("subgroup")["n_patients"]
    effects = subgroup_outcomes(obs, outcomes, varying, n_permutations=0)[["outcome", "model", "term", "estimate",
                                                                            "std_error"]]  # fmt: skip
    estimates, estimate_log = suppress_small_cells(
        _feature_estimates(mdata, subgroups, outcomes, varying, scales),
        {column: ESTIMATE_VALUES for column in FEATURE_COUNTS}, min_count=min_count, file="feature_estimates.tsv",
        key=["assay", "feature", "outcome_or_contrast"])  # fmt: skip
    estimates, floored = floor_counts(estimates, FEATURE_COUNTS, base=min_count, file="feature_estimates.tsv")
    tables = {
        "feature_estimates.tsv": (estimates, estimate_log + floored),
        "subgroup_counts.tsv": _planned_counts(counts, plan, min_count),
        "subgroup_effects.tsv": _planned_effects(effects, plan, sizes),
        "kaplan_meier.tsv": kaplan_meier_at_times(obs, subgroups, outcomes, times=km_times, plan=plan,
                                                  min_count=min_count),
        "subgroup_feature_summary.tsv": subgroup_feature_summary(mdata, subgroups, list(scales), hidden=plan[None],
                                                                 min_count=min_count),
    }
    folder.mkdir(parents=True, exist_ok=True)
    log = []
    for name, (table, rows) in tables.items():
        write_table(table, folder / name)
        log += rows
    log = pd.DataFrame(log, columns=LOG_COLUMNS)
    write_table(log, folder / "disclosure_log.tsv")
    identifiers = list(mdata.obs_names) + [i for name in mdata.mod for i in mdata[name].obs_names]
    scan_export(folder, identifiers, min_count=min_count,
                count_columns=COUNT_COLUMNS | {c for c in counts.columns if c.endswith(("_events", "_event"))})  # fmt: skip
    if releases is not None:
        record_release(releases, sets, folder)
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

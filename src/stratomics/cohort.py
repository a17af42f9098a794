"""Building the cohort: sample sheet, sample map and assays gathered into one MuData.

``mdata.obs`` holds every patient of the sample sheet with the clinical columns (the ``clinical``
modality, with no features, keeps patients that have no assay). Each assay is one AnnData whose obs
are the patients with that assay. The ingest report accounts for every sample row of every file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError
from stratomics.io import AssayTable, parse_numeric, read_text_table
from stratomics.kinds import KINDS, read_assay
from stratomics.omop import sample_sheet_path
from stratomics.outcome_types import outcome_type

log = logging.getLogger(__name__)
md.set_options(pull_on_update=False)

REPORT_COLUMNS = ["assay", "sample_id", "patient_id", "status", "reason"]
STATUSES = ("mapped", "follow_up", "unmapped", "duplicate", "failed_qc", "excluded")
#: Where the samples of the follow-up visits (``cohort.visits``) go, with the baseline ones.
VISITS_FILE = "results/cohort/visits.h5mu"
CLINICAL = "clinical"


@dataclass
class Cohort:
    """The ingested cohort.

    Attributes
    ----------
    mdata
        One modality per assay plus ``clinical``; obs = every patient.
    report
        The ingest report: one row per sample row per assay file (see :data:`REPORT_COLUMNS`).
    coverage
        One row per patient: site/batch, one 0/1 column per assay and ``n_assays``.
    visits
        With ``cohort.visits``: one AnnData per assay (genotypes aside) with one observation per sample of
        every configured visit, obs holding ``patient_id`` and ``visit`` (None otherwise).
    """

    mdata: md.MuData
    report: pd.DataFrame
    coverage: pd.DataFrame
    visits: md.MuData | None = None


def read_sample_sheet(config: dict) -> pd.DataFrame:
    """Read and check the sample sheet: unique IDs, covariate and outcome columns present.

    Parameters
    ----------
    config
        A validated config.

    Returns
    -------
    The sheet indexed by patient ID, numeric columns as numbers, text columns as strings.
    """
    cohort = config["cohort"]
    path, id_column = sample_sheet_path(cohort), cohort["id_column"]
    table, sep = read_text_table(path)
    source = f"sample sheet ({path})"
    if id_column not in table.columns:
        raise StratomicsInputError(
            f"{source}: no '{id_column}' column (columns: {', '.join(table.columns)}). "
            "Name the patient ID column patient_id, or set cohort.id_column."
        )
    ids = table[id_column]
    if (ids == "").any():
        line = int(np.flatnonzero(ids == "")[0]) + 2
        raise StratomicsInputError(f"{source}: line {line} has an empty {id_column}.")
    repeated = ids[ids.duplicated(keep=False)]
    if len(repeated):
        lines = ", ".join(str(i + 2) for i in repeated.index[:6])
        raise StratomicsInputError(
            f"{source}: patient ID '{repeated.iloc[0]}' appears more than once "
            f"({repeated.nunique()} duplicated IDs; lines {lines}). Each patient needs one row."
        )
    sheet = _typed_columns(table.set_index(id_column), cohort["na_values"])
    sheet.index.name = "patient_id"
    _check_columns(sheet, config, source)
    return sheet


def _typed_columns(table: pd.DataFrame, na_values) -> pd.DataFrame:
    """Turn columns whose every non-missing cell is a number into floats; keep the rest as text."""
    columns = {}
    for name in table.columns:
        try:
            columns[name] = parse_numeric(table[[name]], source="", na_values=na_values)[name]
        except StratomicsInputError:
            columns[name] = table[name].mask(table[name].isin(["", "NA", *na_values]))
    return pd.DataFrame(columns, index=table.index)


def _check_columns(sheet: pd.DataFrame, config: dict, source: str) -> None:
    """Check that covariates, batch and outcome columns exist and outcomes are usable."""
    cohort = config["cohort"]
    needed = {f"covariate '{c}'": c for c in cohort["covariates"]}
    associate = config.get("associate", {})
    needed.update({f"associate.covariates '{c}'": c for c in associate.get("covariates", [])})
    needed.update({f"associate.marker_groups '{c}'": c for c in associate.get("marker_groups", [])})
    heterogeneity = associate.get("treatment_heterogeneity")
    if heterogeneity:
        needed["associate.treatment_heterogeneity treatment"] = heterogeneity["treatment"]
    needed.update({f"table1.columns '{c}'": c for c in config.get("table1", {}).get("columns", [])})
    needed.update({f"figures.colour_by '{c}'": c for c in config.get("figures", {}).get("colour_by", [])})
    needed.update({f"stratify.adjust_for '{c}'": c for c in config.get("stratify", {}).get("adjust_for", [])})
    if cohort.get("batch"):
        needed[f"batch '{cohort['batch']}'"] = cohort["batch"]
    if cohort.get("index_date"):
        needed["cohort.index_date"] = cohort["index_date"]
    for name, outcome in cohort["outcomes"].items():
        otype = outcome_type(outcome, name)
        for role, column in zip(otype.roles, otype.columns(name, outcome)):
            needed[f"outcome '{name}' ({role})"] = column
    for what, column in needed.items():
        if column not in sheet.columns:
            close = [c for c in sheet.columns if c.lower() == column.lower()]
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise StratomicsInputError(
                f"{source}: {what} needs column '{column}', which the sample sheet lacks "
                f"(columns: {', '.join(sheet.columns)}).{hint}"
            )
    for name, outcome in cohort["outcomes"].items():
        outcome_type(outcome, name).check(sheet, name, outcome, source=source)


def read_sample_map(config: dict) -> pd.DataFrame:
    """Read the optional sample map (sample_id -> patient_id, visit).

    Returns
    -------
    A frame indexed by sample_id with columns patient_id and visit (empty without a map).
    """
    path = config["cohort"].get("sample_map")
    if not path:
        return pd.DataFrame({"patient_id": [], "visit": []}, dtype=str)
    table, _ = read_text_table(path)
    source = f"sample map ({path})"
    missing = {"sample_id", "patient_id"} - set(table.columns)
    if missing:
        raise StratomicsInputError(
            f"{source}: needs columns sample_id and patient_id, missing {', '.join(sorted(missing))}"
            f" (columns: {', '.join(table.columns)})."
        )
    repeated = table["sample_id"][table["sample_id"].duplicated()]
    if len(repeated):
        rows = table[table["sample_id"] == repeated.iloc[0]]
        listed = "; ".join(f"line {int(i) + 2}: patient {row.patient_id}" for i, row in rows.iterrows())
        raise StratomicsInputError(
            f"{source}: sample '{repeated.iloc[0]}' is listed {len(rows)} times ({listed}"
            f"{f'; {repeated.nunique() - 1} more repeated samples' if repeated.nunique() > 1 else ''}). "
            "A sample belongs to one patient and visit: keep the right row."
        )
    if "visit" not in table.columns:
        table["visit"] = ""
    return table.set_index("sample_id")[["patient_id", "visit"]]


def map_samples(
    assay_name: str, table: AssayTable, sample_map: pd.DataFrame, *, sheet: pd.DataFrame, visit: str, follow_up=()
) -> tuple[pd.DataFrame, np.ndarray]:
    """Decide the fate of every sample row of one assay file.

    A sample ID is looked up in the sample map, else taken as a patient ID. Rows of the ``follow_up``
    visits are ``follow_up``, rows of other visits excluded; a second sample of the same patient and
    visit is a duplicate (the first in file order is kept).

    Returns
    -------
    The report rows (:data:`REPORT_COLUMNS`) and the positions of the kept rows in ``table.values``.
    """
    sample_ids = table.values.index.to_series(index=range(len(table.values))).astype(str)
    mapped_to = dict(zip(sample_map.index, sample_map["patient_id"]))
    visit_of = dict(zip(sample_map.index, sample_map["visit"]))
    patient = sample_ids.map(lambda s: mapped_to.get(s, s if s in sheet.index else None))
    sample_visit = sample_ids.map(lambda s: visit_of.get(s) or visit)
    qc_failed = table.sample_info.get("qc_failed", pd.Series("", index=table.values.index))
    fates = [
        _fate(p, v, q, visit, sheet.index, follow_up)
        for p, v, q in zip(patient, sample_visit, qc_failed.to_numpy())
    ]
    status = pd.Series([fate[0] for fate in fates], index=sample_ids.index)
    reason = pd.Series([fate[1] for fate in fates], index=sample_ids.index)
    kept = status.isin(["mapped", "follow_up"])
    key = patient + "|" + sample_visit.map(lambda v: v.strip().casefold())
    repeat = kept & key.where(kept).duplicated()
    first_sample = sample_ids[kept].groupby(key[kept]).first()
    status[repeat] = "duplicate"
    reason[repeat] = [f"patient already has sample {first_sample[k]} at this visit (kept)" for k in key[repeat]]
    report = pd.DataFrame(
        {"assay": assay_name, "sample_id": sample_ids, "patient_id": patient.fillna(""),
         "status": status, "reason": reason}
    )  # fmt: skip
    excluded = table.excluded.assign(assay=assay_name, patient_id="", status="excluded")
    return pd.concat([report, excluded[REPORT_COLUMNS]], ignore_index=True), np.flatnonzero(
        status == "mapped"
    )


def _fate(patient, sample_visit: str, qc_failed: str, visit: str, patients, follow_up=()) -> tuple[str, str]:
    """Status and reason of one sample row, before duplicates are looked for."""
    if patient is None:
        return "unmapped", "not in the sample map nor a patient_id"
    if patient not in patients:
        return "unmapped", f"maps to {patient}, who is not in the sample sheet"
    later = any(_same_visit(sample_visit, v) for v in follow_up)
    if not later and not _same_visit(sample_visit, visit):
        return "excluded", f"visit {sample_visit}, not {visit}"
    if qc_failed:
        return "failed_qc", qc_failed
    if later:
        return "follow_up", f"visit {sample_visit}: in the longitudinal tests ({VISITS_FILE}), not the baseline analyses"
    return "mapped", ""


def assay_to_anndata(
    name: str, spec: dict, table: AssayTable, *, rows: np.ndarray, patients: pd.Series
) -> ad.AnnData:
    """Build the AnnData of one assay from its kept rows, indexed by patient ID."""
    obs = table.sample_info.iloc[rows].reset_index()
    obs.index = pd.Index(patients.to_numpy(), name="patient_id")
    adata = ad.AnnData(
        X=None if KINDS[spec["kind"]].values_on_disk else table.values.iloc[rows].to_numpy(dtype=np.float64),
        obs=obs.drop(columns=[c for c in ("qc_failed",) if c in obs]),
        var=table.var.copy(),
    )
    adata.var.index = adata.var.index.astype(str)
    for layer_name, layer in table.layers.items():
        adata.layers[layer_name] = layer.iloc[rows].to_numpy(dtype=np.float64)
    adata.uns["ingest"] = {"kind": spec["kind"], "path": str(spec["path"]), **table.uns}
    return adata


#: Config sections (and keys) that ingest reads: the cohort, the assays and the settings that name
#: sample-sheet columns, which are checked at ingest.
INGEST_SETTINGS = {"associate": ("covariates", "marker_groups", "treatment_heterogeneity"), "table1": ("columns",), "figures": ("colour_by",),
                   "stratify": ("adjust_for",)}  # fmt: skip


def ingest_settings(config: dict) -> dict:
    """The part of a validated config that :func:`build_cohort` reads (the ingest rule's params, so
    that Snakemake reruns ingest when, and only when, one of them changes)."""
    settings = {"cohort": config["cohort"], "assays": config["assays"]}
    for section, keys in INGEST_SETTINGS.items():
        settings[section] = {key: config[section][key] for key in keys if key in config.get(section, {})}
    return settings


def build_cohort(config: dict) -> Cohort:
    """Read every input of a validated config into a MuData with its ingest report.

    Parameters
    ----------
    config
        A validated config (:func:`stratomics.config.validate_config`).

    Returns
    -------
    The cohort: MuData, ingest report and per-patient assay coverage.
    """
    sheet = read_sample_sheet(config)
    sample_map = read_sample_map(config)
    known_ids = set(sheet.index) | set(sample_map.index)
    dates = index_dates(config, sheet, sample_map)
    visit, follow_up = config["cohort"]["visit"], config["cohort"]["visits"][1:]
    modalities, reports, visit_modalities = {}, [], {}
    for name, spec in config["assays"].items():
        table = read_assay(name, spec, known_ids, index_dates=dates)
        report, rows = map_samples(name, table, sample_map, sheet=sheet, visit=visit, follow_up=follow_up)
        reports.append(report)
        if spec["kind"] != "genotypes" and (report["status"] == "follow_up").any():
            visit_modalities[name] = visit_samples(name, spec, table, report=report, sample_map=sample_map,
                                                   visits=config["cohort"]["visits"])
        if len(rows) == 0:
            examples = ", ".join(table.values.index[:3])
            raise StratomicsInputError(
                f"assay '{name}' ({spec['path']}): none of its {len(table.values)} samples maps to "
                f"a patient of the sample sheet (first IDs: {examples}). Check the sample map or "
                "the IDs in the file."
            )
        patients = report.set_index(report.index)["patient_id"].iloc[rows]
        modalities[name] = assay_to_anndata(name, spec, table, rows=rows, patients=patients)
        _log_fates(name, report, known_ids)
    report = pd.concat(reports, ignore_index=True)
    _warn_visit_spellings(sample_map, visit)
    unique_feature_names(modalities)
    mdata = assemble(sheet, modalities)
    mdata.uns["ingest"] = {"visit": visit, "n_patients": len(sheet)}
    coverage = assay_coverage(mdata, config)
    without = coverage.loc[coverage["n_assays"] == 0, "patient_id"]
    if len(without):
        log.warning("%d of %d patients of the sample sheet have no assay (%s%s): they count in Table 1 and the "
                    "outcome tests of subgroups only where an assay places them; check their sample IDs in the "
                    "ingest report", len(without), len(sheet), ", ".join(without[:5]),
                    ", ..." if len(without) > 5 else "")  # fmt: skip
    in_map = {str(v).strip().casefold() for v in sample_map["visit"].unique()}
    if follow_up and not visit_modalities and not any(v.strip().casefold() in in_map for v in follow_up):
        raise StratomicsInputError(
            f"config: cohort.visits names the follow-up visits {', '.join(follow_up)}, but no assay sample is at one "
            f"of them (visits in the sample map: {', '.join(map(str, sample_map['visit'].unique())) or 'none'}). "
            "Write the visits as the sample map's visit column does, or remove cohort.visits."
        )
    if follow_up and not visit_modalities:
        log.warning("no assay sample of the sample sheet's patients is at a follow-up visit (%s): nothing for the "
                    "longitudinal tests", ", ".join(follow_up))  # fmt: skip
    visits = md.MuData(visit_modalities) if follow_up else None
    return Cohort(mdata=mdata, report=report, coverage=coverage, visits=visits)


def index_dates(config: dict, sheet: pd.DataFrame, sample_map: pd.DataFrame) -> pd.Series | None:
    """Each patient's index date (``cohort.index_date``), by patient ID and by sample ID; None when not configured.

    A value that is not a date is an input error naming the patients; an empty one leaves the
    patient without an index date.
    """
    column = config["cohort"].get("index_date")
    if not column:
        return None
    text = sheet[column].astype("string").replace("", pd.NA)
    dates = pd.to_datetime(text, errors="coerce", format="mixed")
    wrong = text[dates.isna() & text.notna()]
    if len(wrong):
        shown = ", ".join(f"'{value}' (patient {patient})" for patient, value in wrong.iloc[:3].items())
        raise StratomicsInputError(f"sample sheet: cohort.index_date column '{column}' has values that are not dates: "
                                   f"{shown}. Write dates as YYYY-MM-DD and leave unknown dates empty.")  # fmt: skip
    by_sample = sample_map["patient_id"].map(dates)
    return pd.concat([dates, by_sample[~by_sample.index.isin(dates.index)]])


def visit_samples(name: str, spec: dict, table: AssayTable, *, report: pd.DataFrame, sample_map: pd.DataFrame,
                  visits: list[str]) -> ad.AnnData:  # fmt: skip
    """The samples of one assay at every configured visit (baseline and follow-up), one observation each.

    Parameters
    ----------
    name, spec
        The assay's name and config entry.
    table
        The assay as read.
    report
        Its rows of the ingest report (from :func:`map_samples`).
    sample_map
        The sample map (sample_id -> patient_id, visit).
    visits
        The configured visits, baseline first.

    Returns
    -------
    The assay as :func:`assay_to_anndata` builds it, indexed by sample ID, with ``patient_id`` and
    ``visit`` (as configured) first in obs.
    """
    rows = np.flatnonzero(report["status"].iloc[: len(table.values)].isin(["mapped", "follow_up"]).to_numpy())
    patients = report["patient_id"].iloc[rows]
    sample_ids = table.values.index.astype(str)[rows]
    adata = assay_to_anndata(name, spec, table, rows=rows, patients=pd.Series(sample_ids))  # unique names
    written = pd.Series(sample_ids).map(sample_map["visit"]).fillna("").replace("", visits[0])
    spelling = {v.strip().casefold(): v for v in visits}
    adata.obs = adata.obs.drop(columns=adata.obs.columns[0])  # the sample ID, which becomes the index
    adata.obs.insert(0, "patient_id", patients.to_numpy())
    adata.obs.insert(1, "visit", written.map(lambda v: spelling[v.strip().casefold()]).to_numpy())
    adata.obs_names = pd.Index(sample_ids, name=None)
    return adata


def _same_visit(written: str, visit: str) -> bool:
    """Whether a visit as written in a file is the configured one (ignoring case and spaces)."""
    return written.strip().casefold() == visit.strip().casefold()


def _warn_visit_spellings(sample_map: pd.DataFrame, visit: str) -> None:
    """Say when the sample map spells the configured visit differently (it is matched ignoring case)."""
    spellings = sample_map["visit"].unique()
    other = [v for v in spellings if _same_visit(v, visit) and v != visit]
    if other:
        log.warning("sample map: visit %s read as the configured visit '%s' (matched ignoring case and spaces)",
                    ", ".join(f"'{v}'" for v in other), visit)  # fmt: skip


def unique_feature_names(modalities: dict[str, ad.AnnData]) -> None:
    """Prefix feature names that two assays share with their assay (``rna:TP53``), in place.

    Gene-level copy number next to expression is the common case: the MuData, MOFA+ and the result
    tables need one name per feature. When any name is shared, the name as read is kept in
    ``var["feature_name"]`` of every assay.
    """
    counts = pd.Series([name for adata in modalities.values() for name in adata.var_names]).value_counts()
    shared = set(counts.index[counts > 1])
    if not shared:
        return
    for assay, adata in modalities.items():
        adata.var["feature_name"] = adata.var_names.to_numpy()
        renamed = adata.var_names.isin(shared)
        if renamed.any():
            log.warning("assay '%s': %d feature names also occur in another assay (e.g. %s); they are named "
                        "'%s:<feature>' in the cohort and the result tables", assay, renamed.sum(),
                        ", ".join(adata.var_names[renamed][:3]), assay)  # fmt: skip
            adata.var_names = [f"{assay}:{name}" if dup else name for name, dup in zip(adata.var_names, renamed)]


def assemble(obs: pd.DataFrame, modalities: dict[str, ad.AnnData]) -> md.MuData:
    """Gather assays into a MuData whose obs are all patients of ``obs`` (with its columns).

    A ``clinical`` modality without features holds every patient, so that patients without any
    assay stay in the cohort.
    """
    clinical = ad.AnnData(obs=pd.DataFrame(index=obs.index.astype(str)))
    assays = {name: adata for name, adata in modalities.items() if name != CLINICAL}
    mdata = md.MuData({CLINICAL: clinical, **assays})  # clinical first: patients in sheet order
    sheet = obs.drop(columns=[c for c in obs.columns if ":" in c])
    mdata.obs = mdata.obs.drop(columns=mdata.obs.columns.intersection(sheet.columns)).join(sheet)
    return mdata


def write_cohort(mdata: md.MuData, path) -> None:
    """Write a cohort .h5mu whose patient index is unnamed everywhere.

    mudata joins the global and per-assay ``obs`` on their index; when only some are named it fails
    to read the file back under ``mudata.set_options(pull_on_update=False)``.
    """
    for adata in mdata.mod.values():
        adata.obs.index.name = None
    mdata.obs.index.name = None
    mdata.write(path)


def read_cohort_obs(path) -> pd.DataFrame:
    """Read only ``obs`` (every patient with the clinical columns) of a cohort .h5mu file."""
    import h5py
    from anndata.io import read_elem

    with h5py.File(path, "r") as handle:
        return read_elem(handle["obs"])


def _log_fates(name: str, report: pd.DataFrame, known_ids: set) -> None:
    """Log how many sample rows of an assay file got each status, warning on the unusable ones and
    naming the unmapped IDs (with the known ID each one matches after trimming and case-folding)."""
    counts = report["status"].value_counts()
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES)
    lost = counts.drop(["mapped", "follow_up"], errors="ignore").sum()
    (log.warning if lost else log.info)("assay '%s': %s (see the ingest report)", name, summary)
    unmapped = report.loc[report["status"] == "unmapped", "sample_id"]
    if len(unmapped):
        folded = {str(known).strip().casefold(): known for known in known_ids}
        near = {sample: folded[sample.strip().casefold()] for sample in unmapped if sample.strip().casefold() in folded}
        hint = (f"; {len(near)} match a known ID but for case or spaces (e.g. '{next(iter(near))}' ~ "
                f"'{next(iter(near.values()))}'): write the IDs the same way in every file" if near else "")
        log.warning("assay '%s': %d unmapped sample IDs: %s%s%s", name, len(unmapped), ", ".join(unmapped[:5]),
                    ", ..." if len(unmapped) > 5 else "", hint)  # fmt: skip


def assay_coverage(mdata: md.MuData, config: dict) -> pd.DataFrame:
    """One row per patient: batch, a 0/1 column per assay and the number of assays."""
    assays = list(config["assays"])
    coverage = pd.DataFrame(
        {name: mdata.obs_names.isin(mdata[name].obs_names).astype(int) for name in assays},
        index=mdata.obs_names,
    )
    coverage["n_assays"] = coverage.sum(axis=1)
    batch = config["cohort"].get("batch")
    if batch:
        coverage.insert(0, batch, mdata.obs[batch].to_numpy())
    coverage.index.name = "patient_id"
    return coverage.reset_index()

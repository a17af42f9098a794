"""A site's record of what it released, so that two exports cannot be differenced into a patient.

Two exports of one site whose patients differ by one person reveal that person: every mean, count
and estimate of the second minus the first is theirs. Each export therefore records, in the site's
release record (a JSON file that stays at the site, outside the export), the patient sets it was
computed from: all patients, those of each exported assay, those with each outcome known and
those of each subgroup. A new export whose set differs from the same set of an earlier release by
1 to ``min_count - 1`` patients is refused, unless the user overrides it explicitly; identical sets
(a rerun) and differences of at least ``min_count`` patients are released. Updated values of the
same patients (a corrected lab value, a longer follow-up) are not detected.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pandas as pd

from stratomics.errors import StratomicsInputError
from stratomics.outcome_types import outcome_type

log = logging.getLogger(__name__)


def release_sets(mdata, subgroups: pd.Series, *, outcomes: dict, assays: list[str]) -> dict[str, list[str]]:
    """The patient sets an export is computed from, by name (``patients``, ``assay:<name>``,
    ``outcome:<name>``, ``subgroup:<name>``), each as sorted patient IDs."""
    obs = mdata.obs
    sets = {"patients": obs.index, **{f"assay:{name}": mdata[name].obs_names for name in assays}}
    for name, spec in outcomes.items():
        columns = outcome_type(spec, name).columns(name, spec)
        sets[f"outcome:{name}"] = obs.index[obs[columns].notna().all(axis=1)]
    for level in subgroups.dropna().unique():
        sets[f"subgroup:{level}"] = subgroups.index[subgroups == level]
    return {name: sorted(map(str, patients)) for name, patients in sets.items()}


def _read(record: Path) -> list[dict]:
    if not record.is_file():
        return []
    try:
        return json.loads(record.read_text())["releases"]
    except (ValueError, KeyError) as err:
        raise StratomicsInputError(
            f"release record {record}: not a stratomics release record ({err}); restore it from a backup. "
            "Without it, earlier exports cannot be compared with this one."
        ) from err


def check_release(record: str | Path, sets: dict[str, list[str]], *, min_count: int, allow: bool = False) -> None:
    """Refuse an export whose patient sets differ from an earlier release's by 1 to ``min_count - 1``.

    Parameters
    ----------
    record
        The site's release record (JSON; absent before the first export).
    sets
        This export's patient sets (:func:`release_sets`).
    min_count
        The site's minimum cell count.
    allow
        Release anyway (``federated.allow_close_release``), with a warning.

    Raises
    ------
    StratomicsInputError
        Naming the earlier release, the set and the difference.
    """
    for release in _read(Path(record)):
        for name in [*sets, *(name for name in release["sets"] if name not in sets)]:
            before, now = set(release["sets"].get(name, [])), set(sets.get(name, []))
            added, removed = len(now - before), len(before - now)
            if not 0 < added + removed < min_count:
                continue
            message = (f"this export's patients ({name}) differ from release {release['release']} in {record} by "
                       f"{added} added and {removed} removed, fewer than federated.min_cell_count ({min_count}): "
                       "the difference of the two exports would be those patients' data")  # fmt: skip
            if allow:
                log.warning("site export: %s; released anyway (federated.allow_close_release: true)", message)
                continue
            raise StratomicsInputError(
                f"site export: {message}. Export again once at least {min_count} patients differ, or set "
                "federated.allow_close_release: true to release it anyway."
            )


def record_release(record: str | Path, sets: dict[str, list[str]], export: str | Path) -> int:
    """Add this export to the site's release record (unless an identical release is there).

    Returns
    -------
    The release number.
    """
    record = Path(record)
    releases = _read(record)
    digest = _folder_sha256(Path(export))
    for release in releases:
        if release["export_sha256"] == digest and release["sets"] == sets:
            return release["release"]
    number = len(releases) + 1
    releases.append({"release": number, "export_sha256": digest, "sets": sets})
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"releases": releases}, indent=1) + "\n")
    log.info("site export: release %d recorded in %s (keep this file at the site; do not send it)", number, record)
    return number


def _folder_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()

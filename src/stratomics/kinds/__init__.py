"""Assay kinds behind one registry: each module declares a :class:`~stratomics.kinds.base.AssayKind`
(reader, options with their schema, preprocessing, QC panels).

Adding a kind is one module here, one entry in :data:`KINDS` and its tests; the config schema's
``kind`` list and options, the option check, ingest, preprocessing and the QC figure all read the
registry.
"""

from __future__ import annotations

from stratomics.errors import StratomicsInputError
from stratomics.io import AssayTable
from stratomics.kinds import cell_frequency, concentration, genotypes, olink_npx, questionnaire, rna_counts, table, voice, wearable
from stratomics.kinds.base import AssayKind

KINDS: dict[str, AssayKind] = {
    kind.name: kind
    for kind in (olink_npx.KIND, concentration.KIND, cell_frequency.KIND, rna_counts.KIND, genotypes.KIND, table.KIND,
                 questionnaire.KIND, voice.KIND, wearable.KIND)
}


def read_assay(name: str, spec: dict, known_ids: set[str], *, index_dates=None) -> AssayTable:
    """Read one assay from its config entry.

    Parameters
    ----------
    name
        The assay's name in config.yaml.
    spec
        Its config entry: ``kind``, ``path`` and the reader options.
    known_ids
        Sample and patient IDs, used to tell the orientation of wide tables.
    index_dates
        Index date by patient and sample ID (``cohort.index_date``), for kinds that read it.

    Returns
    -------
    The assay table.
    """
    if spec["kind"] not in KINDS:
        raise StratomicsInputError(f"assay '{name}': unknown kind '{spec['kind']}'. Use one of: {', '.join(KINDS)}.")
    source = f"assay '{name}' ({spec['path']})"
    kind = KINDS[spec["kind"]]
    dates = {"index_dates": index_dates} if kind.reads_index_dates else {}
    return kind.read(spec["path"], source=source, known_ids=known_ids, options=spec, **dates)

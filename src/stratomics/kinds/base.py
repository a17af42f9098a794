"""The interface every assay kind declares (one module per kind in :mod:`stratomics.kinds`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

#: Options of every wide table reader (see :func:`stratomics.io.read_wide`).
WIDE_TABLE_OPTIONS = ("orientation", "annotation_columns", "sep", "na_values")
#: The ID option of the long-table kinds (several rows per sample or patient).
ID_COLUMN_OPTION = {"type": "string", "description": "the column of sample or patient IDs (default: the first); several rows per ID."}


@dataclass(frozen=True)
class AssayKind:
    """One assay kind: how its files are read, preprocessed and shown in the QC figure.

    Attributes
    ----------
    name
        The ``kind`` of config.yaml.
    read
        ``read(path, *, source, known_ids, options) -> AssayTable``; ``options`` is the assay's config entry.
    preprocess
        ``preprocess(adata, record, **options) -> AnnData`` (:class:`stratomics.qc_record.Record`).
    options
        This kind's own config options: name -> JSON-schema fragment (merged into the config schema).
    preprocess_options
        The options passed on to ``preprocess``.
    shared_options
        Options common to several kinds that this kind accepts (wide-table options, ``batch_correction``).
    qc_panels
        ``panel(ax, *, adata, qc, batch)`` functions of per-feature metrics, drawn in the assay's QC figure
        after the features' missingness.
    sample_qc_panels
        The same for per-sample metrics, drawn after the samples' missingness.
    missingness_panels
        Whether the QC figure draws the missing share per feature and per sample (off where the kind's
        own panels show it, e.g. genotype call rates).
    required_options
        Options an assay of this kind must set.
    integrated_by_default
        Whether the assay joins the integration when ``integrate.assays`` is not given (digital
        assays join only when listed there).
    reads_index_dates
        Whether ``read`` also takes ``index_dates`` (each patient's ``cohort.index_date``).
    values_on_disk
        Whether the values stay in their file (the AnnData's X is None; genotypes in the .bed) and are read a
        chunk at a time; ``preprocess`` then removes uninformative features and stores the missing shares itself.
    """

    name: str
    read: Callable
    preprocess: Callable
    options: dict = field(default_factory=dict)
    preprocess_options: tuple[str, ...] = ()
    shared_options: tuple[str, ...] = WIDE_TABLE_OPTIONS + ("batch_correction",)
    qc_panels: tuple[Callable, ...] = ()
    sample_qc_panels: tuple[Callable, ...] = ()
    missingness_panels: bool = True
    required_options: tuple[str, ...] = ()
    integrated_by_default: bool = True
    reads_index_dates: bool = False
    values_on_disk: bool = False

    @property
    def accepted_options(self) -> set[str]:
        """Every option an assay of this kind may set besides kind and path."""
        return set(self.shared_options) | set(self.options)

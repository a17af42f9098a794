"""The assay-kind registry: every kind keeps the declared interface, and a new kind is one registry entry."""

import copy
import inspect

import numpy as np
import pandas as pd
import pytest

from conftest import demo_config
from stratomics.cli import main
from stratomics.cohort import build_cohort
from stratomics.config import load_schema, validate_config
from stratomics.errors import StratomicsInputError
from stratomics.io import read_wide, wide_options
from stratomics.kinds import KINDS
from stratomics.kinds.base import AssayKind
from stratomics.preprocess import preprocess_cohort
from stratomics.qc_figures import assay_qc


@pytest.mark.parametrize("name", list(KINDS))
def test_every_registered_kind_keeps_the_declared_interface(name):
    kind = KINDS[name]
    assert kind.name == name
    keyword_only = {p.name for p in inspect.signature(kind.preprocess).parameters.values()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty}  # fmt: skip
    assert set(kind.preprocess_options) <= keyword_only
    assert set(kind.preprocess_options) <= set(kind.options), "every preprocessing option is in the schema"
    assert {"source", "known_ids", "options"} <= set(inspect.signature(kind.read).parameters)
    assay_schema = load_schema()["properties"]["assays"]["additionalProperties"]["properties"]
    assert name in assay_schema["kind"]["enum"]
    for option in kind.options:
        kinds_of_option = assay_schema[option]["description"].split(": ")[0].split(", ")
        assert name in kinds_of_option
    for panel in kind.qc_panels:
        assert "ax" in inspect.signature(panel).parameters


def test_no_two_kinds_define_the_same_option_differently():
    seen = {}
    for kind in KINDS.values():
        for option, fragment in kind.options.items():
            assert seen.setdefault(option, fragment) == fragment, option


def _read_ratios(path, *, source, known_ids, options):
    return read_wide(path, source=source, known_ids=known_ids, **wide_options(options))


def _preprocess_ratios(adata, record, *, log_base: float = 2.0):
    adata = adata.copy()
    adata.X = np.log(adata.X) / np.log(log_base)
    record.params.update(log_base=log_base)
    return adata


def _ratio_panel(ax, *, adata, **_):
    ax.hist(np.ravel(adata.X)[np.isfinite(np.ravel(adata.X))], bins=10)
    ax.set(title="Ratios")


RATIOS = AssayKind(name="ratios", read=_read_ratios, preprocess=_preprocess_ratios,
                   options={"log_base": {"type": "number", "exclusiveMinimum": 1, "description": "base of the log."}},
                   preprocess_options=("log_base",), qc_panels=(_ratio_panel,))  # fmt: skip


def test_a_new_kind_is_one_registry_entry(small_demo, tmp_path, monkeypatch):
    """Config validation, ingest, preprocessing and the QC figure all pick up a registered kind."""
    folder, _ = small_demo
    monkeypatch.setitem(KINDS, "ratios", RATIOS)
    patients = pd.read_csv(folder / "samples.csv")["patient_id"].to_numpy()[:30]
    values = np.random.default_rng(0).lognormal(size=(30, 4)) * 10
    pd.DataFrame(values, index=pd.Index(patients, name="patient_id"),
                 columns=[f"R{i}" for i in range(4)]).to_csv(tmp_path / "ratios.csv")  # fmt: skip
    config = copy.deepcopy(demo_config(folder))
    config["assays"] = {"ratios": {"kind": "ratios", "path": str(tmp_path / "ratios.csv"), "log_base": 10}}

    validated = validate_config(config)
    mdata = preprocess_cohort(build_cohort(validated).mdata, validated)
    adata = mdata["ratios"]
    assert adata.n_obs == 30 and adata.uns["preprocess"]["log_base"] == 10
    np.testing.assert_allclose(np.sort(adata.X, axis=0), np.sort(np.log10(values), axis=0), rtol=1e-6)
    figure = assay_qc(adata, "ratios")
    assert [ax.get_title() for ax in figure.axes][:2] == ["Missing values", "Ratios"]

    config["assays"]["ratios"]["log_base"] = 0.5
    with pytest.raises(StratomicsInputError, match="log_base"):
        validate_config(config)
    config["assays"]["ratios"] = {"kind": "ratios", "path": str(tmp_path / "ratios.csv"), "min_maf": 0.1}
    with pytest.raises(StratomicsInputError, match="assays.ratios.min_maf does not apply to kind 'ratios'"):
        validate_config(config)


def test_cli_lists_each_kind_with_its_options(capsys):
    assert main(["kinds"]) == 0
    listing = capsys.readouterr().out
    olink = listing.split("olink_npx\n")[1].split("\nconcentration\n")[0]
    assert "  below_lod: olink_npx: keep NPX below LOD" in olink and "  sep: Column separator" in olink
    assert "min_count" not in olink and "  min_count: rna_counts:" in listing

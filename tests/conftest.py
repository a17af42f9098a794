"""Shared fixtures: a small simulated cohort and its config."""

import logging
import warnings

import pytest

from stratomics.config import validate_config
from stratomics.simulate import DEMO_INSTRUMENTS, simulate_cohort

warnings.filterwarnings("ignore", category=FutureWarning)
SMALL = {"n_patients": 60, "n_snps": 400, "n_genes": 200}


def demo_config(folder) -> dict:
    """The config of a demo cohort written to ``folder`` (the same shape as config.yaml)."""
    return {
        "seed": 0,
        "cohort": {
            "samples": f"{folder}/samples.csv",
            "sample_map": f"{folder}/sample_map.csv",
            "covariates": ["age", "sex", "site", "disease"],
            "batch": "site",
            "index_date": "treatment_start",
            "outcomes": {
                "failure_12m": {"type": "binary"},
                "time_to_switch": {"type": "survival", "time": "time_to_switch_days",
                                   "event": "switched"},
                "activity_12m": {"type": "ordinal", "levels": ["remission", "low", "moderate", "high"]},
            },
        },
        "assays": {
            "proteomics": {"kind": "olink_npx", "path": f"{folder}/olink_npx.csv"},
            "cytokines": {"kind": "concentration", "path": f"{folder}/cytokines.csv",
                          "limits": f"{folder}/cytokine_limits.csv", "na_values": ["n.d."]},
            "flow": {"kind": "cell_frequency", "path": f"{folder}/flow_frequencies.tsv"},
            "rna": {"kind": "rna_counts", "path": f"{folder}/rna_counts.tsv"},
            "genotypes": {"kind": "genotypes", "path": f"{folder}/genotypes"},
            "questionnaire": {"kind": "questionnaire", "path": f"{folder}/questionnaire.csv", "keep_items": True,
                              "instruments": {name: {**spec, "min_items": 2} for name, spec in DEMO_INSTRUMENTS.items()}},
            "voice": {"kind": "voice", "path": f"{folder}/voice_features.csv", "recording_column": "recording",
                      "duration_column": "duration_s"},
            "wearable": {"kind": "wearable", "path": f"{folder}/wearable.csv", "window": [-14, -1], "batch_correction": "none",
                         "metrics": {"heart_rate": {"range": [25, 230]}, "steps": {"daily": "sum", "range": [0, 100000]}}},
        },
    }  # fmt: skip


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """A 60-patient demo cohort on disk: (folder, validated config)."""
    folder = tmp_path_factory.mktemp("demo")
    simulate_cohort(folder, seed=3, **SMALL)
    return folder, validate_config(demo_config(folder))


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.INFO, logger="stratomics")


@pytest.fixture(scope="session")
def workflow_runs(tmp_path_factory):
    """The tiny demo workflow run twice, with --cores 2 and --cores 1."""
    from workflow_helpers import run_workflow

    folders = [tmp_path_factory.mktemp(name) for name in ("run1", "run2")]
    for folder, cores in zip(folders, ("2", "1")):
        result = run_workflow(folder, cores=cores)
        assert result.returncode == 0, result.stderr[-3000:]
    return folders

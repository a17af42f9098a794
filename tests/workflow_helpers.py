"""Running the workflow on a tiny demo cohort from the tests."""

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TABLES = ["qc/ingest_report.tsv", "qc/modality_coverage.tsv", "qc/preprocess_removed.tsv",
          "qc/feature_qc.tsv", "associate/biomarkers.tsv", "associate/genotypes.tsv",
          "associate/markers.tsv", "stratify/clusters.tsv", "stratify/model_selection.tsv",
          "integrate/embedding.tsv", "integrate/factor_selection.tsv", "integrate/factor_features.tsv", "integrate/factor_associations.tsv", "stratify/umap.tsv", "stratify/subgroup_outcomes.tsv", "stratify/table1.tsv", "stratify/table1.docx",
          "predict/performance.tsv", "predict/signature.tsv", "predict/predictions.tsv", "predict/curves.tsv",
          "associate/longitudinal.tsv"]  # fmt: skip

FIGURES = ["qc/assay_coverage", *(f"qc/{a}_qc" for a in ("proteomics", "cytokines", "flow", "rna", "genotypes")),
           *(f"figures/{name}" for name in ("embedding", "consensus", "factors", "km_time_to_switch", "forest",
                                             "volcano_failure_12m", "volcano_time_to_switch", "manhattan_failure_12m",
                                             "markers_heatmap", "table1", "predict_performance",
                                             "predict_curves", "trajectories_subgroup", "trajectories_failure_12m"))]  # fmt: skip


def tiny_config(folder: Path, root: Path = ROOT) -> Path:
    """The tiny demo's config (from ``root``'s config.yaml), written to ``folder``."""
    config = yaml.safe_load((root / "config.yaml").read_text())
    # the easy scenario; one group is run in test_cohort_shapes.py
    config["demo"] = {"n_patients": 60, "n_snps": 300, "n_genes": 120, "scenario": "strong"}
    config["predict"] = {**config.get("predict", {}), "n_repeats": 2, "n_bootstrap": 50}
    # 40 complete patients do not beat the Gaussian null (one group, as they should); these tests
    # check the plumbing of several subgroups, so k is fixed as a user may fix it
    config["stratify"] = {**config.get("stratify", {}), "k": 3, "n_permutations": 200}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def workflow_command(folder: Path, *targets: str, cores: str = "2", root: Path = ROOT) -> list[str]:
    """The snakemake command that runs the tiny demo of the checkout ``root`` in ``folder`` (options after the targets)."""
    return [sys.executable, "-m", "snakemake", *targets, "--snakefile", str(root / "Snakefile"),
            "--directory", str(folder), "--cores", cores, "--configfile", str(tiny_config(folder, root))]  # fmt: skip


def run_workflow(folder: Path, *targets: str, cores: str = "2") -> subprocess.CompletedProcess:
    # a guard against a hung run, not a speed test: one core on a loaded CI machine takes up to ~10 min
    return subprocess.run(workflow_command(folder, *targets, cores=cores), capture_output=True, text=True,
                          timeout=1500)  # fmt: skip

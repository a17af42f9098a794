"""The workflow on a real (one-node) SLURM cluster through profiles/slurm: jobs go through sbatch and
the results equal those of a local run.

Needs Debian's slurm-wlm and munge (CI installs them) and root to start the daemons; skipped otherwise.
"""

import filecmp
import os
import shutil
import subprocess
import sys

import pytest
from workflow_helpers import ROOT, TABLES, tiny_config

pytestmark = pytest.mark.skipif(
    shutil.which("slurmctld") is None or os.geteuid() != 0,
    reason="needs slurm-wlm and munge (apt-get install slurm-wlm munge) and root",
)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slurm")
    started = subprocess.run([str(ROOT / "tests/slurm/start_cluster.sh"), str(folder)], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    yield {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}, folder
    subprocess.run([str(ROOT / "tests/slurm/stop_cluster.sh"), str(folder)])


def test_workflow_runs_through_sbatch_and_matches_a_local_run(slurm_cluster, workflow_runs, tmp_path):
    environment, cluster = slurm_cluster
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory",
               str(tmp_path), "--profile", str(ROOT / "profiles/slurm"), "--slurm-no-account",
               "--slurm-init-seconds-before-status-checks", "2", "--slurm-status-command", "squeue",
               "--slurm-keep-successful-logs",
               "--configfile", str(tiny_config(tmp_path))]  # fmt: skip
    # ~20-25 min on a 2-core runner (one sbatch job per rule); the limit only stops a hung cluster
    result = subprocess.run(command, capture_output=True, text=True, timeout=3000, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    completed = {line.split()[0].removeprefix("JobId=") for line in (cluster / "jobcomp.log").read_text().splitlines()
                 if "JobState=COMPLETED" in line}  # fmt: skip
    job_logs = tmp_path / ".snakemake/slurm_logs"  # rule_<name>/<SLURM job id>.log, written by sbatch
    for rule in ("simulate_demo", "ingest", "preprocess_assay", "stratify", "biomarkers_assay", "figures"):
        job_ids = {log.stem for log in (job_logs / f"rule_{rule}").rglob("*.log")}
        assert job_ids and job_ids <= completed, f"rule {rule}: SLURM jobs {job_ids} not all completed"
    local = workflow_runs[0] / "results"
    for table in TABLES:
        assert filecmp.cmp(local / table, tmp_path / "results" / table, shallow=False), table

"""Provenance: checksums agree with coreutils' sha256sum, every input file is listed."""

import json
import shutil
import subprocess

import pytest

from stratomics.associate.multiple import genomic_inflation
from stratomics import provenance


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="coreutils sha256sum not installed")
def test_inputs_are_listed_with_the_checksums_of_sha256sum(tmp_path):
    files = {"samples.csv": b"patient_id\nP1\n", "g.bed": b"\x6c\x1b\x01", "g.bim": b"1\trs1\t0\t1\tA\tG\n",
             "g.fam": b"P1 P1 0 0 1 -9\n", "limits.csv": b"analyte,lloq\nIL6,0.1\n"}  # fmt: skip
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    config = {"seed": 5, "cohort": {"samples": str(tmp_path / "samples.csv"), "sample_map": None},
              "assays": {"genotypes": {"kind": "genotypes", "path": str(tmp_path / "g")},
                         "cytokines": {"kind": "concentration", "path": str(tmp_path / "missing.csv"),
                                       "limits": str(tmp_path / "limits.csv")}}}  # fmt: skip
    record = provenance.collect(config)
    listed = {entry["path"]: entry["sha256"] for entry in record["inputs"]}
    assert set(listed) == {str(tmp_path / name) for name in files}
    for path, digest in listed.items():
        assert digest == subprocess.run(["sha256sum", path], capture_output=True, text=True).stdout.split()[0]
    provenance.write(record, tmp_path / "p.json", tmp_path / "p.html")
    again = json.loads((tmp_path / "p.json").read_text())
    assert again["seed"] == 5 and again["versions"]["stratomics"] and again["config"] == config
    assert listed[str(tmp_path / "g.bed")] in (tmp_path / "p.html").read_text()


def test_genomic_inflation_is_one_under_the_null_and_the_variance_ratio_when_inflated():
    import numpy as np
    from scipy import stats

    rng = np.random.default_rng(0)
    null = 2 * stats.norm.sf(np.abs(rng.normal(size=200_000)))
    inflated = 2 * stats.norm.sf(np.abs(rng.normal(scale=1.1, size=200_000)))
    assert genomic_inflation(null) == pytest.approx(1.0, abs=0.01)
    assert genomic_inflation(np.r_[inflated, np.nan]) == pytest.approx(1.21, abs=0.015)


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_the_record_names_the_commit_of_the_code_that_ran(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "module.py").write_text("x = 1\n")
    assert provenance.source_commit(code) == "not a git checkout"
    git = ["git", "-C", str(code), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "module.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert provenance.source_commit(code) == head and len(head) == 40
    (code / "module.py").write_text("x = 2\n")
    assert provenance.source_commit(code) == f"{head} + local changes"
    record = provenance.collect({"seed": 0, "cohort": {}, "assays": {}})
    assert record["stratomics_commit"] and {"scikit-survival", "numba"} <= set(record["versions"])

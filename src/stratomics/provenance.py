"""Provenance of a run: versions, the config as run, the seed, input checksums and the date."""

from __future__ import annotations

import hashlib
import html
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from stratomics.config import input_files as named_files
from stratomics.omop import without_password

PACKAGES = ("stratomics", "numpy", "scipy", "pandas", "anndata", "mudata", "scanpy", "statsmodels",
            "scikit-learn", "scikit-survival", "numba", "umap-learn", "hdbscan", "mofapy2", "lifelines",
            "formulaic", "bed-reader", "joblib", "matplotlib", "seaborn", "snakemake", "duckdb", "psycopg", "tableone",
            "gseapy")  # fmt: skip


def source_commit(folder: Path = Path(__file__).parent) -> str:
    """The git commit of the stratomics code that ran ("+ local changes" when the checkout differs from
    it), or "not a git checkout" (an installed wheel, or git missing)."""
    def git(*arguments):
        return subprocess.run(["git", "-C", str(folder), *arguments], capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".").strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"{commit} + local changes" if changed else commit


def sha256(path: Path, block: int = 1 << 20) -> str:
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def input_files(config: dict) -> list[Path]:
    """Every input file the config names that exists (sample sheet or CDM file, sample map, assay files)."""
    return sorted({Path(p) for p in named_files(config).values() if Path(p).is_file()})


def collect(config: dict) -> dict:
    """The provenance record of a run with this config.

    Returns
    -------
    A JSON-ready dict: date (UTC), seed, python, platform, the stratomics commit, versions, inputs
    (path, bytes, sha256), config.
    """
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    inputs = [{"path": str(p), "bytes": p.stat().st_size, "sha256": sha256(p)} for p in input_files(config)]
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seed": config.get("seed"),
            "python": sys.version.split()[0], "platform": platform.platform(), "stratomics_commit": source_commit(),
            "versions": versions,
            "inputs": inputs, "config": _redacted(config)}  # fmt: skip


def _redacted(config: dict) -> dict:
    """The config with any password in the OMOP URL replaced by ***."""
    omop = config.get("cohort", {}).get("omop")
    if not omop:
        return config
    return {**config, "cohort": {**config["cohort"], "omop": {**omop, "url": without_password(omop["url"])}}}


def write(record: dict, json_path: Path, html_path: Path) -> None:
    """Write the record as JSON (for machines) and as an HTML page (for the report)."""
    Path(json_path).write_text(json.dumps(record, indent=2, sort_keys=False, default=str) + "\n")
    rows = [("date (UTC)", record["date"]), ("seed", record["seed"]), ("python", record["python"]),
            ("platform", record["platform"]), ("stratomics commit", record["stratomics_commit"])]  # fmt: skip
    rows += [(name, value or "not installed") for name, value in record["versions"].items()]
    table = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    inputs = "".join(f"<tr><td>{html.escape(i['path'])}</td><td>{i['bytes']}</td><td><code>{i['sha256']}</code></td></tr>"
                     for i in record["inputs"])  # fmt: skip
    config = html.escape(json.dumps(record["config"], indent=2, default=str))
    Path(html_path).write_text(
        "<html><body><h2>Run</h2><table>" + table + "</table><h2>Input files</h2><table>"
        "<tr><th>path</th><th>bytes</th><th>sha256</th></tr>" + inputs + "</table>"
        "<h2>Config as run</h2><pre>" + config + "</pre></body></html>\n"
    )

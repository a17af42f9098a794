"""The conda environment of the workflow rules asks for what pyproject.toml asks for."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"snakemake": "snakemake-minimal", "igraph": "python-igraph"}  # PyPI name -> conda name


def requirements(lines) -> dict[str, str]:
    """name -> version specifier of requirement strings such as "numpy>=1.24"."""
    parsed = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", line.strip())
        parsed[match.group(1).lower()] = match.group(2).replace(" ", "")
    return parsed


def test_every_envs_file_matches_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {CONDA_NAMES.get(name, name): spec for name, spec in requirements(project["dependencies"]).items()}
    python = project["requires-python"]
    env_files = sorted((ROOT / "envs").glob("*.yaml"))
    assert env_files
    for env_file in env_files:
        listed = yaml.safe_load(env_file.read_text())["dependencies"]
        conda = requirements(entry for entry in listed if isinstance(entry, str))
        assert conda.pop("python") == python, env_file.name
        conda.pop("pip", None)
        assert conda == wanted, f"{env_file.name} differs from pyproject.toml: {set(conda.items()) ^ set(wanted.items())}"

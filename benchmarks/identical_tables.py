"""Do two versions of stratomics write byte-identical result tables? (The check behind refactors.)

Runs the tiny demo workflow of the tests (tests/workflow_helpers.py) with the checkout at a git
reference (default HEAD: the last commit) and with the working tree, each with its own package
(PYTHONPATH), Snakefile and config.yaml, and compares every ``results/**/*.tsv`` byte for byte (but Snakemake's run-time records in
``results/benchmarks/`` and the warning summary, whose messages name the run's folder). Prints
one line per table (identical, differs: first differing line, or only in one run) and exits 1 when
any table differs.

    python benchmarks/identical_tables.py [--before REF] [--moved OLD=NEW ...]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from workflow_helpers import workflow_command  # noqa: E402


def run_tiny_workflow(checkout: Path, folder: Path) -> Path:
    """Run the tiny demo with the package and workflow of ``checkout`` in ``folder``; its results folder."""
    environment = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    result = subprocess.run(workflow_command(folder, root=checkout), capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        sys.exit(f"the tiny workflow of {checkout} failed:\n{result.stderr[-3000:]}")
    return folder / "results"


def first_difference(before: Path, after: Path) -> str:
    """The first line where two text files differ."""
    old, new = before.read_text().splitlines(), after.read_text().splitlines()
    for number, (a, b) in enumerate(zip(old, new), start=1):
        if a != b:
            return f"line {number}: {a[:100]!r} -> {b[:100]!r}"
    return f"{len(old)} lines -> {len(new)} lines"


def compare(before: Path, after: Path, moved: dict[str, str]) -> list[str]:
    """One line per table of either run: identical, differs (where) or only in one run; a table in
    ``moved`` (old path -> new path, relative to results/) is compared with its new place."""
    tables = sorted({p.relative_to(run) for run in (before, after) for p in run.rglob("*.tsv")
                     if p.relative_to(run).parts[0] not in ("benchmarks", "warnings.tsv")}
                    - {Path(new) for new in moved.values()})  # fmt: skip
    lines = []
    for table in tables:
        old, new = before / table, after / moved.get(str(table), table)
        if not (old.exists() and new.exists()):
            lines.append(f"only in {'before' if old.exists() else 'after'}: {table}")
        elif filecmp.cmp(old, new, shallow=False):
            lines.append(f"identical: {table}")
        else:
            lines.append(f"differs: {table} ({first_difference(old, new)})")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="HEAD", help="git reference of the version to compare with")
    parser.add_argument("--moved", nargs="*", default=[], metavar="OLD=NEW",
                        help="a table that changed place, e.g. integrate/umap.tsv=stratify/umap.tsv")
    args = parser.parse_args()
    moved = dict(pair.split("=", 1) for pair in args.moved)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(scratch / "before"), args.before],
                       check=True, capture_output=True)  # fmt: skip
        try:
            (scratch / "run_before").mkdir()
            (scratch / "run_after").mkdir()
            before = run_tiny_workflow(scratch / "before", scratch / "run_before")
            after = run_tiny_workflow(ROOT, scratch / "run_after")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(scratch / "before")],
                           check=True, capture_output=True)  # fmt: skip
        lines = compare(before, after, moved)
    print("\n".join(lines))
    different = [line for line in lines if not line.startswith("identical")]
    print(f"{len(lines) - len(different)} of {len(lines)} tables identical to {args.before}")
    sys.exit(1 if different else 0)


if __name__ == "__main__":
    main()

"""Running a library step from a Snakemake script: logging to the rule's log, clear input errors."""

from __future__ import annotations

import errno
import logging
import re
import sys
import warnings
from pathlib import Path
from typing import Callable

import pandas as pd

from stratomics.errors import StratomicsInputError
from stratomics.tables import write_table

log = logging.getLogger("stratomics")


#: The format of every rule's log line (:func:`warning_summary` parses it).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ (?P<level>INFO|WARNING|ERROR) (?P<source>[\w.]+): (?P<message>.*)$")
#: Loggers whose INFO lines are QC removals: not warnings, but the end-of-run summary lists them.
QC_LOGGERS = ("stratomics.qc_record", "stratomics.kinds.voice")


def run_step(log_path: str | None, step: Callable[[], None], *, inputs=()) -> None:
    """Run ``step`` with logging to ``log_path`` and stderr; every failure ends up in the log.

    An input problem (:class:`StratomicsInputError`) is logged as one message without a traceback;
    so are an unreadable (truncated or corrupt) HDF5 input among ``inputs`` and a full disk, with
    what to do. Any other error is logged with its traceback. Each ends the job with exit status 1.

    Parameters
    ----------
    log_path
        The rule's log file.
    step
        The work.
    inputs
        The rule's input files (checked when the step fails on a file).
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True, format=LOG_FORMAT)
    logging.captureWarnings(True)
    # mudata announces a change of MuData.update() on every call; nothing here relies on either behaviour
    warnings.filterwarnings("ignore", message=r"From 0\.4 \.update\(\) will not pull", category=FutureWarning)
    try:
        step()
    except StratomicsInputError as err:
        log.error("%s", err)
        sys.exit(1)
    except Exception as err:  # noqa: BLE001 (every failure belongs in the rule's log)
        problem = file_problem(err, [str(path) for path in inputs])
        if problem:
            log.error("%s", problem)
        else:
            log.exception("the step failed")
        sys.exit(1)


def file_problem(err: Exception, inputs: list[str]) -> str | None:
    """What to do when ``err`` comes from a full disk or an unreadable HDF5 input; None otherwise."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return (f"no space left on the device while writing {err.filename or 'an output'}: free disk space (or "
                "move the results folder to a larger disk) and run the same command again; the job's outputs "
                "were not kept.")  # fmt: skip
    unreadable = {path: reason for path in inputs if (reason := _hdf5_unreadable(path))}
    if not unreadable:
        return None
    path, reason = next(iter(unreadable.items()))
    return (f"{path}: cannot be read ({reason}); the file is truncated or corrupt (a run killed while writing it, "
            "or a full disk). Delete it and run the same command again: Snakemake remakes it with the rule that "
            "writes it.")  # fmt: skip


def _hdf5_unreadable(path: str) -> str | None:
    """Why an .h5ad/.h5mu input cannot be opened, or None (other files, or a readable one)."""
    if Path(path).suffix not in (".h5ad", ".h5mu") or not Path(path).is_file():
        return None
    import h5py

    try:
        with h5py.File(path, "r"):
            return None
    except OSError as err:
        return str(err)


def warning_summary(log_folder: str | Path) -> pd.DataFrame:
    """Every warning and error of the rules' logs, and every QC removal, one row per distinct message and step.

    Parameters
    ----------
    log_folder
        The folder of the rules' logs (``results/logs``).

    Returns
    -------
    Columns step (the log's name), level (INFO for a QC removal), message and count, in log-name order.
    """
    rows = []
    for path in sorted(Path(log_folder).glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            match = LOG_LINE.match(line)
            if match and (match["level"] != "INFO" or match["source"] in QC_LOGGERS):
                rows.append({"step": path.stem, "level": match["level"], "message": match["message"]})
    table = pd.DataFrame(rows, columns=["step", "level", "message"])
    counts = table.groupby(["step", "level", "message"], sort=False).size().rename("count").reset_index()
    return counts


def report_warnings(log_folder: str | Path, path: str | Path, *, shown: int = 12) -> pd.DataFrame:
    """Write :func:`warning_summary` to ``path`` and print its first messages to stderr (end of a run).

    Returns
    -------
    The summary.
    """
    table = warning_summary(log_folder)
    write_table(table, path)
    if table.empty:
        print(f"stratomics: no warnings in {log_folder}.", file=sys.stderr)
        return table
    print(f"stratomics: {len(table)} distinct warnings in {table['step'].nunique()} steps (all in {path}); "
          "read them before using the results:", file=sys.stderr)  # fmt: skip
    for row in table.head(shown).itertuples():
        repeat = f" (x{row.count})" if row.count > 1 else ""
        print(f"  [{row.step}] {row.message[:300]}{repeat}", file=sys.stderr)
    if len(table) > shown:
        print(f"  ... and {len(table) - shown} more in {path}", file=sys.stderr)
    return table

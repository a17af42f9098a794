"""Running a step: every failure ends in the rule's log with what to do."""

import errno
import logging

import anndata as ad
import numpy as np
import pytest

from stratomics.errors import StratomicsInputError
from stratomics.runner import report_warnings, run_step


@pytest.fixture(autouse=True)
def restore_logging():
    """run_step configures the root logger as a job does; give the next tests theirs back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level
    logging.captureWarnings(False)


def run_failing(tmp_path, step, inputs=()) -> str:
    log = tmp_path / "rule.log"
    with pytest.raises(SystemExit) as exit_:
        run_step(str(log), step, inputs=inputs)
    assert exit_.value.code == 1
    return log.read_text()


def test_a_truncated_intermediate_is_named_with_what_to_do(tmp_path):
    path = tmp_path / "preprocessed.h5ad"
    ad.AnnData(np.ones((50, 40))).write_h5ad(path)
    path.write_bytes(path.read_bytes()[:3000])  # a run killed while writing it
    logged = run_failing(tmp_path, lambda: ad.read_h5ad(path), inputs=[str(tmp_path / "sheet.csv"), str(path)])
    assert f"{path}: cannot be read" in logged and "Delete it and run the same command again" in logged
    assert "Traceback" not in logged


def test_input_errors_full_disks_and_bugs_all_reach_the_log(tmp_path):
    def input_error():
        raise StratomicsInputError("sheet.csv: column 'age' line 3 has value 'x'")

    assert "ERROR stratomics: sheet.csv: column 'age' line 3" in run_failing(tmp_path, input_error)

    def full_disk():
        raise OSError(errno.ENOSPC, "No space left on device", "results/cohort/raw.h5mu")

    assert "no space left on the device while writing results/cohort/raw.h5mu" in run_failing(tmp_path, full_disk)

    def bug():
        return {}["missing"]

    logged = run_failing(tmp_path, bug)
    assert "the step failed" in logged and "Traceback" in logged and "KeyError: 'missing'" in logged


def test_warnings_of_every_step_are_gathered_once_each_with_their_count(tmp_path, capsys):
    logs = tmp_path / "logs"
    logs.mkdir()
    def step(messages):
        for message in messages:
            logging.getLogger("stratomics.x").warning(message)
        logging.getLogger("stratomics.x").info("all fine")
        logging.getLogger("stratomics.qc_record").info("assay 'rna': removed 2 features: constant")

    for name, messages in (("ingest", ["assay 'rna': 3 unmapped sample IDs: a, b, c"] * 2),
                           ("integrate", ["assay 'rare' is left out: measured on 3 patients"])):  # fmt: skip
        run_step(str(logs / f"{name}.log"), lambda messages=messages: step(messages))
    (logs / "failed.log").write_text("2026-01-01 10:00:00,000 ERROR stratomics.runner: the step failed\nTraceback\n")
    table = report_warnings(logs, tmp_path / "warnings.tsv")
    assert table.to_dict("records") == [
        {"step": "failed", "level": "ERROR", "message": "the step failed", "count": 1},
        {"step": "ingest", "level": "WARNING", "message": "assay 'rna': 3 unmapped sample IDs: a, b, c", "count": 2},
        {"step": "ingest", "level": "INFO", "message": "assay 'rna': removed 2 features: constant", "count": 1},
        {"step": "integrate", "level": "WARNING", "message": "assay 'rare' is left out: measured on 3 patients",
         "count": 1},
        {"step": "integrate", "level": "INFO", "message": "assay 'rna': removed 2 features: constant", "count": 1},
    ]  # fmt: skip
    assert "INFO stratomics.qc_record" in (logs / "ingest.log").read_text()  # a QC removal is not a warning
    assert (tmp_path / "warnings.tsv").read_text().count("\n") == 6
    assert "5 distinct warnings in 3 steps" in capsys.readouterr().err
    assert report_warnings(tmp_path / "nothing", tmp_path / "none.tsv").empty

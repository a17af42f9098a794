"""Running a step: every failure ends in the rule's log with what to do."""

import errno
import logging

import anndata as ad
import numpy as np
import pytest

from stratomics.errors import StratomicsInputError
from stratomics.runner import run_step


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

"""Running a library step from a Snakemake script: logging to the rule's log, clear input errors."""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Callable

from stratomics.errors import StratomicsInputError


def run_step(log_path: str | None, step: Callable[[], None]) -> None:
    """Run ``step`` with logging to ``log_path`` and stderr.

    An input problem (:class:`StratomicsInputError`) is logged as one message without a traceback
    and ends the job with exit status 1; programming errors keep their traceback.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    logging.captureWarnings(True)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        step()
    except StratomicsInputError as err:
        logging.getLogger("stratomics").error("%s", err)
        sys.exit(1)

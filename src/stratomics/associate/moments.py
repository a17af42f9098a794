"""Sums that a least-squares fit of every feature needs, from one pass over the feature matrix.

For a feature y (NaN where missing) and a design X, the normal equations over the observed
patients need X'y and y'y with missing values counted as zero, and X'X less the outer products of
the design rows where y is missing. The data are read once, a block of patients at a time: a
compiled loop copies the block with NaN as 0 (it stays in cache), adds the squares and the design
rows of the missing values, and one matrix product adds the block's X'y. No patients x features
mask or copy is ever formed, and few missing values cost little.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from threadpoolctl import threadpool_limits

#: Patients read per step: one step's zero-filled copy stays in cache for the matrix product.
BLOCK_ROWS = 128


def available_threads() -> int:
    """Threads to use: OMP_NUM_THREADS when set (Snakemake sets it to a job's threads), else the CPUs."""
    setting = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()  # "4,2" sets nested levels
    return int(setting) if setting.isdigit() and int(setting) > 0 else len(os.sched_getaffinity(0))


def outer_rows(x: np.ndarray) -> np.ndarray:
    """Each row of ``x`` (n x p) times itself, flattened: n x p^2 (sum rows to get X'X)."""
    return (x[:, :, None] * x[:, None, :]).reshape(len(x), -1)


_COMPILE = {"cache": True, "nogil": True, "fastmath": {"reassoc", "contract"}}


@numba.njit(**_COMPILE)
def _zero_filled(values, first_row, first, block, squares, missing):
    """Copy rows ``first_row:`` and columns ``first:`` of ``values`` into ``block`` with NaN as 0.

    Adds the squared values to ``squares``, marks missing values in ``missing`` (uint8, shaped like
    ``block``) and returns how many there were.
    """
    rows, width = block.shape
    count = 0
    for r in range(rows):  # one-dimensional rows: the loops vectorise
        source, target, flags = values[first_row + r, first : first + width], block[r], missing[r]
        for j in range(width):
            value = source[j]
            observed = value == value
            value = value if observed else 0.0
            target[j] = value
            squares[j] += value * value
            flags[j] = not observed
        for j in range(width):
            count += flags[j]
    return count


@numba.njit(**_COMPILE)
def _add_missing_rows(outer, missing, n_missing, missing_gram):
    """Add row ``r`` of ``outer`` to ``missing_gram[j]`` wherever ``missing[r, j]``."""
    rows, width = missing.shape
    columns = np.empty(width, dtype=np.int64)
    for r in range(rows):
        count = 0
        for j in range(width):  # branch-free list of this row's missing columns
            columns[count] = j
            count += missing[r, j]
        source = outer[r]
        for e in range(count):
            j = columns[e]
            n_missing[j] += 1
            target = missing_gram[j]
            for t in range(source.shape[0]):
                target[t] += source[t]


def _accumulate(values, x, first, last):
    """The sums of :func:`masked_moments` for features ``first:last``, block of rows by block of rows.

    The missing rows' outer products are summed over the upper triangle only (they are symmetric).
    """
    n, p = x.shape
    width = last - first
    upper = np.triu_indices(p)
    xty_t, yty = np.zeros((p, width)), np.zeros(width)
    n_missing, missing_upper = np.zeros(width, dtype=np.int64), np.zeros((width, len(upper[0])))
    block, missing = np.empty((BLOCK_ROWS, width)), np.empty((BLOCK_ROWS, width), dtype=np.uint8)
    for first_row in range(0, n, BLOCK_ROWS):
        rows = min(BLOCK_ROWS, n - first_row)
        design = x[first_row : first_row + rows]
        if _zero_filled(values, first_row, first, block[:rows], yty, missing[:rows]):
            outer_upper = design[:, upper[0]] * design[:, upper[1]]
            _add_missing_rows(outer_upper, missing[:rows], n_missing, missing_upper)
        xty_t += design.T @ block[:rows]
    missing_gram = np.empty((width, p, p))
    missing_gram[:, upper[0], upper[1]] = missing_upper
    missing_gram[:, upper[1], upper[0]] = missing_upper
    return xty_t.T, yty, n_missing, missing_gram.reshape(width, p * p)


def float_values(values) -> np.ndarray:
    """``values`` as an array of floats: float32 and float64 as they are (not copied), anything else as float64."""
    values = np.asarray(values)
    return values if values.dtype in (np.float32, np.float64) else values.astype(float)


def masked_moments(values: np.ndarray, x: np.ndarray, *, threads: int | None = None):
    """X'y, y'y and the design's outer products over the missing rows, for every feature y.

    Parameters
    ----------
    values
        Patients x features, NaN where missing (float32 or float64 is read as it is, not copied).
    x
        Patients x p design.
    threads
        Worker threads (default :func:`available_threads`), each with a contiguous share of the
        features and single-threaded BLAS.

    Returns
    -------
    ``xty`` (features x p), ``yty`` (features), ``n_missing`` (features) and ``missing_gram``
    (features x p^2: the sum of x_i x_i' over the patients i where the feature is missing), all
    with missing values counted as zero.
    """
    values = float_values(values)
    x = np.ascontiguousarray(x, dtype=float)
    n, m = values.shape
    p = x.shape[1]
    bounds = np.linspace(0, m, min(m, threads or available_threads()) + 1).astype(int)
    with threadpool_limits(1), ThreadPoolExecutor(max(len(bounds) - 1, 1)) as pool:
        parts = list(pool.map(lambda share: _accumulate(values, x, *share), zip(bounds[:-1], bounds[1:])))
    if not parts:
        return np.zeros((m, p)), np.zeros(m), np.zeros(m, dtype=np.int64), np.zeros((m, p * p))
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))

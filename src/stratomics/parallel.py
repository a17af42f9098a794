"""Independent tasks in worker processes, each with one BLAS/OpenMP thread."""

from __future__ import annotations


def in_processes(tasks, n_jobs: int) -> list:
    """Run joblib ``delayed`` tasks in ``n_jobs`` processes of one BLAS/OpenMP thread each.

    One thread per process avoids oversubscription, and makes each task's numbers independent of
    ``n_jobs`` (a BLAS may sum in another order on another thread count).

    Parameters
    ----------
    tasks
        Iterable of ``joblib.delayed(function)(...)``.
    n_jobs
        Worker processes (1 runs the tasks in this process, still with one BLAS thread).

    Returns
    -------
    The tasks' results in order.
    """
    from joblib import Parallel, parallel_config
    from threadpoolctl import threadpool_limits

    if n_jobs == 1:
        with threadpool_limits(1):
            return [function(*args, **kwargs) for function, args, kwargs in tasks]
    with parallel_config(backend="loky", inner_max_num_threads=1):
        return Parallel(n_jobs=n_jobs)(tasks)

"""Process pools for CPU-bound per-item work inside one Snakemake job.

Workers are forked (so module state such as opened stores is shared copy-on-write) and each
limits its BLAS/OpenMP pools to one thread: with several workers, idle OpenBLAS threads
spin and make two processes slower than one (measured in docs/benchmarks.md).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _single_threaded_blas() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def ordered_map(
    func: Callable[[T], R], tasks: Sequence[T], processes: int, chunksize: int = 1
) -> Iterator[R]:
    """``map`` in task order, over ``processes`` forked workers when that is worth it."""
    if processes <= 1 or len(tasks) < 2:
        yield from map(func, tasks)
        return
    context = mp.get_context("fork")
    with context.Pool(min(processes, len(tasks)), initializer=_single_threaded_blas) as pool:
        yield from pool.imap(func, tasks, chunksize=chunksize)


def run_single_threaded_blas(func: Callable[[], R]) -> R:
    """Run ``func`` with BLAS limited to one thread in this process."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return func()



_JOB_THREADS = 1


def job_threads() -> int:
    """The thread count of the running job (set by :func:`limit_threads`; 1 before)."""
    return _JOB_THREADS


def limit_threads(threads: int) -> None:
    """Keep a job within its Snakemake ``threads`` (BLAS pools, torch when loaded, and the
    thread count adapters with their own pools read through :func:`job_threads`).

    Also makes OpenMP threads sleep when idle (``OMP_WAIT_POLICY=PASSIVE`` unless set):
    llama.cpp and CTranslate2 busy-wait by default, which made them about 12x slower while
    another process used the cores (docs/benchmarks.md). It must be set before their
    libraries load, so every job calls this first.
    """
    import os
    import sys

    from threadpoolctl import threadpool_limits

    global _JOB_THREADS
    _JOB_THREADS = max(1, threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    threadpool_limits(max(1, threads))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(max(1, threads))

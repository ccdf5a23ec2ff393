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





def limit_threads(threads: int) -> None:
    """Keep a job within its Snakemake ``threads`` (BLAS pools, and torch when loaded)."""
    import sys

    from threadpoolctl import threadpool_limits

    threadpool_limits(max(1, threads))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(max(1, threads))

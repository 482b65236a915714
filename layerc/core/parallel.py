"""The batch split across cores, for NumPy's single-threaded elementwise loops.

NumPy runs its elementwise loops (copies, ReLU, pooling, col2im adds) on one core while
BLAS uses them all; NumPy releases the GIL inside those loops, so splitting a big one
along the batch axis over a few threads uses the other cores too (~1.7x on 2 cores for
the seed CNN's 11 MB activations). Each part writes its own rows only, so results are
the same bit for bit. LAYERC_NUM_THREADS=1 turns it off.
"""
from __future__ import annotations

import os

_PARALLEL_MIN = 1 << 18  # elements below which one thread is faster than dispatching
_pool = None


def _n_threads() -> int:
    env = os.environ.get("LAYERC_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return min(cores, 8)


def split_batch(fn, n, size):
    """Call fn(batch_slice) over parts of range(n) on up to one thread per core, or
    fn(slice(0, n)) once when the work (size, in elements) is small. fn must only write
    the rows of its slice."""
    global _pool
    parts = min(n, _n_threads()) if size >= _PARALLEL_MIN else 1
    if parts < 2:
        fn(slice(0, n))
        return
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(_n_threads() - 1, thread_name_prefix="layerc")
    cuts = [n * i // parts for i in range(parts + 1)]
    futures = [_pool.submit(fn, slice(a, b)) for a, b in zip(cuts[1:-1], cuts[2:])]
    try:
        fn(slice(cuts[0], cuts[1]))
    finally:
        for f in futures:
            f.result()

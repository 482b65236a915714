"""The batch split across cores.

NumPy runs its elementwise loops on one core, and on this kind of machine two one-thread
BLAS products run faster than one two-thread product. Layers that do big work (the
convolutions, recurrent layers, big Dense products) therefore split the batch over a
small thread pool themselves, with OpenBLAS on one thread (`one_blas_thread`, which the
model holds while such layers run). NumPy and BLAS release the GIL inside their loops,
so the parts run at once. Each part writes its own rows only and partial sums are added
in a fixed order, so results are the same run to run for a given thread count;
LAYERC_NUM_THREADS sets it (1 turns the splitting off).
"""
from __future__ import annotations

import os

from . import xp

_PARALLEL_MIN = 1 << 18  # elements below which one thread is faster than dispatching
_pool = None


def n_threads() -> int:
    """Threads to split work over: LAYERC_NUM_THREADS if it is a number, else the cores
    this process may use (at most 8)."""
    env = os.environ.get("LAYERC_NUM_THREADS", "")
    if env.strip().isdigit():
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
    parts = min(n, n_threads()) if size >= _PARALLEL_MIN else 1
    if parts < 2:
        fn(slice(0, n))
        return
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(n_threads() - 1, thread_name_prefix="layerc")
    cuts = [n * i // parts for i in range(parts + 1)]
    futures = [_pool.submit(fn, slice(a, b)) for a, b in zip(cuts[1:-1], cuts[2:])]
    try:
        fn(slice(cuts[0], cuts[1]))
    finally:
        for f in futures:
            f.result()


def matmul(A, B):
    """A @ B for 2-D arrays. Under one_blas_thread, a big product has the rows of A (A may
    be a transposed view) split over the threads; otherwise BLAS threads it itself."""
    blas = _openblas()
    M = A.shape[0]
    macs = M * A.shape[1] * B.shape[1]
    if not blas or blas[0]() > 1 or macs < _MATMUL_SPLIT_MIN:
        return A @ B
    out = xp.empty((M, B.shape[1]), xp.result_type(A, B))
    split_batch(lambda r: xp.matmul(A[r], B, out=out[r]), M, 1 << 62)
    return out


# A thread dispatch costs ~60 us here (thread wake-up), what one core needs for ~3M
# multiply-adds: smaller products stay on one thread.
_MATMUL_SPLIT_MIN = 8 << 20


# -- OpenBLAS on one thread ------------------------------------------------------------------
# A model with layers that split their work over the batch themselves (convolutions,
# recurrent layers: `Layer.splits_work`) runs with a one-thread OpenBLAS: two one-thread
# products run ~1.3x faster than one two-thread product here, and a multi-thread OpenBLAS
# leaves its workers spinning for ~0.1 s after each product, which halves the speed of
# anything our own threads run meanwhile. For recurrent layers' small per-step products,
# waking a BLAS worker also costs more than it saves.
_BLAS = None  # (get_num_threads, set_num_threads) of numpy's OpenBLAS, or () if unknown


def _openblas():
    """The thread-count functions of the OpenBLAS numpy was loaded with, found once."""
    global _BLAS
    if _BLAS is None:
        _BLAS = ()
        if os.environ.get("LAYERC_ONE_BLAS_THREAD", "1") == "0":
            return _BLAS
        try:
            import ctypes

            with open("/proc/self/maps") as f:
                paths = sorted({ln.split()[-1] for ln in f if "openblas" in ln.lower() and "/" in ln})
            names = [("openblas_get_num_threads", "openblas_set_num_threads"),
                     ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                     ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
                     ("openblas_get_num_threads64_", "openblas_set_num_threads64_")]
            for path in paths:
                lib = ctypes.CDLL(path)
                for get, set_ in names:
                    if hasattr(lib, get) and hasattr(lib, set_):
                        _BLAS = (getattr(lib, get), getattr(lib, set_))
                        return _BLAS
        except (OSError, AttributeError):  # no /proc (not Linux), or not OpenBLAS
            _BLAS = ()
    return _BLAS


class one_blas_thread:
    """`with one_blas_thread():` runs its block with OpenBLAS on one thread, then restores
    the previous count (a no-op when numpy's BLAS is not a recognised OpenBLAS)."""

    def __enter__(self):
        blas = _openblas()
        self.before = blas[0]() if blas else 1
        if self.before > 1:
            blas[1](1)
        return self

    def __exit__(self, *exc):
        if self.before > 1:
            _openblas()[1](self.before)
        return False

"""Keep freed array memory in the process for reuse (glibc only).

Each training step allocates and frees the same large temporaries (im2col columns,
activations, gradients). glibc serves blocks over 128 KiB with fresh mmap() calls and
returns them to the kernel on free, so every step pays page faults and zeroing for
memory it had a moment ago: on the seed CNN that was ~30% of a step. Raising the mmap
and trim thresholds makes malloc keep and reuse those blocks; the peak stays the same.
Set LAYERC_KEEP_MEMORY=0 to leave the allocator alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_done = False


def keep_freed_memory() -> bool:
    """Tune glibc's malloc once per process; returns whether it was tuned."""
    global _done
    if _done:
        return True
    _done = True
    if not sys.platform.startswith("linux") or os.environ.get("LAYERC_KEEP_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1) == 1
        return bool(ok)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False

"""Winograd F(2x2, 3x3) against im2col for a few 3x3 convolutions, in one process.

    python benchmarks/conv_paths.py            # the shapes behind winograd.MIN_CHANNEL_PRODUCT
    python benchmarks/conv_paths.py --rounds 21

Each round times both paths back to back on the same arrays (128 images, one-thread
OpenBLAS with the batch split over the cores, as a model runs them), so a drift in the
machine's speed hits both; the table gives medians in ms of the training forward, its
backprop, and the inference forward. Run it alone on the machine.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layerc.core import conv, winograd  # noqa: E402
from layerc.core.allocator import keep_freed_memory  # noqa: E402
from layerc.core.parallel import one_blas_thread  # noqa: E402

# (title, input (H, W, C), filters, pool) -- the seed CNN's second convolution, and
# mnist_resnet's block convolutions
SHAPES = [
    ("seed CNN conv2 + pool", (13, 13, 32), 64, (2, 2)),
    ("resnet block 1", (28, 28, 32), 32, None),
    ("resnet block 2, first", (14, 14, 32), 64, None),
    ("resnet block 2", (14, 14, 64), 64, None),
]


def time_path(X, W, pool, dY, use_winograd):
    """(training forward, backprop, inference forward) seconds of one conv2d call each."""
    winograd.MIN_CHANNEL_PRODUCT = 0 if use_winograd else 1 << 62
    pads = ((0, 0), (0, 0)) if pool else ((1, 1), (1, 1))
    t0 = time.perf_counter()
    _, backprop = conv.conv2d(X, W, (1, 1), (1, 1), pads, None, True, True, True, pool)
    t1 = time.perf_counter()
    backprop(dY)
    t2 = time.perf_counter()
    conv.conv2d(X, W, (1, 1), (1, 1), pads, None, True, False, True, pool)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=11, help="timed rounds per shape (default 11)")
    args = ap.parse_args(argv)
    keep_freed_memory()
    rng = np.random.default_rng(0)
    default = winograd.MIN_CHANNEL_PRODUCT
    print(f"{'shape':<24} {'C->F':>7} {'path':<9} {'train fwd':>9} {'backprop':>9} {'infer':>7}  (ms)")
    try:
        for title, (H, Wd, C), F, pool in SHAPES:
            X = rng.standard_normal((128, H, Wd, C), dtype=np.float32)
            W = (rng.standard_normal((3, 3, C, F)) * 0.1).astype(np.float32)
            out = (H - 2, Wd - 2) if pool else (H, Wd)
            if pool:
                out = (out[0] // 2, out[1] // 2)
            dY = rng.standard_normal((128, *out, F), dtype=np.float32)
            times = {False: [], True: []}
            with one_blas_thread():
                for path in (False, True):  # warm-up
                    time_path(X, W, pool, dY, path)
                for _ in range(args.rounds):
                    for path in (False, True):
                        times[path].append(time_path(X, W, pool, dY, path))
            for path, name in ((False, "im2col"), (True, "winograd")):
                med = [statistics.median(t[k] for t in times[path]) * 1e3 for k in range(3)]
                print(f"{title:<24} {f'{C}->{F}':>7} {name:<9} {med[0]:>9.2f} {med[1]:>9.2f} {med[2]:>7.2f}")
            taken = "winograd" if C * F >= default else "im2col"
            print(f"{'':<24} {'':>7} layerc takes {taken} (channels x filters {C * F}, threshold {default})")
    finally:
        winograd.MIN_CHANNEL_PRODUCT = default
    return 0


if __name__ == "__main__":
    sys.exit(main())

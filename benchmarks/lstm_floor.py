"""How fast the LSTM can go on NumPy here: its matrix products alone against PyTorch's LSTM.

    python benchmarks/lstm_floor.py             # the bench's LSTM(128) on 80 x 64 inputs, batch 64
    python benchmarks/lstm_floor.py --rounds 11 --calls 50

Times, in one process and in turn (0.3 s idle, then 20 calls; medians over rounds), one LSTM
layer's inference and training (forward, then backward to the inputs and weights) for:

- PyTorch's `nn.LSTM` as shipped: on CPU it runs oneDNN's fused LSTM primitive
  (`aten::mkldnn_rnn_layer` in its profiler);
- PyTorch's `nn.LSTM` with oneDNN switched off (its own ATen loop);
- layerc's `LSTM` layer as a model runs it (batch halves on two threads, one-thread BLAS);
- one batch half alone on one thread (what the layer would take if the second thread
  cost nothing: two busy cores run slower than one, and share the caches and the GIL);
- the matrix products layerc's LSTM cannot avoid, alone, on the same two-thread split:
  per step the gates' product W_stacked (4u, F + 1 + u) @ [x_t; 1; h] and, for
  training, U @ da, then the weight-gradient and input-gradient products. Nothing else:
  no activation, no copy. This is a floor no NumPy implementation of this layout goes
  under, whatever its elementwise code.

The floor's time against PyTorch's bounds the ratio the issue asks about from above.
Without torch installed only the layerc rows are printed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layerc.core.allocator import keep_freed_memory  # noqa: E402
from layerc.core.lstm import LSTM  # noqa: E402
from layerc.core.parallel import one_blas_thread, split_batch  # noqa: E402
from layerc.spec import layers as spec_layers  # noqa: E402

N, T, F, UNITS = 64, 80, 64, 128  # benchmarks/specs/lstm.yaml's LSTM, batch 64
SETTLE_SECONDS = 0.3


def layerc_lstm():
    layer = LSTM(spec_layers.LSTM(units=UNITS), "lstm", seed=0)
    layer.build((T, F))
    layer.input_grad = True
    return layer


def product_floor(rng):
    """(inference, training) callables running only the products, each batch half on its
    own thread with OpenBLAS on one thread, as the layer does."""
    n, u = N // 2, UNITS
    K = F + 1 + u
    W = rng.standard_normal((4 * u, K), dtype=np.float32) * 0.1
    U = np.ascontiguousarray(W[:, F + 1:].T)
    Wx = np.ascontiguousarray(W[:, :F].T)
    halves = []
    for _ in range(2):
        halves.append(dict(XH=rng.standard_normal((T, K, n), dtype=np.float32),
                           dA=rng.standard_normal((T, 4 * u, n), dtype=np.float32),
                           X2=rng.standard_normal((K, T * n), dtype=np.float32),
                           dA2=rng.standard_normal((4 * u, T * n), dtype=np.float32),
                           a=np.empty((4 * u, n), np.float32), dh=np.empty((u, n), np.float32)))

    def forward(h):
        for t in range(T):
            np.matmul(W, h["XH"][t], out=h["a"])

    def train(h):
        forward(h)
        for t in range(T - 1, -1, -1):
            np.matmul(U, h["dA"][t], out=h["dh"])
        h["X2"] @ h["dA2"].T  # kernel, bias and recurrent-kernel gradients
        Wx @ h["dA2"]  # input gradient

    def on_two_threads(fn):  # the layer's own split: its thread pool, one-thread BLAS
        def run():
            with one_blas_thread():
                split_batch(lambda part: fn(halves[part.start]), 2, 1 << 62)
        return run

    return on_two_threads(forward), on_two_threads(train)


def torch_lstm(torch, onednn):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(F, UNITS, batch_first=True)
    x = torch.randn(N, T, F, requires_grad=True)

    def infer():
        with torch.backends.mkldnn.flags(enabled=onednn), torch.no_grad():
            lstm(x)

    def train():
        with torch.backends.mkldnn.flags(enabled=onednn):
            _, (h, _) = lstm(x)
            h[-1].sum().backward()

    return infer, train


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    ap.add_argument("--calls", type=int, default=20,
                    help="calls per timing (default 20: a core woken from idle takes a while "
                         "to reach speed, which a single call would mostly measure)")
    args = ap.parse_args(argv)
    keep_freed_memory()
    rng = np.random.default_rng(0)
    layer = layerc_lstm()
    X = rng.standard_normal((N, T, F), dtype=np.float32)
    dY = rng.standard_normal((N, UNITS), dtype=np.float32)

    def layerc_infer(x=X, dy=None):
        with one_blas_thread():
            layer.forward(x, False)

    def layerc_train(x=X, dy=dY):
        with one_blas_thread():
            layer.forward(x, True)[1](dy)

    def half_alone(fn):
        def run():
            with mock.patch.dict(os.environ, {"LAYERC_NUM_THREADS": "1"}):
                fn(X[:N // 2], dY[:N // 2])
        return run

    floor_infer, floor_train = product_floor(rng)
    rows = {"layerc LSTM layer": (layerc_infer, layerc_train),
            "layerc, one batch half alone": (half_alone(layerc_infer), half_alone(layerc_train)),
            "products alone (floor)": (floor_infer, floor_train)}
    warnings.filterwarnings("ignore", message="TF32")  # torch's notice about Intel GPUs
    try:
        import torch
    except ImportError:
        torch = None
        print("torch is not installed: PyTorch rows skipped", file=sys.stderr)
    if torch is not None:
        rows = {"PyTorch nn.LSTM (oneDNN)": torch_lstm(torch, True),
                "PyTorch nn.LSTM, oneDNN off": torch_lstm(torch, False), **rows}
    times = {(name, kind): [] for name in rows for kind in ("infer", "train")}
    for fns in rows.values():  # warm-up
        for fn in fns:
            fn()
    for r in range(args.rounds):
        for name, fns in rows.items():
            for kind, fn in zip(("infer", "train"), fns):
                time.sleep(SETTLE_SECONDS)
                t0 = time.perf_counter()
                for _ in range(args.calls):
                    fn()
                times[name, kind].append((time.perf_counter() - t0) / args.calls)
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    ref = "PyTorch nn.LSTM (oneDNN)" if torch is not None else None
    print(f"LSTM({UNITS}) on ({N}, {T}, {F}), medians of {args.rounds} rounds")
    print(f"{'':<30} {'infer ms':>9} {'train ms':>9}" + ("  speed vs PyTorch: infer  train" if ref else ""))
    for name in rows:
        line = f"{name:<30} {med[name, 'infer']:9.2f} {med[name, 'train']:9.2f}"
        if ref:  # the median of the rounds' ratios: each round times every row back to back
            line += "".join(
                f" {statistics.median(a / b for a, b in zip(times[ref, kind], times[name, kind])):{w}.2f}x"
                for kind, w in (("infer", 23), ("train", 5)))
        print(line)
    if ref:
        print("speed vs PyTorch: PyTorch's time / the row's time, per round, median. The floor's "
              "bounds every NumPy LSTM of this layout.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

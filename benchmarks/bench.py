"""layerc vs PyTorch CPU: training and inference throughput, peak memory (issue 6).

    python benchmarks/bench.py                      # full run: cnn, mlp, lstm, gru, transformer, mobilenetv2,
                                                    # resnet50 + memory + start-up
    python benchmarks/bench.py --quick              # fewer samples, 1 repeat: checks the harness
    python benchmarks/bench.py --models cnn,lstm --repeats 5
    python benchmarks/bench.py --mnist-epoch        # also one full MNIST epoch of the seed CNN
    python benchmarks/bench.py --markdown           # also print the README table
    python benchmarks/bench.py --mnist-epoch --readme  # everything, and the table into README.md
    python benchmarks/bench.py --profile cnn        # cProfile of layerc's train_step, then exit
    python benchmarks/bench.py --startup-only       # only `layerc --version` and `layerc summary`

Both frameworks run in this one process, in turn, on the same numpy arrays (made once
from a fixed seed; torch tensors are made from them outside the timed region) and, for
every model, the same initial weights (layerc's, copied into torch), so both do the same
maths: the harness checks that their outputs agree before timing. Each repeat times a
full pass over the samples for each framework back to back after one warm-up pass, so
machine load hits both alike, with 0.3 s idle before each pass so one framework's
spinning worker threads never run into the other's timing; figures are medians over repeats.

Peak memory (the child's resident high-water mark, VmHWM) is measured in a fresh child
process per (framework, model), the child being this script run with the hidden
`--child` flag, so peaks never mix.

Thread settings are left at their defaults and recorded (with the OPENBLAS_* / OMP_*
environment and the BLAS numpy was built with) in the JSON's `machine` section, with the
OpenBLAS kernel numpy runs (threadpoolctl's report) and, where OPENBLAS_CORETYPE pins one,
the kernel OpenBLAS picks for this CPU without it.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPECS = {"cnn": ROOT / "specs" / "mnist_cnn.yaml", "mlp": HERE / "specs" / "mlp.yaml",
         "lstm": HERE / "specs" / "lstm.yaml", "gru": HERE / "specs" / "gru.yaml",
         "transformer": HERE / "specs" / "transformer.yaml",
         "mobilenetv2": HERE / "models" / "mobilenetv2.yaml", "resnet50": HERE / "models" / "resnet50.yaml"}
GRAPHS = ("mobilenetv2", "resnet50")  # image graph models: 1000 classes, PyTorch twin from the layer list
IMAGES = {"cnn": (28, 28, 1), "mobilenetv2": (96, 96, 3), "resnet50": (64, 64, 3)}
CLASSES = {"cnn": 10, "mlp": 10, "mobilenetv2": 1000, "resnet50": 1000}
TITLES = {"cnn": "seed CNN", "mlp": "MLP", "lstm": "LSTM", "gru": "GRU", "transformer": "transformer block",
          "mobilenetv2": "MobileNetV2 96x96", "resnet50": "ResNet50 64x64", "mnist": "seed CNN, MNIST",
          "startup": "start-up"}
BATCH = {"cnn": 128, "mlp": 128, "lstm": 64, "gru": 64, "transformer": 64, "mobilenetv2": 32, "resnet50": 16}
SAMPLES = {"cnn": 6400, "mlp": 32000, "lstm": 3200, "gru": 3200, "transformer": 3200,  # one timed pass
           "mobilenetv2": 192, "resnet50": 96}
QUICK_SAMPLES = {"cnn": 1280, "mlp": 6400, "lstm": 640, "gru": 640, "transformer": 640, "mobilenetv2": 64,
                 "resnet50": 32}
MEM_BATCHES, QUICK_MEM_BATCHES = 20, 5  # training batches a memory child runs
VOCAB, SEQ_LEN = 5000, 80
BUSY_LOAD = 0.5  # 1-minute load average above which the run is flagged as on a busy machine
SEED = 1234
# ratio targets from the issue: speed ratios are layerc/torch (higher is better),
# memory ratios layerc/torch (lower is better)
TARGETS = {("cnn", "train"): 1.0, ("mlp", "train"): 1.0, ("lstm", "train"): 1.0, ("gru", "train"): 1.0,
           ("cnn", "infer"): 1.0, ("mlp", "infer"): 1.0, ("lstm", "infer"): 1.0, ("gru", "infer"): 1.0,
           ("transformer", "train"): 1.0, ("transformer", "infer"): 1.0, ("mnist", "memory"): 1.0,
           **{(m, kind): 1.0 for m in GRAPHS for kind in ("train", "infer")}}


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def import_torch():
    """torch, or None when it is not installed (every PyTorch column then reads n/a)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


# -- data ------------------------------------------------------------------------------------
def make_data(model: str, n: int):
    """(x, y) numpy arrays, the same for both frameworks: NHWC images / flat images with
    int32 class ids, or int32 token ids with float32 0/1 labels of shape (n, 1)."""
    rng = np.random.default_rng([SEED, list(SPECS).index(model)])
    if model in IMAGES:
        return rng.random((n, *IMAGES[model]), dtype=np.float32), rng.integers(0, CLASSES[model], n, dtype=np.int32)
    if model == "mlp":
        return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n, dtype=np.int32)
    if model == "transformer":
        return rng.standard_normal((n, 64, 64), dtype=np.float32), rng.integers(0, 2, (n, 1)).astype(np.float32)
    x = rng.integers(0, VOCAB, (n, SEQ_LEN), dtype=np.int32)
    return x, rng.integers(0, 2, (n, 1)).astype(np.float32)


def read_idx(path: Path) -> np.ndarray:
    """An MNIST idx(.gz) file as a uint8 array (how a PyTorch user reads it without torchvision)."""
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist_numpy():
    """MNIST train/test as a PyTorch user holds it: float32 (N, 1, 28, 28) in [0, 1], int64 labels."""
    d = ROOT / "datasets" / "mnist"
    x = read_idx(d / "train-images-idx3-ubyte.gz").astype(np.float32).reshape(-1, 1, 28, 28) / np.float32(255)
    y = read_idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64)
    xt = read_idx(d / "t10k-images-idx3-ubyte.gz").astype(np.float32).reshape(-1, 1, 28, 28) / np.float32(255)
    yt = read_idx(d / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return x, y, xt, yt


# -- layerc ----------------------------------------------------------------------------------
def layerc_model(model: str):
    """The compiled layerc model and its Trainer, built from the spec as the CLI does."""
    import layerc

    m = layerc.build(layerc.load_spec(SPECS[model]))
    return m, m.trainer()


def layerc_train_pass(trainer, x, y, bs, limit=None) -> float:
    total = 0.0
    stop = len(y) if limit is None else min(len(y), limit * bs)
    for s in range(0, stop, bs):
        total += trainer.train_step(x[s:s + bs], y[s:s + bs])
    return total


def layerc_infer_pass(model, x, bs):
    return model.predict(x, batch_size=bs)


# -- torch -----------------------------------------------------------------------------------
def torch_model(torch, model: str):
    """The same architecture in PyTorch (channels-first for the CNN); outputs are logits."""
    nn = torch.nn
    if model == "cnn":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 64), nn.ReLU(), nn.Dropout(0.5),
                             nn.Linear(64, 10))
    if model == "mlp":
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    if model == "transformer":
        return _torch_transformer(nn)
    if model in GRAPHS:
        return _torch_graph(torch, model)

    class RNNNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(VOCAB, 64)
            self.rnn = (nn.LSTM if model == "lstm" else nn.GRU)(64, 128, batch_first=True)
            self.dense = nn.Linear(128, 1)

        def forward(self, x):
            _, h = self.rnn(self.embedding(x))
            h = h[0] if isinstance(h, tuple) else h
            return self.dense(h[-1])

    return RNNNet()


def _torch_transformer(nn):
    class EncoderBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = nn.MultiheadAttention(64, 4, batch_first=True)
            self.norm1 = nn.LayerNorm(64)
            self.ff1, self.ff2 = nn.Linear(64, 128), nn.Linear(128, 64)
            self.norm2 = nn.LayerNorm(64)
            self.dense = nn.Linear(64, 1)

        def forward(self, x):
            a, _ = self.attention(x, x, x, need_weights=False)
            h = self.norm1(x + a)
            h = self.norm2(h + self.ff2(nn.functional.relu(self.ff1(h))))
            return self.dense(h.mean(1))

    return EncoderBlock()


def _torch_graph(torch, model: str):
    """PyTorch's twin of a layerc graph spec (MobileNetV2, ResNet50), built layer by layer from
    the same compiled layer list: NCHW, symmetric pads as the convolution's own padding and
    Keras's asymmetric 'same' pads as explicit F.pad,
    BatchNormalization's momentum and epsilon as Keras's. The output Dense gives logits (the
    softmax is in the loss and in inference, as for the CNN)."""
    import layerc
    from layerc.core.conv import conv_pads
    from layerc.core.resampling import edges
    from layerc.spec.layers import pair

    nn, F = torch.nn, torch.nn.functional
    graph = layerc.build(layerc.load_spec(SPECS[model]))

    def conv(node, groups=False):
        s, (_, _, cin), cout = node.layer.spec, node.input_shape, node.output_shape[-1]
        k, st, d = pair(s.kernel_size), pair(s.strides), pair(s.dilation_rate)
        pads = [conv_pads(node.input_shape[a], k[a], st[a], d[a], s.padding) for a in (0, 1)]
        own = all(p[0] == p[1] for p in pads)  # symmetric: the convolution's own padding, as torch users write it
        m = nn.Conv2d(cin, cout, k, st, padding=(pads[0][0], pads[1][0]) if own else 0, dilation=d,
                      groups=cin if groups else 1, bias=s.use_bias)
        return m, (0, 0, 0, 0) if own else (pads[1][0], pads[1][1], pads[0][0], pads[0][1])

    class Graph(nn.Module):
        def __init__(self):
            super().__init__()
            self.nodes, self.pads = graph.nodes, {}
            self.layers = nn.ModuleDict()
            for node in self.nodes:
                s, kind = node.layer.spec, node.layer.spec.type
                if kind in ("Conv2D", "DepthwiseConv2D"):
                    self.layers[node.name], self.pads[node.name] = conv(node, kind == "DepthwiseConv2D")
                elif kind == "BatchNormalization":
                    self.layers[node.name] = nn.BatchNorm2d(node.output_shape[-1], eps=s.epsilon,
                                                            momentum=1 - s.momentum)
                elif kind == "Dense":
                    self.layers[node.name] = nn.Linear(node.input_shape[-1], s.units)

        def forward(self, x):
            values = dict.fromkeys(graph.input_names, x)
            for node in self.nodes:
                s, kind = node.layer.spec, node.layer.spec.type
                h = values[node.inputs[0]]
                if kind in ("Conv2D", "DepthwiseConv2D"):
                    if any(self.pads[node.name]):
                        h = F.pad(h, self.pads[node.name])
                    h = self.layers[node.name](h)
                elif kind in ("BatchNormalization", "Dense"):
                    h = self.layers[node.name](h)
                elif kind == "ZeroPadding2D":
                    (t, b), (l, r) = edges(s.padding, 2)
                    h = F.pad(h, (l, r, t, b))
                elif kind == "MaxPooling2D":
                    assert s.padding == "valid", node.name
                    h = F.max_pool2d(h, pair(s.pool_size), pair(s.strides or s.pool_size))
                elif kind == "Add":
                    h = sum(values[i] for i in node.inputs)
                elif kind == "GlobalAveragePooling2D":
                    h = h.mean((2, 3))
                elif kind == "ReLU":
                    assert not (s.negative_slope or s.threshold) and s.max_value in (None, 6), node.name
                    h = F.relu6(h) if s.max_value == 6 else F.relu(h)
                elif kind != "Activation":
                    raise ValueError(f"{model}: no PyTorch twin for {kind}")
                activation = getattr(s, "activation", None)
                if activation == "relu":
                    h = F.relu(h)
                elif activation not in (None, "linear") and node is not self.nodes[-1]:
                    raise ValueError(f"{model}: no PyTorch twin for activation {activation}")
                values[node.name] = h
            return values[graph.output_names[0]]

        def set_weights(self, ws):
            """layerc's get_weights (Keras's order and layouts) into this twin."""
            it = iter(ws)
            with torch.no_grad():
                for node in graph.weight_nodes():
                    kind = node.layer.spec.type
                    names = [w.name for w in node.layer.weight_specs(node.input_shape)]
                    got = {n: torch.from_numpy(np.ascontiguousarray(next(it))) for n in names}
                    m = self.layers[node.name] if node.name in self.layers else None
                    if kind == "Conv2D":
                        m.weight.copy_(got["kernel"].permute(3, 2, 0, 1))
                    elif kind == "DepthwiseConv2D":  # (kh, kw, C, M) -> (C * M, 1, kh, kw)
                        k = got["kernel"]
                        m.weight.copy_(k.reshape(k.shape[0], k.shape[1], -1).permute(2, 0, 1)[:, None])
                    elif kind == "Dense":
                        m.weight.copy_(got["kernel"].T)
                    elif kind == "BatchNormalization":
                        for ours, theirs in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                                             ("moving_variance", "running_var")):
                            getattr(m, theirs).copy_(got[ours])
                    if "bias" in got:
                        m.bias.copy_(got["bias"])
            assert next(it, None) is None, model

    return Graph()


def copy_weights(torch, model: str, tm, weights: list):
    """Load layerc's weights (Keras layouts, get_weights order) into the torch model."""
    if model in GRAPHS:
        return tm.set_weights(weights)
    t = [torch.from_numpy(np.ascontiguousarray(w)) for w in _torch_layout(model, weights)]
    params = list(tm.parameters())
    assert len(params) == len(t), (model, len(params), len(t))
    with torch.no_grad():
        for p, w in zip(params, t):
            assert p.shape == w.shape, (model, tuple(p.shape), tuple(w.shape))
            p.copy_(w)


def _torch_layout(model, ws):
    if model == "cnn":
        k1, b1, k2, b2, d1, c1, d2, c2 = ws
        # Flatten sees (h, w, c) in layerc and (c, h, w) in torch: reorder the Dense rows
        d1 = d1.reshape(5, 5, 64, 64).transpose(2, 0, 1, 3).reshape(1600, 64)
        return [k1.transpose(3, 2, 0, 1), b1, k2.transpose(3, 2, 0, 1), b2, d1.T, c1, d2.T, c2]
    if model == "mlp":
        return [w.T if w.ndim == 2 else w for w in ws]
    if model == "transformer":  # Keras's EinsumDense (D, heads, d) kernels -> torch's packed in_proj
        qk, qb, kk, kb, vk, vb, ok, ob, *rest = ws
        in_w = np.concatenate([k.reshape(k.shape[0], -1).T for k in (qk, kk, vk)])
        in_b = np.concatenate([b.ravel() for b in (qb, kb, vb)])
        return [in_w, in_b, ok.reshape(-1, ok.shape[-1]).T, ob, *(w.T if w.ndim == 2 else w for w in rest)]
    emb, kernel, rec, bias, dk, db = ws
    u = rec.shape[0]
    if model == "lstm":  # gate order i, f, c, o in both
        return [emb, kernel.T, rec.T, bias, np.zeros_like(bias), dk.T, db]
    # GRU: Keras z, r, h columns -> torch r, z, n rows; reset_after bias rows (input, recurrent)
    order = np.r_[u:2 * u, 0:u, 2 * u:3 * u]
    return [emb, kernel[:, order].T, rec[:, order].T, bias[0][order], bias[1][order], dk.T, db]


def torch_tensors(torch, model, x, y):
    """Tensors as a torch user would make them, once: NCHW images, int64 ids and labels."""
    if model in IMAGES:
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    elif model in ("mlp", "transformer"):
        xt = torch.from_numpy(x)
    else:
        xt = torch.from_numpy(x.astype(np.int64))
    yt = torch.from_numpy(y.astype(np.int64)) if model in CLASSES else torch.from_numpy(y)
    return xt, yt


def torch_setup(torch, model, weights=None):
    torch.manual_seed(SEED)
    tm = torch_model(torch, model)
    if weights is not None:
        copy_weights(torch, model, tm, weights)
    # Keras's Adam epsilon, so the optimizer does the same update
    opt = torch.optim.Adam(tm.parameters(), lr=1e-3, eps=1e-7)
    loss = torch.nn.CrossEntropyLoss() if model in (*CLASSES, "mnist") else torch.nn.BCEWithLogitsLoss()
    return tm, opt, loss


def torch_train_pass(tm, opt, loss_fn, x, y, bs, limit=None) -> float:
    tm.train()
    total = 0.0
    stop = len(y) if limit is None else min(len(y), limit * bs)
    for s in range(0, stop, bs):
        opt.zero_grad()
        loss = loss_fn(tm(x[s:s + bs]), y[s:s + bs])
        loss.backward()
        opt.step()
        total += loss.item()
    return total


def torch_infer_pass(torch, model, tm, x, bs):
    tm.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(x), bs):
            z = tm(x[s:s + bs])
            out.append(torch.softmax(z, 1) if model in CLASSES else torch.sigmoid(z))
    return torch.cat(out)


def graph_parity(torch, lm, tm, x, xt) -> float:
    """The largest difference of the two frameworks' training-mode logits, relative to the
    largest logit. A deep network fresh from its initialisers gives nearly the same
    inference output for every input (BatchNormalization's moving statistics are still 0
    and 1), which would hide a wrong layer; the batch's statistics do not. Both models are
    put back as they were (training updated the moving statistics)."""
    saved = lm.get_weights()
    ours = lm.forward(x, training=True, logits=True)[0]
    tm.train()
    with torch.no_grad():
        theirs = tm(xt).numpy()
    lm.set_weights(saved)
    tm.set_weights(saved)
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))


# -- throughput ----------------------------------------------------------------------------
# Idle time before each timed pass: a BLAS or OpenMP worker of the pass before keeps
# spinning for a while after its last product (OpenBLAS ~0.1 s) and would take a core
# from this one (measured: it halves either framework's speed when they alternate).
SETTLE_SECONDS = 0.3


def timed(fn) -> float:
    time.sleep(SETTLE_SECONDS)
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_model(model: str, n: int, repeats: int, torch) -> dict:
    """Training and inference samples/s of one model for both frameworks (medians)."""
    bs = BATCH[model]
    x, y = make_data(model, n)
    lm, trainer = layerc_model(model)
    res = {"samples": n, "batch_size": bs, "repeats": repeats,
           "layerc": {"train": [], "infer": []}, "pytorch": None}
    if torch is not None:
        tm, opt, loss_fn = torch_setup(torch, model, lm.get_weights())
        xt, yt = torch_tensors(torch, model, x, y)
        k = min(n, 16)
        ours = lm.predict(x[:k], batch_size=bs)
        theirs = torch_infer_pass(torch, model, tm, xt[:k], bs).numpy()
        res["max_abs_output_diff"] = float(np.max(np.abs(ours - theirs)))
        if model in GRAPHS:
            res["max_train_logit_diff_relative"] = graph_parity(torch, lm, tm, x[:k], xt[:k])
        res["pytorch"] = {"train": [], "infer": [], "threads": torch.get_num_threads()}
    log(f"[{model}] warm-up")
    layerc_train_pass(trainer, x, y, bs)
    layerc_infer_pass(lm, x, bs)
    if torch is not None:
        torch_train_pass(tm, opt, loss_fn, xt, yt, bs)
        torch_infer_pass(torch, model, tm, xt, bs)
    for r in range(repeats):
        res["layerc"]["train"].append(n / timed(lambda: layerc_train_pass(trainer, x, y, bs)))
        if torch is not None:
            res["pytorch"]["train"].append(n / timed(lambda: torch_train_pass(tm, opt, loss_fn, xt, yt, bs)))
        res["layerc"]["infer"].append(n / timed(lambda: layerc_infer_pass(lm, x, bs)))
        if torch is not None:
            res["pytorch"]["infer"].append(n / timed(lambda: torch_infer_pass(torch, model, tm, xt, bs)))
        log(f"[{model}] repeat {r + 1}/{repeats}: " + ", ".join(
            f"{fw} {kind} {res[fw][kind][-1]:,.0f}/s" for fw in ("layerc", "pytorch") if res[fw]
            for kind in ("train", "infer")))
    for fw in ("layerc", "pytorch"):
        if res[fw]:
            for kind in ("train", "infer"):
                res[fw][f"{kind}_median"] = statistics.median(res[fw][kind])
    return res


# -- peak memory (child processes) ---------------------------------------------------------
def _status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    return _status_mb("VmRSS")


def peak_mb() -> float:
    """This process's peak resident memory in MB.

    VmHWM, the high-water mark of the process's own address space, where Linux has it:
    getrusage's ru_maxrss survives execve, so in a child forked from this (large)
    benchmark process it reports at least the parent's size at the fork.
    """
    hwm = _status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(framework: str, model: str, n: int, batches: int) -> dict:
    """Runs in a fresh process: load data, build, train `batches` batches, report memory."""
    out = {"framework": framework, "model": model}
    if model == "mnist":
        return {**out, **_child_mnist(framework, batches)}
    x, y = make_data(model, n)
    bs = BATCH[model]
    if framework == "layerc":
        _, trainer = layerc_model(model)
        out["rss_before_mb"] = rss_mb()
        layerc_train_pass(trainer, x, y, bs, limit=batches)
    else:
        torch = import_torch()
        tm, opt, loss_fn = torch_setup(torch, model)
        xt, yt = torch_tensors(torch, model, x, y)
        del x, y
        out["rss_before_mb"] = rss_mb()
        torch_train_pass(tm, opt, loss_fn, xt, yt, bs, limit=batches)
    out["peak_mb"] = peak_mb()
    return out


def _growth(res: dict) -> dict:
    if res.get("peak_mb") and res.get("rss_before_mb"):
        res["growth_mb"] = res["peak_mb"] - res["rss_before_mb"]
    return res


def _child_mnist(framework, batches) -> dict:
    """The seed CNN on full MNIST: layerc through the CLI's own loader and Trainer.fit,
    torch holding the same arrays (train, validation, test) read from the idx files."""
    if framework == "layerc":
        import layerc
        from layerc.jobs import load_dataset
        from layerc.train.callbacks import Callback
        from layerc.train.loop import Interrupted, Trainer

        spec = layerc.load_spec(SPECS["cnn"])
        model = layerc.build(spec)
        data = load_dataset(spec, model)

        class StopAfter(Callback):
            def on_batch_end(self, trainer, step, logs):
                trainer.stop_requested = step >= batches

        trainer = Trainer(model, spec.train, callbacks=[StopAfter()])
        before = rss_mb()
        try:
            trainer.fit(*data.train, validation_data=data.validation, seed=spec.seed)
        except Interrupted:
            pass
        return {"rss_before_mb": before, "peak_mb": peak_mb(), "train_samples": len(data.train[1])}
    torch = import_torch()
    x, y, xt, yt = mnist_numpy()
    cut = int(len(y) * 0.9)
    tx, ty = torch.from_numpy(x[:cut]), torch.from_numpy(y[:cut])
    vx, vy = torch.from_numpy(x[cut:]), torch.from_numpy(y[cut:])
    test = torch.from_numpy(xt), torch.from_numpy(yt)
    tm, opt, loss_fn = torch_setup(torch, "cnn")
    before = rss_mb()
    order = torch.randperm(cut)
    tm.train()
    for b in range(batches):
        idx = order[b * 128:(b + 1) * 128].sort().values
        opt.zero_grad()
        loss = loss_fn(tm(tx[idx]), ty[idx])
        loss.backward()
        opt.step()
        loss.item()
    del vx, vy, test
    return {"rss_before_mb": before, "peak_mb": peak_mb(), "train_samples": cut}


def measure_memory(model: str, n: int, batches: int, frameworks) -> dict:
    res = {}
    for fw in frameworks:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", f"{fw}:{model}:{n}:{batches}"]
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if p.returncode != 0:
            log(f"[memory {model} {fw}] child failed:\n{p.stderr[-2000:]}")
            res[fw] = None
            continue
        res[fw] = _growth(json.loads(p.stdout.strip().splitlines()[-1]))
        log(f"[memory {model} {fw}] peak {res[fw]['peak_mb']:.0f} MB")
    return res


# -- start-up and MNIST epoch -----------------------------------------------------------------
STARTUP = {"version": ["--version"], "summary": ["summary", "specs/mnist_cnn.yaml"]}
STARTUP_TARGET = 0.3  # seconds, the median of each start-up command (issue 18)


def time_startup(runs: int = 21) -> dict:
    """Medians of `layerc --version` and `layerc summary specs/mnist_cnn.yaml`, each a fresh
    process of the console script of a non-editable install of this tree, made for the
    run with `pip install --no-deps --target` into a temporary folder (from a copy of the
    tree, so no build/ folder is left here); dependencies come from this interpreter.

    Each run's CPU time (user + system of the child) is kept beside its wall time: on this
    shared 2-core machine a run that finds both cores taken waits for one, and its wall time
    jumps (the start-up times fall in two groups), while its CPU time barely moves."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    with tempfile.TemporaryDirectory() as tmp:
        src, target = Path(tmp) / "src", Path(tmp) / "site"
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "runs", "results", "*.egg-info", "__pycache__", ".venv"))
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                        str(src)], check=True, capture_output=True)
        env["PYTHONPATH"] = str(target)
        out = {"install": "pip install --no-deps --target (not editable), its bin/layerc script",
               "runs": runs, "target_seconds": STARTUP_TARGET, "commands": {}}
        for key, args in STARTUP.items():
            cmd = [str(target / "bin" / "layerc"), *args]
            times, cpu, loads = [], [], []
            for i in range(runs + 1):  # the first run is a warm-up (page cache)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = timed(lambda: subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env=env))
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if i:
                    times.append(t)
                    cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
                    loads.append(os.getloadavg()[0])
            out["commands"][key] = {"command": " ".join(["layerc", *args]), "seconds": times,
                                    "median_seconds": statistics.median(times), "cpu_seconds": cpu,
                                    "median_cpu_seconds": statistics.median(cpu), "loadavg": loads}
            log(f"[startup] {key}: wall median {statistics.median(times):.3f} s ({min(times):.3f}-{max(times):.3f}), "
                f"CPU median {statistics.median(cpu):.3f} s, load {min(loads):.2f}-{max(loads):.2f}")
    return out


def mnist_epoch(torch, limit: int | None = None) -> dict:
    """One full MNIST epoch (54,000 samples plus validation) of the seed CNN through
    `layerc.jobs.train` (what `layerc train --set train.epochs=1` runs), and the same
    epoch in torch for comparison."""
    from layerc.jobs import train

    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        log("[mnist epoch] layerc")
        t0 = time.perf_counter()
        overrides = ["train.epochs=1"] + ([f"data.limit={limit}"] if limit else [])
        out = train(SPECS["cnn"], overrides=overrides, run_root=tmp)
        res["layerc"] = {"wall_seconds": time.perf_counter() - t0, "epoch_seconds": out.history[0]["seconds"],
                         "val_accuracy": out.history[0].get("val_accuracy")}
    if torch is not None:
        log("[mnist epoch] torch")
        time.sleep(SETTLE_SECONDS)
        x, y, _, _ = mnist_numpy()
        x, y = x[:limit], y[:limit]
        cut = int(len(y) * 0.9)
        tx, ty = torch.from_numpy(x[:cut]), torch.from_numpy(y[:cut])
        vx, vy = torch.from_numpy(x[cut:]), torch.from_numpy(y[cut:])
        tm, opt, loss_fn = torch_setup(torch, "cnn")
        t0 = time.perf_counter()
        order = torch.randperm(cut)
        tm.train()
        for s in range(0, cut, 128):
            idx = order[s:s + 128].sort().values
            opt.zero_grad()
            loss = loss_fn(tm(tx[idx]), ty[idx])
            loss.backward()
            opt.step()
            loss.item()
        p = torch_infer_pass(torch, "cnn", tm, vx, 128)
        acc = float((p.argmax(1) == vy).float().mean())
        res["pytorch"] = {"epoch_seconds": time.perf_counter() - t0, "val_accuracy": acc}
    return res


# -- machine ---------------------------------------------------------------------------------
def machine(torch) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": _mem_total_gb(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "env": {k: v for k, v in os.environ.items()
                if k.startswith(("OPENBLAS", "OMP_", "MKL_", "GOTO", "BLIS", "VECLIB", "NUMEXPR", "LAYERC_"))},
        "loadavg_start": os.getloadavg(),
        "git_commit": _git_commit(),
    }
    try:
        import threadpoolctl

        info["threadpools"] = threadpoolctl.threadpool_info()
        info["blas_kernel"] = _openblas_kernel(info["threadpools"])
        if "OPENBLAS_CORETYPE" in os.environ:  # the kernel OpenBLAS picks for this CPU itself
            info["blas_kernel_own"] = _openblas_kernel_unpinned()
    except ImportError:
        try:
            cfg = np.show_config(mode="dicts")
            blas = cfg.get("Build Dependencies", {}).get("blas") or {}
            info["numpy_blas"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration")}
        except Exception:  # older numpy: show_config has no dict mode
            info["numpy_blas"] = None
    try:
        import layerc

        info["layerc"] = layerc.__version__
    except ImportError:
        pass
    return info


def _openblas_kernel(pools) -> str | None:
    """The OpenBLAS kernel numpy runs (threadpoolctl's `architecture`), e.g. Haswell, SkylakeX."""
    return next((p.get("architecture") for p in pools if p.get("internal_api") == "openblas"), None)


def _openblas_kernel_unpinned() -> str | None:
    """The kernel OpenBLAS would pick without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (asked of a
    child process: the library reads them once, when it loads)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    code = "import numpy, threadpoolctl, json; print(json.dumps(threadpoolctl.threadpool_info()))"
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        return _openblas_kernel(json.loads(out.stdout))
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _mem_total_gb():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        return None


def _git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_line(m: dict) -> str:
    blas = ""
    if m.get("numpy_blas"):
        b = m["numpy_blas"]
        blas = f" ({b.get('name')} {b.get('version')})"
    if m.get("blas_kernel"):
        own = m.get("blas_kernel_own")
        pinned = f", pinned by OPENBLAS_CORETYPE; this CPU's own: {own}" if own and own != m["blas_kernel"] else ""
        blas = f" (OpenBLAS {m['blas_kernel']} kernels{pinned})"
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items())
    return (f"{m['cpu']}, {m['usable_cpus']} cores, {m['memory_gb']} GB; Python {m['python']}, "
            f"numpy {m['numpy']}{blas}, "
            + (f"torch {m['torch']} ({m['torch_threads']} threads)" if m["torch"] else "PyTorch not run (not installed, or --no-torch)")
            + (f"; {env}" if env else ""))


# -- report ------------------------------------------------------------------------------------
def rows(results: dict) -> list[dict]:
    """(model, metric, layerc, pytorch, ratio, target, ok) rows of the table."""
    out = []
    for model, r in results["throughput"].items():
        if "error" in r:
            continue
        for kind, label in (("train", "train samples/s"), ("infer", "infer samples/s")):
            ours = r["layerc"][f"{kind}_median"]
            theirs = r["pytorch"][f"{kind}_median"] if r["pytorch"] else None
            # the ratio is the median of the repeats' own ratios: a repeat times both
            # frameworks back to back, so its ratio is free of the machine's drift between
            # repeats, which the ratio of the two medians is not
            paired = (statistics.median(a / b for a, b in zip(r["layerc"][kind], r["pytorch"][kind]))
                      if r["pytorch"] else None)
            out.append(_row(model, kind, label, ours, theirs, higher=True, ratio=paired))
    for model, r in results.get("memory", {}).items():
        ours = (r.get("layerc") or {}).get("peak_mb")
        theirs = (r.get("pytorch") or {}).get("peak_mb")
        row = _row(model, "memory", "train peak MB", ours, theirs, higher=False)
        row["growth"] = [(r.get(fw) or {}).get("growth_mb") for fw in ("layerc", "pytorch")]
        out.append(row)
    for key, r in results.get("startup", {}).get("commands", {}).items():
        median = r["median_seconds"]
        out.append({"model": "startup", "title": TITLES["startup"], "metric": f"`{r['command']}` s",
                    "layerc": median, "pytorch": None, "ratio": None,
                    "target": f"≤ {STARTUP_TARGET:.1f} s", "ok": median <= STARTUP_TARGET})
    return out


def _row(model, kind, label, ours, theirs, higher, ratio=None):
    if ratio is None and ours and theirs:
        ratio = ours / theirs
    target = TARGETS.get((model, kind))
    ok = None
    if ratio is not None and target is not None:
        ok = ratio >= target if higher else ratio <= target
    return {"model": model, "title": TITLES[model], "metric": label, "layerc": ours, "pytorch": theirs,
            "ratio": ratio, "target": None if target is None else ("≥" if higher else "≤") + f" {target:.1f}x",
            "ok": ok}


def _fmt(v, metric):
    if v is None:
        return "n/a"
    return f"{v:,.0f}" if "samples" in metric or "MB" in metric else f"{v:,.2f}"


def _cells(r):
    mark = {True: "yes", False: "NO", None: ""}[r["ok"]]
    ours, theirs = _fmt(r["layerc"], r["metric"]), _fmt(r["pytorch"], r["metric"])
    if r.get("growth"):
        ours, theirs = (f"{v} (+{g:,.0f})" if g is not None else v for v, g in zip((ours, theirs), r["growth"]))
    return [r["title"], r["metric"], ours, theirs,
            "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}x",
            f"{r['target']} {mark}".strip() if r["target"] else ""]


HEAD = ["model", "metric", "layerc", "PyTorch", "ratio", "target"]


def extra_lines(results) -> list[str]:
    lines = []
    if "startup" in results:
        s = results["startup"]
        lines.append(f"start-up: medians of {s['runs']} runs each, {s['install']}")
    if "mnist_epoch" in results:
        e = results["mnist_epoch"]
        text = f"one MNIST epoch of the seed CNN (54,000 samples + validation): layerc {e['layerc']['epoch_seconds']:.1f} s"
        if "pytorch" in e:
            text += f", PyTorch {e['pytorch']['epoch_seconds']:.1f} s"
        lines.append(text)
    return lines


def print_table(results):
    table_rows = [_cells(r) for r in rows(results)]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(c)) for c in col) for col in zip(HEAD, *table_rows)]
        for line in [HEAD, *table_rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)))
    else:
        table = Table(title=f"layerc vs PyTorch CPU ({'quick' if results['quick'] else 'full'} run)")
        for i, h in enumerate(HEAD):
            table.add_column(h, justify="right" if 1 < i < 5 else "left")
        for c in table_rows:
            table.add_row(*c)
        Console(width=max(100, shutil.get_terminal_size().columns)).print(table)
    for line in extra_lines(results):
        print(line)
    print(f"machine: {machine_line(results['machine'])}")


def markdown(results) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * 3 + ["---"]) + "|"]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows(results)]
    lines.append("")
    lines += [f"- {line}" for line in extra_lines(results)]
    m = results["machine"]
    lines.append(f"- machine: {machine_line(m)}; 1-min load average at start "
                 f"{m['loadavg_start'][0]:.2f}; commit {m.get('git_commit')}; {results['date']}; "
                 f"medians of {results['repeats']} repeats"
                 + (" (quick run: fewer samples)" if results["quick"] else ""))
    return "\n".join(lines)


def write_text(path: Path, text: str):
    """Write atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: Path, data: dict):
    write_text(path, json.dumps(data, indent=2) + "\n")


README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(table: str, path: Path = ROOT / "README.md"):
    """Replace the README's table between the bench markers with this run's."""
    text = path.read_text()
    head, sep, rest = text.partition(README_START)
    _, sep2, tail = rest.partition(README_END)
    if not (sep and sep2):
        raise SystemExit(f"{path}: no {README_START} ... {README_END} markers")
    write_text(path, f"{head}{README_START}\n{table}\n{README_END}{tail}")


# -- profile ---------------------------------------------------------------------------------
def profile(model: str, steps: int, top: int = 30):
    """cProfile of `steps` layerc train_steps (after one untimed step), by cumulative and own time."""
    import cProfile
    import pstats

    bs = BATCH[model]
    x, y = make_data(model, bs * steps)
    _, trainer = layerc_model(model)
    trainer.train_step(x[:bs], y[:bs])
    prof = cProfile.Profile()
    prof.enable()
    layerc_train_pass(trainer, x, y, bs)
    prof.disable()
    for key in ("cumulative", "tottime"):
        print(f"\n== {model}: {steps} train_steps of batch {bs}, sorted by {key} ==")
        pstats.Stats(prof).strip_dirs().sort_stats(key).print_stats(top)
    layer_times(model, trainer, x, y, bs, steps)


def layer_times(model, trainer, x, y, bs, steps):
    """Milliseconds per train_step in each layer's forward and backprop (wall clock,
    without profiler overhead), and the rest (loss, optimizer, metrics, glue)."""
    times = {}

    def wrap(name, forward):
        def timed_forward(X, training, mask=None):
            t0 = time.perf_counter()
            Y, back = forward(X, training, mask)
            times.setdefault((name, "forward"), []).append(time.perf_counter() - t0)

            def timed_back(dY):
                t1 = time.perf_counter()
                dX = back(dY)
                times.setdefault((name, "backprop"), []).append(time.perf_counter() - t1)
                return dX

            return Y, timed_back

        return timed_forward

    nodes = trainer.model.nodes
    for node in nodes:
        node.layer.forward = wrap(node.name, node.layer.forward)
    total = timed(lambda: layerc_train_pass(trainer, x, y, bs))
    for node in nodes:
        del node.layer.forward
    per_step = 1000 / steps
    print(f"\n== {model}: ms per train_step (batch {bs}), wall clock, {steps} steps ==")
    accounted = 0.0
    for node in nodes:
        f = sum(times.get((node.name, "forward"), [])) * per_step
        b = sum(times.get((node.name, "backprop"), [])) * per_step
        accounted += f + b
        print(f"{node.name:<16} {node.layer.spec.type:<14} forward {f:7.2f}  backprop {b:7.2f}")
    print(f"{'loss, Adam, metric, glue':<31} {total * per_step - accounted:7.2f}")
    print(f"{'total':<31} {total * per_step:7.2f}  ({steps * bs / total:,.0f} samples/s)")


def set_threads(n: int, torch):
    """Run both frameworks on n threads: on a machine other jobs load, one thread each
    is the fairer comparison (PyTorch's OpenMP workers stall when a core is taken)."""
    os.environ["LAYERC_NUM_THREADS"] = str(n)
    from layerc.core.parallel import _openblas

    blas = _openblas()
    if blas:
        blas[1](n)
    if torch is not None:
        torch.set_num_threads(n)


# -- main ------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples and 1 repeat (checks the harness)")
    ap.add_argument("--models", default=",".join(SPECS), help=f"comma-separated subset of {','.join(SPECS)}")
    ap.add_argument("--repeats", type=int, help="timed passes per model (default 3, --quick 1)")
    ap.add_argument("--samples", type=int, help="samples per pass for every model (default per model)")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "latest.json", help="where the results go")
    ap.add_argument("--markdown", action="store_true", help="also print the Markdown table for the README")
    ap.add_argument("--readme", action="store_true",
                    help="also put the Markdown table into README.md (between the bench markers)")
    ap.add_argument("--mnist-epoch", action="store_true", help="also time one full MNIST epoch of the seed CNN")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    ap.add_argument("--no-summary", action="store_true",
                    help="skip timing start-up (`layerc --version`, `layerc summary`) of an installed copy")
    ap.add_argument("--startup-only", action="store_true", help="time only the start-up rows")
    ap.add_argument("--no-torch", action="store_true", help="run layerc only")
    ap.add_argument("--threads", type=int, help="threads for both frameworks (layerc's batch split, OpenBLAS, "
                    "torch.set_num_threads); default: each its own")
    ap.add_argument("--profile", metavar="MODEL", help="print a cProfile of layerc's train_step and exit")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        fw, model, n, batches = args.child.split(":")
        print(json.dumps(child(fw, model, int(n), int(batches))))
        return 0
    if args.profile:
        profile(args.profile, steps=20 if args.quick else 50)
        return 0

    models = [] if args.startup_only else [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(models) - set(SPECS)
    if unknown:
        ap.error(f"unknown model(s) {', '.join(sorted(unknown))}; choose from {', '.join(SPECS)}")
    repeats = args.repeats or (1 if args.quick else 3)
    torch = None if args.no_torch else import_torch()
    if torch is None and not args.no_torch:
        log("torch is not installed: PyTorch columns will read n/a")
    if args.threads:
        set_threads(args.threads, torch)
    frameworks = ["layerc"] + (["pytorch"] if torch is not None else [])
    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "quick": args.quick, "repeats": repeats,
               "machine": machine(torch), "throughput": {}, "memory": {}}
    busy = results["machine"]["loadavg_start"][0]
    if busy > BUSY_LOAD:
        # torch's OpenMP workers spin and stall when a core is taken (seen here: 2 threads
        # 6x slower than 1 under one competing process), so ratios on a busy machine mislead
        log(f"warning: load average {busy:.2f} at start; the machine is busy and the figures, "
            "PyTorch's especially, will not be representative")
    m = results["machine"]
    if m.get("blas_kernel_own") and m["blas_kernel_own"] != m.get("blas_kernel"):
        # this machine's environment pins OpenBLAS (older builds misbehave on some CPUs); the
        # numpy here is current, so time it as the CPU's own kernels run it, in this command alone
        log(f"warning: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} runs numpy's OpenBLAS on "
            f"{m['blas_kernel']} kernels, not this CPU's own {m['blas_kernel_own']}; to time those: "
            "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py ...")

    for model in models:
        n = args.samples or (QUICK_SAMPLES if args.quick else SAMPLES)[model]
        try:
            results["throughput"][model] = bench_model(model, n, repeats, torch)
        except Exception as e:  # a model that fails (code mid-change) must not lose the others' figures
            log(f"[{model}] failed: {e!r}")
            results["throughput"][model] = {"error": repr(e)}
    if not args.no_memory:
        batches = QUICK_MEM_BATCHES if args.quick else MEM_BATCHES
        for model in models:
            n = max(args.samples or (QUICK_SAMPLES if args.quick else SAMPLES)[model], batches * BATCH[model])
            results["memory"][model] = measure_memory(model, n, batches, frameworks)
        if "cnn" in models:
            results["memory"]["mnist"] = measure_memory("mnist", 0, batches, frameworks)
    if not args.no_summary:
        log("[startup] timing `layerc --version` and `layerc summary` of a non-editable install")
        results["startup"] = time_startup(3 if args.quick else 21)
    if args.mnist_epoch:
        results["mnist_epoch"] = mnist_epoch(torch)
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["rows"] = rows(results)

    write_json(args.json, results)
    print_table(results)
    print(f"results: {args.json}")
    if args.markdown:
        print()
        print(markdown(results))
    if args.readme:
        update_readme(markdown(results))
        print("README.md: table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())

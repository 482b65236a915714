"""Shared helpers of the ONNX export tests: random weights, runs in ONNX Runtime, comparison."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import layerc  # noqa: E402
from layerc.interop.onnx import to_onnx  # noqa: E402

TOL = 1e-5


def build(text: str):
    """A Model from spec text (no file)."""
    return layerc.build(layerc.parse_spec(text))


def randomize(model, seed=0):
    """Every weight perturbed by seeded noise (not the initial weights); BatchNormalization's
    moving statistics random too (variances positive)."""
    rng = np.random.default_rng(seed)
    for key, w in model.named_weights().items():
        if key.endswith("moving_variance"):
            w[...] = rng.uniform(0.3, 2.0, w.shape)
        else:
            w += rng.normal(0, 0.5 * float(w.std()) + 0.05, w.shape).astype(w.dtype)
    return model


def session(proto):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def assert_matches(model, batches, opset=17):
    """For each batch of inputs (an array, or a list for several inputs), layerc's and ONNX
    Runtime's outputs agree within TOL (max abs, float32); returns the ONNX model."""
    proto = to_onnx(model, opset)
    sess = session(proto)
    for xs in batches:
        xs = xs if isinstance(xs, list) else [xs]
        got = sess.run(model.output_names, dict(zip(model.input_names, model.check_inputs(xs))))
        want = model.predict(xs, batch_size=len(xs[0]))
        want = want if isinstance(want, list) else [want]
        for name, w, o in zip(model.output_names, want, got):
            assert o.shape == w.shape, (name, o.shape, w.shape)
            err = float(np.max(np.abs(o - w))) if w.size else 0.0
            assert err <= TOL, f"{name}: max abs difference {err:.3g} at batch size {len(xs[0])}"
    return proto


def right_padded(rng, n, steps, vocab, min_len=1):
    """Token ids (n, steps) with 0 padding after sequences of varying lengths."""
    ids = rng.integers(1, vocab, (n, steps)).astype(np.int32)
    lengths = rng.integers(min_len, steps + 1, n)
    lengths[0] = steps  # one full-length sequence
    for row, k in zip(ids, lengths):
        row[k:] = 0
    return ids

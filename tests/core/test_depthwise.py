"""DepthwiseConv2D and SeparableConv2D: Keras's weights layout, float64 gradients, Keras
parity over strides, padding, dilation, depth_multiplier and odd sizes, SGD steps, summary,
memory and located errors."""
from __future__ import annotations

import numpy as np
import pytest

from layerc.core.registry import make_layer
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients
from tests.core.parity import forward_parity, located_error, sgd_parity, summary_matches

CASES = [
    (S.DepthwiseConv2D(kernel_size=3), (5, 6, 3)),
    (S.DepthwiseConv2D(kernel_size=3, strides=2, padding="same"), (7, 6, 4)),
    (S.DepthwiseConv2D(kernel_size=(2, 3), strides=(2, 1), depth_multiplier=2), (6, 5, 3)),
    (S.DepthwiseConv2D(kernel_size=3, padding="same", dilation_rate=2, activation="relu"), (6, 7, 2)),
    (S.DepthwiseConv2D(kernel_size=1, depth_multiplier=3, use_bias=False), (3, 3, 2)),
    (S.DepthwiseConv2D(kernel_size=5, strides=2, padding="same", depth_multiplier=2), (9, 8, 2)),
    (S.SeparableConv2D(filters=4, kernel_size=3), (5, 6, 3)),
    (S.SeparableConv2D(filters=3, kernel_size=3, strides=2, padding="same", depth_multiplier=2), (7, 7, 2)),
    (S.SeparableConv2D(filters=2, kernel_size=(3, 2), dilation_rate=(2, 1), activation="tanh"), (7, 5, 3)),
    (S.SeparableConv2D(filters=5, kernel_size=1, use_bias=False), (4, 4, 3)),
]
IDS = [f"{s.type}-{i}" for i, (s, _) in enumerate(CASES)]


def yaml_line(spec):
    args = spec.model_dump(exclude={"type", "name", "inputs", "trainable"}, exclude_none=True,
                           exclude_defaults=True)
    text = ", ".join(f"{k}: {list(v) if isinstance(v, tuple) else v}" for k, v in args.items())
    return f"{spec.type}: {{{text}}}"


def built(spec, shape, dtype="float64"):
    layer = make_layer(spec, "d", 0, dtype)
    layer.build(shape)
    return layer


@pytest.mark.parametrize("spec,shape", CASES, ids=IDS)
@pytest.mark.parametrize("training", [False, True])
def test_float64_gradients(spec, shape, training):
    layer = built(spec, shape)
    for w in layer.weights.values():
        w[...] = np.random.default_rng(1).uniform(-1, 1, w.shape)
    X = np.random.default_rng(0).standard_normal((3, *shape))
    Y, _ = layer.forward(X, training)
    assert Y.shape[1:] == layer.output_shape(shape)
    assert check_layer_gradients(layer, X, training=training) > 0


def test_literal_depthwise_values():
    """Channel c's output m is channel c convolved with kernel[:, :, c, m], at c * M + m."""
    layer = built(S.DepthwiseConv2D(kernel_size=2, depth_multiplier=2, use_bias=False), (2, 2, 2))
    layer.weights["kernel"][...] = np.arange(16.0).reshape(2, 2, 2, 2)
    X = np.arange(8.0).reshape(1, 2, 2, 2)
    Y, _ = layer.forward(X, False)
    want = [sum(X[0, i, j, c] * layer.weights["kernel"][i, j, c, m] for i in range(2) for j in range(2))
            for c in range(2) for m in range(2)]
    np.testing.assert_allclose(Y.ravel(), want)


def test_weights_are_keras_layout_and_macs():
    ws = built(S.DepthwiseConv2D(kernel_size=3, depth_multiplier=2), (8, 8, 5)).weight_specs((8, 8, 5))
    assert [(w.name, w.shape) for w in ws] == [("kernel", (3, 3, 5, 2)), ("bias", (10,))]
    assert built(S.DepthwiseConv2D(kernel_size=3, depth_multiplier=2, strides=2, padding="same"),
                 (8, 8, 5)).macs((8, 8, 5)) == 4 * 4 * 9 * 10
    sep = built(S.SeparableConv2D(filters=7, kernel_size=3, depth_multiplier=2), (8, 8, 5))
    assert [(w.name, w.shape) for w in sep.weight_specs((8, 8, 5))] == [
        ("depthwise_kernel", (3, 3, 5, 2)), ("pointwise_kernel", (1, 1, 10, 7)), ("bias", (7,))]
    assert sep.macs((8, 8, 5)) == 6 * 6 * (9 * 10 + 10 * 7)


def test_float32_stays_float32():
    for spec, shape in CASES:
        Y, backprop = built(spec, shape, "float32").forward(np.ones((2, *shape), np.float32), True)
        assert Y.dtype == np.float32 and backprop(np.ones_like(Y)).dtype == np.float32, spec.type


def test_threaded_batch_split_gives_the_same_result(monkeypatch):
    """Large batches are split over threads, in chunks of rows: the result is the one-piece
    computation's, whatever the chunking."""
    from layerc.core import depthwise, parallel

    spec, shape = S.DepthwiseConv2D(kernel_size=3, strides=2, padding="same", depth_multiplier=2), (17, 15, 6)
    X = np.random.default_rng(5).standard_normal((8, *shape))
    layer = built(spec, shape)
    monkeypatch.setattr(parallel, "_PARALLEL_MIN", 1 << 62)
    Y1, bp1 = layer.forward(X, True)
    dX1, dW1 = bp1(np.ones_like(Y1)), layer.grads["kernel"].copy()
    monkeypatch.setattr(parallel, "_PARALLEL_MIN", 0)
    monkeypatch.setattr(depthwise, "_CHUNK", 50)
    Y2, bp2 = layer.forward(X, True)
    dX2 = bp2(np.ones_like(Y2))
    np.testing.assert_allclose(Y2, Y1)
    np.testing.assert_allclose(dX2, dX1)
    np.testing.assert_allclose(layer.grads["kernel"], dW1)


@pytest.mark.parametrize("spec,shape", CASES, ids=IDS)
def test_forward_summary_and_memory_match_keras(keras, spec, shape):
    x = np.random.default_rng(2).standard_normal((3, *shape)).astype(np.float32)
    model, twin = forward_parity(f"input: {{shape: {list(shape)}}}\nlayers:\n  - {yaml_line(spec)}\n", x)
    summary_matches(model, twin)


@pytest.mark.parametrize("spec,shape", CASES[::2], ids=IDS[::2])
def test_three_sgd_steps_equal_keras(keras, spec, shape):
    body = f"input: {{shape: {list(shape)}}}\nlayers:\n  - {yaml_line(spec)}\n  - Flatten\n  - Dense: {{units: 2}}\n"
    rng = np.random.default_rng(3)
    sgd_parity(keras, body, rng.standard_normal((8, *shape)).astype(np.float32),
               rng.standard_normal((8, 2)).astype(np.float32), lr=0.05)


def test_masks_stop_as_in_keras():
    for spec, shape in CASES[:1] + CASES[-1:]:
        assert built(spec, shape).compute_mask(np.zeros((1, *shape)), np.ones((1, *shape[:2]), bool)) is None


@pytest.mark.parametrize("line,shape,words", [
    ("DepthwiseConv2D: {kernel_size: 3}", "[8]", ["3-D input (height, width, channels)"]),
    ("SeparableConv2D: {filters: 2, kernel_size: 5}", "[4, 4, 2]", ["kernel height 5", "input height 4"]),
    ("DepthwiseConv2D: {kernel_size: 2, dilation_rate: 4}", "[4, 4, 2]", ["spanning 5"]),
])
def test_shape_errors_are_located(line, shape, words):
    located_error(f"input: {{shape: {shape}}}\nlayers:\n  - Dense: {{units: 2}}\n  - {line}\n", 4, *words)

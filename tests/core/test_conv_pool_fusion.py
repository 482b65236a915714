"""A max pooling folded into the convolution before it (Conv2D.fuse_pool, Model._fold_pooling)
computes what the two layers compute apart: outputs and every gradient, ties included,
through im2col in pooling order and through Winograd F(2x2, 3x3)."""
from __future__ import annotations

import numpy as np
import pytest

import layerc
from layerc.core.conv import Conv1D, Conv2D
from layerc.core.pooling import AveragePooling2D, MaxPooling1D, MaxPooling2D
from layerc.spec import layers as specs
from tests.core.gradcheck import check_layer_gradients

CASES = [  # (conv kind, input shape, conv args, pool args)
    ("Conv2D", (6, 6, 1), dict(filters=3, kernel_size=3, activation="relu"), {}),  # K-major columns
    ("Conv2D", (7, 7, 9), dict(filters=4, kernel_size=3, activation="relu"), {}),  # 5x5: last row/col dropped
    ("Conv2D", (8, 7, 8), dict(filters=2, kernel_size=2, activation="linear", use_bias=False),
     dict(pool_size=(3, 2))),
    ("Conv2D", (9, 9, 3), dict(filters=3, kernel_size=3, strides=2, padding="same",
                               activation="relu"), {}),
    ("Conv2D", (6, 6, 10), dict(filters=5, kernel_size=(2, 3), dilation_rate=2, padding="same",
                                activation="relu"), dict(pool_size=3)),
    ("Conv1D", (11, 4), dict(filters=3, kernel_size=3, activation="relu"), dict(pool_size=2)),
    # 3x3, stride 1, 2x2 pooling, >= 8 channels: Winograd F(2x2, 3x3) when conv_path forces it
    ("Conv2D", (7, 7, 8), dict(filters=3, kernel_size=3, padding="same", activation="relu"), {}),
    ("Conv2D", (8, 9, 12), dict(filters=5, kernel_size=3, activation="linear"), {}),
]


def pair(kind, input_shape, conv_args, pool_args, seed=0, dtype="float64"):
    conv_cls, pool_cls = (Conv2D, MaxPooling2D) if kind == "Conv2D" else (Conv1D, MaxPooling1D)
    conv = conv_cls(getattr(specs, kind)(**conv_args), "conv", seed, dtype)
    pool = pool_cls(getattr(specs, pool_cls.__name__)(**pool_args), "pool", seed, dtype)
    conv.build(input_shape)
    if "bias" in conv.weights:
        conv.weights["bias"][...] = np.random.default_rng(seed + 1).integers(-1, 2, conv.weights["bias"].shape)
    return conv, pool


def coarse(shape, rng):
    """Small integers: many tied maxima, all-zero windows after the ReLU."""
    return rng.integers(-2, 3, shape).astype(np.float64)


@pytest.mark.parametrize("kind,input_shape,conv_args,pool_args", CASES)
def test_folded_pooling_equals_conv_then_pool(kind, input_shape, conv_args, pool_args, conv_path):
    rng = np.random.default_rng(1)
    conv, pool = pair(kind, input_shape, conv_args, pool_args)
    conv.weights["kernel"][...] = coarse(conv.weights["kernel"].shape, rng)
    X = coarse((3, *input_shape), rng)

    Z, conv_back = conv.forward(X, True)
    Y, pool_back = pool.forward(Z, True)
    dY = rng.standard_normal(Y.shape)
    dX = conv_back(pool_back(dY))
    grads = {k: g.copy() for k, g in conv.grads.items()}

    assert conv.fuse_pool(pool)
    Yf, back = conv.forward(X, True)
    np.testing.assert_array_equal(Yf, Y)
    np.testing.assert_allclose(back(dY), dX, rtol=1e-12, atol=1e-12)
    for k, g in grads.items():
        np.testing.assert_allclose(conv.grads[k], g, rtol=1e-12, atol=1e-12, err_msg=k)
    # inference keeps nothing, and its backprop recomputes
    Yi, back_i = conv.forward(X, False)
    np.testing.assert_array_equal(Yi, Y)
    np.testing.assert_allclose(back_i(dY), dX, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind,input_shape,conv_args,pool_args", CASES)
def test_folded_pooling_gradients(kind, input_shape, conv_args, pool_args, conv_path):
    conv, pool = pair(kind, input_shape, conv_args, pool_args, seed=3)
    assert conv.fuse_pool(pool)
    X = np.random.default_rng(4).standard_normal((2, *input_shape))
    check_layer_gradients(conv, X, training=True)


@pytest.mark.parametrize("input_shape,pool", [((13, 13, 32), True), ((13, 12, 16), False)])
def test_winograd_is_close_to_im2col_in_float32(monkeypatch, input_shape, pool):
    from layerc.core import winograd

    assert winograd.usable((3, 3), (1, 1), (1, 1), (2, 2), 32, 64)
    assert winograd.usable((3, 3), (1, 1), (1, 1), None, 64, 64)
    assert not winograd.usable((3, 3), (2, 2), (1, 1), (2, 2), 32, 64)
    assert not winograd.usable((3, 3), (1, 1), (1, 1), (3, 3), 32, 64)
    assert not winograd.usable((3, 3), (1, 1), (1, 1), (2, 2), 3, 64)  # im2col is cheaper
    assert not winograd.usable((3, 3), (1, 1), (1, 1), None, 32, 32)
    rng = np.random.default_rng(5)
    conv, pool_layer = pair("Conv2D", input_shape, dict(filters=64, kernel_size=3, activation="relu"),
                            {}, dtype="float32")
    conv.weights["kernel"][...] = rng.standard_normal(conv.weights["kernel"].shape) * 0.1
    if pool:
        assert conv.fuse_pool(pool_layer)
    X = rng.standard_normal((6, *input_shape)).astype(np.float32)
    results = []
    for use in (False, True):
        monkeypatch.setattr(winograd, "usable", lambda *a, use=use: use)
        Y, back = conv.forward(X, True)
        if not results:
            dY = rng.standard_normal(Y.shape).astype(np.float32)
        results.append((Y, back(dY), *(conv.grads[k].copy() for k in ("kernel", "bias"))))
    for direct, wino, tol in zip(*results, (1e-5, 1e-5, 1e-4, 1e-4)):
        np.testing.assert_allclose(wino, direct, rtol=tol, atol=tol)


def test_big_batch_split_across_threads_is_deterministic_and_matches():
    """Large enough that the batch is split over threads with one-thread BLAS."""
    rng = np.random.default_rng(0)
    conv, pool = pair("Conv2D", (14, 14, 16), dict(filters=32, kernel_size=3, activation="relu"), {},
                      dtype="float32")
    X = rng.standard_normal((64, 14, 14, 16)).astype(np.float32)
    Z, conv_back = conv.forward(X, True)
    Y, pool_back = pool.forward(Z, True)
    dY = rng.standard_normal(Y.shape).astype(np.float32)
    dX = conv_back(pool_back(dY))
    dW = conv.grads["kernel"].copy()
    assert conv.fuse_pool(pool)
    runs = []
    for _ in range(2):
        Yf, back = conv.forward(X, True)
        runs.append((Yf, back(dY), conv.grads["kernel"].copy(), conv.grads["bias"].copy()))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(runs[0][0], Y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(runs[0][1], dX, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(runs[0][2], dW, rtol=1e-4, atol=1e-3)


def model(tmp_path, layers, outputs=None):
    body = "\n".join(f"  - {line}" for line in layers)
    extra = f"outputs: [{', '.join(outputs)}]\n" if outputs else ""
    path = tmp_path / "m.yaml"
    path.write_text(f"name: m\ninputs: {{x: {{shape: [24, 24, 3]}}}}\n{extra}layers:\n{body}\n")
    return layerc.build(layerc.load_spec(path))


def test_model_folds_only_the_pools_it_may(tmp_path):
    m = model(tmp_path, [
        "Conv2D: {filters: 4, kernel_size: 3, activation: relu}",
        "MaxPooling2D: {}",                                        # folded
        "Conv2D: {filters: 4, kernel_size: 2, activation: tanh}",
        "MaxPooling2D: {}",                                        # tanh: not folded
        "Conv2D: {filters: 4, kernel_size: 1}",
        "MaxPooling2D: {pool_size: 2, strides: 1}",                # overlapping: not folded
        "Conv2D: {filters: 4, kernel_size: 1}",
        "AveragePooling2D: {}",                                    # not a max: not folded
        "Flatten: {}",
    ])
    assert m._folded == {"max_pooling2d"}
    assert isinstance(m.layers[7], AveragePooling2D)
    x = np.random.default_rng(0).standard_normal((2, 24, 24, 3)).astype(np.float32)
    y, back = m.forward(x, training=True, input_grads=True)
    assert y.shape == (2, 16) and back(np.ones_like(y)).shape == x.shape


def test_model_does_not_fold_a_shared_or_output_conv(tmp_path):
    m = model(tmp_path, [
        "Conv2D: {name: c, filters: 4, kernel_size: 3, activation: relu}",
        "MaxPooling2D: {name: p}",
        "Flatten: {name: f}",
        "Flatten: {name: g, inputs: [c]}",
        "Concatenate: {inputs: [f, g]}",
    ])
    assert m._folded == set()
    m = model(tmp_path, ["Conv2D: {name: c, filters: 4, kernel_size: 3}", "MaxPooling2D: {name: p}"],
              outputs=["c", "p"])
    assert m._folded == set()

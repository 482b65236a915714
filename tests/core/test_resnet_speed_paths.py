"""The ResNet50 speed paths give the reference paths' results: Winograd only for outputs of
at least MIN_OUTPUT_SIDE a side (smaller ones by im2col, the same values within float32
rounding), and a model skipping the input gradient of layers with no weights before them
(a convolution after a ZeroPadding2D on the input) with every weight gradient unchanged."""
from __future__ import annotations

import numpy as np
import pytest

import layerc
from layerc.core import winograd
from layerc.core.conv import conv2d
from layerc.spec import parse_spec
from tests.core.test_conv_bn_fast_paths import models


@pytest.mark.parametrize("side,wino", [(2, False), (3, False), (4, True), (5, True)])
def test_winograd_only_for_outputs_of_four_or_more_a_side(side, wino):
    assert winograd.usable((3, 3), (1, 1), (1, 1), None, 64, 64, (side, side)) is wino
    assert winograd.usable((3, 3), (1, 1), (1, 1), None, 64, 64, (side, 9)) is wino
    assert winograd.usable((3, 3), (1, 1), (1, 1), None, 64, 64) is True  # output unknown


@pytest.mark.parametrize("side", [2, 3, 4])
def test_small_outputs_by_im2col_equal_winograd(monkeypatch, side):
    rng = np.random.default_rng(side)
    X = rng.standard_normal((3, side, side, 48)).astype(np.float32)
    W = (rng.standard_normal((3, 3, 48, 64)) * 0.1).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    dY = rng.standard_normal((3, side, side, 64)).astype(np.float32)
    results = []
    for threshold in (winograd.MIN_OUTPUT_SIDE, 0):  # the default path, then Winograd forced
        monkeypatch.setattr(winograd, "MIN_OUTPUT_SIDE", threshold)
        Y, backprop = conv2d(X, W, (1, 1), (1, 1), ((1, 1), (1, 1)), b, relu=True)
        results.append((Y, *backprop(dY)))
    for default, wino in zip(*results):
        np.testing.assert_allclose(default, wino, rtol=1e-4, atol=1e-4)


SPEC = """
dtype: float64
input: {shape: [9, 9, 2]}
layers:
  - ZeroPadding2D: {name: pad, padding: 1}
  - Conv2D: {name: c1, filters: 3, kernel_size: 3, strides: 2}
  - BatchNormalization: {name: bn}
  - Activation: {name: r, activation: relu}
  - ZeroPadding2D: {name: pad2, padding: 1}
  - Conv2D: {name: c2, filters: 2, kernel_size: 3}
  - GlobalAveragePooling2D: {}
  - Dense: {units: 2}
"""


def test_layers_with_no_weights_before_them_skip_the_input_gradient():
    model = layerc.build(parse_spec(SPEC)).build()
    x = np.random.default_rng(0).standard_normal((2, 9, 9, 2))
    dY = np.random.default_rng(1).standard_normal((2, 2))
    weights = model.get_weights()
    _, backprop = model.forward(x, training=True, input_grads=True)
    dX = backprop(dY)
    assert dX.shape == x.shape
    want = {(n.name, k): g.copy() for n in model.nodes for k, g in n.layer.grads.items()}
    model.set_weights(weights)
    _, backprop = model.forward(x, training=True)
    layer = {n.name: n.layer for n in model.nodes}
    assert not layer["pad"].input_grad and not layer["c1"].input_grad
    assert layer["pad2"].input_grad and layer["c2"].input_grad  # c1's weights come before them
    assert backprop(dY) is None
    got = {(n.name, k): g for n in model.nodes for k, g in n.layer.grads.items()}
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=str(key))


BLOCK = """
dtype: float64
input: {shape: [4, 4, 6]}
layers:
  - Conv2D: {name: c1, filters: 6, kernel_size: 1}
  - BatchNormalization: {name: bn1}
  - Activation: {name: r1, activation: relu}
  - Conv2D: {name: c2, filters: 32, kernel_size: 3, padding: same}
  - BatchNormalization: {name: bn2}
  - Conv2D: {name: c3, filters: 32, kernel_size: 1, inputs: input_layer}
  - BatchNormalization: {name: bn3}
  - Add: {name: add, inputs: [bn2, bn3]}
  - Activation: {name: out1, activation: relu}
  - Conv2D: {name: c4, filters: 32, kernel_size: 1}
  - BatchNormalization: {name: bn4}
  - Add: {name: add2, inputs: [bn4, out1]}
  - ReLU: {name: out2, max_value: 6}
  - GlobalAveragePooling2D: {}
  - Dense: {units: 3}
"""


def block_models():
    """A residual block (folds on) and the same with every fold undone, same weights."""
    return models(BLOCK)


def test_add_takes_over_the_rectifier_after_it():
    fast, _ = block_models()
    assert {"out1", "out2"} <= fast._folded
    by = {n.name: n.layer for n in fast.nodes}
    assert by["add"].rectifier == (True, None) and by["add2"].rectifier == (True, 6.0)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("batch", [1, 8])
def test_residual_block_folds_equal_unfolded(training, batch):
    """Add with its rectifier; in inference c2 (3x3, 6 -> 32 channels: 1728 kernel values)
    keeps BN unfolded for one image (512 output values) and folds it into the kernel for 8
    (4096); c3 and c4 the same way for 1 and 8 images."""
    from layerc.core.conv import kernel_fold_pays

    assert not kernel_fold_pays(1 * 4 * 4 * 32, 3 * 3 * 6 * 32) and kernel_fold_pays(8 * 4 * 4 * 32, 3 * 3 * 6 * 32)
    assert not kernel_fold_pays(1 * 4 * 4 * 32, 32 * 32) and kernel_fold_pays(8 * 4 * 4 * 32, 32 * 32)
    fast, plain = block_models()
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 4, 4, 6))
    y1, bp1 = fast.forward(x, training=training, input_grads=True)
    y2, bp2 = plain.forward(x, training=training, input_grads=True)
    np.testing.assert_allclose(y1, y2, rtol=1e-10, atol=1e-10)
    dY = rng.standard_normal(y1.shape)
    np.testing.assert_allclose(bp1(dY), bp2(dY), rtol=1e-10, atol=1e-10)
    for a, b in zip(fast.nodes, plain.nodes):
        for name in a.layer.grads:
            np.testing.assert_allclose(a.layer.grads[name], b.layer.grads[name], rtol=1e-10, atol=1e-10,
                                       err_msg=f"{a.name}/{name}")


def reference_conv(X, W, strides, dilation):
    """Valid cross-correlation by a loop over kernel offsets (float64)."""
    kh, kw, _, F = W.shape
    oh = (X.shape[1] - dilation[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (X.shape[2] - dilation[1] * (kw - 1) - 1) // strides[1] + 1
    Y = np.zeros((len(X), oh, ow, F))
    for i in range(kh):
        for j in range(kw):
            r, c = i * dilation[0], j * dilation[1]
            patch = X[:, r:r + strides[0] * (oh - 1) + 1:strides[0], c:c + strides[1] * (ow - 1) + 1:strides[1]]
            Y += patch @ W[i, j]
    return Y


@pytest.mark.parametrize("C,k,dilation,kmajor", [(1, 3, (1, 1), True), (3, 5, (1, 1), True), (3, 7, (1, 1), False),
                                                 (6, 3, (1, 1), False), (3, 7, (1, 2), True), (8, 3, (1, 1), False)])
def test_im2col_column_layouts_equal_the_reference(C, k, dilation, kmajor):
    from layerc.core.conv import kmajor_columns

    assert kmajor_columns(C, k, dilation) is kmajor
    rng = np.random.default_rng(C * k)
    X = rng.standard_normal((2, 17, 16, C))
    W = rng.standard_normal((k, k, C, 4))
    b = rng.standard_normal(4)
    Y, backprop = conv2d(X, W, (2, 2), dilation, ((0, 0), (0, 0)), b)
    np.testing.assert_allclose(Y, reference_conv(X, W, (2, 2), dilation) + b, rtol=1e-10, atol=1e-10)
    dY = rng.standard_normal(Y.shape)
    dX, dW, db = backprop(dY)
    # the convolution is linear in X and in W: the gradients' directional derivatives are exact
    D, DW = rng.standard_normal(X.shape), rng.standard_normal(W.shape)
    np.testing.assert_allclose(np.vdot(dX, D), np.vdot(reference_conv(D, W, (2, 2), dilation), dY), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(dW, DW), np.vdot(reference_conv(X, DW, (2, 2), dilation), dY), rtol=1e-10)
    np.testing.assert_allclose(db, dY.sum(axis=(0, 1, 2)), rtol=1e-10)


@pytest.mark.parametrize("images,ones_column", [(1, False), (40, True)])
@pytest.mark.parametrize("pool,relu", [(None, False), (None, True), ((2, 2), True)])
def test_im2col_bias_by_ones_column_or_added_late(images, ones_column, pool, relu):
    """The bias rides in the product as a column of ones when there are as many output rows
    as kernel rows (40 images: 40 * 4 rows >= 3 * 3 * 16), else it is added to the output
    (one image: 4 rows): the same outputs and gradients either way."""
    rng = np.random.default_rng(images)
    X = rng.standard_normal((images, 4, 4, 16))
    W = rng.standard_normal((3, 3, 16, 5))
    b = rng.standard_normal(5)
    assert (images * 4 >= 3 * 3 * 16) is ones_column
    Y, backprop = conv2d(X, W, (1, 1), (1, 1), ((0, 0), (0, 0)), b, relu=relu, pool=pool)
    Z = reference_conv(X, W, (1, 1), (1, 1)) + b
    if pool is not None:
        Z = Z.reshape(images, 1, 2, 1, 2, 5).max(axis=(2, 4))
    want = np.maximum(Z, 0) if relu else Z
    np.testing.assert_allclose(Y, want, rtol=1e-10, atol=1e-10)
    dY = rng.standard_normal(Y.shape)
    dX, dW, db = backprop(dY)
    dZ = dY * (Z > 0) if relu else dY
    np.testing.assert_allclose(db, dZ.sum(axis=(0, 1, 2)), rtol=1e-10, atol=1e-10)

    def f(X, W):  # sum(Y * dY) by the reference
        Z = reference_conv(X, W, (1, 1), (1, 1)) + b
        if pool is not None:
            Z = Z.reshape(images, 1, 2, 1, 2, 5).max(axis=(2, 4))
        return np.vdot(np.maximum(Z, 0) if relu else Z, dY)

    eps = 1e-6  # piecewise linear: central differences are exact away from the kinks
    D, DW = rng.standard_normal(X.shape), rng.standard_normal(W.shape)
    np.testing.assert_allclose(np.vdot(dX, D), (f(X + eps * D, W) - f(X - eps * D, W)) / (2 * eps), rtol=1e-6)
    np.testing.assert_allclose(np.vdot(dW, DW), (f(X, W + eps * DW) - f(X, W - eps * DW)) / (2 * eps), rtol=1e-6)

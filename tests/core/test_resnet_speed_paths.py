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

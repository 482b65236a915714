"""The convolution and BatchNormalization fast paths give the plain formulas' results in
float64: a 1x1 convolution as one product (strides, bias, ReLU), BatchNormalization's
blockwise pass (Keras's moments E[X^2] - E[X]^2; training, inference, frozen; a ReLU or ReLU6
folded into it), and a Conv2D/DepthwiseConv2D computing the BatchNormalization after it in
inference (strides, padding same/valid, channel multipliers). Outputs and every gradient are
compared with the plain formulas, with the same model run unfolded, and with central
differences."""
from __future__ import annotations

import numpy as np
import pytest

import layerc
from layerc.core import normalization
from layerc.core.conv import conv2d
from layerc.core.registry import make_layer
from layerc.spec import layers as S
from layerc.spec import parse_spec
from tests.core.gradcheck import check_layer_gradients

TOL = dict(rtol=1e-10, atol=1e-10)


# -- 1x1 convolution ----------------------------------------------------------------------------
@pytest.mark.parametrize("strides", [(1, 1), (2, 2), (2, 3)])
@pytest.mark.parametrize("bias,relu", [(False, False), (True, False), (True, True)])
def test_pointwise_conv_is_the_plain_product(strides, bias, relu):
    rng = np.random.default_rng(sum(strides) + 2 * bias + 4 * relu)
    X = rng.standard_normal((3, 7, 8, 5))
    W = rng.standard_normal((1, 1, 5, 4))
    b = rng.standard_normal(4) if bias else None
    Y, backprop = conv2d(X, W, strides, (1, 1), ((0, 0), (0, 0)), b, relu=relu)
    Xs = X[:, ::strides[0], ::strides[1]]
    Z = np.einsum("nhwc,cf->nhwf", Xs, W[0, 0]) + (b if bias else 0)
    want = np.maximum(Z, 0) if relu else Z
    np.testing.assert_allclose(Y, want, **TOL)
    dY = rng.standard_normal(Y.shape)
    dX, dW, db = backprop(dY)
    dZ = dY * (Z > 0) if relu else dY
    want_dX = np.zeros_like(X)
    want_dX[:, ::strides[0], ::strides[1]] = np.einsum("nhwf,cf->nhwc", dZ, W[0, 0])
    np.testing.assert_allclose(dX, want_dX, **TOL)
    np.testing.assert_allclose(dW[0, 0], np.einsum("nhwc,nhwf->cf", Xs, dZ), **TOL)
    if bias:
        np.testing.assert_allclose(db, dZ.sum(axis=(0, 1, 2)), **TOL)
    else:
        assert db is None


def test_pointwise_conv_without_input_grad_returns_none():
    X = np.ones((2, 3, 3, 2))
    _, backprop = conv2d(X, np.ones((1, 1, 2, 3)), (1, 1), (1, 1), ((0, 0), (0, 0)), input_grad=False)
    dX, dW, _ = backprop(np.ones((2, 3, 3, 3)))
    assert dX is None and dW.shape == (1, 1, 2, 3)


# -- BatchNormalization ---------------------------------------------------------------------------
def plain_bn(X, gamma, beta, mm, mv, eps, training):
    """Keras's BatchNormalization: (Y, mean, var) with the batch's moments when training."""
    axes = tuple(range(X.ndim - 1))
    mean = X.mean(axis=axes) if training else mm
    var = X.var(axis=axes) if training else mv
    return (X - mean) / np.sqrt(var + eps) * gamma + beta, mean, var


def bn_layer(C, rectifier=None, frozen=False, seed=0, momentum=0.9):
    spec = S.BatchNormalization(momentum=momentum, epsilon=1e-3, trainable=not frozen)
    layer = make_layer(spec, "bn", seed, "float64")
    layer.build((C,))
    rng = np.random.default_rng(seed)
    for name, w in layer.weights.items():
        w[...] = rng.uniform(0.5 if name in ("gamma", "moving_variance") else -1, 1.5, w.shape)
    if rectifier is not None:
        layer.rectifier = (True, rectifier[0])
    return layer


@pytest.mark.parametrize("shape", [(40, 6), (4, 5, 7, 3), (3, 2, 9, 11)])
@pytest.mark.parametrize("training,frozen", [(True, False), (False, False), (True, True)])
@pytest.mark.parametrize("rectifier", [None, (None,), (6.0,)])
def test_batchnorm_fast_path_equals_plain_formula(shape, training, frozen, rectifier):
    C = shape[-1]
    layer = bn_layer(C, rectifier, frozen, seed=len(shape))
    g, b = layer.weights["gamma"].copy(), layer.weights["beta"].copy()
    mm, mv = layer.weights["moving_mean"].copy(), layer.weights["moving_variance"].copy()
    rng = np.random.default_rng(C)
    X = rng.standard_normal(shape) * 2 + 0.5
    dY = rng.standard_normal(shape)
    block, normalization._BN_BLOCK = normalization._BN_BLOCK, 64  # many blocks (and partial sums) even here
    try:
        Y, backprop = layer.forward(X, training)
        dX = backprop(dY)
    finally:
        normalization._BN_BLOCK = block
    batch = training and not frozen
    Z, mean, var = plain_bn(X, g, b, mm, mv, 1e-3, batch)
    clip = rectifier[0] if rectifier else None
    want = Z if rectifier is None else np.clip(Z, 0, np.inf if clip is None else clip)
    np.testing.assert_allclose(Y, want, **TOL)
    passes = np.ones(shape, bool) if rectifier is None else (Z > 0) & (Z < (np.inf if clip is None else clip))
    G = dY * passes
    axes = tuple(range(len(shape) - 1))
    r = 1 / np.sqrt(var + 1e-3)
    Xhat = (X - mean) * r
    if batch:
        n = X.size // C
        want_dX = g * r * (G - G.sum(axes) / n - Xhat * (G * Xhat).sum(axes) / n)
        want_mm, want_mv = mm * 0.9 + mean * 0.1, mv * 0.9 + var * 0.1
    else:
        want_dX, want_mm, want_mv = G * g * r, mm, mv
    np.testing.assert_allclose(dX, want_dX, **TOL)
    np.testing.assert_allclose(layer.grads["gamma"], (G * Xhat).sum(axes), **TOL)
    np.testing.assert_allclose(layer.grads["beta"], G.sum(axes), **TOL)
    np.testing.assert_allclose(layer.weights["moving_mean"], want_mm, **TOL)
    np.testing.assert_allclose(layer.weights["moving_variance"], want_mv, **TOL)


@pytest.mark.parametrize("rectifier", [None, (None,), (6.0,)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_fast_path_gradients_by_central_differences(rectifier, training):
    layer = bn_layer(4, rectifier, seed=3, momentum=0.5)
    X = np.random.default_rng(5).standard_normal((3, 4, 5, 4)) * 3
    assert check_layer_gradients(layer, X, training=training, n_checks=30) > 0


@pytest.mark.parametrize("gammas", ["zero", "small", "negative"])
@pytest.mark.parametrize("scale,center", [(True, True), (True, False), (False, True), (False, False)])
@pytest.mark.parametrize("rectifier", [(None,), (6.0,)])
@pytest.mark.parametrize("block", [64, None])
def test_rectified_batchnorm_backward_from_y_or_x_equals_plain_formula(gammas, scale, center, rectifier, block):
    """With a rectifier, backward takes sum(G * Xhat) from Y (Xhat = (Y - beta) / gamma where
    G is not 0) unless a gamma is 0 or small, then from X; negative gammas, no scale or no
    center, one block or many (full-block operands, a partial last block): the same gradients."""
    C = 5
    spec = S.BatchNormalization(momentum=0.9, epsilon=1e-3, scale=scale, center=center)
    layer = make_layer(spec, "bn", 0, "float64")
    layer.build((C,))
    rng = np.random.default_rng(7 + scale + 2 * center)
    for name, w in layer.weights.items():
        w[...] = rng.uniform(0.5 if name == "moving_variance" else -1.5, 1.5, w.shape)
    if scale:
        first = {"zero": 0.0, "small": 1e-3, "negative": -0.3}[gammas]
        layer.weights["gamma"][...] = [first, -0.7, 1.3, -1.1, 0.4]
    layer.rectifier = (True, rectifier[0])
    g = layer.weights["gamma"].copy() if scale else np.ones(C)
    b = layer.weights["beta"].copy() if center else np.zeros(C)
    X = rng.standard_normal((6, 7, 9, C)) * 2 + 0.5
    dY = rng.standard_normal(X.shape)
    default, normalization._BN_BLOCK = normalization._BN_BLOCK, block or normalization._BN_BLOCK
    try:
        Y, backprop = layer.forward(X, True)
        dX = backprop(dY)
    finally:
        normalization._BN_BLOCK = default
    axes = (0, 1, 2)
    mean, var = X.mean(axis=axes), X.var(axis=axes)
    r = 1 / np.sqrt(var + 1e-3)
    Xhat = (X - mean) * r
    Z = Xhat * g + b
    top = np.inf if rectifier[0] is None else rectifier[0]
    np.testing.assert_allclose(Y, np.clip(Z, 0, top), **TOL)
    G = dY * ((Z > 0) & (Z < top))
    n = X.size // C
    np.testing.assert_allclose(dX, g * r * (G - G.sum(axes) / n - Xhat * (G * Xhat).sum(axes) / n), **TOL)
    if scale:
        np.testing.assert_allclose(layer.grads["gamma"], (G * Xhat).sum(axes), **TOL)
    if center:
        np.testing.assert_allclose(layer.grads["beta"], G.sum(axes), **TOL)


def test_batchnorm_variance_is_keras_moments_and_never_negative():
    """E[X^2] - E[X]^2 can round below 0 for a constant channel: clipped, so no NaN."""
    layer = bn_layer(2)
    X = np.full((8, 3, 3, 2), 0.1)
    Y, _ = layer.forward(X, True)
    assert np.isfinite(Y).all() and (layer.weights["moving_variance"] >= 0).all()


# -- folds in a model -----------------------------------------------------------------------------
MODEL = """
dtype: float64
input: {shape: [9, 8, 3]}
layers:
  - Conv2D: {name: c1, filters: 6, kernel_size: 3, strides: 2, padding: same, use_bias: false}
  - BatchNormalization: {name: bn1}
  - ReLU: {name: r1, max_value: 6}
  - DepthwiseConv2D: {name: d1, kernel_size: 3, depth_multiplier: 2, padding: same, use_bias: false}
  - BatchNormalization: {name: bn2}
  - Activation: {name: r2, activation: relu}
  - ZeroPadding2D: {name: p1, padding: [[0, 1], [0, 1]]}
  - DepthwiseConv2D: {name: d2, kernel_size: 3, strides: 2, use_bias: true}
  - BatchNormalization: {name: bn3}
  - Conv2D: {name: c2, filters: 5, kernel_size: 1, use_bias: true}
  - BatchNormalization: {name: bn4}
  - Conv2D: {name: c3, filters: 5, kernel_size: 2, padding: valid, inputs: bn3}
  - BatchNormalization: {name: bn5}
  - ReLU: {name: r3}
  - Conv2D: {name: c4, filters: 5, kernel_size: 1, strides: 2, padding: same, inputs: bn4}
  - BatchNormalization: {name: bn6, trainable: false}
  - GlobalAveragePooling2D: {name: g1}
  - GlobalAveragePooling2D: {name: g2, inputs: r3}
  - DepthwiseConv2D: {name: d3, kernel_size: 3, strides: 2, padding: same, use_bias: true, inputs: r1}
  - BatchNormalization: {name: bn7}
  - ReLU: {name: r4, max_value: 6}
  - GlobalAveragePooling2D: {name: g3, inputs: r4}
  - Add: {name: add, inputs: [g1, g2]}
  - Concatenate: {name: cat, inputs: [add, g3]}
  - Dense: {name: out, units: 3}
"""


def models(spec=MODEL):
    """The model of `spec` (folds on) and the same model with every fold undone, same weights;
    the moving statistics away from 0 and 1 so that inference differs from training."""
    fast, plain = layerc.build(parse_spec(spec)), layerc.build(parse_spec(spec))
    fast.build()
    rng = np.random.default_rng(0)
    for node in fast.nodes:
        for name, w in node.layer.weights.items():
            if name == "moving_variance" or name == "gamma":
                w[...] = rng.uniform(0.5, 2.0, w.shape)
            elif name in ("moving_mean", "beta", "bias"):
                w[...] = rng.uniform(-1, 1, w.shape)
    plain.set_weights(fast.get_weights())
    plain._folded = set()
    for node in plain.nodes:
        layer = node.layer
        layer.bn, layer.folded, layer.rectifier = None, False, (False, None)
    return fast, plain


def layer(model, name):
    return model._by_name[name].layer


def test_model_folds_rectifiers_and_batchnorms():
    fast, _ = models()
    assert fast._folded == {"r1", "r2", "r3", "r4"}
    assert layer(fast, "bn1").rectifier == (True, 6.0)
    assert layer(fast, "bn2").rectifier == (True, None)
    assert layer(fast, "bn5").rectifier == (True, None)
    for conv, bn in (("c1", "bn1"), ("d1", "bn2"), ("d2", "bn3"), ("c2", "bn4"), ("c3", "bn5"), ("c4", "bn6"), ("d3", "bn7")):
        assert layer(fast, conv).bn is layer(fast, bn) and layer(fast, bn).folded
    x = np.random.default_rng(1).standard_normal((2, 9, 8, 3))
    fast.forward(x, training=False)
    bn = layer(fast, "bn1")
    X = np.ones((2, 5, 4, 6))
    Y, _ = bn.forward(X, False)
    assert Y is X  # in inference the convolution computed it


@pytest.mark.parametrize("training", [True, False])
def test_folded_model_equals_unfolded(training):
    fast, plain = models()
    x = np.random.default_rng(2).standard_normal((4, 9, 8, 3))
    y1, bp1 = fast.forward(x, training=training, input_grads=True)
    y2, bp2 = plain.forward(x, training=training, input_grads=True)
    np.testing.assert_allclose(y1, y2, **TOL)
    dY = np.random.default_rng(3).standard_normal(y1.shape)
    np.testing.assert_allclose(bp1(dY), bp2(dY), **TOL)
    for a, b in zip(fast.nodes, plain.nodes):
        for name in a.layer.grads:
            np.testing.assert_allclose(a.layer.grads[name], b.layer.grads[name], err_msg=f"{a.name}/{name}", **TOL)
    for a, b in zip(fast.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, **TOL)  # the same moving statistics


@pytest.mark.parametrize("training", [True, False])
def test_folded_model_input_gradient_by_central_differences(training):
    fast, _ = models()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 9, 8, 3))
    saved = fast.get_weights()
    dY = rng.standard_normal((3, 3))

    def loss():
        fast.set_weights(saved)  # undo the moving-statistics updates
        return float(np.sum(fast.forward(x, training=training)[0] * dY))

    fast.set_weights(saved)
    _, backprop = fast.forward(x, training=training, input_grads=True)
    dX = backprop(dY)
    for idx in [tuple(rng.integers(0, s) for s in x.shape) for _ in range(25)]:
        old = x[idx]
        x[idx] = old + 1e-6
        up = loss()
        x[idx] = old - 1e-6
        down = loss()
        x[idx] = old
        np.testing.assert_allclose(dX[idx], (up - down) / 2e-6, rtol=1e-4, atol=1e-7, err_msg=str(idx))


def test_no_fold_across_a_shared_output_or_an_activation():
    text = """
dtype: float64
input: {shape: [6, 6, 2]}
layers:
  - Conv2D: {name: c1, filters: 3, kernel_size: 3, activation: relu}
  - BatchNormalization: {name: bn1}
  - Conv2D: {name: c2, filters: 3, kernel_size: 1}
  - BatchNormalization: {name: bn2}
  - ReLU: {name: r1, negative_slope: 0.1}
  - Add: {name: add, inputs: [r1, c2]}
  - GlobalAveragePooling2D: {}
"""
    model = layerc.build(parse_spec(text))
    assert model._folded == set()
    assert layer(model, "c1").bn is None  # its ReLU comes between
    assert layer(model, "c2").bn is None  # its output also feeds the Add
    assert layer(model, "bn2").rectifier == (False, None)  # a leaky ReLU is not a plain rectifier

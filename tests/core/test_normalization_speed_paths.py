"""The fast paths of BatchNormalization (channels last: per-channel vectors tiled along rows,
one-pass sums) and LayerNormalization (last axis) give the general formulas' results in
float64: outputs, input and parameter gradients and moving statistics, training and
inference, with and without scale/center, for 2-D to 4-D inputs."""
from __future__ import annotations

import numpy as np
import pytest

from layerc.core.registry import make_layer
from layerc.spec import layers as S


def previous_batchnorm(X, gamma, beta, mean_in, var_in, momentum, epsilon, training, dY):
    """The general path's formulas (commit fff1ba5): (Y, dX, dgamma, dbeta, moving_mean, moving_variance)."""
    axes = tuple(range(X.ndim - 1))
    if not training:
        r = 1 / np.sqrt(var_in + epsilon)
        Xhat = (X - mean_in) * r
        return Xhat * gamma + beta, dY * r * gamma, (dY * Xhat).sum(axes), dY.sum(axes), mean_in, var_in
    mean = X.mean(axis=axes)
    D = X - mean
    var = np.mean(np.square(D), axis=axes)
    r = 1 / np.sqrt(var + epsilon)
    Xhat = D * r
    G = dY * gamma
    n = X.size // X.shape[-1]
    dX = r * (G - G.sum(axes) / n - Xhat * (G * Xhat).sum(axes) / n)
    return (Xhat * gamma + beta, dX, (dY * Xhat).sum(axes), dY.sum(axes),
            mean_in * momentum + mean * (1 - momentum), var_in * momentum + var * (1 - momentum))


@pytest.mark.parametrize("shape", [(6,), (5, 7), (4, 5, 3), (3, 1, 6)])
@pytest.mark.parametrize("scale,center", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("training", [True, False])
def test_channels_last_path_equals_general_formulas(shape, scale, center, training):
    spec = S.BatchNormalization(scale=scale, center=center, momentum=0.9, epsilon=1e-3)
    layer = make_layer(spec, "bn", 0, "float64")
    layer.build(shape)
    rng = np.random.default_rng(len(shape) + 3 * scale + 5 * center)
    for name, w in layer.weights.items():
        w[...] = rng.uniform(0.5 if name in ("gamma", "moving_variance") else -1, 1.5, w.shape)
    C = shape[-1]
    gamma = layer.weights["gamma"].copy() if scale else np.ones(C)
    beta = layer.weights["beta"].copy() if center else np.zeros(C)
    mm, mv = layer.weights["moving_mean"].copy(), layer.weights["moving_variance"].copy()
    X = rng.standard_normal((8, *shape)) * 3 + 1
    dY = rng.standard_normal(X.shape)
    Y, backprop = layer.forward(X, training)
    dX = backprop(dY)
    want = previous_batchnorm(X, gamma, beta, mm, mv, 0.9, 1e-3, training, dY)
    for got, exp in zip((Y, dX), want[:2]):
        assert got.shape == X.shape
        np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-12)
    if scale:
        np.testing.assert_allclose(layer.grads["gamma"], want[2], rtol=1e-12, atol=1e-12)
    if center:
        np.testing.assert_allclose(layer.grads["beta"], want[3], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.weights["moving_mean"], want[4], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.weights["moving_variance"], want[5], rtol=1e-12, atol=1e-12)


def test_frozen_layer_runs_the_inference_path_in_training():
    layer = make_layer(S.BatchNormalization(trainable=False), "bn", 0, "float64")
    layer.build((4, 3))
    layer.weights["moving_mean"][...] = [0.5, -1.0, 2.0]
    layer.weights["moving_variance"][...] = [2.0, 0.5, 1.0]
    X = np.random.default_rng(0).standard_normal((6, 4, 3))
    Y, _ = layer.forward(X, True)
    np.testing.assert_allclose(Y, (X - [0.5, -1.0, 2.0]) / np.sqrt(np.array([2.0, 0.5, 1.0]) + 1e-3), rtol=1e-12)
    np.testing.assert_array_equal(layer.weights["moving_mean"], [0.5, -1.0, 2.0])


def test_float32_stays_float32():
    layer = make_layer(S.BatchNormalization(), "bn", 0, "float32")
    layer.build((5, 5, 4))
    X = np.random.default_rng(1).standard_normal((3, 5, 5, 4)).astype(np.float32)
    for training in (True, False):
        Y, backprop = layer.forward(X, training)
        dX = backprop(np.ones_like(Y))
        assert Y.dtype == dX.dtype == layer.grads["gamma"].dtype == np.float32


def previous_layernorm(X, gamma, beta, epsilon, dY):
    """LayerNormalization's general formulas over the last axis (commit fff1ba5): (Y, dX, dgamma, dbeta)."""
    other = tuple(range(X.ndim - 1))
    mean = X.mean(axis=-1, keepdims=True)
    D = X - mean
    r = 1 / np.sqrt(np.mean(np.square(D), axis=-1, keepdims=True) + epsilon)
    Xhat = D * r
    G = dY * gamma
    dX = r * (G - G.mean(axis=-1, keepdims=True) - Xhat * (G * Xhat).mean(axis=-1, keepdims=True))
    return Xhat * gamma + beta, dX, (dY * Xhat).sum(axis=other), dY.sum(axis=other)


@pytest.mark.parametrize("shape", [(7,), (5, 6), (3, 4, 5)])
@pytest.mark.parametrize("scale,center", [(True, True), (False, True), (True, False), (False, False)])
def test_layernorm_last_axis_path_equals_general_formulas(shape, scale, center):
    layer = make_layer(S.LayerNormalization(scale=scale, center=center, epsilon=1e-5), "ln", 0, "float64")
    layer.build(shape)
    rng = np.random.default_rng(len(shape) + 3 * scale + 5 * center)
    for w in layer.weights.values():
        w[...] = rng.uniform(0.5, 1.5, w.shape)
    C = shape[-1]
    gamma = layer.weights["gamma"].copy() if scale else np.ones(C)
    beta = layer.weights["beta"].copy() if center else np.zeros(C)
    X = rng.standard_normal((6, *shape)) * 2 - 1
    dY = rng.standard_normal(X.shape)
    for training in (True, False):
        Y, backprop = layer.forward(X, training)
        dX = backprop(dY)
        want = previous_layernorm(X, gamma, beta, 1e-5, dY)
        np.testing.assert_allclose(Y, want[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dX, want[1], rtol=1e-12, atol=1e-12)
        if scale:
            np.testing.assert_allclose(layer.grads["gamma"], want[2], rtol=1e-12, atol=1e-12)
        if center:
            np.testing.assert_allclose(layer.grads["beta"], want[3], rtol=1e-12, atol=1e-12)


def test_layernorm_gradient_does_not_change_dy():
    layer = make_layer(S.LayerNormalization(scale=False), "ln", 0, "float64")
    layer.build((4, 5))
    X = np.random.default_rng(2).standard_normal((3, 4, 5))
    dY = np.random.default_rng(3).standard_normal(X.shape)
    before = dY.copy()
    _, backprop = layer.forward(X, True)
    backprop(dY)
    np.testing.assert_array_equal(dY, before)

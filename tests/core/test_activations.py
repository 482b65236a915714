"""Every activation in layerc.core.activations: float64 gradients, torch and Keras parity,
dtype, stability; and the Activation layer."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from layerc.core import activations
from layerc.core.registry import make_layer
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients

NAMES = sorted(activations.ACTIVATIONS)


def inputs(shape=(4, 7), seed=0, dtype=np.float64):
    """Values across [-5, 5] kept away from every kink (0 and +-3)."""
    X = np.random.default_rng(seed).uniform(-5, 5, shape)
    for kink in (0.0, 3.0, -3.0):
        near = np.abs(X - kink) < 0.05
        X[near] += 0.1
    return X.astype(dtype)


def test_every_spec_activation_is_implemented():
    assert set(S.ActivationName.__args__) == set(activations.ACTIVATIONS)
    assert activations.get(None) is activations.linear


@pytest.mark.parametrize("name", NAMES)
def test_gradient_float64(name):
    Z = inputs()
    Y, backprop = activations.get(name)(Z)
    dY = np.random.default_rng(1).standard_normal(Z.shape)
    dZ = backprop(dY)
    eps = 1e-6
    num = np.zeros_like(Z)
    for idx in np.ndindex(Z.shape):
        Zp, Zm = Z.copy(), Z.copy()
        Zp[idx] += eps
        Zm[idx] -= eps
        num[idx] = ((activations.get(name)(Zp)[0] - activations.get(name)(Zm)[0]) * dY).sum()
    np.testing.assert_allclose(dZ, num / (2 * eps), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_activation_layer_gradients(name):
    layer = make_layer(S.Activation(activation=name), "act", 0, "float64")
    layer.build((3, 5))
    assert layer.output_shape((3, 5)) == (3, 5) and layer.weight_specs((3, 5)) == []
    check_layer_gradients(layer, inputs((2, 3, 5), seed=2))


@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32(name):
    Z = inputs(dtype=np.float32)
    Y, backprop = activations.get(name)(Z)
    assert Y.dtype == np.float32 and Y.shape == Z.shape
    assert backprop(np.ones_like(Z)).dtype == np.float32


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_are_finite_without_warnings(name, dtype):
    Z = np.array([[-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Y, backprop = activations.get(name)(Z)
        dZ = backprop(np.ones_like(Z))
    assert np.isfinite(Y).all() and np.isfinite(dZ).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_relu_matches_relu(dtype):
    Z = np.array([[-2.0, 0.0, 0.5, np.nan, 4.0, -0.0]], dtype)
    dY = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], dtype)
    Y_ref, back_ref = activations.relu(Z.copy())
    Zc = Z.copy()
    Y, back = activations.relu_(Zc)
    assert Y is Zc and Y.dtype == dtype  # rectified in place
    np.testing.assert_array_equal(Y, Y_ref)
    dZ = back(dY)
    np.testing.assert_array_equal(dZ, back_ref(dY))
    assert dZ.dtype == dtype and dY[0, 0] == 1.0


def test_literal_values():
    Z = np.array([-2.0, 0.5, 4.0])
    get = lambda n: activations.get(n)(Z)[0]  # noqa: E731
    np.testing.assert_allclose(get("relu"), [0, 0.5, 4])
    np.testing.assert_allclose(get("leaky_relu"), [-0.4, 0.5, 4])  # Keras 3 slope 0.2
    np.testing.assert_allclose(get("hard_sigmoid"), [1 / 6, 3.5 / 6, 1])  # relu6(x + 3) / 6
    np.testing.assert_allclose(get("elu"), [np.expm1(-2), 0.5, 4])
    np.testing.assert_allclose(get("softsign"), [-2 / 3, 0.5 / 1.5, 0.8])
    np.testing.assert_allclose(activations.softmax(np.array([[0.0, np.log(3)]]))[0], [[0.25, 0.75]])
    np.testing.assert_allclose(activations.erf(np.array([0.3, 1.0, 5.0])),
                               [0.328626759459127, 0.842700792949715, 0.999999999998463],
                               rtol=1e-13)


def _torch_fns():
    import torch
    F = torch.nn.functional
    return {
        "linear": lambda z: z, "relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
        "softmax": lambda z: F.softmax(z, dim=-1), "gelu": F.gelu, "elu": F.elu,
        "selu": F.selu, "leaky_relu": lambda z: F.leaky_relu(z, 0.2), "silu": F.silu,
        "swish": F.silu, "softplus": F.softplus, "softsign": F.softsign,
        "hard_sigmoid": F.hardsigmoid, "hard_silu": F.hardswish, "hard_swish": F.hardswish,
    }


def _reference(fn, Z, dY):
    import torch
    z = torch.tensor(Z, requires_grad=True)
    y = fn(z)
    (y * torch.tensor(dY)).sum().backward()
    return y.detach().numpy(), z.grad.numpy()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_parity(name, dtype):
    pytest.importorskip("torch")
    Z = inputs((6, 9), seed=3, dtype=dtype)
    dY = np.random.default_rng(4).standard_normal(Z.shape).astype(dtype)
    tY, tdZ = _reference(_torch_fns()[name], Z, dY)
    Y, backprop = activations.get(name)(Z)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(Y, tY, rtol=tol * 2, atol=tol)
    # torch's hardsigmoid backward multiplies by the float constant 1.0f / 6.0f even in
    # float64, so its gradient is only float32-accurate.
    gtol = 1e-7 if name in ("hard_sigmoid", "hard_silu", "hard_swish") else tol * 5
    np.testing.assert_allclose(backprop(dY), tdZ, rtol=gtol, atol=gtol)


@pytest.mark.parametrize("name", NAMES)
def test_keras_parity(keras, name):
    Z = inputs((6, 9), seed=5, dtype=np.float32)
    dY = np.random.default_rng(6).standard_normal(Z.shape).astype(np.float32)
    kY, kdZ = _reference(keras.activations.get(name), Z, dY)
    Y, backprop = activations.get(name)(Z)
    np.testing.assert_allclose(Y, kY, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(backprop(dY), kdZ, rtol=1e-5, atol=5e-6)


def test_activation_layer_fused_output_returns_logits():
    layer = make_layer(S.Activation(activation="softmax"), "act", 0)
    layer.build((3,))
    Z = np.array([[1.0, 2.0, 3.0]], np.float32)
    layer.fused_output = True
    Y, backprop = layer.forward(Z, training=True)
    assert Y is Z and backprop(Z) is Z
    mask = np.array([[True]])
    assert layer.compute_mask(Z, mask) is mask

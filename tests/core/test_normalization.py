"""BatchNormalization and LayerNormalization: gradients, shapes, literals, Keras parity."""
from __future__ import annotations


import numpy as np
import pytest

from layerc.core.base import ShapeError
from layerc.core.registry import make_layer
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients


def build(spec, shape, dtype="float64", seed=0):
    layer = make_layer(spec, "norm", seed, dtype)
    layer.build(shape)
    return layer


def randomise(layer, seed=1):
    """Non-trivial weights so gamma/beta/moving statistics all matter."""
    rng = np.random.default_rng(seed)
    for k, W in layer.weights.items():
        lo = 0.5 if k in ("gamma", "moving_variance") else -1.0
        W[...] = rng.uniform(lo, 1.5, W.shape)
    return layer


def keras_run(klayer, X, dY, training, mask=None):
    """Keras output, input gradient and trainable-weight gradients for loss sum(Y * dY)."""
    import torch
    x = torch.tensor(X, requires_grad=True)
    Y = klayer(x, training=training, **({} if mask is None else {"mask": torch.tensor(mask)}))
    (Y * torch.tensor(dY)).sum().backward()
    grads = {w.path.split("/")[-1]: w.value.grad.numpy() for w in klayer.trainable_weights}
    return Y.detach().numpy(), x.grad.numpy(), grads


# -- BatchNormalization -------------------------------------------------------------------

BN_CASES = [
    ({}, (7, 5)),
    ({}, (4, 3, 3, 2)),                   # images (N, H, W, C)
    ({}, (3, 4, 5)),                      # sequences (N, T, F)
    ({"axis": 1}, (4, 3, 5)),             # normalise axis 1 of a sequence
    ({"center": False}, (6, 4)),
    ({"scale": False}, (6, 4)),
    ({"center": False, "scale": False}, (6, 4)),
]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("args,shape", BN_CASES)
def test_batchnorm_gradients(args, shape, training):
    layer = randomise(build(S.BatchNormalization(**args), shape[1:]))
    X = np.random.default_rng(2).standard_normal(shape) * 2 + 0.5
    check_layer_gradients(layer, X, training=training)


def test_batchnorm_masked_gradients():
    layer = randomise(build(S.BatchNormalization(), (5, 3)))
    X = np.random.default_rng(3).standard_normal((4, 5, 3))
    mask = np.ones((4, 5), bool)
    mask[0, 3:] = mask[2, 1:] = False
    check_layer_gradients(layer, X, training=True, mask=mask)


@pytest.mark.parametrize("args,in_shape,keras_counts", [
    # (trainable, non-trainable) as Keras 3.15 reports them
    ({}, (64,), (128, 128)),
    ({}, (8, 8, 64), (128, 128)),
    ({"center": False}, (64,), (64, 128)),
    ({"scale": False}, (64,), (64, 128)),
    ({"axis": 1}, (5, 7), (10, 10)),
])
def test_batchnorm_weights_match_keras(args, in_shape, keras_counts):
    layer = make_layer(S.BatchNormalization(**args), "bn", 0)
    specs = layer.weight_specs(in_shape)
    expected = [n for n, on in (("gamma", args.get("scale", True)),
                                ("beta", args.get("center", True))) if on]
    assert [w.name for w in specs] == expected + ["moving_mean", "moving_variance"]
    trainable = sum(w.size for w in specs if w.trainable)
    frozen = sum(w.size for w in specs if not w.trainable)
    assert (trainable, frozen) == keras_counts
    layer.build(in_shape)
    Y, _ = layer.forward(np.ones((2, *in_shape), np.float32), training=True)
    assert Y.shape[1:] == layer.output_shape(in_shape)
    assert Y.dtype == np.float32 and layer.weights["moving_mean"].dtype == np.float32


def test_batchnorm_shape_errors():
    layer = make_layer(S.BatchNormalization(axis=3), "bn", 0)
    with pytest.raises(ShapeError, match="out of range"):
        layer.output_shape((5, 4))
    with pytest.raises(ShapeError, match="batch axis"):
        make_layer(S.BatchNormalization(axis=0), "bn", 0).output_shape((5,))
    with pytest.raises(ShapeError, match="known size"):
        make_layer(S.BatchNormalization(), "bn", 0).output_shape((None, None))


def test_batchnorm_literal():
    layer = build(S.BatchNormalization(momentum=0.5, epsilon=1.0), (1,))
    # epsilon 1: X = [1, 3] has mean 2, biased variance 1, so x_hat = -+1/sqrt(2).
    layer.weights["gamma"][...] = 2.0
    layer.weights["beta"][...] = 1.0
    Y, _ = layer.forward(np.array([[1.0], [3.0]]), training=True)
    np.testing.assert_allclose(Y[:, 0], [1 - 2 / np.sqrt(2), 1 + 2 / np.sqrt(2)])
    np.testing.assert_allclose(layer.weights["moving_mean"], [0.5 * 0 + 0.5 * 2])
    np.testing.assert_allclose(layer.weights["moving_variance"], [0.5 * 1 + 0.5 * 1])
    # inference: moving mean 1, moving variance 1 (+ eps 1): (x - 1) / sqrt(2) * 2 + 1
    Y, _ = layer.forward(np.array([[5.0]]), training=False)
    np.testing.assert_allclose(Y, [[4 / np.sqrt(2) * 2 + 1]])


def test_batchnorm_masked_statistics():
    layer = build(S.BatchNormalization(momentum=0.0, center=False, scale=False), (2, 1))
    X = np.array([[[1.0], [100.0]], [[3.0], [5.0]]])
    mask = np.array([[True, False], [True, True]])
    layer.forward(X, training=True, mask=mask)
    np.testing.assert_allclose(layer.weights["moving_mean"], [3.0], rtol=1e-6)
    np.testing.assert_allclose(layer.weights["moving_variance"], [8 / 3], rtol=1e-6)
    assert layer.compute_mask(X, mask) is mask


@pytest.mark.parametrize("args,shape,masked", [
    ({}, (8, 6), False),
    ({"momentum": 0.9}, (4, 3, 3, 5), False),
    ({"center": False}, (5, 4, 3), False),
    ({}, (4, 5, 3), True),
])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_keras_parity(keras, args, shape, masked, training):
    layer = randomise(build(S.BatchNormalization(**args), shape[1:], "float32"))
    klayer = keras.layers.BatchNormalization(**args)
    klayer.build((None, *shape[1:]))
    klayer.set_weights([layer.weights[w.name].copy() for w in layer.weight_specs(shape[1:])])
    rng = np.random.default_rng(4)
    X = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    dY = rng.standard_normal(shape).astype(np.float32)
    mask = None
    if masked:
        mask = np.ones(shape[:2], bool)
        mask[1, 2:] = mask[3, 1:] = False
    Y, backprop = layer.forward(X, training=training, mask=mask)
    dX = backprop(dY)
    kY, kdX, kgrads = keras_run(klayer, X, dY, training, mask)
    np.testing.assert_allclose(Y, kY, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dX, kdX, rtol=1e-4, atol=1e-5)
    for name, g in kgrads.items():
        np.testing.assert_allclose(layer.grads[name], g, rtol=1e-4, atol=1e-4, err_msg=name)
    # moving statistics after one call (updated in training only)
    kweights = {w.path.split("/")[-1]: np.asarray(w.numpy()) for w in klayer.weights}
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(layer.weights[name], kweights[name], rtol=1e-6, atol=1e-6,
                                   err_msg=name)


# -- LayerNormalization -------------------------------------------------------------------

LN_CASES = [
    ({}, (4, 6)),
    ({}, (3, 4, 5)),
    ({"axis": 1}, (3, 4, 5)),
    ({"axis": [1, 2]}, (3, 4, 5)),
    ({"axis": [-1, 1]}, (2, 3, 2, 4)),
    ({"center": False}, (3, 2, 5)),
    ({"scale": False}, (3, 2, 5)),
]


@pytest.mark.parametrize("args,shape", LN_CASES)
def test_layernorm_gradients(args, shape):
    layer = randomise(build(S.LayerNormalization(**args), shape[1:]))
    X = np.random.default_rng(5).standard_normal(shape) * 2 + 0.3
    check_layer_gradients(layer, X, training=True)


@pytest.mark.parametrize("args,in_shape,weight_shape", [
    # weight shapes as Keras 3.15 builds them; [-1, 1] sorts to (last, first) there
    ({}, (10, 64), (64,)),
    ({"axis": [1, 2]}, (10, 64), (10, 64)),
    ({"axis": [-1, 1]}, (10, 6, 4), (4, 10)),
])
def test_layernorm_weights_match_keras(args, in_shape, weight_shape):
    layer = make_layer(S.LayerNormalization(**args), "ln", 0)
    specs = layer.weight_specs(in_shape)
    assert [(w.name, w.shape) for w in specs] == [("gamma", weight_shape), ("beta", weight_shape)]
    layer.build(in_shape)
    Y, _ = layer.forward(np.ones((2, *in_shape), np.float32), training=False)
    assert Y.shape[1:] == layer.output_shape(in_shape) and Y.dtype == np.float32


def test_layernorm_shape_errors():
    with pytest.raises(ShapeError, match="out of range"):
        make_layer(S.LayerNormalization(axis=2), "ln", 0).output_shape((5,))
    with pytest.raises(ShapeError, match="twice"):
        make_layer(S.LayerNormalization(axis=[1, -1]), "ln", 0).output_shape((5,))


def test_layernorm_literal():
    layer = build(S.LayerNormalization(epsilon=1.0), (2,))
    layer.weights["gamma"][...] = [2.0, 3.0]
    layer.weights["beta"][...] = [0.5, -0.5]
    # [1, 3]: mean 2, variance 1, x_hat = [-1, 1] / sqrt(2)
    Y, _ = layer.forward(np.array([[1.0, 3.0]]), training=False)
    np.testing.assert_allclose(Y, [[0.5 - 2 / np.sqrt(2), -0.5 + 3 / np.sqrt(2)]])


@pytest.mark.parametrize("args,shape", [
    ({}, (4, 6)),
    ({}, (3, 4, 5)),
    ({"axis": [1, 2]}, (3, 4, 5)),
    ({"axis": [-1, 1]}, (2, 3, 2, 4)),   # non-contiguous: Keras's own broadcasting path
    ({"scale": False}, (3, 2, 5)),
])
def test_layernorm_keras_parity(keras, args, shape):
    layer = randomise(build(S.LayerNormalization(**args), shape[1:], "float32"))
    klayer = keras.layers.LayerNormalization(**args)
    klayer.build((None, *shape[1:]))
    klayer.set_weights([layer.weights[w.name].copy() for w in layer.weight_specs(shape[1:])])
    rng = np.random.default_rng(6)
    X = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    dY = rng.standard_normal(shape).astype(np.float32)
    Y, backprop = layer.forward(X, training=True)
    dX = backprop(dY)
    kY, kdX, kgrads = keras_run(klayer, X, dY, True)
    np.testing.assert_allclose(Y, kY, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dX, kdX, rtol=1e-4, atol=1e-5)
    for name, g in kgrads.items():
        np.testing.assert_allclose(layer.grads[name], g, rtol=1e-4, atol=1e-4, err_msg=name)


def test_layernorm_inner_axis_matches_torch():
    # Keras 3.15's torch backend sends a single non-last axis to F.layer_norm, which
    # normalises the last axis instead, so the reference here is torch's formula.
    torch = pytest.importorskip("torch")
    layer = randomise(build(S.LayerNormalization(axis=1), (4, 5), "float32"))
    rng = np.random.default_rng(7)
    X = rng.standard_normal((3, 4, 5)).astype(np.float32)
    dY = rng.standard_normal((3, 4, 5)).astype(np.float32)
    x = torch.tensor(X, requires_grad=True)
    g = torch.tensor(layer.weights["gamma"], requires_grad=True)
    b = torch.tensor(layer.weights["beta"], requires_grad=True)
    xt = x.transpose(1, 2)
    y = torch.nn.functional.layer_norm(xt, (4,), g, b, 1e-3).transpose(1, 2)
    (y * torch.tensor(dY)).sum().backward()
    Y, backprop = layer.forward(X, training=True)
    dX = backprop(dY)
    np.testing.assert_allclose(Y, y.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dX, x.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.grads["gamma"], g.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.grads["beta"], b.grad.numpy(), rtol=1e-4, atol=1e-4)

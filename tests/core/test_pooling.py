"""Pooling layers: shapes, literal values (Keras's tie routing and same-padding averages),
gradients, Keras parity."""
from __future__ import annotations


import numpy as np
import pytest

from layerc.core import pooling
from layerc.core.base import ShapeError
from layerc.spec import layers as specs
from tests.core.gradcheck import check_layer_gradients


def make(kind, input_shape=None, dtype="float32", **args):
    layer = getattr(pooling, kind)(getattr(specs, kind)(**args), kind.lower(), 0, dtype)
    layer.build(input_shape)
    return layer


def run(layer, X, dY=None, mask=None):
    Y, backprop = layer.forward(X, True, mask)
    return Y, backprop(np.ones_like(Y) if dY is None else dY)


# -- shapes (figures checked against Keras 3.15) --------------------------------------------

SHAPES = [
    ("MaxPooling2D", {}, (26, 26, 32), (13, 13, 32)),
    ("MaxPooling2D", {}, (11, 11, 64), (5, 5, 64)),
    ("MaxPooling2D", dict(pool_size=3, strides=2, padding="same"), (5, 5, 1), (3, 3, 1)),
    ("MaxPooling2D", dict(pool_size=(3, 2), strides=(2, 3)), (8, 9, 2), (3, 3, 2)),
    ("AveragePooling2D", dict(padding="same"), (5, 5, 1), (3, 3, 1)),
    ("AveragePooling2D", dict(pool_size=(2, 3), strides=(1, 2), padding="same"), (5, 7, 2), (5, 4, 2)),
    ("MaxPooling1D", {}, (9, 3), (4, 3)),
    ("MaxPooling1D", dict(pool_size=3, strides=1, padding="same"), (6, 4), (6, 4)),
    ("GlobalAveragePooling2D", {}, (5, 4, 3), (3,)),
    ("GlobalAveragePooling2D", dict(keepdims=True), (5, 4, 3), (1, 1, 3)),
    ("GlobalMaxPooling2D", dict(keepdims=True), (5, 4, 3), (1, 1, 3)),
    ("GlobalAveragePooling1D", {}, (6, 3), (3,)),
    ("GlobalAveragePooling1D", dict(keepdims=True), (6, 3), (1, 3)),
]


@pytest.mark.parametrize("kind,args,input_shape,expected", SHAPES)
def test_output_shape_matches_keras_and_forward(kind, args, input_shape, expected):
    layer = make(kind, input_shape, **args)
    assert layer.output_shape(input_shape) == expected
    assert layer.weight_specs(input_shape) == []
    Y, dX = run(layer, np.random.default_rng(0).standard_normal((2, *input_shape)).astype(np.float32))
    assert Y.shape == (2, *expected) and Y.dtype == np.float32
    assert dX.shape == (2, *input_shape) and dX.dtype == np.float32


def test_unknown_steps_stay_unknown():
    assert make("MaxPooling1D", pool_size=3, strides=1, padding="same").output_shape((None, 4)) == (None, 4)
    assert make("GlobalAveragePooling1D").output_shape((None, 4)) == (4,)


def test_shape_errors_are_helpful():
    with pytest.raises(ShapeError) as e:
        make("MaxPooling2D").output_shape((784,))
    assert "3-D input" in e.value.message and "Reshape" in e.value.hint
    with pytest.raises(ShapeError) as e:
        make("MaxPooling2D", pool_size=3).output_shape((2, 8, 1))
    assert "larger than its input" in e.value.message and "same" in e.value.hint
    with pytest.raises(ShapeError) as e:
        make("GlobalAveragePooling2D").output_shape((10, 3))
    assert "1-D or 2-D variant" in e.value.hint
    with pytest.raises(ShapeError):
        make("MaxPooling1D").output_shape((4, 4, 1))


@pytest.mark.parametrize("kind", ["MaxPooling1D", "GlobalAveragePooling1D"])
def test_masks_are_dropped(kind):
    assert make(kind).compute_mask(np.zeros((1, 4, 2)), np.ones((1, 4), bool)) is None


# -- literal values ---------------------------------------------------------------------

def test_average_same_divides_by_real_elements_like_keras():
    X = np.arange(1, 26, dtype=np.float32).reshape(1, 5, 5, 1)
    Y, _ = run(make("AveragePooling2D", padding="same"), X)
    np.testing.assert_allclose(Y[0, :, :, 0], [[4, 6, 7.5], [14, 16, 17.5], [21.5, 23.5, 25]])
    Y, dX = run(make("AveragePooling2D", pool_size=3, strides=2, padding="same"), X)
    np.testing.assert_allclose(Y[0, :, :, 0], [[4, 5.5, 7], [11.5, 13, 14.5], [19, 20.5, 22]])
    # corner window has 4 real elements, so each gets 1/4 from it
    assert dX[0, 0, 0, 0] == np.float32(0.25)


def test_max_ties_route_to_first_element_like_keras():
    _, dX = run(make("MaxPooling2D"), np.ones((1, 4, 4, 1), np.float32))
    np.testing.assert_array_equal(dX[0, :, :, 0], [[1, 0, 1, 0], [0, 0, 0, 0],
                                                   [1, 0, 1, 0], [0, 0, 0, 0]])
    _, dX = run(make("MaxPooling2D", pool_size=3, strides=2, padding="same"), np.ones((1, 5, 5, 1), np.float32))
    np.testing.assert_array_equal(dX[0, :, :, 0], [[1, 1, 0, 1, 0], [1, 1, 0, 1, 0], [0, 0, 0, 0, 0],
                                                   [1, 1, 0, 1, 0], [0, 0, 0, 0, 0]])
    _, dX = run(make("MaxPooling2D", pool_size=2, strides=1), np.ones((1, 4, 4, 1), np.float32))
    np.testing.assert_array_equal(dX[0, :, :, 0], [[1, 1, 1, 0], [1, 1, 1, 0],
                                                   [1, 1, 1, 0], [0, 0, 0, 0]])


def test_max_pool_literal_and_odd_edge_is_dropped():
    X = np.array([[1, 5, 2], [3, 4, 9], [7, 8, 6]], np.float32).reshape(1, 3, 3, 1)
    Y, dX = run(make("MaxPooling2D"), X, dY=np.full((1, 1, 1, 1), 2, np.float32))
    assert Y.ravel().tolist() == [5]
    np.testing.assert_array_equal(dX[0, :, :, 0], [[0, 2, 0], [0, 0, 0], [0, 0, 0]])


@pytest.mark.parametrize("args,shape", [
    ({}, (3, 11, 11, 4)),  # the seed CNN's second pool: odd edge, dX there must be zero
    ({}, (3, 8, 6, 4)),  # windows tile the input exactly
    (dict(pool_size=3, strides=1), (2, 6, 5, 3)),  # overlapping windows
    (dict(pool_size=(1, 3), strides=(1, 2), padding="same"), (2, 4, 7, 3)),
])
def test_max_backprop_after_inference_forward_equals_training(args, shape):
    # inference keeps nothing for backward; a backprop after it recomputes the winners
    rng = np.random.default_rng(5)
    X = np.maximum(rng.integers(-2, 3, shape), 0).astype(np.float32)  # many ties, all-zero windows
    layer = make("MaxPooling2D", **args)
    Y_train, back_train = layer.forward(X, True)
    Y_infer, back_infer = layer.forward(X, False)
    np.testing.assert_array_equal(Y_train, Y_infer)
    dY = rng.standard_normal(Y_train.shape).astype(np.float32)
    dX = back_train(dY)
    np.testing.assert_array_equal(dX, back_infer(dY))
    # every window routes its gradient to exactly one element, the first maximum
    assert np.isclose(dX.sum(), dY.sum(), rtol=1e-5)
    if args == {} and shape[1] % 2:
        assert not dX[:, -1].any() and not dX[:, :, -1].any()


def test_global_max_ties_share_gradient_like_keras():
    _, dX = run(make("GlobalMaxPooling2D"), np.ones((1, 2, 2, 1), np.float32))
    np.testing.assert_array_equal(dX.ravel(), [0.25] * 4)


def test_global_average_1d_mask():
    X = np.arange(12, dtype=np.float32).reshape(1, 4, 3)
    mask = np.array([[True, True, False, False]])
    Y, dX = run(make("GlobalAveragePooling1D"), X, mask=mask)
    np.testing.assert_allclose(Y, [[1.5, 2.5, 3.5]])  # Keras's figure
    np.testing.assert_allclose(dX[0], [[0.5] * 3, [0.5] * 3, [0] * 3, [0] * 3])
    Y, _ = run(make("GlobalAveragePooling1D"), X, mask=np.zeros((1, 4), bool))
    np.testing.assert_array_equal(Y, 0)  # Keras gives NaN here



@pytest.mark.parametrize("dtype, tol", [("float64", 1e-13), ("float32", 2e-6)])
@pytest.mark.parametrize("shape, keepdims", [((7, 5), False), ((1, 3), True), ((64, 64), False)])
def test_global_average_1d_unmasked_product_is_the_mean(dtype, tol, shape, keepdims):
    """Without a mask the sum over steps is one product with a row of ones: the mean
    over axis 1 (odd sizes, one step, keepdims, float32 and float64; a transposed,
    non-contiguous input too); the gradient is unchanged (dY / steps at every step)."""
    rng = np.random.default_rng(21)
    layer = make("GlobalAveragePooling1D", shape, dtype, keepdims=keepdims)
    for X in (rng.standard_normal((4, *shape)).astype(dtype),
              rng.standard_normal((4, shape[1], shape[0])).astype(dtype).transpose(0, 2, 1)):
        Y, back = layer.forward(X, False)
        expected = X.astype(np.float64).mean(axis=1, keepdims=keepdims)
        assert Y.dtype == X.dtype and Y.shape == expected.shape
        np.testing.assert_allclose(Y, expected, rtol=tol, atol=tol)
        dY = rng.standard_normal(Y.shape).astype(dtype)
        np.testing.assert_allclose(back(dY), np.broadcast_to(dY.reshape(4, 1, -1) / shape[0], X.shape),
                                   rtol=1e-6)

# -- float64 finite-difference gradients (never skipped) ---------------------------------

GRAD_CASES = [
    ("MaxPooling2D", {}, (6, 6, 2)),
    ("MaxPooling2D", {}, (5, 7, 2)),
    ("MaxPooling2D", dict(pool_size=3, strides=2, padding="same"), (6, 5, 2)),
    ("MaxPooling2D", dict(pool_size=(2, 3), strides=1), (4, 5, 2)),
    ("MaxPooling2D", dict(pool_size=2, strides=3), (7, 7, 1)),
    ("AveragePooling2D", {}, (5, 6, 2)),
    ("AveragePooling2D", dict(pool_size=3, strides=2, padding="same"), (6, 5, 2)),
    ("AveragePooling2D", dict(pool_size=(2, 3), strides=(1, 2), padding="same"), (5, 7, 2)),
    ("MaxPooling1D", {}, (7, 3)),
    ("MaxPooling1D", dict(pool_size=3, strides=1, padding="same"), (6, 3)),
    ("GlobalAveragePooling2D", {}, (3, 4, 2)),
    ("GlobalAveragePooling2D", dict(keepdims=True), (3, 4, 2)),
    ("GlobalMaxPooling2D", {}, (3, 4, 2)),
    ("GlobalMaxPooling2D", dict(keepdims=True), (3, 4, 2)),
    ("GlobalAveragePooling1D", {}, (5, 3)),
    ("GlobalAveragePooling1D", dict(keepdims=True), (5, 3)),
]


@pytest.mark.parametrize("kind,args,input_shape", GRAD_CASES)
def test_gradients(kind, args, input_shape):
    layer = make(kind, input_shape, "float64", **args)
    # distinct values well apart, so no finite-difference step changes a window's maximum
    X = np.random.default_rng(1).permutation(2 * int(np.prod(input_shape))).reshape(2, *input_shape)
    check_layer_gradients(layer, X / 10.0)


def test_gradients_global_average_1d_masked():
    layer = make("GlobalAveragePooling1D", (5, 3), "float64")
    mask = np.array([[True, True, True, False, False], [True, False, True, True, True]])
    check_layer_gradients(layer, np.random.default_rng(2).standard_normal((2, 5, 3)), mask=mask)


# -- parity with Keras 3 (torch backend, autograd for the gradients) ----------------------


PARITY_CASES = [
    ("MaxPooling2D", {}, (12, 12, 4)),
    ("MaxPooling2D", {}, (11, 9, 4)),
    ("MaxPooling2D", dict(pool_size=3, strides=2, padding="same"), (9, 10, 3)),
    ("MaxPooling2D", dict(pool_size=(3, 2), strides=(1, 2), padding="same"), (7, 8, 3)),
    ("MaxPooling2D", dict(pool_size=2, strides=1), (6, 7, 3)),
    ("AveragePooling2D", {}, (11, 9, 4)),
    ("AveragePooling2D", dict(pool_size=3, strides=2, padding="same"), (9, 9, 3)),  # pads (1, 1)
    ("MaxPooling1D", {}, (11, 3)),
    ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same"), (11, 3)),
    ("GlobalAveragePooling2D", {}, (5, 6, 3)),
    ("GlobalMaxPooling2D", dict(keepdims=True), (5, 6, 3)),
    ("GlobalAveragePooling1D", dict(keepdims=True), (7, 3)),
]


@pytest.mark.parametrize("kind,args,input_shape", PARITY_CASES)
def test_parity_with_keras(keras, kind, args, input_shape):
    import torch

    rng = np.random.default_rng(5)
    # ReLU-like input with coarse values: many tied maxima, including all-zero windows
    X = np.maximum(np.round(rng.standard_normal((3, *input_shape)), 1), 0).astype(np.float32)
    Y, backprop = make(kind, input_shape, **args).forward(X, True)
    dY = rng.standard_normal(Y.shape).astype(np.float32)
    dX = backprop(dY)
    tX = torch.tensor(X, requires_grad=True)
    if kind == "AveragePooling2D":  # required in Keras 3; the spec defaults it to 2
        args = {"pool_size": 2, **args}
    tY = getattr(keras.layers, kind)(**args)(tX)
    (tY * torch.tensor(dY)).sum().backward()
    np.testing.assert_allclose(Y, tY.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dX, tX.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_parity_global_average_1d_mask_with_keras(keras):
    import torch

    rng = np.random.default_rng(6)
    X = rng.standard_normal((3, 6, 4)).astype(np.float32)
    mask = rng.random((3, 6)) > 0.4
    mask[:, 0] = True
    Y, backprop = make("GlobalAveragePooling1D").forward(X, True, mask)
    dY = rng.standard_normal(Y.shape).astype(np.float32)
    dX = backprop(dY)
    tX = torch.tensor(X, requires_grad=True)
    tY = keras.layers.GlobalAveragePooling1D()(tX, mask=torch.tensor(mask))
    (tY * torch.tensor(dY)).sum().backward()
    np.testing.assert_allclose(Y, tY.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dX, tX.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("args,input_shape", [
    (dict(pool_size=3, strides=2, padding="same"), (9, 10, 3)),
    (dict(pool_size=(2, 3), strides=(1, 2), padding="same"), (7, 8, 3)),
])
def test_average_same_with_uneven_padding_matches_tf_and_jax(args, input_shape):
    """With uneven 'same' padding Keras's torch backend pads by replicating edges (so it
    averages copies of them); the TF and JAX backends divide the window sum by its count of
    real elements (keras/src/backend/jax/nn.py: pooled / window_counts). We follow TF/JAX;
    the reference here is that formula, in torch."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(8)
    X = rng.standard_normal((2, *input_shape)).astype(np.float32)
    Y, backprop = make("AveragePooling2D", input_shape, **args).forward(X, True)
    dY = rng.standard_normal(Y.shape).astype(np.float32)
    dX = backprop(dY)
    pool, strides = specs.pair(args["pool_size"]), specs.pair(args["strides"])
    pads = []
    for n, k, st in zip(input_shape[1::-1], pool[::-1], strides[::-1]):  # torch: last axis first
        total = max((-(-n // st) - 1) * st + k - n, 0)
        pads += [total // 2, total - total // 2]
    tX = torch.tensor(X, requires_grad=True)

    def window_sums(A):
        return F.avg_pool2d(F.pad(A.permute(0, 3, 1, 2), pads), pool, strides, divisor_override=1)

    tY = (window_sums(tX) / window_sums(torch.ones_like(tX))).permute(0, 2, 3, 1)
    (tY * torch.tensor(dY)).sum().backward()
    np.testing.assert_allclose(Y, tY.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dX, tX.grad.numpy(), rtol=1e-5, atol=1e-6)

"""Add and Concatenate: list inputs, gradients, shape errors, Keras mask semantics."""
from __future__ import annotations


import numpy as np
import pytest

from layerc.core.base import ShapeError
from layerc.core.registry import make_layer
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients


def build(spec, shapes, dtype="float64"):
    layer = make_layer(spec, "m", 0, dtype)
    layer.build(shapes)
    return layer


def rand(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


# -- Add ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shapes", [[(2, 3), (2, 3)], [(2, 4, 3)] * 3])
def test_add_gradients_and_shape(shapes):
    layer = build(S.Add(), [s[1:] for s in shapes])
    assert layer.multi_input
    Xs = rand(*shapes)
    Y, backprop = layer.forward(Xs, training=False)
    np.testing.assert_allclose(Y, sum(Xs))
    assert Y.shape[1:] == layer.output_shape([s[1:] for s in shapes])
    dXs = backprop(np.ones_like(Y))
    assert isinstance(dXs, list) and len(dXs) == len(Xs)
    check_layer_gradients(layer, Xs)


def test_add_literal_and_float32():
    layer = build(S.Add(), [(2,), (2,)], "float32")
    Y, _ = layer.forward([np.array([[1, 2]], np.float32), np.array([[10, 20]], np.float32)], True)
    np.testing.assert_array_equal(Y, [[11, 22]])
    assert Y.dtype == np.float32


def test_add_shape_errors():
    layer = make_layer(S.Add(), "m", 0)
    assert layer.output_shape([(None, 4), (7, 4)]) == (7, 4)
    with pytest.raises(ShapeError, match=r"same shape, got \(3, 4\), \(3, 5\)"):
        layer.output_shape([(3, 4), (3, 5)])
    with pytest.raises(ShapeError, match=r"same shape, got \(4,\), \(2, 2\)"):
        layer.output_shape([(4,), (2, 2)])
    with pytest.raises(ShapeError, match="at least 2 inputs"):
        layer.output_shape([(4,)])
    with pytest.raises(ShapeError, match="same shape"):
        layer.forward([np.zeros((1, 3)), np.zeros((1, 4))], False)


def test_add_masks_follow_keras(keras):
    a = np.array([[True, False, False]])
    b = np.array([[True, True, False]])
    Xs = [np.zeros((1, 3, 2))] * 2
    layer = make_layer(S.Add(), "m", 0)
    klayer = keras.layers.Add()
    for masks in ([a, b], [a, None], [None, None], None):
        ours = layer.compute_mask(Xs, masks)
        theirs = klayer.compute_mask(Xs, masks)
        if theirs is None:
            assert ours is None, masks
        else:
            np.testing.assert_array_equal(ours, keras.ops.convert_to_numpy(theirs))
    # Keras 3 (>= 3.4): the union of the masks, unmasked once any input is unmasked
    np.testing.assert_array_equal(layer.compute_mask(Xs, [a, b]), a | b)


# -- Concatenate --------------------------------------------------------------------------

CONCAT = [
    (-1, [(2, 3), (2, 4)]),
    (1, [(2, 3, 2), (2, 1, 2), (2, 2, 2)]),
    (2, [(2, 3, 2), (2, 3, 5)]),
    (-2, [(2, 2, 3, 1), (2, 2, 1, 1)]),
]


@pytest.mark.parametrize("axis,shapes", CONCAT)
def test_concatenate_gradients_and_shape(axis, shapes):
    layer = build(S.Concatenate(axis=axis), [s[1:] for s in shapes])
    assert layer.multi_input
    Xs = rand(*shapes)
    Y, _ = layer.forward(Xs, training=False)
    np.testing.assert_array_equal(Y, np.concatenate(Xs, axis=axis))
    assert Y.shape[1:] == layer.output_shape([s[1:] for s in shapes])
    check_layer_gradients(layer, Xs)


@pytest.mark.parametrize("axis,shapes", CONCAT)
def test_concatenate_keras_parity(keras, axis, shapes):
    import torch
    Xs = [x.astype(np.float32) for x in rand(*shapes, seed=3)]
    layer = build(S.Concatenate(axis=axis), [s[1:] for s in shapes], "float32")
    klayer = keras.layers.Concatenate(axis=axis)
    assert klayer.compute_output_shape([(None, *s[1:]) for s in shapes])[1:] == \
        layer.output_shape([s[1:] for s in shapes])
    ts = [torch.tensor(x, requires_grad=True) for x in Xs]
    kY = klayer(ts)
    dY = np.random.default_rng(4).standard_normal(kY.shape).astype(np.float32)
    (kY * torch.tensor(dY)).sum().backward()
    Y, backprop = layer.forward(Xs, training=True)
    np.testing.assert_array_equal(Y, kY.detach().numpy())
    for dX, t in zip(backprop(dY), ts):
        np.testing.assert_array_equal(dX, t.grad.numpy())


def test_concatenate_shape_errors():
    layer = make_layer(S.Concatenate(), "m", 0)
    assert layer.output_shape([(None, 3), (None, 4)]) == (None, 7)
    assert layer.output_shape([(5, None), (5, 4)]) == (5, None)
    with pytest.raises(ShapeError, match=r"other dimensions match, got \(3, 4\), \(5, 4\)"):
        layer.output_shape([(3, 4), (5, 4)])
    with pytest.raises(ShapeError, match="same rank"):
        layer.output_shape([(3, 4), (3,)])
    with pytest.raises(ShapeError, match="non-batch axis"):
        make_layer(S.Concatenate(axis=0), "m", 0).output_shape([(3,), (4,)])
    with pytest.raises(ShapeError, match="non-batch axis"):
        make_layer(S.Concatenate(axis=3), "m", 0).output_shape([(3,), (4,)])
    with pytest.raises(ShapeError, match="other dimensions match"):
        layer.forward([np.zeros((1, 2, 3)), np.zeros((1, 3, 3))], False)


@pytest.mark.parametrize("axis", [-1, 1])
def test_concatenate_masks_follow_keras(keras, axis):
    Xs = [np.zeros((2, 3, 2)), np.zeros((2, 3, 4))] if axis == -1 else \
        [np.zeros((2, 3, 2)), np.zeros((2, 2, 2))]
    a = np.array([[True, True, False], [True, False, False]])
    b = np.array([[True, False, False], [False, False, False]])[:, :Xs[1].shape[1]]
    layer = make_layer(S.Concatenate(axis=axis), "m", 0)
    klayer = keras.layers.Concatenate(axis=axis)
    for masks in ([a, b], [a, None], [None, b], [None, None]):
        ours = layer.compute_mask(Xs, masks)
        theirs = klayer.compute_mask(Xs, masks)
        if theirs is None:
            assert ours is None
        else:
            np.testing.assert_array_equal(ours, keras.ops.convert_to_numpy(theirs))

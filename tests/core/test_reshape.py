"""Flatten and Reshape: shapes, gradients, errors, masks."""
from __future__ import annotations

import numpy as np
import pytest

from layerc.core.base import ShapeError
from layerc.core.registry import make_layer
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients


def build(spec, shape, dtype="float64"):
    layer = make_layer(spec, "r", 0, dtype)
    layer.build(shape)
    return layer


@pytest.mark.parametrize("spec,in_shape,out_shape", [
    (S.Flatten(), (3, 4, 5), (60,)),
    (S.Flatten(), (7,), (7,)),
    (S.Reshape(target_shape=[28, 28, 1]), (784,), (28, 28, 1)),
    (S.Reshape(target_shape=[-1, 4]), (3, 4, 5), (15, 4)),
    (S.Reshape(target_shape=[2, -1]), (6,), (2, 3)),
])
def test_shapes_and_gradients(spec, in_shape, out_shape):
    layer = build(spec, in_shape)
    assert layer.output_shape(in_shape) == out_shape
    assert layer.weight_specs(in_shape) == []  # Keras: 0 parameters
    X = np.random.default_rng(0).standard_normal((2, *in_shape))
    Y, _ = layer.forward(X, training=False)
    assert Y.shape == (2, *out_shape)
    np.testing.assert_array_equal(Y.ravel(), X.ravel())  # row-major, as Keras
    check_layer_gradients(layer, X)


def test_unknown_sizes():
    assert make_layer(S.Flatten(), "f", 0).output_shape((None, 8)) == (None,)
    reshape = make_layer(S.Reshape(target_shape=[-1, 4]), "r", 0)
    assert reshape.output_shape((None, 8)) == (None, 4)
    layer = build(S.Reshape(target_shape=[-1, 4]), (None, 8))
    assert layer.forward(np.zeros((3, 5, 8)), False)[0].shape == (3, 10, 4)


def test_reshape_size_mismatch_names_both_sizes():
    layer = make_layer(S.Reshape(target_shape=[5, 5]), "r", 0)
    with pytest.raises(ShapeError, match=r"holds 25 values but the input shape \(784,\) holds 784"):
        layer.output_shape((784,))
    with pytest.raises(ShapeError, match="784 values.*not a multiple of 5"):
        make_layer(S.Reshape(target_shape=[-1, 5]), "r", 0).output_shape((784,))
    layer = build(S.Reshape(target_shape=[-1, 3]), (None,))
    with pytest.raises(ShapeError, match="not a multiple of 3"):
        layer.forward(np.zeros((2, 4)), False)


def test_float32_views_and_no_mask():
    X = np.zeros((2, 3, 4), np.float32)
    for spec in (S.Flatten(), S.Reshape(target_shape=[4, 3])):
        layer = build(spec, (3, 4), "float32")
        Y, backprop = layer.forward(X, training=True)
        assert Y.dtype == np.float32 and np.shares_memory(Y, X)
        assert backprop(Y).shape == X.shape
        assert layer.compute_mask(X, np.ones((2, 3), bool)) is None

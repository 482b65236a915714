"""Embedding: weight gradient, lookup, masks, index errors, Keras parity."""
from __future__ import annotations

import os

import numpy as np
import pytest

from layerc.core.base import ShapeError
from layerc.core.registry import make_layer
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients


def build(spec, shape, dtype="float64", seed=0):
    layer = make_layer(spec, "emb", seed, dtype)
    layer.build(shape)
    return layer


def test_weight_gradient_with_repeated_tokens():
    layer = build(S.Embedding(input_dim=7, output_dim=3), (5,))
    X = np.array([[1, 2, 2, 0, 6], [6, 6, 6, 3, 1]])
    assert check_layer_gradients(layer, X, training=True) > 0


def test_backprop_returns_no_input_gradient():
    layer = build(S.Embedding(input_dim=4, output_dim=2), (3,))
    Y, backprop = layer.forward(np.array([[0, 1, 3]]), training=True)
    assert backprop(np.ones_like(Y)) is None


def test_literal_lookup_and_gradient():
    layer = build(S.Embedding(input_dim=3, output_dim=2), (3,))
    layer.weights["embeddings"][...] = [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    Y, backprop = layer.forward(np.array([[2, 0, 2]]), training=True)
    np.testing.assert_array_equal(Y, [[[4, 5], [0, 1], [4, 5]]])
    backprop(np.array([[[1.0, 1.0], [10.0, 20.0], [2.0, 3.0]]]))
    np.testing.assert_array_equal(layer.grads["embeddings"], [[10, 20], [0, 0], [3, 4]])


def test_weights_and_shapes_match_keras():
    layer = make_layer(S.Embedding(input_dim=5000, output_dim=64), "emb", 0)
    specs = layer.weight_specs((80,))
    # Keras 3.15: one weight `embeddings` (5000, 64), 320,000 parameters
    assert [(w.name, w.shape, w.size) for w in specs] == [("embeddings", (5000, 64), 320000)]
    assert specs[0].initializer == "uniform"
    assert layer.output_shape((80,)) == (80, 64)
    assert layer.output_shape((None,)) == (None, 64)
    layer.build((80,))
    E = layer.weights["embeddings"]
    assert E.dtype == np.float32 and E.min() >= -0.05 and E.max() <= 0.05
    Y, _ = layer.forward(np.zeros((2, 80), np.int64), training=False)
    assert Y.shape == (2, 80, 64) and Y.dtype == np.float32


def test_output_shape_needs_1d_input():
    layer = make_layer(S.Embedding(input_dim=10, output_dim=4), "emb", 0)
    with pytest.raises(ShapeError, match=r"1-D input .* got shape \(28, 28\)"):
        layer.output_shape((28, 28))


def test_out_of_range_index_is_a_clear_error():
    layer = build(S.Embedding(input_dim=10, output_dim=4), (3,))
    with pytest.raises(ValueError, match=r"index 12 at position \(1, 2\).*0\.\.9"):
        layer.forward(np.array([[1, 2, 3], [4, 5, 12]]), training=False)
    with pytest.raises(ValueError, match="index -1"):
        layer.forward(np.array([[-1, 2, 3]]), training=False)


def test_mask_zero():
    X = np.array([[3, 1, 0, 0], [2, 0, 0, 0]])
    masked = build(S.Embedding(input_dim=4, output_dim=2, mask_zero=True), (4,))
    np.testing.assert_array_equal(masked.compute_mask(X, None), X != 0)
    plain = build(S.Embedding(input_dim=4, output_dim=2), (4,))
    assert plain.compute_mask(X, None) is None


def test_float_token_ids_are_cast_like_keras():
    layer = build(S.Embedding(input_dim=4, output_dim=2), (2,))
    Y, _ = layer.forward(np.array([[1.0, 3.0]]), training=False)
    np.testing.assert_array_equal(Y, layer.weights["embeddings"][[[1, 3]]])


def test_keras_parity():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    torch = pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    layer = build(S.Embedding(input_dim=50, output_dim=8), (12,), "float32")
    klayer = keras.layers.Embedding(50, 8)
    klayer.build((None, 12))
    klayer.set_weights([layer.weights["embeddings"]])
    rng = np.random.default_rng(0)
    X = rng.integers(0, 50, (6, 12))
    X[:, :3] = 7  # repeated tokens
    dY = rng.standard_normal((6, 12, 8)).astype(np.float32)
    Y, backprop = layer.forward(X, training=True)
    backprop(dY)
    kY = klayer(torch.tensor(X), training=True)
    (kY * torch.tensor(dY)).sum().backward()
    np.testing.assert_allclose(Y, kY.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(layer.grads["embeddings"], klayer.embeddings.value.grad.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_time_major_gradient_equals_batch_major():
    """A transposed (time-major) dY, as recurrent layers return, gives the same gradient."""
    layer = build(S.Embedding(input_dim=9, output_dim=4), (6,))
    X = np.random.default_rng(0).integers(0, 9, (5, 6))
    dY = np.random.default_rng(1).standard_normal((6, 5, 4)).transpose(1, 0, 2)
    _, backprop = layer.forward(X, training=True)
    backprop(dY)
    got = layer.grads["embeddings"].copy()
    backprop(np.ascontiguousarray(dY))
    np.testing.assert_allclose(got, layer.grads["embeddings"], rtol=1e-12, atol=1e-12)

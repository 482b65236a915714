"""Dropout: gradients with a fixed mask, scaling, noise_shape, inference identity."""
from __future__ import annotations

import os

import numpy as np
import pytest

from layerc.core.base import ShapeError
from layerc.core.registry import make_layer
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients


def build(spec, shape, dtype="float64", seed=0):
    layer = make_layer(spec, "drop", seed, dtype)
    layer.build(shape)
    return layer


@pytest.mark.parametrize("args,shape", [
    ({"rate": 0.5}, (4, 6)),
    ({"rate": 0.3}, (3, 4, 5)),
    ({"rate": 0.5, "noise_shape": [1, None]}, (3, 4, 5)),
    ({"rate": 0.5, "noise_shape": [None, 1]}, (3, 4, 5)),
    ({"rate": 0.0}, (3, 4)),
])
@pytest.mark.parametrize("training", [True, False])
def test_gradients(args, shape, training):
    layer = build(S.Dropout(**args), shape[1:])
    X = np.random.default_rng(0).standard_normal(shape)
    check_layer_gradients(layer, X, training=training)


def test_training_scales_kept_units_and_drops_the_rest():
    layer = build(S.Dropout(rate=0.25), (1000,), "float32")
    X = np.ones((20, 1000), np.float32)
    Y, backprop = layer.forward(X, training=True)
    assert Y.dtype == np.float32 and Y.shape == X.shape
    kept = Y != 0
    np.testing.assert_array_equal(Y[kept], np.float32(1 / 0.75))
    assert abs(kept.mean() - 0.75) < 0.01
    dX = backprop(np.full_like(X, 2))
    np.testing.assert_array_equal(dX, np.where(kept, np.float32(2 / 0.75), 0))


def test_inference_is_identity():
    layer = build(S.Dropout(rate=0.9), (5,))
    X = np.random.default_rng(1).standard_normal((3, 5))
    Y, backprop = layer.forward(X, training=False)
    assert Y is X
    dY = np.ones_like(X)
    assert backprop(dY) is dY


def test_noise_shape_shares_the_mask():
    layer = build(S.Dropout(rate=0.5, noise_shape=[1, None]), (7, 50), "float32")
    X = np.ones((4, 7, 50), np.float32)
    Y, _ = layer.forward(X, training=True)
    # one mask per sample and feature, shared over the 7 steps
    assert (Y == Y[:, :1, :]).all()
    assert 0 < (Y == 0).mean() < 1
    assert not (Y[0] == Y[1]).all()  # but drawn per sample


def test_mask_comes_from_the_layer_rng():
    a, b = (build(S.Dropout(rate=0.5), (30,), seed=7) for _ in range(2))
    X = np.ones((5, 30))
    np.testing.assert_array_equal(a.forward(X, True)[0], b.forward(X, True)[0])
    c = build(S.Dropout(rate=0.5), (30,), seed=8)
    assert not (a.forward(X, True)[0] == c.forward(X, True)[0]).all()


def test_masks_pass_through():
    layer = build(S.Dropout(rate=0.5), (4, 3))
    mask = np.array([[True, True, False, False]])
    assert layer.compute_mask(np.ones((1, 4, 3)), mask) is mask


def test_output_shape_and_errors():
    assert make_layer(S.Dropout(rate=0.5), "d", 0).output_shape((None, 8)) == (None, 8)
    layer = make_layer(S.Dropout(rate=0.5, noise_shape=[1, 4]), "d", 0)
    assert layer.output_shape((None, 4)) == (None, 4)
    with pytest.raises(ShapeError, match="2 dimensions but the input shape"):
        layer.output_shape((4, 2, 4))
    assert layer.output_shape((4,)) == (4,)  # [1, 4] for a vector: Keras's form, batch axis first
    with pytest.raises(ShapeError, match="does not broadcast"):
        layer.output_shape((3, 5))


def test_keras_statistics_match():
    """Keras's Dropout draws differ (its own generator) but keep the same law and scale."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    X = np.ones((200, 100), np.float32)
    kY = keras.ops.convert_to_numpy(keras.layers.Dropout(0.4, seed=1)(X, training=True))
    Y, _ = build(S.Dropout(rate=0.4), (100,), "float32").forward(X, training=True)
    np.testing.assert_allclose(np.unique(Y), np.unique(kY), rtol=1e-6)
    assert abs((Y == 0).mean() - (kY == 0).mean()) < 0.02

"""The transformer block's fused paths against the plain ones (float64): an Add computing
the LayerNormalization that alone consumes it (the residual block), for two and three
addends, over the last axis and over other axes, with and without gamma and beta, in
training and inference, with masks; Dense's bias and rectifier on rows of k * units
values."""
from __future__ import annotations

import numpy as np
import pytest

import layerc
from layerc.core.registry import make_layer
from layerc.spec import layers as S
from layerc.spec import parse_spec
from tests.core.gradcheck import check_layer_gradients

BLOCK = """
dtype: float64
input: {shape: [5, 6]}
layers:
  - MultiHeadAttention: {num_heads: 2, key_dim: 3, name: attention}
  - Add: {inputs: [input_layer, attention], name: add}
  - LayerNormalization: {name: ln1}
  - Dense: {units: 7, activation: relu, name: ff1}
  - Dense: {units: 6, name: ff2}
  - Add: {inputs: [ln1, ff2, input_layer], name: add3}
  - LayerNormalization: {name: ln2, center: false}
  - Dense: {units: 6, name: side}
  - Add: {inputs: [ln2, side], name: add_axes}
  - LayerNormalization: {name: ln3, axis: [1, 2], scale: false}
  - Add: {inputs: [ln3, ln2], name: shared}
  - LayerNormalization: {name: ln4}
  - Add: {inputs: [shared, ln4, ln1], name: out_add}
  - LayerNormalization: {name: out_ln}
  - GlobalAveragePooling1D: {name: pool}
  - Dense: {units: 3, name: head}
"""
# (`shared` feeds ln4 and out_add: ln4 stays a layer of its own.)

MASKED = """
dtype: float64
input: {shape: [6], dtype: int32}
layers:
  - Embedding: {input_dim: 9, output_dim: 4, mask_zero: true, name: emb}
  - MultiHeadAttention: {num_heads: 2, key_dim: 2, name: attention}
  - Add: {inputs: [emb, attention], name: add}
  - LayerNormalization: {name: ln}
  - GlobalAveragePooling1D: {}
  - Dense: {units: 1}
"""


def models(spec):
    """The model of `spec` (folds on) and the same model with every fold undone, same weights
    (gamma and beta away from 1 and 0)."""
    fast, plain = layerc.build(parse_spec(spec)), layerc.build(parse_spec(spec))
    fast.build()
    rng = np.random.default_rng(0)
    for node in fast.nodes:
        for name, w in node.layer.weights.items():
            w[...] = rng.uniform(0.5, 1.5, w.shape) if name == "gamma" else rng.uniform(-0.6, 0.6, w.shape)
    plain.set_weights(fast.get_weights())
    plain._folded = set()
    for node in plain.nodes:
        node.layer.norm, node.layer.rectifier = None, (False, None)
    return fast, plain


def by_name(model):
    return {n.name: n.layer for n in model.nodes}


def test_adds_take_over_the_layer_normalization_they_alone_feed():
    fast, _ = models(BLOCK)
    assert fast._folded == {"ln1", "ln2", "ln3", "out_ln"}
    layers = by_name(fast)
    for add, ln in (("add", "ln1"), ("add3", "ln2"), ("add_axes", "ln3"), ("out_add", "out_ln")):
        assert layers[add].norm is layers[ln]
    assert layers["shared"].norm is None  # its output feeds two layers


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("batch", [1, 4])
def test_fused_block_equals_unfused(training, batch):
    fast, plain = models(BLOCK)
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 5, 6)) * 2 + 0.5
    y1, bp1 = fast.forward(x, training=training, input_grads=True)
    y2, bp2 = plain.forward(x, training=training, input_grads=True)
    np.testing.assert_allclose(y1, y2, rtol=1e-12, atol=1e-12)
    dY = rng.standard_normal(y1.shape)
    np.testing.assert_allclose(bp1(dY), bp2(dY), rtol=1e-10, atol=1e-12)
    for a, b in zip(fast.nodes, plain.nodes):
        assert a.layer.grads.keys() == b.layer.grads.keys()
        for name in a.layer.grads:
            np.testing.assert_allclose(a.layer.grads[name], b.layer.grads[name], rtol=1e-10, atol=1e-12,
                                       err_msg=f"{a.name}/{name}")


def test_fused_block_inference_is_training_bit_for_bit_float32():
    fast, _ = models(BLOCK.replace("dtype: float64", "dtype: float32"))
    x = np.random.default_rng(3).standard_normal((3, 5, 6)).astype(np.float32)
    y_inf, _ = fast.forward(x, training=False)
    y_train, _ = fast.forward(x, training=True)
    np.testing.assert_array_equal(y_inf, y_train)


@pytest.mark.parametrize("training", [True, False])
def test_fused_block_with_padding_masks_equals_unfused(training):
    fast, plain = models(MASKED)
    assert fast._folded == {"ln"}
    x = np.array([[1, 2, 3, 0, 0, 0], [4, 5, 6, 7, 8, 1], [3, 0, 0, 0, 0, 0]])
    y1, bp1 = fast.forward(x, training=training)
    y2, bp2 = plain.forward(x, training=training)
    np.testing.assert_allclose(y1, y2, rtol=1e-12, atol=1e-12)
    dY = np.random.default_rng(4).standard_normal(y1.shape)
    bp1(dY), bp2(dY)
    for a, b in zip(fast.nodes, plain.nodes):
        for name in a.layer.grads:
            np.testing.assert_allclose(a.layer.grads[name], b.layer.grads[name], rtol=1e-10, atol=1e-12)


def layer_norm(shape, **args):
    layer = make_layer(S.LayerNormalization(**{"epsilon": 1e-3, **args}), "ln", 0, "float64")
    layer.build(shape)
    rng = np.random.default_rng(5)
    for w in layer.weights.values():
        w[...] = rng.uniform(0.5, 1.5, w.shape)
    return layer


class AddThenNorm:
    """Add with its LayerNormalization folded in, as one layer for the gradient check (the
    normalisation's weights and gradients are this layer's)."""

    multi_input = True

    def __init__(self, ln):
        self.add = make_layer(S.Add(), "add", 0, "float64")
        self.add.fuse_norm(ln)
        self.weights, self.grads, self.trainable = ln.weights, ln.grads, ln.trainable

    def forward(self, Xs, training, mask=None):
        return self.add.forward(Xs, training, mask)


@pytest.mark.parametrize("shape", [(7,), (5, 6), (3, 4, 5)])
@pytest.mark.parametrize("scale, center", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("n", [2, 3])
def test_add_then_norm_is_the_plain_formula_and_its_gradients(shape, scale, center, n):
    ln = layer_norm(shape, scale=scale, center=center)
    rng = np.random.default_rng(len(shape) + n)
    Xs = [rng.standard_normal((4, *shape)) + 3 * i for i in range(n)]
    S_ = sum(Xs)
    expected = (S_ - S_.mean(-1, keepdims=True)) / np.sqrt(S_.var(-1, keepdims=True) + 1e-3)
    if scale:
        expected = expected * ln.weights["gamma"]
    if center:
        expected = expected + ln.weights["beta"]
    fused = AddThenNorm(ln)
    for training in (True, False):
        Y, back = fused.forward(Xs, training)
        np.testing.assert_allclose(Y, expected, rtol=1e-12, atol=1e-12)
        assert all(X is not Y for X in Xs)
    dY = rng.standard_normal(S_.shape)
    _, back_t = fused.forward(Xs, True)
    dXs_t = back_t(dY)
    grads_t = {k: v.copy() for k, v in ln.grads.items()}
    _, back = fused.forward(Xs, False)  # Xhat recomputed from the addends: the same bits
    dXs = back(dY)
    assert len(dXs) == n
    for a, b in zip(dXs, dXs_t):
        np.testing.assert_array_equal(a, b)
    for k in grads_t:
        np.testing.assert_array_equal(ln.grads[k], grads_t[k])
    assert check_layer_gradients(AddThenNorm(layer_norm(shape, scale=scale, center=center)), Xs,
                                 training=True) > 0


def test_add_then_norm_over_other_axes_uses_the_general_path():
    ln = layer_norm((3, 4, 5), axis=[1, 2])
    rng = np.random.default_rng(6)
    Xs = [rng.standard_normal((2, 3, 4, 5)) for _ in range(2)]
    Y, _ = AddThenNorm(ln).forward(Xs, False)
    np.testing.assert_array_equal(Y, ln.forward(Xs[0] + Xs[1], False)[0])
    assert check_layer_gradients(AddThenNorm(layer_norm((3, 4, 5), axis=[1, 2])), Xs, training=True) > 0


def test_add_then_norm_rejects_addends_of_other_shapes():
    """The shapes are checked before the sum (a spec's unknown steps, None, met by arrays of
    other steps), as in the plain Add."""
    from layerc.core.base import ShapeError

    rng = np.random.default_rng(8)
    with pytest.raises(ShapeError, match="same shape"):
        AddThenNorm(layer_norm((None, 6))).forward([rng.standard_normal((2, 1, 6)),
                                                     rng.standard_normal((2, 5, 6))], True)


def test_add_takes_no_normalization_over_a_rectifier_or_another_layer():
    add = make_layer(S.Add(), "add", 0, "float64")
    assert not add.fuse_norm(make_layer(S.BatchNormalization(), "bn", 0, "float64"))
    add.rectifier = (True, None)
    assert not add.fuse_norm(layer_norm((5, 6)))
    assert add.norm is None


@pytest.mark.parametrize("shape", [(5,), (4, 5), (3, 4, 5)])
@pytest.mark.parametrize("activation", ["relu", "linear", "tanh"])
def test_dense_on_long_rows_is_the_plain_formula(shape, activation):
    layer = make_layer(S.Dense(units=7, activation=activation), "d", 0, "float64")
    layer.build(shape)
    rng = np.random.default_rng(7)
    layer.weights["bias"][...] = rng.uniform(-1, 1, 7)
    X = rng.standard_normal((3, *shape))
    Z = X @ layer.weights["kernel"] + layer.weights["bias"]
    expected = {"relu": np.maximum(Z, 0), "linear": Z, "tanh": np.tanh(Z)}[activation]
    for training in (True, False):
        Y, _ = layer.forward(X, training)
        np.testing.assert_allclose(Y, expected, rtol=1e-13, atol=1e-13)
    assert check_layer_gradients(layer, X, training=True) > 0


@pytest.mark.parametrize("shape", [(2, 0, 4), (0, 3, 4), (0, 4), (2, 0, 3, 4)])
def test_dense_and_layer_norm_take_empty_inputs(shape):
    """No steps (or no samples): empty outputs and gradients of the right shapes."""
    for layer in (make_layer(S.Dense(units=3, activation="relu"), "d", 0, "float64"),
                  make_layer(S.LayerNormalization(), "ln", 0, "float64")):
        layer.build(shape[1:-2] + (None, 4))
        Y, back = layer.forward(np.zeros(shape), True)
        assert Y.shape == shape[:-1] + (Y.shape[-1],) and Y.size == 0
        assert back(np.ones(Y.shape)).shape == shape

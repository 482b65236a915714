"""The transformer block's fast paths against the plain formulas (float64, forward and
gradients): MultiHeadAttention's unshifted softmax and its stable fallback, the block
loop over the batch, the query scale folded into the kernel, the recomputed
probabilities after an inference forward, dropout; LayerNormalization's in-place
inference; the bias gradients as products with a row of ones."""
from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

from layerc.core import attention
from layerc.core.registry import make_layer
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients

NEG = -1e9


def mha(shapes, scale=0.5, dtype="float64", seed=1, **args):
    layer = make_layer(S.MultiHeadAttention(**{"num_heads": 2, "key_dim": 3, **args}), "mha", 0, dtype)
    layer.build(shapes)
    rng = np.random.default_rng(seed)
    for w in layer.weights.values():
        w[...] = rng.uniform(-scale, scale, w.shape)
    return layer


def padded(T, lengths):
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


def reference(layer, Xs, masks=None, drop=None):
    """Keras's formula written plainly: EinsumDense projections, scores / sqrt(key_dim),
    -1e9 at masked positions, softmax with the row max subtracted, zeros for a query step
    with nothing to attend to, dropout as `drop` (B, H, S, T) (kept / (1 - rate)), output
    projection."""
    s, W = layer.spec, layer.weights
    Xq = Xs[0]
    Xv = Xs[1] if len(Xs) > 1 else Xq
    Xk = Xs[2] if len(Xs) > 2 else Xv

    def proj(X, name):
        Z = np.einsum("btd,dhk->bthk", X, W[f"{name}/kernel"])
        return Z + W[f"{name}/bias"] if s.use_bias else Z

    Q, K, V = proj(Xq, "query"), proj(Xk, "key"), proj(Xv, "value")
    scores = np.einsum("bthk,bshk->bhts", Q, K) / np.sqrt(s.key_dim)
    B, H, T, Sn = scores.shape
    allowed = np.ones((B, 1, T, Sn), bool)
    masks = list(masks or []) + [None] * 3
    if masks[0] is not None:
        allowed &= masks[0][:, None, :, None]
    v_mask = masks[1] if len(Xs) > 1 else masks[0]
    for m in (v_mask, masks[2] if len(Xs) > 2 else None):
        if m is not None:
            allowed &= m[:, None, None, :]
    if s.use_causal_mask:
        allowed &= np.tril(np.ones((T, Sn), bool))
    scores = np.where(allowed, scores, NEG)
    E = np.exp(scores - scores.max(axis=-1, keepdims=True)) * allowed
    den = E.sum(axis=-1, keepdims=True)
    P = E / np.where(den == 0, 1, den)
    if drop is not None:
        P = P * drop.transpose(0, 1, 3, 2)
    O = np.einsum("bhts,bshk->bthk", P, V)
    Wo = W["attention_output/kernel"]
    Y = (O.reshape(B, T, -1) @ Wo.reshape(-1, Wo[0, 0].size)).reshape(B, T, *Wo.shape[2:])
    return Y + W["attention_output/bias"] if s.use_bias else Y


CASES = [
    ("self", [(6, 4)], {}, None),
    ("self, padding mask", [(6, 4)], {}, [padded(6, [6, 3, 1])]),
    ("causal", [(6, 4)], {"use_causal_mask": True}, None),
    ("causal with padding", [(6, 4)], {"use_causal_mask": True}, [padded(6, [2, 6, 4])]),
    ("query, value", [(4, 3), (7, 5)], {"value_dim": 2}, [padded(4, [4, 2, 3]), padded(7, [7, 3, 1])]),
    ("query, value, key", [(4, 3), (7, 5), (7, 2)], {"output_shape": [2, 3]},
     [padded(4, [4, 2, 3]), padded(7, [7, 3, 1]), padded(7, [5, 7, 2])]),
    ("no bias", [(5, 4)], {"use_bias": False}, None),
]


def inputs(shapes, seed=0, B=3):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((B, *s)) for s in shapes]


@pytest.mark.parametrize("scale", [0.5, 6.0], ids=["unshifted exp", "stable fallback"])
@pytest.mark.parametrize("name, shapes, args, masks", CASES, ids=[c[0] for c in CASES])
def test_forward_is_the_plain_formula(name, shapes, args, masks, scale):
    layer = mha(shapes, scale=scale, **args)
    Xs = inputs(shapes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value warning from either path
        Y, _ = layer.forward(Xs, False, masks)
        Yt, _ = layer.forward(Xs, True, masks)
    expected = reference(layer, Xs, masks)
    np.testing.assert_allclose(Y, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(Y, Yt)


@pytest.mark.parametrize("stable", [False, True], ids=["unshifted exp", "stable fallback"])
@pytest.mark.parametrize("name, shapes, args, masks", CASES, ids=[c[0] for c in CASES])
def test_gradients(monkeypatch, name, shapes, args, masks, stable):
    if stable:  # every block takes the stable path (large scores would drown the differences)
        monkeypatch.setattr(attention, "_HUGE", 0.0)
    layer = mha(shapes, **args)
    assert check_layer_gradients(layer, inputs(shapes, seed=1), training=True, mask=masks) > 0


def test_the_fallback_is_taken_for_large_scores_and_matches_the_fast_path_where_both_apply(monkeypatch):
    """Scores of +-300 overflow (or underflow) an unshifted exp: the stable path gives
    Keras's result; with the thresholds forced, moderate scores give the same result
    both ways."""
    layer = mha([(5, 4)], scale=8.0)
    Xs = inputs([(5, 4)], seed=3)
    Y, _ = layer.forward(Xs, False)
    np.testing.assert_allclose(Y, reference(layer, Xs), rtol=1e-10, atol=1e-12)
    assert np.isfinite(Y).all()
    small = mha([(5, 4)], scale=0.5)
    fast, _ = small.forward(Xs, False)
    monkeypatch.setattr(attention, "_HUGE", 0.0)  # every block takes the stable path
    stable, _ = small.forward(Xs, False)
    np.testing.assert_allclose(fast, stable, rtol=1e-12, atol=1e-14)


def test_softmax_scores_fallback_cases():
    """Direct checks of one block: a query step whose scores are all very negative (its
    unshifted sum underflows), one with a huge score, one with NaN, one fully masked."""
    rng = np.random.default_rng(4)
    K = rng.standard_normal((1, 1, 4, 2))
    Q = rng.standard_normal((1, 1, 3, 2))
    for q in ([-400.0, 0.0], [0.0, 500.0]):
        Q[0, 0, 0] = q
        K[0, 0, :, 0] = [1.0, 1.1, 0.9, 1.2]
        Z = np.empty((1, 1, 4, 3))
        attention._softmax_scores(K, Q, None, Z, np.ones((1, 4)), np.float64)
        scores = (K[0, 0] @ Q[0, 0].T)
        E = np.exp(scores - scores.max(axis=0))
        np.testing.assert_allclose(Z[0, 0], E / E.sum(axis=0), rtol=1e-12)
    allowed = np.ones((1, 1, 4, 3), bool)
    allowed[..., 1] = False
    Z = np.empty((1, 1, 4, 3))
    attention._softmax_scores(K, Q, allowed, Z, np.ones((1, 4)), np.float64)
    np.testing.assert_array_equal(Z[0, 0, :, 1], 0)
    np.testing.assert_allclose(Z[0, 0].sum(axis=0)[[0, 2]], 1)
    Q[0, 0, 2] = np.nan
    attention._softmax_scores(K, Q, None, Z, np.ones((1, 4)), np.float64)
    assert np.isnan(Z[0, 0, :, 2]).all() and np.isfinite(Z[0, 0, :, :2]).all()



@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("masked", [False, True], ids=["no mask", "mask"])
@pytest.mark.parametrize("stable", [False, True], ids=["unshifted exp", "stable fallback"])
def test_softmax_scores_normalise_by_the_reciprocal_of_the_sums(monkeypatch, dtype, masked, stable):
    """Each block's exponentials are multiplied by 1 / (their column sum): within an ulp or
    two of the quotient (float32 and float64, both paths, with a mask and a fully masked
    query step), every unmasked column sums to 1 and masked entries are 0."""
    if stable:
        monkeypatch.setattr(attention, "_HUGE", 0.0)
    rng = np.random.default_rng(22)
    K = rng.standard_normal((2, 3, 7, 5)).astype(dtype)
    Q = rng.standard_normal((2, 3, 9, 5)).astype(dtype)
    allowed = None
    if masked:
        allowed = rng.random((2, 1, 7, 9)) < 0.6
        allowed[0, 0, :, 4] = False  # a query step with nothing to attend to
    Z = np.empty((2, 3, 7, 9), dtype)
    attention._softmax_scores(K, Q, allowed, Z, np.ones((1, 7), dtype), np.dtype(dtype).type)
    scores = (K.astype(np.float64) @ Q.astype(np.float64).transpose(0, 1, 3, 2))
    ok = np.ones(scores.shape, bool) if allowed is None else np.broadcast_to(allowed, scores.shape)
    E = np.where(ok, np.exp(scores - np.where(ok, scores, -np.inf).max(axis=2, keepdims=True)), 0)
    den = E.sum(axis=2, keepdims=True)
    expected = E / np.where(den == 0, 1, den)
    tol = 1e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(Z, expected, rtol=tol, atol=tol)
    assert (Z[~ok] == 0).all()
    sums = Z.sum(axis=2)
    live = ok.any(axis=2)
    np.testing.assert_allclose(sums[live], 1, rtol=10 * tol)
    assert (sums[~live] == 0).all()

@pytest.mark.parametrize("block_bytes", [1, 3 * 2 * 6 * 6 * 8 + 1, 1 << 30], ids=["1 sample", "3 samples", "all"])
def test_blocks_over_the_batch_give_the_same_bits(monkeypatch, block_bytes):
    """7 samples in blocks of 1, 3 (with a remainder of 1) or all at once: the same bits
    forward and backward (each block's products and passes are the batch's, row by row)."""
    shapes = [(6, 4)]
    Xs, dY = inputs(shapes, seed=5, B=7), np.random.default_rng(6).standard_normal((7, 6, 4))
    masks = [padded(6, [6, 3, 1, 0, 5, 6, 2])]
    results = []
    for b in (1 << 30, block_bytes):
        monkeypatch.setattr(attention, "_BLOCK_BYTES", b)
        layer = mha(shapes, use_causal_mask=True)
        Y, back = layer.forward(Xs, True, masks)
        results.append((Y, back(dY), dict(layer.grads)))
    (Y0, dX0, g0), (Y1, dX1, g1) = results
    np.testing.assert_array_equal(Y0, Y1)
    np.testing.assert_array_equal(dX0[0], dX1[0])
    for k in g0:
        np.testing.assert_array_equal(g0[k], g1[k])
    np.testing.assert_allclose(Y0, reference(layer, Xs, masks), rtol=1e-10, atol=1e-12)



@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, shapes, args, masks", CASES, ids=[c[0] for c in CASES])
def test_projections_made_block_by_block_give_the_same_bits(monkeypatch, name, shapes, args, masks, dtype):
    """The query/key/value projections are made a block of samples at a time inside the
    score loop: blocks of 1 or 2 samples (a remainder of 1) give the bits of one block of
    the whole batch, forward (inference and training) and backward, for self- and
    cross-attention (other key and value widths), without a bias, float32 and float64."""
    Xs = [X.astype(dtype) for X in inputs(shapes, seed=15, B=5)]
    masks = None if masks is None else [np.concatenate([m, m[:2]]) for m in masks]
    results = []
    for b in (1 << 30, 1, 2 * 2 * shapes[0][0] * (shapes[1][0] if len(shapes) > 1 else shapes[0][0]) * 8):
        monkeypatch.setattr(attention, "_BLOCK_BYTES", b)
        layer = mha(shapes, dtype=dtype, **args)
        Y, _ = layer.forward(Xs, False, masks)
        Yt, back = layer.forward(Xs, True, masks)
        dY = np.random.default_rng(16).standard_normal(Y.shape).astype(dtype)
        results.append((Y, Yt, back(dY), dict(layer.grads)))
    for Y, Yt, dX, g in results[1:]:
        np.testing.assert_array_equal(Y, results[0][0])
        np.testing.assert_array_equal(Yt, results[0][1])
        for a, b in zip(dX, results[0][2]):
            np.testing.assert_array_equal(a, b)
        for k in g:
            np.testing.assert_array_equal(g[k], results[0][3][k])
    expected = reference(layer, [X.astype(np.float64) for X in Xs], masks)
    tol = 1e-10 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(results[0][0], expected, rtol=tol, atol=tol)

@pytest.mark.parametrize("name, shapes, args, masks", CASES[:5], ids=[c[0] for c in CASES[:5]])
def test_backprop_after_an_inference_forward_recomputes_the_probabilities(name, shapes, args, masks):
    """Input gradients of a model in inference mode: the probabilities, not kept by an
    inference forward, are recomputed, giving the training forward's gradients."""
    Xs = inputs(shapes, seed=7)
    dY = np.random.default_rng(8).standard_normal(reference(mha(shapes, **args), Xs, masks).shape)
    out = []
    for training in (False, True):
        layer = mha(shapes, **args)
        _, back = layer.forward(Xs, training, masks)
        out.append((back(dY), dict(layer.grads)))
    (dX0, g0), (dX1, g1) = out
    for a, b in zip(dX0, dX1):
        np.testing.assert_array_equal(a, b)
    for k in g0:
        np.testing.assert_array_equal(g0[k], g1[k])
    layer = mha(shapes, **args)
    assert check_layer_gradients(layer, Xs, training=False, mask=masks) > 0


def test_dropout_is_the_plain_formula_with_the_same_mask():
    """Dropout on the probabilities: the layer's mask, drawn from its generator as
    (B, H, S, T) values >= rate, scaled by 1 / (1 - rate)."""
    shapes = [(4, 3), (6, 5)]
    layer = mha(shapes, dropout=0.3)
    Xs = inputs(shapes, seed=9)
    masks = [padded(4, [4, 2, 3]), padded(6, [6, 3, 1])]
    layer.rng = np.random.default_rng(11)
    Y, _ = layer.forward(Xs, True, masks)
    drop = (np.random.default_rng(11).random((3, 2, 6, 4), dtype=np.float32) >= 0.3) / 0.7
    np.testing.assert_allclose(Y, reference(layer, Xs, masks, drop), rtol=1e-10, atol=1e-12)
    assert check_layer_gradients(layer, Xs, training=True, mask=masks) > 0


def test_inference_keeps_no_array_of_the_whole_batchs_scores():
    """An inference forward works through the batch a block at a time in one reused
    buffer: its peak allocation stays well below one (B, H, S, T) array (the old code
    allocated it, plus its sums)."""
    layer = mha([(128, 16)], dtype="float32", num_heads=4, key_dim=4)
    X = np.random.default_rng(10).standard_normal((16, 128, 16)).astype(np.float32)
    scores = 16 * 4 * 128 * 128 * 4
    layer.forward([X], False)
    tracemalloc.start()
    try:
        Y, _ = layer.forward([X], False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < scores // 2, (peak, scores)
    np.testing.assert_allclose(Y, reference(layer, [X.astype(np.float64)]), rtol=2e-4, atol=2e-5)


# -- LayerNormalization and Dense on (batch, tokens, width) --------------------------------

def layer_norm(center=True, scale=True):
    layer = make_layer(S.LayerNormalization(epsilon=1e-3, center=center, scale=scale), "ln", 0, "float64")
    layer.build((5, 6))
    rng = np.random.default_rng(12)
    for w in layer.weights.values():
        w[...] = rng.uniform(0.5, 1.5, w.shape)
    return layer


@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False)])
def test_layer_norm_in_place_inference_is_the_plain_formula_and_backprops(center, scale):
    layer = layer_norm(center, scale)
    X = np.random.default_rng(13).standard_normal((4, 5, 6))
    mean, var = X.mean(-1, keepdims=True), X.var(-1, keepdims=True)
    expected = (X - mean) / np.sqrt(var + 1e-3)
    if scale:
        expected = expected * layer.weights["gamma"]
    if center:
        expected = expected + layer.weights["beta"]
    Y, back = layer.forward(X, False)
    Yt, back_t = layer.forward(X, True)
    np.testing.assert_allclose(Y, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(Y, Yt)
    dY = np.random.default_rng(14).standard_normal(X.shape)
    dX = back(dY)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    np.testing.assert_array_equal(dX, back_t(dY))  # Xhat recomputed from X: the same bits
    for k in grads:
        np.testing.assert_array_equal(grads[k], layer.grads[k])
    assert check_layer_gradients(layer_norm(center, scale), X, training=False) > 0


def test_dense_bias_gradient_is_the_column_sum():
    layer = make_layer(S.Dense(units=3, activation="relu"), "d", 0, "float64")
    layer.build((5, 4))
    X = np.random.default_rng(15).standard_normal((2, 5, 4))
    _, back = layer.forward(X, True)
    dY = np.random.default_rng(16).standard_normal((2, 5, 3))
    back(dY)
    Z = X @ layer.weights["kernel"] + layer.weights["bias"]
    np.testing.assert_allclose(layer.grads["bias"], (dY * (Z > 0)).sum(axis=(0, 1)), rtol=1e-12)
    assert check_layer_gradients(layer, X, training=True) > 0

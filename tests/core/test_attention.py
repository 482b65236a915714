"""MultiHeadAttention: gradients, masks, Keras 3 parity (forward, SGD steps, summary), errors."""
from __future__ import annotations

import numpy as np
import pytest

import layerc
from layerc.core.registry import make_layer
from layerc.jobs import training_memory
from layerc.spec import SpecError, parse_spec
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients
from tests.core.keras_twin import randomise, same_summary, sgd_steps_match, twin


def mha(shapes, dtype="float64", **args):
    layer = make_layer(S.MultiHeadAttention(**{"num_heads": 2, "key_dim": 3, **args}), "mha", 0, dtype)
    layer.build(shapes)
    rng = np.random.default_rng(1)
    for w in layer.weights.values():
        w[...] = rng.uniform(-0.5, 0.5, w.shape)
    return layer


def padded(B, T, lengths):
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


@pytest.mark.parametrize("args", [{}, {"use_bias": False, "value_dim": 4}, {"output_shape": [2, 3]},
                                  {"use_causal_mask": True}])
def test_self_attention_gradients(args):
    layer = mha([(5, 4)], **args)
    X = np.random.default_rng(0).standard_normal((3, 5, 4))
    assert check_layer_gradients(layer, [X]) > 0


def test_cross_attention_with_key_and_masks_gradients():
    layer = mha([(4, 3), (6, 5), (6, 2)], value_dim=2)
    rng = np.random.default_rng(2)
    Xs = [rng.standard_normal((3, 4, 3)), rng.standard_normal((3, 6, 5)), rng.standard_normal((3, 6, 2))]
    masks = [padded(3, 4, [4, 2, 3]), padded(3, 6, [6, 3, 1]), padded(3, 6, [5, 6, 2])]
    assert check_layer_gradients(layer, Xs, mask=masks) > 0


def test_attention_dropout_gradients_and_inference_identity():
    layer = mha([(5, 4)], dropout=0.4)
    X = np.random.default_rng(3).standard_normal((2, 5, 4))
    assert check_layer_gradients(layer, [X], training=True) > 0
    a, _ = layer.forward([X], training=False)
    b, _ = layer.forward([X], training=False)
    t, _ = layer.forward([X], training=True)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, t)


def test_masked_positions_get_no_attention_and_the_output_mask_is_the_querys():
    layer = mha([(5, 4)])
    X = np.random.default_rng(4).standard_normal((2, 5, 4))
    mask = padded(2, 5, [3, 5])
    Y, _ = layer.forward([X], False, [mask])
    X2 = X.copy()
    X2[0, 3:] = 100.0  # padding values must not reach the unmasked steps
    Y2, _ = layer.forward([X2], False, [mask])
    np.testing.assert_allclose(Y[0, :3], Y2[0, :3])
    np.testing.assert_allclose(Y[1], Y2[1])
    # a padding query step attends to nothing: its output is the output bias
    np.testing.assert_allclose(Y2[0, 3:], np.broadcast_to(layer.weights["attention_output/bias"], (2, 4)))
    assert layer.compute_mask([X], [mask]) is mask


def test_causal_mask_hides_later_steps():
    layer = mha([(6, 4)], use_causal_mask=True)
    X = np.random.default_rng(5).standard_normal((2, 6, 4))
    Y, _ = layer.forward([X], False)
    X2 = X.copy()
    X2[:, 4:] += 3.0
    Y2, _ = layer.forward([X2], False)
    np.testing.assert_allclose(Y[:, :4], Y2[:, :4])
    assert not np.allclose(Y[:, 4:], Y2[:, 4:])


def test_no_python_loop_over_heads_or_batch_float32_stays_float32():
    layer = mha([(64, 64)], "float32", num_heads=4, key_dim=16)
    X = np.random.default_rng(6).standard_normal((64, 64, 64)).astype(np.float32)
    Y, back = layer.forward([X], True)
    assert Y.dtype == np.float32 and back(np.ones_like(Y))[0].dtype == np.float32


# -- located errors -----------------------------------------------------------------------

@pytest.mark.parametrize("extra, message", [
    ("attention_axes: [2]", "attention_axes [2] is not supported"),
    ("inputs: [input_layer, input_layer, input_layer, input_layer]", "takes 1 to 3 inputs; 'mha' gets 4"),
])
def test_unsupported_attention_is_a_located_error(extra, message):
    text = f"input: {{shape: [5, 4]}}\nlayers:\n  - MultiHeadAttention: {{num_heads: 2, key_dim: 3, name: mha, {extra}}}\n"
    with pytest.raises(SpecError) as e:
        layerc.build(parse_spec(text))
    assert message in str(e.value) and "<spec>:3:" in str(e.value)


def test_rank_and_key_value_errors():
    with pytest.raises(SpecError, match="query must be \\(steps, features\\)"):
        layerc.build(parse_spec("input: {shape: [5, 4, 2]}\nlayers:\n  - MultiHeadAttention: {num_heads: 2, key_dim: 3}\n"))
    with pytest.raises(SpecError, match="value and key need the same steps"):
        layerc.build(parse_spec("inputs: {q: {shape: [5, 4]}, v: {shape: [6, 4]}, k: {shape: [7, 4]}}\nlayers:\n"
                                "  - MultiHeadAttention: {num_heads: 2, key_dim: 3, inputs: [q, v, k]}\n"))


def test_memory_estimate_counts_the_scores():
    def total(T):
        return training_memory(layerc.build(parse_spec(
            f"input: {{shape: [{T}, 8]}}\nlayers:\n  - MultiHeadAttention: {{num_heads: 4, key_dim: 2}}\n")), 32)["parts"]["activations"]
    # 3 kept (heads, T, T) arrays grow with T^2: doubling T more than doubles the estimate
    assert total(128) - 2 * total(64) >= 3 * 32 * 4 * 4 * (2 * 128 * 128 - 2 * 64 * 64) // 2


# -- Keras 3 parity -------------------------------------------------------------------------

TRANSFORMER = """
input: {shape: [10], dtype: int32}
layers:
  - Embedding: {input_dim: 30, output_dim: 8, mask_zero: true}
  - MultiHeadAttention: {num_heads: 2, key_dim: 4, %s}
  - Add: {inputs: [embedding, multi_head_attention]}
  - LayerNormalization: {epsilon: 0.000001}
  - Dense: {units: 16, activation: relu}
  - Dense: {units: 8}
  - Add: {inputs: [layer_normalization, dense_1]}
  - LayerNormalization
  - GlobalAveragePooling1D
  - Dense: {units: 1, activation: sigmoid}
train: {optimizer: {type: sgd, learning_rate: 0.1}, loss: binary_crossentropy, batch_size: 6}
"""


def tokens(seed=7):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 30, (6, 10)).astype(np.int32)
    for i, n in enumerate([10, 7, 3, 9, 1, 5]):
        x[i, n:] = 0
    return x


@pytest.mark.parametrize("args", ["use_bias: true", "use_causal_mask: true", "use_bias: false, value_dim: 3"])
def test_masked_transformer_block_matches_keras(keras, args):
    model = layerc.build(parse_spec(TRANSFORMER % args))
    randomise(model, scale=0.5)
    km, layers = twin(keras, model)
    x = tokens()
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), atol=1e-5)
    same_summary(model, layers)


@pytest.mark.parametrize("args", ["use_bias: true", "use_causal_mask: true"])
def test_three_sgd_steps_equal_keras(keras, args):
    model = layerc.build(parse_spec(TRANSFORMER % args))
    randomise(model, scale=0.5)
    y = np.array([1, 0, 0, 1, 1, 0], np.float32)[:, None]
    sgd_steps_match(keras, model, tokens(), y, "binary_crossentropy")


def test_cross_attention_with_key_and_output_shape_matches_keras(keras):
    model = layerc.build(parse_spec("""
inputs: {q: {shape: [4, 6]}, v: {shape: [7, 5]}, k: {shape: [7, 3]}}
layers:
  - MultiHeadAttention: {num_heads: 3, key_dim: 2, value_dim: 4, output_shape: [2, 5], inputs: [q, v, k]}
"""))
    randomise(model, scale=0.5)
    km, layers = twin(keras, model)
    rng = np.random.default_rng(8)
    x = [rng.standard_normal((5, 4, 6)).astype(np.float32), rng.standard_normal((5, 7, 5)).astype(np.float32),
         rng.standard_normal((5, 7, 3)).astype(np.float32)]
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), atol=1e-5)
    same_summary(model, layers)


def test_weight_layout_and_mask_follow_keras(keras):
    from keras.src.backend import get_keras_mask

    k = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    emb = keras.layers.Embedding(20, 4, mask_zero=True)
    x = tokens()[:, :5] % 20
    e = emb(x)
    out = k(e, e)
    ours = mha([(5, 4)], "float32")
    assert [(n, w.shape) for n, w in ours.weights.items()] == [
        (w.path.split("/", 1)[1], tuple(w.shape)) for w in k.weights]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(get_keras_mask(out)),
                                  ours.compute_mask([x], [x != 0]))


def test_split_over_threads_gives_the_same_bits(monkeypatch):
    """Big enough to split the batch over threads: results equal the one-thread run's."""
    from layerc.core import parallel

    rng = np.random.default_rng(9)
    X = rng.standard_normal((8, 128, 8)).astype(np.float32)
    mask = padded(8, 128, [128, 100, 5, 64, 128, 1, 77, 120])
    dY = rng.standard_normal((8, 128, 8)).astype(np.float32)
    runs = []
    for threads in (1, 2):
        monkeypatch.setattr(parallel, "n_threads", lambda t=threads: t)
        layer = mha([(128, 8)], "float32", dropout=0.2)
        Y, back = layer.forward([X], True, [mask])
        runs.append((Y, back(dY)[0], {k: g.copy() for k, g in layer.grads.items()}))
    (Y1, dX1, g1), (Y2, dX2, g2) = runs
    np.testing.assert_array_equal(Y1, Y2)
    np.testing.assert_array_equal(dX1, dX2)
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])


def test_an_array_given_twice_gets_its_gradient_once():
    model = layerc.build(parse_spec("input: {shape: [4, 3]}\nlayers:\n"
                                    "  - MultiHeadAttention: {num_heads: 1, key_dim: 2, inputs: [input_layer, input_layer]}\n"))
    single = layerc.build(parse_spec("input: {shape: [4, 3]}\nlayers:\n  - MultiHeadAttention: {num_heads: 1, key_dim: 2}\n"))
    single.set_weights(model.get_weights())
    X = np.random.default_rng(10).standard_normal((2, 4, 3)).astype(np.float32)
    grads = []
    for m in (model, single):
        Y, back = m.forward(X, input_grads=True)
        grads.append(back(np.ones_like(Y)))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)

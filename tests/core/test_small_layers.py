"""Rescaling, RepeatVector, Permute, PositionEmbedding and the noise layers (GaussianNoise,
SpatialDropout1D/2D): gradients, literal values, masks, noise statistics, exact resume and
Keras 3 parity."""
from __future__ import annotations

import numpy as np
import pytest

import layerc
from layerc.core.registry import make_layer
from layerc.spec import SpecError, parse_spec
from layerc.spec import layers as S
from layerc.train.loop import Trainer
from tests.core.gradcheck import check_layer_gradients
from tests.core.keras_twin import keras_layer, randomise, same_summary, sgd_steps_match, twin


def build(spec, shape, dtype="float64", seed=0):
    layer = make_layer(spec, "layer", seed, dtype)
    layer.build(tuple(shape))
    return layer


CASES = [
    (S.Rescaling(scale=0.5, offset=-1.0), (4,)),
    (S.Rescaling(scale=[1.0, 2.0, 3.0], offset=[0.0, 1.0, 0.5]), (2, 3)),
    (S.RepeatVector(n=3), (4,)),
    (S.Permute(dims=[3, 1, 2]), (2, 3, 4)),
    (S.PositionEmbedding(sequence_length=7), (5, 3)),
    (S.GaussianNoise(stddev=0.5), (6,)),
    (S.SpatialDropout1D(rate=0.5), (5, 3)),
    (S.SpatialDropout2D(rate=0.5), (3, 3, 4)),
    (S.SpatialDropout2D(rate=0.5, data_format="channels_first"), (4, 3, 3)),
]


@pytest.mark.parametrize("spec, shape", CASES, ids=lambda c: getattr(c, "type", None))
@pytest.mark.parametrize("training", [False, True])
def test_gradients(spec, shape, training):
    layer = build(spec, shape)
    X = np.random.default_rng(0).standard_normal((3, *shape))
    Y, _ = layer.forward(X, training)
    assert Y.shape[1:] == layer.output_shape(shape)
    assert check_layer_gradients(layer, X, training=training) > 0


def test_literal_values():
    X = np.arange(6.0).reshape(1, 2, 3)
    np.testing.assert_array_equal(build(S.Rescaling(scale=2.0, offset=1.0), (2, 3)).forward(X, False)[0], X * 2 + 1)
    np.testing.assert_array_equal(build(S.Rescaling(scale=[1.0, 0.0, -1.0]), (2, 3)).forward(X, False)[0],
                                  X * [1, 0, -1])
    np.testing.assert_array_equal(build(S.RepeatVector(n=2), (3,)).forward(X[:, 0], False)[0], [[[0, 1, 2]] * 2])
    np.testing.assert_array_equal(build(S.Permute(dims=[2, 1]), (2, 3)).forward(X, False)[0], X.transpose(0, 2, 1))
    pe = build(S.PositionEmbedding(sequence_length=4), (2, 3))
    np.testing.assert_array_equal(pe.forward(X, False)[0], X + pe.weights["embeddings"][:2])
    assert pe.weights["embeddings"].shape == (4, 3)


def test_rescaling_takes_integer_pixels_in_the_models_dtype():
    model = layerc.build(parse_spec("input: {shape: [2, 2, 1], dtype: int32}\nlayers:\n"
                                    "  - Rescaling: {scale: 0.00392156862745098}\n  - Flatten\n"))
    y = model.predict(np.array([[[[0], [255]], [[51], [102]]]], np.int32))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[0, 1, 0.2, 0.4]], rtol=1e-6)


@pytest.mark.parametrize("text, message", [
    ("input: {shape: [3, 4]}\nlayers:\n  - RepeatVector: {n: 2}\n", "RepeatVector expects a vector"),
    ("input: {shape: [3, 4]}\nlayers:\n  - Permute: {dims: [1, 2, 3]}\n", "Permute dims [1, 2, 3] has 3 entries"),
    ("input: {shape: [3, 4]}\nlayers:\n  - Permute: {dims: [1, 3]}\n", "dims must be a permutation of 1..2"),
    ("input: {shape: [9, 4]}\nlayers:\n  - PositionEmbedding: {sequence_length: 8}\n", "sequence_length 8 but its input has 9"),
    ("input: {shape: [3, 4]}\nlayers:\n  - Rescaling: {scale: [1.0, 2.0]}\n", "Rescaling scale has 2 values"),
    ("input: {shape: [3, 4]}\nlayers:\n  - SpatialDropout2D: {rate: 0.1}\n", "SpatialDropout2D expects inputs of rank 4"),
    ("input: {shape: [3, 4]}\nlayers:\n  - GaussianNoise: {stddev: -1.0}\n", "stddev"),
])
def test_located_errors(text, message):
    with pytest.raises(SpecError) as e:
        layerc.build(parse_spec(text))
    assert message in str(e.value) and "<spec>:3:" in str(e.value)


# -- noise ------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, shape", CASES[5:], ids=lambda c: getattr(c, "type", None))
def test_noise_is_identity_at_inference(spec, shape):
    layer = build(spec, shape)
    X = np.random.default_rng(1).standard_normal((2, *shape))
    Y, back = layer.forward(X, False)
    assert Y is X
    dY = np.ones_like(X)
    assert back(dY) is dY


def test_gaussian_noise_statistics_and_seeding():
    X = np.zeros((200, 500), np.float32)
    Y, back = build(S.GaussianNoise(stddev=0.3), (500,), "float32", seed=5).forward(X, True)
    assert Y.dtype == np.float32
    assert abs(Y.mean()) < 3e-3 and abs(Y.std() - 0.3) < 3e-3
    dY = np.ones_like(X)
    assert back(dY) is dY  # additive noise: the gradient passes unchanged
    again, _ = build(S.GaussianNoise(stddev=0.3), (500,), "float32", seed=5).forward(X, True)
    other, _ = build(S.GaussianNoise(stddev=0.3), (500,), "float32", seed=6).forward(X, True)
    np.testing.assert_array_equal(Y, again)
    assert not np.array_equal(Y, other)


@pytest.mark.parametrize("spec, shape, shared", [
    (S.SpatialDropout1D(rate=0.3), (7, 400), (1,)),
    (S.SpatialDropout2D(rate=0.3), (3, 4, 400), (1, 2)),
    (S.SpatialDropout2D(rate=0.3, data_format="channels_first"), (400, 3, 4), (2, 3)),
])
def test_spatial_dropout_drops_whole_channels(spec, shape, shared):
    X = np.ones((20, *shape), np.float32)
    Y, back = build(spec, shape, "float32").forward(X, True)
    # one value per sample and channel, constant over the shared (spatial) axes
    np.testing.assert_array_equal(Y, np.broadcast_to(Y.max(axis=shared, keepdims=True), Y.shape))
    assert set(np.unique(Y)) == {0, np.float32(1 / 0.7)}
    assert abs((Y != 0).mean() - 0.7) < 0.02
    np.testing.assert_array_equal(back(np.full_like(X, 2)), 2 * Y)


NOISY = """
seed: 3
input: {shape: [6, 4]}
layers:
  - GaussianNoise: {stddev: 0.2}
  - SpatialDropout1D: {rate: 0.3}
  - MultiHeadAttention: {num_heads: 2, key_dim: 2, dropout: 0.3}
  - TimeDistributed: {layer: {Dropout: {rate: 0.3}}}
  - Flatten
  - Dense: {units: 1}
train: {optimizer: adam, loss: mse, batch_size: 8}
"""


def test_noise_layers_resume_exactly():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 6, 4)).astype(np.float32), rng.standard_normal((8, 1)).astype(np.float32)
    straight = Trainer(layerc.build(parse_spec(NOISY)), parse_spec(NOISY).train)
    for _ in range(4):
        straight.train_step(x, y)
    first = Trainer(layerc.build(parse_spec(NOISY)), parse_spec(NOISY).train)
    for _ in range(2):
        first.train_step(x, y)
    arrays, meta = first.state()
    arrays = {k: v.copy() for k, v in arrays.items()}
    resumed = Trainer(layerc.build(parse_spec(NOISY)), parse_spec(NOISY).train)
    resumed.model.build()
    resumed.load_state(arrays, meta)
    for _ in range(2):
        resumed.train_step(x, y)
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- masks and Keras 3 parity -------------------------------------------------------------------

@pytest.mark.parametrize("line", ["Rescaling: {scale: 2.0}", "GaussianNoise: {stddev: 0.1}",
                                  "SpatialDropout1D: {rate: 0.2}", "Permute: {dims: [2, 1]}",
                                  "PositionEmbedding: {sequence_length: 5}"])
def test_masks_follow_keras(keras, line):
    from keras.src.backend import get_keras_mask

    spec = parse_spec(f"input: {{shape: [5, 4]}}\nlayers:\n  - {line}\n").layers[0]
    x = np.array([[1, 2, 0, 0, 0], [3, 1, 4, 1, 0]], np.int32)
    e = keras.layers.Embedding(6, 4, mask_zero=True)(x)
    k = keras_layer(keras, spec)
    theirs = get_keras_mask(k(e))
    ours = build(spec, (5, 4), "float32").compute_mask(np.zeros((2, 5, 4), np.float32), x != 0)
    if theirs is None:
        assert ours is None
    else:
        np.testing.assert_array_equal(ours, keras.ops.convert_to_numpy(theirs))


def test_repeat_vector_drops_the_mask():
    layer = build(S.RepeatVector(n=2), (3,))
    assert layer.compute_mask(np.zeros((2, 3)), np.ones((2, 3), bool)) is None


SMALL = """
input: {shape: [6]}
layers:
  - Rescaling: {scale: [0.5, 1.0, 2.0, -1.0, 1.5, 0.25], offset: 0.1}
  - Dense: {units: 4, activation: tanh}
  - RepeatVector: {n: 3}
  - Permute: {dims: [2, 1]}
  - GaussianNoise: {stddev: 0.5}
  - SpatialDropout1D: {rate: 0.4}
  - Reshape: {target_shape: [4, 3, 1]}
  - SpatialDropout2D: {rate: 0.4}
  - Flatten
  - Dense: {units: 1}
train: {optimizer: {type: sgd, learning_rate: 0.1}, loss: mse, batch_size: 5}
"""


def test_small_layers_match_keras_forward_and_summary(keras):
    model = layerc.build(parse_spec(SMALL))
    randomise(model)
    km, layers = twin(keras, model)
    x = np.random.default_rng(2).standard_normal((5, 6)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), atol=1e-5)
    same_summary(model, layers)


def test_three_sgd_steps_equal_keras(keras):
    # noise draws differ between libraries: the noise layers are at rate/stddev 0 here (their
    # training-mode gradients are checked above by finite differences)
    text = SMALL.replace("stddev: 0.5", "stddev: 0.0").replace("rate: 0.4", "rate: 0.0")
    model = layerc.build(parse_spec(text))
    randomise(model)
    rng = np.random.default_rng(3)
    sgd_steps_match(keras, model, rng.standard_normal((5, 6)).astype(np.float32),
                    rng.standard_normal((5, 1)).astype(np.float32), "mse")


def test_position_embedding_in_a_masked_model_matches_keras(keras):
    model = layerc.build(parse_spec("""
input: {shape: [6], dtype: int32}
layers:
  - Embedding: {input_dim: 12, output_dim: 4, mask_zero: true}
  - PositionEmbedding: {sequence_length: 8}
  - GlobalAveragePooling1D
  - Dense: {units: 1, activation: sigmoid}
train: {optimizer: {type: sgd, learning_rate: 0.5}, loss: binary_crossentropy, batch_size: 4}
"""))
    randomise(model, scale=0.5)
    x = np.array([[1, 2, 0, 0, 0, 0], [3, 4, 5, 6, 7, 8], [9, 0, 0, 0, 0, 0], [2, 2, 2, 0, 0, 0]], np.int32)
    km, layers = twin(keras, model)
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), atol=1e-6)
    same_summary(model, layers)
    sgd_steps_match(keras, model, x, np.array([[1], [0], [1], [0]], np.float32), "binary_crossentropy")

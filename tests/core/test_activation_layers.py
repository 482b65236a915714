"""Keras's activation layers (ReLU, LeakyReLU, PReLU, ELU, Softmax) and ConvNeXt's LayerScale:
float64 gradients, literal values, Keras 3 forward parity for every option, summary counts and
three SGD steps equal to Keras's."""
from __future__ import annotations

import numpy as np
import pytest

import layerc
from layerc.core.registry import make_layer
from layerc.spec import SpecError, parse_spec
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients
from tests.core.keras_twin import keras_layer, randomise, same_summary, sgd_steps_match, twin

CASES = [
    (S.ReLU(), (6,)),
    (S.ReLU(max_value=0.8), (6,)),
    (S.ReLU(negative_slope=0.1), (6,)),
    (S.ReLU(threshold=0.3), (6,)),
    (S.ReLU(max_value=1.0, negative_slope=0.2, threshold=0.25), (2, 5)),
    (S.ReLU(max_value=6.0), (6,)),
    (S.LeakyReLU(), (6,)),
    (S.LeakyReLU(negative_slope=0.05), (3, 2)),
    (S.PReLU(), (4,)),
    (S.PReLU(alpha_initializer="random_uniform"), (3, 3, 2)),
    (S.PReLU(alpha_initializer="random_uniform", shared_axes=[1, 2]), (3, 3, 2)),
    (S.PReLU(alpha_initializer="random_uniform", shared_axes=2), (3, 4)),
    (S.ELU(), (6,)),
    (S.ELU(alpha=0.4), (2, 3)),
    (S.Softmax(), (5,)),
    (S.Softmax(axis=1), (3, 4)),
    (S.Softmax(axis=[1, 2]), (3, 4)),
    (S.Softmax(axis=-2), (2, 3, 4)),
    (S.LayerScale(init_values=0.5, projection_dim=3), (4, 3)),
]
IDS = [f"{s.type}-{i}" for i, (s, _) in enumerate(CASES)]


def build(spec, shape, dtype="float64", seed=0):
    layer = make_layer(spec, "layer", seed, dtype)
    layer.build(tuple(shape))
    return layer


def inputs(shape, n=4, seed=0):
    # away from the kinks (0, threshold, max_value), where a finite difference straddles them
    x = np.random.default_rng(seed).uniform(-2, 2, (n, *shape))
    for kink in (0.0, 0.25, 0.3, 0.8, 1.0):
        x[np.abs(x - kink) < 1e-3] += 0.01
    return x


@pytest.mark.parametrize("spec, shape", CASES, ids=IDS)
def test_gradients(spec, shape):
    layer = build(spec, shape)
    if "alpha" in layer.weights:
        layer.weights["alpha"][...] = np.random.default_rng(1).uniform(0.05, 0.5, layer.weights["alpha"].shape)
    X = inputs(shape)
    Y, _ = layer.forward(X, True)
    assert Y.shape[1:] == layer.output_shape(shape) and Y.dtype == np.float64
    assert check_layer_gradients(layer, X) > 0


def test_literal_values():
    x = np.array([[-10.0, -5.0, 0.0, 0.2, 5.0, 10.0]])
    f = lambda spec: build(spec, (6,)).forward(x, False)[0][0].tolist()  # noqa: E731
    assert f(S.ReLU()) == [0, 0, 0, 0.2, 5, 10]
    assert f(S.ReLU(negative_slope=0.5)) == [-5, -2.5, 0, 0.2, 5, 10]
    assert f(S.ReLU(max_value=5.0)) == [0, 0, 0, 0.2, 5, 5]
    assert f(S.ReLU(threshold=5.0)) == [0, 0, 0, 0, 0, 10]  # Keras's doc example
    np.testing.assert_allclose(f(S.ReLU(threshold=1.0, negative_slope=0.5)), [-5.5, -3, -0.5, -0.4, 5, 10])
    assert f(S.LeakyReLU()) == pytest.approx([-3, -1.5, 0, 0.2, 5, 10])
    np.testing.assert_allclose(f(S.ELU(alpha=2.0)), [2 * np.expm1(-10), 2 * np.expm1(-5), 0, 0.2, 5, 10])
    assert f(S.PReLU()) == [0, 0, 0, 0.2, 5, 10]  # alpha starts at zeros, as Keras's
    np.testing.assert_allclose(build(S.Softmax(), (3,)).forward(np.array([[1.0, 2.0, 1.0]]), False)[0],
                               [[0.21194157, 0.5761169, 0.21194157]], rtol=1e-6)
    assert build(S.PReLU(shared_axes=[1, 2]), (5, 4, 3)).weights["alpha"].shape == (1, 1, 3)
    ls = build(S.LayerScale(init_values=1e-6, projection_dim=3), (2, 3))
    np.testing.assert_array_equal(ls.weights["gamma"], [1e-6] * 3)


def test_softmax_mask_zeroes_masked_positions():
    layer = build(S.Softmax(), (4,))
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    mask = np.array([[True, True, False, False]])
    y, back = layer.forward(x, False, mask)
    np.testing.assert_allclose(y, [[np.exp(1) / (np.exp(1) + np.exp(2)), np.exp(2) / (np.exp(1) + np.exp(2)), 0, 0]])
    assert check_layer_gradients(layer, x, mask=mask) > 0


@pytest.mark.parametrize("text, message", [
    ("input: {shape: [4]}\nlayers:\n  - Softmax: {axis: 0}\n", "cannot normalise over the batch axis"),
    ("input: {shape: [4]}\nlayers:\n  - Softmax: {axis: 3}\n", "Softmax axis 3 is out of range"),
    ("input: {shape: [3, 4]}\nlayers:\n  - PReLU: {shared_axes: [3]}\n", "PReLU shared_axes 3 is out of range"),
    ("input: {shape: [null, 4]}\nlayers:\n  - PReLU\n", "PReLU needs a known size"),
    ("input: {shape: [3, 4]}\nlayers:\n  - LayerScale: {init_values: 0.1, projection_dim: 3}\n",
     "LayerScale has projection_dim 3 but its input's last axis is 4"),
    ("input: {shape: [4]}\nlayers:\n  - ReLU: {max_value: -1.0}\n", "max_value"),
    ("input: {shape: [4]}\nlayers:\n  - LeakyReLU: {negative_slope: -0.1}\n", "negative_slope"),
])
def test_located_errors(text, message):
    with pytest.raises(SpecError) as e:
        layerc.build(parse_spec(text))
    assert message in str(e.value) and "<spec>:3:" in str(e.value), str(e.value)


@pytest.mark.parametrize("spec, shape", CASES, ids=IDS)
def test_forward_matches_keras(keras, spec, shape):
    layer = build(spec, shape, "float32")
    if layer.weights:
        for w in layer.weights.values():
            w[...] = np.random.default_rng(2).uniform(-0.5, 0.5, w.shape)
    k = keras_layer(keras, spec)
    x = inputs(shape, n=5, seed=3).astype(np.float32)
    k(x[:1])
    k.set_weights(list(layer.weights.values()))
    np.testing.assert_allclose(layer.forward(x, False)[0], keras.ops.convert_to_numpy(k(x)), rtol=1e-6, atol=1e-6)
    assert sum(w.size for w in layer.weights.values()) == k.count_params()


def test_softmax_mask_matches_keras(keras):
    # Keras aligns the mask with the input from the last axis, so a (batch, steps) mask fits
    # a (batch, steps) input (a (batch, steps, features) one is refused by both)
    spec = S.Softmax()
    x = np.random.default_rng(5).standard_normal((2, 5)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 0]], bool)
    theirs = keras.ops.convert_to_numpy(keras_layer(keras, spec)(x, mask=mask))
    np.testing.assert_allclose(build(spec, (5,), "float32").forward(x, False, mask)[0], theirs, atol=1e-6)
    with pytest.raises(ValueError, match="does not broadcast"):
        build(spec, (5, 3), "float32").forward(np.zeros((2, 5, 3), np.float32), False, mask)


MODEL = """
input: {shape: [4, 4, 3]}
layers:
  - Conv2D: {filters: 4, kernel_size: 2}
  - PReLU: {shared_axes: [1, 2]}
  - LayerScale: {init_values: 0.5, projection_dim: 4}
  - ReLU: {max_value: 1.5, negative_slope: 0.1, threshold: 0.05}
  - Conv2D: {filters: 3, kernel_size: 2}
  - ELU: {alpha: 0.7}
  - LeakyReLU
  - Flatten
  - Dense: {units: 6}
  - PReLU
  - Dense: {units: 3}
  - Softmax
train: {optimizer: {type: sgd, learning_rate: 0.1}, loss: categorical_crossentropy, batch_size: 6}
"""


def test_model_matches_keras_forward_summary_and_three_sgd_steps(keras):
    model = layerc.build(parse_spec(MODEL))
    randomise(model, scale=0.5)
    km, layers = twin(keras, model)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), atol=1e-6)
    same_summary(model, layers)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 6)]
    sgd_steps_match(keras, model, x, y, "categorical_crossentropy")

"""TimeDistributed: folding time into batch, weights, masks, gradients, Keras 3 parity."""
from __future__ import annotations

import numpy as np
import pytest

import layerc
from layerc.core.registry import make_layer
from layerc.spec import SpecError, parse_spec
from tests.core.gradcheck import check_layer_gradients
from tests.core.keras_twin import randomise, same_summary, sgd_steps_match, twin


def wrapped(line, shape, dtype="float64"):
    spec = parse_spec(f"input: {{shape: {list(shape)}}}\nlayers:\n  - TimeDistributed: {{layer: {line}}}\n").layers[0]
    layer = make_layer(spec, "td", 0, dtype)
    layer.build(tuple(shape))
    return layer


@pytest.mark.parametrize("line, shape", [
    ("{Dense: {units: 3, activation: tanh}}", (4, 5)),
    ("{Conv2D: {filters: 2, kernel_size: 3, padding: same}}", (3, 5, 5, 2)),
    ("{Conv1D: {filters: 2, kernel_size: 2}}", (3, 6, 2)),
    ("{LSTM: {units: 3}}", (2, 4, 3)),
    ("Flatten", (3, 2, 2)),
    ("{TimeDistributed: {layer: {Dense: {units: 2}}}}", (2, 3, 4)),
    ("{Dropout: {rate: 0.5}}", (3, 4)),
])
@pytest.mark.parametrize("training", [False, True])
def test_gradients_and_output_shape(line, shape, training):
    layer = wrapped(line, shape)
    X = np.random.default_rng(0).standard_normal((2, *shape))
    Y, _ = layer.forward(X, training)
    assert Y.shape[1:] == layer.output_shape(shape)
    assert check_layer_gradients(layer, X, training=training) > 0


def test_each_step_is_the_wrapped_layer_on_that_step():
    layer = wrapped("{Dense: {units: 3}}", (4, 5))
    X = np.random.default_rng(1).standard_normal((2, 4, 5))
    Y, _ = layer.forward(X, False)
    W, b = layer.weights["kernel"], layer.weights["bias"]
    for t in range(4):
        np.testing.assert_allclose(Y[:, t], X[:, t] @ W + b)
    assert list(layer.weights) == ["kernel", "bias"] and W.shape == (5, 3)


def test_the_mask_passes_on_and_reaches_a_wrapped_recurrent_layer():
    layer = wrapped("{LSTM: {units: 3}}", (2, 4, 3))
    X = np.random.default_rng(2).standard_normal((2, 2, 4, 3))
    mask = np.ones((2, 2, 4), bool)
    mask[:, :, 2:] = False
    Y, _ = layer.forward(X, False, mask)
    X2 = X.copy()
    X2[:, :, 2:] = 9.0  # masked steps of the inner sequences are skipped
    Y2, _ = layer.forward(X2, False, mask)
    np.testing.assert_allclose(Y, Y2)
    assert layer.compute_mask(X, mask) is mask


def test_errors_are_located():
    with pytest.raises(SpecError, match="TimeDistributed needs inputs of at least"):
        layerc.build(parse_spec("input: {shape: [4]}\nlayers:\n  - TimeDistributed: {layer: {Dense: {units: 2}}}\n"))
    with pytest.raises(SpecError, match="TimeDistributed wraps a one-input layer, not Add"):
        layerc.build(parse_spec("input: {shape: [4, 3]}\nlayers:\n  - TimeDistributed: {layer: Add}\n"))
    with pytest.raises(SpecError, match=r"<spec>:3:39: error: unknown key 'unit'"):
        parse_spec("input: {shape: [4, 3]}\nlayers:\n  - TimeDistributed: {layer: {Dense: {unit: 2}}}\n")
    with pytest.raises(SpecError, match="give `inputs` to TimeDistributed"):
        parse_spec("input: {shape: [4, 3]}\nlayers:\n  - TimeDistributed: {layer: {Dense: {units: 2, inputs: x}}}\n")


def test_frozen_wrapper_trains_nothing():
    model = layerc.build(parse_spec("input: {shape: [4, 3]}\nlayers:\n"
                                    "  - TimeDistributed: {layer: {Dense: {units: 2}}, trainable: false}\n"))
    assert model.count_trainable() == 0 and model.trainable_slots() == []


SPEC = """
input: {shape: [3, 6, 6, 2]}
layers:
  - TimeDistributed: {layer: {Conv2D: {filters: 3, kernel_size: 3, activation: relu}}}
  - TimeDistributed: {layer: {MaxPooling2D: {pool_size: 2}}}
  - TimeDistributed: {layer: Flatten}
  - TimeDistributed: {layer: {Dense: {units: 4, activation: tanh}}}
  - GRU: {units: 3}
  - Dense: {units: 2, activation: softmax}
train: {optimizer: {type: sgd, learning_rate: 0.1}, loss: sparse_categorical_crossentropy, batch_size: 5}
"""


def test_video_style_model_matches_keras(keras):
    model = layerc.build(parse_spec(SPEC))
    randomise(model)
    km, layers = twin(keras, model)
    x = np.random.default_rng(3).standard_normal((5, 3, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), atol=1e-5)
    same_summary(model, layers)
    sgd_steps_match(keras, model, x,
                    np.array([0, 1, 1, 0, 1]), "sparse_categorical_crossentropy")


def test_masked_time_distributed_dense_matches_keras(keras):
    model = layerc.build(parse_spec("""
input: {shape: [7], dtype: int32}
layers:
  - Embedding: {input_dim: 20, output_dim: 4, mask_zero: true}
  - TimeDistributed: {layer: {Dense: {units: 5, activation: relu}}}
  - LSTM: {units: 3}
"""))
    randomise(model)
    km, _ = twin(keras, model)
    x = np.random.default_rng(4).integers(1, 20, (4, 7)).astype(np.int32)
    x[0, 3:] = x[2, 5:] = 0
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), atol=1e-5)

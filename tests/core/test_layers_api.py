"""One table over the whole layer registry (thinc's test_layers_api): build each layer from
a spec, run forward and backward in float32 and float64, check the output shape against
the inferred one, round-trip the weights, and gradient-check it in float64."""
import numpy as np
import pytest

import layerc
from layerc.core.registry import LAYERS
from layerc.spec import parse_spec

from .gradcheck import check_layer_gradients

# type -> (input shape(s), layer line, input dtype)
CASES = {
    "Dense": ([5], "Dense: {units: 3, activation: tanh}", "float"),
    "Conv1D": ([9, 2], "Conv1D: {filters: 3, kernel_size: 3, padding: same}", "float"),
    "Conv2D": ([6, 6, 2], "Conv2D: {filters: 3, kernel_size: 3, strides: 2}", "float"),
    "MaxPooling1D": ([8, 2], "MaxPooling1D", "float"),
    "MaxPooling2D": ([6, 6, 2], "MaxPooling2D", "float"),
    "AveragePooling2D": ([6, 6, 2], "AveragePooling2D: {pool_size: 3, strides: 2, padding: same}", "float"),
    "GlobalAveragePooling1D": ([7, 3], "GlobalAveragePooling1D", "float"),
    "GlobalAveragePooling2D": ([4, 4, 3], "GlobalAveragePooling2D", "float"),
    "GlobalMaxPooling2D": ([4, 4, 3], "GlobalMaxPooling2D", "float"),
    "SimpleRNN": ([5, 3], "SimpleRNN: {units: 4}", "float"),
    "LSTM": ([5, 3], "LSTM: {units: 4, return_sequences: true}", "float"),
    "GRU": ([5, 3], "GRU: {units: 4}", "float"),
    "Bidirectional": ([5, 3], "Bidirectional: {layer: {LSTM: {units: 3}}}", "float"),
    "Dropout": ([6], "Dropout: {rate: 0.4}", "float"),
    "BatchNormalization": ([6], "BatchNormalization", "float"),
    "LayerNormalization": ([6], "LayerNormalization", "float"),
    "Embedding": ([7], "Embedding: {input_dim: 10, output_dim: 4}", "int"),
    "Flatten": ([3, 4], "Flatten", "float"),
    "Reshape": ([12], "Reshape: {target_shape: [3, -1]}", "float"),
    "Activation": ([6], "Activation: {activation: selu}", "float"),
    "Add": ([[4], [4]], "Add", "float"),
    "Concatenate": ([[4], [3]], "Concatenate", "float"),
    # transposed, depthwise and separable convolutions, resampling, more merges
    "Conv1DTranspose": ([5, 2], "Conv1DTranspose: {filters: 3, kernel_size: 3, strides: 2}", "float"),
    "Conv2DTranspose": ([4, 3, 2], "Conv2DTranspose: {filters: 3, kernel_size: 3, strides: 2, padding: same}", "float"),
    "DepthwiseConv2D": ([6, 6, 2], "DepthwiseConv2D: {kernel_size: 3, depth_multiplier: 2}", "float"),
    "SeparableConv2D": ([6, 6, 2], "SeparableConv2D: {filters: 3, kernel_size: 3, strides: 2}", "float"),
    "UpSampling1D": ([4, 2], "UpSampling1D", "float"),
    "UpSampling2D": ([3, 3, 2], "UpSampling2D: {interpolation: bilinear}", "float"),
    "ZeroPadding1D": ([4, 2], "ZeroPadding1D", "float"),
    "ZeroPadding2D": ([3, 3, 2], "ZeroPadding2D: {padding: [[1, 0], [0, 2]]}", "float"),
    "Cropping1D": ([5, 2], "Cropping1D", "float"),
    "Cropping2D": ([5, 5, 2], "Cropping2D: {cropping: 1}", "float"),
    "AveragePooling1D": ([7, 2], "AveragePooling1D: {pool_size: 2}", "float"),
    "GlobalMaxPooling1D": ([7, 3], "GlobalMaxPooling1D", "float"),
    "Multiply": ([[4], [4]], "Multiply", "float"),
    "Subtract": ([[4], [4]], "Subtract", "float"),
    "Average": ([[4], [4]], "Average", "float"),
    "Maximum": ([[4], [4]], "Maximum", "float"),
    "Minimum": ([[4], [4]], "Minimum", "float"),
    "MultiHeadAttention": ([5, 4], "MultiHeadAttention: {num_heads: 2, key_dim: 3, dropout: 0.3}", "float"),
    "TimeDistributed": ([3, 4], "TimeDistributed: {layer: {Dense: {units: 2, activation: tanh}}}", "float"),
    "PositionEmbedding": ([5, 3], "PositionEmbedding: {sequence_length: 6}", "float"),
    "Rescaling": ([4], "Rescaling: {scale: 0.5, offset: -1.0}", "float"),
    "RepeatVector": ([4], "RepeatVector: {n: 3}", "float"),
    "Permute": ([3, 4, 2], "Permute: {dims: [3, 1, 2]}", "float"),
    "GaussianNoise": ([5], "GaussianNoise: {stddev: 0.2}", "float"),
    "SpatialDropout1D": ([5, 3], "SpatialDropout1D: {rate: 0.4}", "float"),
    "SpatialDropout2D": ([4, 4, 3], "SpatialDropout2D: {rate: 0.4}", "float"),
    # Keras's activation layers and ConvNeXt's LayerScale
    "ReLU": ([6], "ReLU: {max_value: 1.0, negative_slope: 0.1}", "float"),
    "LeakyReLU": ([6], "LeakyReLU", "float"),
    "PReLU": ([3, 4], "PReLU: {alpha_initializer: random_uniform, shared_axes: 1}", "float"),
    "ELU": ([6], "ELU: {alpha: 0.5}", "float"),
    "Softmax": ([3, 4], "Softmax: {axis: 1}", "float"),
    "LayerScale": ([3, 4], "LayerScale: {init_values: 0.2, projection_dim: 4}", "float"),
    "Normalization": ([3, 4], "Normalization: {axis: [1, 2], mean: 0.5, variance: 2.0}", "float"),
}


def test_every_registered_layer_has_a_row():
    assert set(CASES) == set(LAYERS)


def build(type_name, dtype):
    shapes, line, kind = CASES[type_name]
    multi = isinstance(shapes[0], list)
    in_dtype = "int32" if kind == "int" else dtype
    if multi:
        inputs = "inputs: {" + ", ".join(f"in{i}: {{shape: {s}}}" for i, s in enumerate(shapes)) + "}\n"
        layer = f"  - {{type: {line}, inputs: [{', '.join(f'in{i}' for i in range(len(shapes)))}]}}\n" \
            if ":" not in line else None
        body = inputs + f"dtype: {dtype}\nlayers:\n" + (layer or "")
    else:
        body = f"dtype: {dtype}\ninput: {{shape: {shapes}, dtype: {in_dtype}}}\nlayers:\n  - {line}\n"
    model = layerc.build(parse_spec(body)).build()
    rng = np.random.default_rng(0)
    xs = [rng.integers(0, 10, (4, *s)).astype(np.int32) if kind == "int" else rng.standard_normal((4, *s)).astype(dtype)
          for s in (shapes if multi else [shapes])]
    return model, xs if multi else xs[0]


@pytest.mark.parametrize("type_name", sorted(CASES))
@pytest.mark.parametrize("training", [False, True])
def test_forward_backward_shapes_and_weights_round_trip(type_name, training):
    model, x = build(type_name, "float32")
    y, backprop = model.forward(x, training=training, input_grads=True)
    assert y.shape[1:] == model.nodes[-1].output_shape
    assert y.dtype == np.float32, "float32 stays float32"
    dx = backprop(np.ones_like(y))
    for a, d in zip(x if isinstance(x, list) else [x], dx if isinstance(dx, list) else [dx]):
        if np.issubdtype(a.dtype, np.floating):
            assert d.shape == a.shape and d.dtype == np.float32
    weights = model.get_weights()
    assert sum(w.size for w in weights) == model.count_params()
    model.set_weights([w + 1 for w in weights])
    assert all(np.array_equal(a + 1, b) for a, b in zip(weights, model.get_weights()))


@pytest.mark.parametrize("type_name", sorted(CASES))
@pytest.mark.parametrize("training", [False, True])
def test_float64_gradients(type_name, training):
    model, x = build(type_name, "float64")
    layer = model.nodes[-1].layer
    assert check_layer_gradients(layer, x, training=training) > 0

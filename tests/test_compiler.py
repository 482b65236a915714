"""Shape inference and parameter counts for every layer type, against figures from Keras 3.

Each row was printed by Keras 3.15 (torch backend) for the same layer on the same input:
output shape without the batch axis, count_params(), non-trainable count.
"""
import pytest

import layerc
from layerc.spec.names import snake_case
from layerc.spec import SpecError, parse_spec

KERAS = [
    ([64], "Dense: {units: 10}", (10,), 650, 0),
    ([5, 64], "Dense: {units: 10, use_bias: false}", (5, 10), 640, 0),
    ([28, 28, 1], "Conv2D: {filters: 32, kernel_size: 3}", (26, 26, 32), 320, 0),
    ([28, 28, 3], "Conv2D: {filters: 16, kernel_size: [5, 3], strides: 2, padding: same}", (14, 14, 16), 736, 0),
    ([28, 28, 3], "Conv2D: {filters: 8, kernel_size: 3, dilation_rate: 2}", (24, 24, 8), 224, 0),
    ([100, 8], "Conv1D: {filters: 16, kernel_size: 5, strides: 2}", (48, 16), 656, 0),
    ([100, 8], "Conv1D: {filters: 16, kernel_size: 3, padding: causal, dilation_rate: 2}", (100, 16), 400, 0),
    ([26, 26, 32], "MaxPooling2D", (13, 13, 32), 0, 0),
    ([7, 7, 3], "MaxPooling2D: {pool_size: 3, strides: 2, padding: same}", (4, 4, 3), 0, 0),
    ([9, 9, 3], "AveragePooling2D: {pool_size: 2}", (4, 4, 3), 0, 0),
    ([11, 4], "MaxPooling1D", (5, 4), 0, 0),
    ([11, 4], "GlobalAveragePooling1D", (4,), 0, 0),
    ([7, 7, 4], "GlobalAveragePooling2D", (4,), 0, 0),
    ([7, 7, 4], "GlobalMaxPooling2D: {keepdims: true}", (1, 1, 4), 0, 0),
    ([None, 64], "LSTM: {units: 128}", (128,), 98816, 0),
    ([20, 64], "LSTM: {units: 32, return_sequences: true}", (20, 32), 12416, 0),
    ([None, 32], "GRU: {units: 64}", (64,), 18816, 0),
    ([None, 32], "GRU: {units: 64, reset_after: false}", (64,), 18624, 0),
    ([None, 16], "SimpleRNN: {units: 8}", (8,), 200, 0),
    ([None, 16], "Bidirectional: {layer: {LSTM: {units: 8, return_sequences: true}}}", (None, 16), 1600, 0),
    ([None, 16], "Bidirectional: {layer: {GRU: {units: 8}}, merge_mode: sum}", (8,), 1248, 0),
    ([64], "Dropout: {rate: 0.5}", (64,), 0, 0),
    ([64], "BatchNormalization", (64,), 256, 128),
    ([5, 5, 64], "BatchNormalization", (5, 5, 64), 256, 128),
    ([10, 64], "LayerNormalization", (10, 64), 128, 0),
    ([5, 5, 64], "Flatten", (1600,), 0, 0),
    ([784], "Reshape: {target_shape: [28, 28, 1]}", (28, 28, 1), 0, 0),
    ([784], "Reshape: {target_shape: [-1, 28]}", (28, 28), 0, 0),
    ([10], "Activation: {activation: relu}", (10,), 0, 0),
]


def one_layer(shape, layer, dtype="float32"):
    shape = "[" + ", ".join("null" if d is None else str(d) for d in shape) + "]"
    return parse_spec(f"input: {{shape: {shape}, dtype: {dtype}}}\nlayers:\n  - {layer}\n")


@pytest.mark.parametrize("shape,layer,out,params,frozen", KERAS, ids=[r[1] for r in KERAS])
def test_shapes_and_params_match_keras(shape, layer, out, params, frozen):
    model = layerc.build(one_layer(shape, layer))
    node = model.nodes[0]
    assert node.output_shape == out
    assert model.count_params() == params
    assert model.count_params() - model.count_trainable() == frozen
    assert not model.built, "compiling must not allocate weights"


def test_embedding_takes_integer_ids():
    model = layerc.build(one_layer([80], "Embedding: {input_dim: 5000, output_dim: 64}", "int32"))
    assert model.nodes[0].output_shape == (80, 64)
    assert model.count_params() == 320000


def test_seed_network_has_kerass_121930_params():
    model = layerc.build(layerc.load_spec("specs/mnist_cnn.yaml"))
    assert model.count_params() == 121930
    assert [n.name for n in model.nodes] == ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1",
                                             "flatten", "dense", "dropout", "dense_1"]
    assert [n.output_shape for n in model.nodes] == [(26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64),
                                                     (1600,), (64,), (64,), (10,)]


RESIDUAL = """
inputs: {image: {shape: [8, 8, 3]}, extra: {shape: [4]}}
layers:
  - Conv2D: {filters: 4, kernel_size: 3, padding: same, inputs: image, name: a}
  - BatchNormalization
  - Activation: {activation: relu}
  - Conv2D: {filters: 4, kernel_size: 3, padding: same}
  - Add: {inputs: [a, conv2d]}
  - GlobalAveragePooling2D
  - Concatenate: {inputs: [global_average_pooling2d, extra]}
  - Dense: {units: 2, activation: softmax}
"""


def test_graph_with_skip_connection_and_two_inputs():
    model = layerc.build(parse_spec(RESIDUAL))
    names = [n.name for n in model.nodes]
    assert names == ["a", "batch_normalization", "activation", "conv2d", "add", "global_average_pooling2d",
                     "concatenate", "dense"]
    assert model.graph.shapes["concatenate"] == (8,)
    # Keras: 112 + 16 + 148 + 18 = 294 params, 8 non-trainable
    assert model.count_params() == 294 and model.count_trainable() == 286
    assert not model.graph.sequential


@pytest.mark.parametrize("type_name,name", [("Conv2D", "conv2d"), ("MaxPooling2D", "max_pooling2d"),
                                            ("SimpleRNN", "simple_rnn"), ("LSTM", "lstm"),
                                            ("BatchNormalization", "batch_normalization"),
                                            ("GlobalAveragePooling1D", "global_average_pooling1d")])
def test_keras_default_names(type_name, name):
    assert snake_case(type_name) == name


def errors(text):
    with pytest.raises(SpecError) as e:
        layerc.build(parse_spec(text, "s.yaml"))
    return e.value.diagnostics


def test_conv_fed_a_flat_tensor_names_the_layer_the_shape_and_a_fix():
    (d,) = errors("input: {shape: [784]}\nlayers:\n  - Dense: {units: 10}\n  - Conv2D: {filters: 2, kernel_size: 3}\n")
    assert (d.line, d.col) == (4, 5)
    assert "conv2d" in d.message and "(None, 10)" in d.message and "dense" in d.message
    assert d.hint


def test_add_over_mismatched_shapes():
    (d,) = errors("input: {shape: [8]}\nlayers:\n  - Dense: {units: 4, name: a}\n  - Dense: {units: 5, name: b, inputs: input_layer}\n"
                  "  - Add: {inputs: [a, b]}\n")
    assert (d.line, d.col) == (5, 5)
    assert "(None, 4)" in d.message and "(None, 5)" in d.message


def test_duplicate_names_dangling_inputs_and_cycles_are_located():
    (d,) = errors("input: {shape: [8]}\nlayers:\n  - Dense: {units: 4, name: a}\n  - Dense: {units: 4, name: a}\n")
    assert d.line == 4 and "duplicate layer name 'a'" in d.message
    (d,) = errors("input: {shape: [8]}\nlayers:\n  - Dense: {units: 4, name: a}\n  - Dense: {units: 4, inputs: aa}\n")
    assert (d.line, d.col) == (4, 31) and d.hint == "did you mean 'a'?"
    (d,) = errors("input: {shape: [8]}\nlayers:\n  - Dense: {units: 4, name: a, inputs: b}\n  - Dense: {units: 4, name: b, inputs: a}\n")
    assert "cycle" in d.message and "a -> b" in d.message or "b -> a" in d.message
    (d,) = errors("input: {shape: [8]}\nlayers:\n  - Dense: {units: 4}\noutputs: nope\n")
    assert (d.line, d.col) == (4, 10)


def test_a_huge_model_is_summarised_without_allocating():
    model = layerc.build(parse_spec("input: {shape: [1000]}\nlayers:\n  - Dense: {units: 1000000000}\n"))
    assert model.count_params() == 1000 * 10**9 + 10**9
    assert not model.built

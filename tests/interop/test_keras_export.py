"""`.keras` export: every layer type layerc has, written by save_keras, loads in Keras 3
(`keras.saving.load_model`) and gives layerc's outputs; a layer that cannot be exported is
one error and leaves no file."""
import json
import re
import zipfile

import numpy as np
import pytest

import layerc
from layerc.core.registry import LAYERS
from layerc.interop import keras_export
from layerc.interop.keras import KerasError, save_keras
from layerc.spec import parse_spec

from ..test_keras_parity import randomise
from .keras_oracle import assert_same, feed, inputs_for
from .test_keras_new_layers import SPECS as NEW_LAYER_SPECS

pytest.importorskip("h5py")

CNN = """
name: cnn
input: {shape: [12, 12, 2]}
layers:
  - Conv2D: {filters: 4, kernel_size: 3, activation: relu, kernel_regularizer: l2}
  - BatchNormalization: {momentum: 0.9, epsilon: 0.0001}
  - MaxPooling2D
  - Conv2D: {filters: 3, kernel_size: [2, 3], strides: 1, padding: same, activation: selu, use_bias: false}
  - AveragePooling2D: {pool_size: 2, strides: 1}
  - Dropout: {rate: 0.3, noise_shape: [1, 1, 3]}
  - Flatten
  - Dense: {units: 5, activation: softmax, trainable: false}
train: {optimizer: {adam: {learning_rate: 0.01}}, loss: sparse_categorical_crossentropy, metrics: [accuracy, auc]}
"""
GRAPH = """
inputs: {image: {shape: [8, 8, 3]}, meta: {shape: [4]}}
layers:
  - Conv2D: {filters: 4, kernel_size: 3, padding: same, inputs: image, name: stem}
  - Activation: {activation: gelu}
  - Conv2D: {filters: 4, kernel_size: 1, dilation_rate: 1}
  - Add: {inputs: [stem, conv2d]}
  - GlobalMaxPooling2D: {name: gmax}
  - GlobalAveragePooling2D: {inputs: add, name: gavg}
  - Dense: {units: 4, activation: tanh, inputs: meta, name: side, bias_regularizer: {l1: 0.1, l2: 0.2}}
  - Concatenate: {inputs: [gmax, gavg, side]}
  - LayerNormalization: {epsilon: 0.01}
  - Dense: {units: 3, activation: leaky_relu, name: head}
  - Dense: {units: 2, activation: hard_sigmoid, inputs: side, name: aux}
outputs: [head, aux]
"""
SEQUENCES = """
input: {shape: [10], dtype: int32}
layers:
  - Embedding: {input_dim: 20, output_dim: 6, mask_zero: true}
  - Bidirectional: {layer: {LSTM: {units: 4, return_sequences: true}}}
  - Bidirectional: {layer: {GRU: {units: 3, return_sequences: true}}, merge_mode: sum}
  - Bidirectional: {layer: {SimpleRNN: {units: 3, return_sequences: true}}, merge_mode: mul}
  - Bidirectional: {layer: {LSTM: {units: 3, return_sequences: true, go_backwards: true}}, merge_mode: ave}
  - LSTM: {units: 5, return_sequences: true, unit_forget_bias: false}
  - GRU: {units: 4, return_sequences: true, reset_after: false}
  - SimpleRNN: {units: 3, activation: relu}
  - Dense: {units: 2, activation: sigmoid}
"""
SIGNAL = """
input: {shape: [16, 3]}
layers:
  - Conv1D: {filters: 4, kernel_size: 3, padding: causal, activation: elu, dilation_rate: 2}
  - MaxPooling1D: {pool_size: 2}
  - Conv1D: {filters: 6, kernel_size: 2, strides: 2, activation: softplus}
  - Reshape: {target_shape: [-1, 3]}
  - GRU: {units: 4, return_sequences: true}
  - GlobalAveragePooling1D
  - Dense: {units: 2, activation: softsign}
"""
DOUBLE = """
dtype: float64
input: {shape: [5]}
layers:
  - Dense: {units: 4, activation: swish}
  - Dense: {units: 2}
"""
RESAMPLING = """
input: {shape: [7, 7, 3]}
layers:
  - Conv2DTranspose: {filters: 4, kernel_size: 3, strides: 2, padding: same, output_padding: 1, activation: relu}
  - DepthwiseConv2D: {kernel_size: 3, depth_multiplier: 2, padding: same, activation: tanh}
  - SeparableConv2D: {filters: 3, kernel_size: [2, 3], depth_multiplier: 2, strides: 2}
  - Conv2DTranspose: {filters: 3, kernel_size: [3, 2], dilation_rate: 2, use_bias: false}
  - UpSampling2D: {size: [2, 1], interpolation: bilinear}
  - ZeroPadding2D: {padding: [[1, 0], [2, 1]]}
  - Cropping2D: {cropping: [[0, 1], [1, 2]]}
  - SpatialDropout2D: {rate: 0.3}
  - GaussianNoise: {stddev: 0.2}
  - Rescaling: {scale: [0.5, 2.0, -1.0], offset: 0.1}
  - Permute: {dims: [2, 1, 3]}
  - UpSampling2D: {size: 2}
  - Flatten
  - Dense: {units: 3}
"""
STEPS = """
input: {shape: [9, 3]}
layers:
  - Conv1DTranspose: {filters: 4, kernel_size: 3, strides: 2, output_padding: 1, activation: elu}
  - UpSampling1D: {size: 2}
  - ZeroPadding1D: {padding: [2, 1]}
  - Cropping1D: {cropping: [1, 3]}
  - AveragePooling1D: {pool_size: 3, strides: 2, padding: same}
  - SpatialDropout1D: {rate: 0.2}
  - TimeDistributed: {layer: {Dense: {units: 5, activation: relu, name: inner}}}
  - Reshape: {target_shape: [-1, 5, 2]}
  - TimeDistributed: {layer: {Conv1D: {filters: 3, kernel_size: 2}}}
  - TimeDistributed: {layer: {GlobalMaxPooling1D}}
  - GlobalMaxPooling1D
  - RepeatVector: {n: 3}
  - Conv1DTranspose: {filters: 2, kernel_size: 2, padding: same, dilation_rate: 2}
  - Flatten
"""
MERGES = """
inputs: {a: {shape: [4]}, b: {shape: [4]}, c: {shape: [4]}}
layers:
  - Multiply: {inputs: [a, b, c]}
  - Subtract: {inputs: [a, b]}
  - Average: {inputs: [a, b, c]}
  - Maximum: {inputs: [multiply, subtract]}
  - Minimum: {inputs: [average, maximum, c]}
  - Dense: {units: 2}
"""
ATTENTION = """
input: {shape: [7], dtype: int32}
layers:
  - Embedding: {input_dim: 20, output_dim: 8, mask_zero: true, name: emb}
  - Dense: {units: 6, name: v}
  - Dense: {units: 5, inputs: emb, name: k}
  - MultiHeadAttention: {num_heads: 3, key_dim: 2, value_dim: 3, output_shape: 5, inputs: [emb, v, k], use_bias: false}
  - MultiHeadAttention: {num_heads: 2, key_dim: 3, use_causal_mask: true}
  - TimeDistributed: {layer: {Dense: {units: 3}}}
  - GlobalAveragePooling1D
  - Dense: {units: 2}
"""  # (Keras's MultiHeadAttention erases the masks of the tensors it is called on, so no
# masked tensor is used again after one: layerc keeps the mask there, Keras drops it)
WRAPPED = """
input: {shape: [4, 6, 3]}
layers:
  - TimeDistributed: {layer: {LSTM: {units: 3, return_sequences: true}}}
  - TimeDistributed: {layer: {Bidirectional: {layer: {GRU: {units: 2}}, merge_mode: ave}}}
"""
SPECS = {"wrapped": WRAPPED, "cnn": CNN, "graph": GRAPH, "sequences": SEQUENCES, "signal": SIGNAL, "float64": DOUBLE,
         "resampling": RESAMPLING, "steps": STEPS, "merges": MERGES, "attention": ATTENTION}
SPECS.update(NEW_LAYER_SPECS)
POSITION = """
input: {shape: [5], dtype: int32}
layers:
  - Embedding: {input_dim: 9, output_dim: 4}
  - PositionEmbedding: {sequence_length: 5, name: pos}
  - Reshape: {target_shape: [5, 2, 2]}
  - TimeDistributed: {layer: {PositionEmbedding: {sequence_length: 2}}}
"""


def exported(tmp_path, text, seed=0):
    model = layerc.build(parse_spec(text))
    randomise(model, seed)
    path = tmp_path / "model.keras"
    save_keras(model, path)
    return model, path


@pytest.mark.parametrize("name", SPECS)
def test_exported_file_loads_in_keras_with_layercs_outputs(keras, tmp_path, name):
    model, path = exported(tmp_path, SPECS[name])
    twin = keras.saving.load_model(path)
    for n in (5, 1):
        xs = inputs_for(model, n=n)
        if model.spec.dtype == "float64":
            xs = [x.astype(np.float64) for x in xs]
        assert_same(model.predict(feed(xs)), twin.predict(feed(xs), verbose=0))


def test_every_layer_type_is_exported_and_checked():
    # the one known gap, with its reason: Keras has no class to load a PositionEmbedding as
    assert set(keras_export.UNEXPORTABLE) == {"PositionEmbedding"}
    assert keras_export.EXPORTS == set(LAYERS) - set(keras_export.UNEXPORTABLE)
    covered = {layer.type for text in SPECS.values() for layer in parse_spec(text).layers}
    covered |= {layer.layer.type for text in SPECS.values() for layer in parse_spec(text).layers
                if layer.type in ("Bidirectional", "TimeDistributed")}
    assert covered == keras_export.EXPORTS


def test_position_embedding_is_refused_with_its_line_and_reason(tmp_path):
    model = layerc.build(parse_spec(POSITION))
    with pytest.raises(KerasError) as e:
        save_keras(model, tmp_path / "m.keras")
    reason = "Keras's core has no PositionEmbedding \\(keras_hub's is another package\\)"
    assert re.fullmatch(rf"2 layers cannot be exported to Keras: PositionEmbedding 'pos' \(<spec>:5:\d+\): "
                        rf"{reason}, TimeDistributed 'time_distributed' \(<spec>:7:\d+\): {reason}",
                        str(e.value)), str(e.value)
    assert not list(tmp_path.iterdir())


def test_sequential_specs_export_as_sequential_and_graphs_as_functional(tmp_path):
    _, path = exported(tmp_path, CNN)
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    assert config["class_name"] == "Sequential"
    assert config["config"]["layers"][0]["class_name"] == "InputLayer"
    _, path = exported(tmp_path, GRAPH)
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    assert config["class_name"] == "Functional"
    assert config["config"]["output_layers"] == [["head", 0, 0], ["aux", 0, 0]]
    add = next(layer for layer in config["config"]["layers"] if layer["name"] == "add")
    assert [t["config"]["keras_history"] for t in add["inbound_nodes"][0]["args"][0]] == [["stem", 0, 0],
                                                                                         ["conv2d", 0, 0]]


def test_options_and_training_reach_keras(keras, tmp_path):
    _, path = exported(tmp_path, CNN)
    twin = keras.saving.load_model(path)
    dense = twin.get_layer("dense")
    assert dense.trainable is False and dense.activation.__name__ == "softmax"
    assert twin.get_layer("conv2d").kernel_regularizer.l2 == pytest.approx(0.01)
    assert twin.get_layer("dropout").noise_shape == (None, 1, 1, 3)
    assert twin.get_layer("batch_normalization").epsilon == pytest.approx(1e-4)
    assert type(twin.optimizer).__name__ == "Adam"
    assert float(twin.optimizer.learning_rate) == pytest.approx(0.01)


def test_a_float64_model_imports_back_as_float64(tmp_path):
    _, path = exported(tmp_path, DOUBLE)
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    assert config["config"]["layers"][0]["config"]["dtype"] == "float64"  # layerc casts float inputs so
    spec, weights = layerc.import_keras(path)
    assert spec.dtype == "float64" and spec.input.dtype == "float32"
    assert all(w.dtype == np.float64 for w in weights.values())


def test_untrained_model_exports_its_seeded_initial_weights(keras, tmp_path):
    model = layerc.build(parse_spec(CNN))
    save_keras(model, tmp_path / "a.keras")
    twin = keras.saving.load_model(tmp_path / "a.keras")
    for ours, theirs in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(ours, theirs)


def test_a_layer_that_cannot_be_exported_is_named_and_no_file_is_left(tmp_path, monkeypatch):
    model, path = exported(tmp_path, GRAPH)
    before = path.read_bytes()
    monkeypatch.setattr(keras_export, "EXPORTS", keras_export.EXPORTS - {"Dense", "Add"})
    with pytest.raises(KerasError) as e:
        save_keras(model, path)
    assert re.fullmatch(r"4 layers cannot be exported to Keras: Add 'add' \(<spec>:7:\d+\), Dense 'side' "
                        r"\(<spec>:10:\d+\), Dense 'head' \(<spec>:13:\d+\), Dense 'aux' \(<spec>:14:\d+\)",
                        str(e.value)), str(e.value)
    assert path.read_bytes() == before
    with pytest.raises(KerasError):
        save_keras(model, tmp_path / "new.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_only_a_keras_suffix_is_written(tmp_path):
    model = layerc.build(parse_spec(CNN))
    with pytest.raises(KerasError, match=r"must end in \.keras"):
        save_keras(model, tmp_path / "model.h5")
    assert not list(tmp_path.iterdir())

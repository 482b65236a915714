"""ONNX export, layer by layer: every layer type, option and activation layerc has, run in
ONNX Runtime with random weights at two batch sizes, equal to layerc's outputs within 1e-5."""
from __future__ import annotations

import re

import numpy as np
import pytest

from .onnx_helpers import assert_matches, build, randomize, right_padded

from layerc.core.registry import LAYERS
from layerc.spec.layers import LAYER_TYPES

BATCHES = (1, 5)
ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax", "gelu", "elu", "selu", "leaky_relu",
               "silu", "swish", "softplus", "softsign", "hard_sigmoid", "hard_silu", "hard_swish"]


def _float(shape, scale=1.0):
    return lambda rng, n: (rng.normal(0, scale, (n, *shape))).astype(np.float32)


def _tokens(steps, vocab=30, min_len=1):
    return lambda rng, n: right_padded(rng, n, steps, vocab, min_len)


# (id, input shape and dtype, layers YAML, input maker)
IMG, SEQ = "input: {shape: [9, 8, 3]}", "input: {shape: [10, 4]}"
TOK = "input: {shape: [9], dtype: int32}"
EMB = "  - Embedding: {input_dim: 30, output_dim: 5, mask_zero: true}\n"
CASES = [
    ("dense", "input: {shape: [6]}", "- Dense: {units: 4, activation: relu}", _float((6,))),
    ("dense_3d_nobias", SEQ, "- Dense: {units: 3, use_bias: false, activation: tanh}", _float((10, 4))),
    ("conv2d_valid", IMG, "- Conv2D: {filters: 4, kernel_size: 3, activation: relu}", _float((9, 8, 3))),
    ("conv2d_same_even", IMG, "- Conv2D: {filters: 2, kernel_size: [2, 4], padding: same}", _float((9, 8, 3))),
    ("conv2d_same_strides", IMG, "- Conv2D: {filters: 3, kernel_size: 3, strides: [2, 3], padding: same}",
     _float((9, 8, 3))),
    ("conv2d_valid_strides", IMG, "- Conv2D: {filters: 3, kernel_size: [3, 2], strides: 2, use_bias: false}",
     _float((9, 8, 3))),
    ("conv2d_dilation_same", IMG, "- Conv2D: {filters: 2, kernel_size: 3, dilation_rate: 2, padding: same}",
     _float((9, 8, 3))),
    ("conv2d_dilation_valid", IMG, "- Conv2D: {filters: 2, kernel_size: 2, dilation_rate: [2, 3]}",
     _float((9, 8, 3))),
    ("conv2d_winograd", "input: {shape: [8, 8, 16]}", "- Conv2D: {filters: 16, kernel_size: 3, padding: same}",
     _float((8, 8, 16))),
    ("conv1d_valid", SEQ, "- Conv1D: {filters: 3, kernel_size: 3, activation: elu}", _float((10, 4))),
    ("conv1d_same_strides", SEQ, "- Conv1D: {filters: 3, kernel_size: 4, strides: 3, padding: same}",
     _float((10, 4))),
    ("conv1d_causal_dilation", SEQ, "- Conv1D: {filters: 2, kernel_size: 3, padding: causal, dilation_rate: 2}",
     _float((10, 4))),
    ("conv1d_variable_steps_same", "input: {shape: [null, 4]}",
     "- Conv1D: {filters: 2, kernel_size: 4, padding: same}\n  - GlobalAveragePooling1D", _float((7, 4))),
    ("maxpool2d", IMG, "- MaxPooling2D", _float((9, 8, 3))),
    ("maxpool2d_same_strides", IMG, "- MaxPooling2D: {pool_size: 3, strides: 2, padding: same}",
     _float((9, 8, 3))),
    ("avgpool2d", IMG, "- AveragePooling2D: {pool_size: [3, 2]}", _float((9, 8, 3))),
    ("avgpool2d_same", IMG, "- AveragePooling2D: {pool_size: 3, strides: 2, padding: same}",
     _float((9, 8, 3))),
    ("maxpool1d", SEQ, "- MaxPooling1D: {pool_size: 3}", _float((10, 4))),
    ("maxpool1d_same", SEQ, "- MaxPooling1D: {pool_size: 3, strides: 2, padding: same}", _float((10, 4))),
    ("conv_pool_fused", IMG, "- Conv2D: {filters: 4, kernel_size: 3, activation: relu}\n  - MaxPooling2D",
     _float((9, 8, 3))),
    ("gap1d", SEQ, "- GlobalAveragePooling1D", _float((10, 4))),
    ("gap1d_keepdims", SEQ, "- GlobalAveragePooling1D: {keepdims: true}", _float((10, 4))),
    ("gap2d", IMG, "- GlobalAveragePooling2D", _float((9, 8, 3))),
    ("gap2d_keepdims", IMG, "- GlobalAveragePooling2D: {keepdims: true}", _float((9, 8, 3))),
    ("gmp2d", IMG, "- GlobalMaxPooling2D", _float((9, 8, 3))),
    ("gmp2d_keepdims", IMG, "- GlobalMaxPooling2D: {keepdims: true}", _float((9, 8, 3))),
    ("batchnorm", IMG, "- BatchNormalization", _float((9, 8, 3))),
    ("batchnorm_axis1_eps", SEQ, "- BatchNormalization: {axis: 1, epsilon: 0.1}", _float((10, 4))),
    ("batchnorm_no_center_scale", SEQ, "- BatchNormalization: {center: false, scale: false}", _float((10, 4))),
    ("layernorm", SEQ, "- LayerNormalization", _float((10, 4))),
    ("layernorm_axes_eps", IMG, "- LayerNormalization: {axis: [-1, 1], epsilon: 0.01}", _float((9, 8, 3))),
    ("layernorm_no_center", SEQ, "- LayerNormalization: {center: false, axis: 1}", _float((10, 4))),
    ("dropout", SEQ, "- Dropout: {rate: 0.5}", _float((10, 4))),
    ("flatten", IMG, "- Flatten\n  - Dense: {units: 3}", _float((9, 8, 3))),
    ("reshape", IMG, "- Reshape: {target_shape: [-1, 6]}\n  - Conv1D: {filters: 2, kernel_size: 2}",
     _float((9, 8, 3))),
    ("embedding", TOK, "- Embedding: {input_dim: 30, output_dim: 5}", _tokens(9)),
    ("embedding_float_ids", "input: {shape: [9]}", "- Embedding: {input_dim: 30, output_dim: 5}",
     lambda rng, n: _tokens(9)(rng, n).astype(np.float32)),
    ("embedding_mask_gap1d", TOK, EMB.strip() + "\n  - GlobalAveragePooling1D", _tokens(9)),
    ("embedding_mask_dense_gap1d", TOK, EMB.strip() + "\n  - Dense: {units: 3}\n  - GlobalAveragePooling1D",
     _tokens(9)),
]
CASES += [(f"activation_{a}", SEQ, f"- Activation: {{activation: {a}}}", _float((10, 4), 3.0)) for a in ACTIVATIONS]
CASES += [(f"dense_{a}", "input: {shape: [6]}", f"- Dense: {{units: 4, activation: {a}}}", _float((6,), 2.0))
          for a in ACTIVATIONS]

# recurrent layers: every kind, both outputs, both directions, with and without a mask
for kind in ("SimpleRNN", "LSTM", "GRU"):
    for seqs in (False, True):
        for back in (False, True):
            args = f"units: 4, return_sequences: {str(seqs).lower()}, go_backwards: {str(back).lower()}"
            tag = f"{kind}_{'seq' if seqs else 'last'}{'_back' if back else ''}"
            CASES.append((tag, SEQ, f"- {kind}: {{{args}}}", _float((10, 4))))
            CASES.append((tag + "_masked", TOK, EMB + f"  - {kind}: {{{args}}}", _tokens(9)))
CASES += [
    ("GRU_reset_before_masked", TOK, EMB + "  - GRU: {units: 4, reset_after: false, return_sequences: true}",
     _tokens(9)),
    ("GRU_reset_before_nobias", SEQ, "- GRU: {units: 3, reset_after: false, use_bias: false}", _float((10, 4))),
    ("LSTM_nobias_no_forget_bias", SEQ, "- LSTM: {units: 3, use_bias: false, unit_forget_bias: false}",
     _float((10, 4))),
    ("SimpleRNN_relu_nobias", SEQ, "- SimpleRNN: {units: 3, activation: relu, use_bias: false}", _float((10, 4))),
    ("recurrent_dropout_is_inference_identity", SEQ,
     "- LSTM: {units: 3, dropout: 0.3, recurrent_dropout: 0.2}", _float((10, 4))),
    ("stacked_masked", TOK, EMB + "  - LSTM: {units: 4, return_sequences: true}\n  - Dropout: {rate: 0.2}\n"
     "  - GRU: {units: 3, return_sequences: true}\n  - SimpleRNN: {units: 2}", _tokens(9)),
    ("masked_with_empty_sequences", TOK, EMB + "  - LSTM: {units: 4, return_sequences: true}",
     _tokens(9, min_len=0)),
    ("variable_steps", "input: {shape: [null], dtype: int32}", EMB + "  - GRU: {units: 3}", _tokens(6)),
]
for kind in ("SimpleRNN", "LSTM", "GRU"):
    for mode in ("concat", "sum", "mul", "ave"):
        for seqs in (False, True):
            inner = f"{{{kind}: {{units: 3, return_sequences: {str(seqs).lower()}}}}}"
            tag = f"bidirectional_{kind}_{mode}_{'seq' if seqs else 'last'}"
            CASES.append((tag, SEQ, f"- Bidirectional: {{layer: {inner}, merge_mode: {mode}}}", _float((10, 4))))
            CASES.append((tag + "_masked", TOK, EMB + f"  - Bidirectional: {{layer: {inner}, merge_mode: {mode}}}",
                          _tokens(9)))
CASES += [
    ("bidirectional_inner_go_backwards_masked", TOK,
     EMB + "  - Bidirectional: {layer: {LSTM: {units: 3, return_sequences: true, go_backwards: true}}}",
     _tokens(9)),
    ("bidirectional_inner_go_backwards_last_masked", TOK,
     EMB + "  - Bidirectional: {layer: {GRU: {units: 3, go_backwards: true}}, merge_mode: sum}", _tokens(9)),
]
# merges, with and without masks
CASES += [
    ("add", SEQ, "- Dense: {units: 4, name: a}\n  - Dense: {units: 4, name: b, inputs: input_layer}\n"
     "  - Add: {inputs: [a, b, input_layer]}", _float((10, 4))),
    ("concatenate", SEQ, "- Dense: {units: 3, name: a}\n  - Concatenate: {inputs: [a, input_layer]}",
     _float((10, 4))),
    ("concatenate_steps", SEQ, "- Dense: {units: 4, name: a}\n  - Concatenate: {axis: 1, inputs: [a, input_layer]}",
     _float((10, 4))),
    ("masked_add", TOK, EMB + "  - Dense: {units: 5, name: a}\n  - Add: {inputs: [embedding, a]}\n"
     "  - LSTM: {units: 3}", _tokens(9)),
    ("masked_concatenate_features", TOK, EMB + "  - Dense: {units: 2, name: a}\n"
     "  - Concatenate: {inputs: [embedding, a]}\n  - GRU: {units: 3, return_sequences: true}", _tokens(9)),
    ("masked_concatenate_then_pool_and_lstm", TOK, EMB + "  - Dense: {units: 5, name: d}\n"
     "  - Concatenate: {inputs: [embedding, d], name: c}\n  - GlobalAveragePooling1D: {name: g}\n"
     "  - LSTM: {units: 5, inputs: c, name: a}\n  - Concatenate: {inputs: [g, a]}", _tokens(9)),
]


def _spec(input_line, layers):
    layers = layers if layers.startswith("  ") else "  " + layers
    return f"seed: 3\n{input_line}\nlayers:\n{layers}\n"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_matches_layerc_in_onnxruntime(case):
    _, input_line, layers, make = case
    model = randomize(build(_spec(input_line, layers)), seed=len(layers))
    rng = np.random.default_rng(1)
    assert_matches(model, [make(rng, n) for n in BATCHES])


def test_every_layer_type_and_activation_is_covered():
    from layerc.interop.onnx import _LAYERS

    from .test_augmentation_export import CASES as AUGMENTATION_CASES
    from .test_onnx_new_layers import CASES as NEW_CASES
    from .test_keras_new_layers import ONNX_CASES
    NEW_CASES = NEW_CASES + ONNX_CASES

    text = "\n".join(c[2] for c in CASES + NEW_CASES + AUGMENTATION_CASES)
    missing = [t for t in LAYERS if not re.search(rf"\b{t}\b", text)]
    assert not missing and set(LAYERS) == set(LAYER_TYPES) == set(_LAYERS)
    assert all(f"activation_{a}" in {c[0] for c in CASES} for a in ACTIVATIONS)


RECURRENT_ACTS = ["linear", "relu", "sigmoid", "tanh", "hard_sigmoid", "leaky_relu", "elu", "softsign",
                  "softplus"]


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_recurrent_activations_onnx_can_express(kind):
    """Each activation ONNX's recurrent ops take, in each slot (alpha/beta read as ONNX Runtime does)."""
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.3, (4, 6, 3)).astype(np.float32)
    keys = ["activation"] + ([] if kind == "SimpleRNN" else ["recurrent_activation"])
    for key in keys:
        for act in RECURRENT_ACTS:
            spec = _spec("input: {shape: [6, 3]}", f"- {kind}: {{units: 4, return_sequences: true, {key}: {act}}}")
            assert_matches(randomize(build(spec), seed=5), [x, x[:1]])


@pytest.mark.parametrize("opset", [17, 18, 19, 20, 21])
def test_each_supported_opset(opset):
    """Reductions change form at opset 18 (axes become an input): both forms run."""
    spec = _spec(TOK, EMB + "  - LayerNormalization\n  - GlobalAveragePooling1D\n  - Reshape: {target_shape: [1, 1, 5]}\n"
                 "  - GlobalMaxPooling2D")
    model = randomize(build(spec))
    proto = assert_matches(model, [_tokens(9)(np.random.default_rng(0), n) for n in BATCHES], opset=opset)
    assert proto.opset_import[0].version == opset


def test_multi_input_multi_output_graph():
    spec = """
seed: 1
inputs:
  image: {shape: [8, 8, 1]}
  tokens: {shape: [7], dtype: int32}
layers:
  - Conv2D: {filters: 3, kernel_size: 3, activation: relu, inputs: image}
  - MaxPooling2D
  - Flatten: {name: flat}
  - Embedding: {input_dim: 20, output_dim: 4, mask_zero: true, inputs: tokens}
  - Bidirectional: {layer: {LSTM: {units: 3}}, name: text}
  - Concatenate: {inputs: [flat, text], name: joined}
  - Dense: {units: 4, activation: softmax, name: label, inputs: joined}
  - Dense: {units: 1, inputs: text, name: score}
outputs: [label, score]
"""
    model = randomize(build(spec))
    rng = np.random.default_rng(0)
    proto = assert_matches(model, [[rng.normal(size=(n, 8, 8, 1)).astype(np.float32), right_padded(rng, n, 7, 20)]
                                   for n in BATCHES])
    assert [i.name for i in proto.graph.input] == ["image", "tokens"]
    assert [o.name for o in proto.graph.output] == ["label", "score"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"

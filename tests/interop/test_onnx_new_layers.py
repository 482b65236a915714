"""ONNX export of the layers added after the first export (transposed, depthwise and separable
convolutions, resampling, merges, attention, wrappers, sequence and noise layers): each in ONNX
Runtime with random weights at two batch sizes, equal to layerc's outputs within 1e-5."""
from __future__ import annotations

import re

import numpy as np
import pytest

from .onnx_helpers import assert_matches, build, randomize
from .test_onnx_layers import BATCHES, EMB, IMG, SEQ, TOK, _float, _spec, _tokens

from layerc.interop.onnx import to_onnx
from layerc.spec.diagnostics import SpecError

MERGE3 = ("- Dense: {units: 4, name: a}\n  - Dense: {units: 4, name: b, inputs: input_layer}\n"
          "  - TYPE: {inputs: [a, b, input_layer]}")
CASES = [
    ("conv2d_transpose_valid", IMG, "- Conv2DTranspose: {filters: 3, kernel_size: 3, activation: relu}"),
    ("conv2d_transpose_strides_same", IMG, "- Conv2DTranspose: {filters: 2, kernel_size: [3, 2], strides: 2, "
     "padding: same}"),
    ("conv2d_transpose_output_padding", IMG, "- Conv2DTranspose: {filters: 2, kernel_size: 3, strides: [2, 3], "
     "output_padding: [1, 2], use_bias: false}"),
    ("conv2d_transpose_same_output_padding", IMG, "- Conv2DTranspose: {filters: 2, kernel_size: 4, strides: 3, "
     "padding: same, output_padding: 2}"),
    ("conv2d_transpose_small_kernel_big_stride", IMG, "- Conv2DTranspose: {filters: 2, kernel_size: 2, strides: 3}"),
    ("conv2d_transpose_dilation", IMG, "- Conv2DTranspose: {filters: 2, kernel_size: 3, dilation_rate: 2, "
     "padding: same}"),
    ("conv1d_transpose", SEQ, "- Conv1DTranspose: {filters: 3, kernel_size: 3, strides: 2, activation: tanh}"),
    ("conv1d_transpose_same_output_padding", SEQ, "- Conv1DTranspose: {filters: 2, kernel_size: 2, strides: 2, "
     "padding: same, output_padding: 1}"),
    ("depthwise", IMG, "- DepthwiseConv2D: {kernel_size: 3, activation: relu}"),
    ("depthwise_multiplier_same_strides", IMG, "- DepthwiseConv2D: {kernel_size: [3, 2], depth_multiplier: 3, "
     "strides: 2, padding: same, use_bias: false}"),
    ("depthwise_dilation", IMG, "- DepthwiseConv2D: {kernel_size: 2, dilation_rate: 2, depth_multiplier: 2}"),
    ("separable", IMG, "- SeparableConv2D: {filters: 4, kernel_size: 3, activation: elu}"),
    ("separable_multiplier_same", IMG, "- SeparableConv2D: {filters: 2, kernel_size: 3, depth_multiplier: 2, "
     "strides: 2, padding: same, use_bias: false}"),
    ("upsampling2d_nearest", IMG, "- UpSampling2D: {size: [2, 3]}"),
    ("upsampling2d_bilinear", IMG, "- UpSampling2D: {size: [3, 2], interpolation: bilinear}"),
    ("upsampling2d_bilinear_same_factor", IMG, "- UpSampling2D: {interpolation: bilinear}"),
    ("upsampling1d", SEQ, "- UpSampling1D: {size: 3}"),
    ("zero_padding2d", IMG, "- ZeroPadding2D: {padding: [[1, 0], [2, 3]]}"),
    ("zero_padding2d_int", IMG, "- ZeroPadding2D: {padding: 2}"),
    ("zero_padding1d", SEQ, "- ZeroPadding1D: {padding: [0, 2]}"),
    ("cropping2d", IMG, "- Cropping2D: {cropping: [[1, 0], [2, 3]]}"),
    ("cropping2d_int", IMG, "- Cropping2D: {cropping: 2}"),
    ("cropping1d", SEQ, "- Cropping1D: {cropping: [3, 1]}"),
    ("avgpool1d", SEQ, "- AveragePooling1D: {pool_size: 3}"),
    ("avgpool1d_same_strides", SEQ, "- AveragePooling1D: {pool_size: 3, strides: 2, padding: same}"),
    ("gmp1d", SEQ, "- GlobalMaxPooling1D"),
    ("gmp1d_keepdims", SEQ, "- GlobalMaxPooling1D: {keepdims: true}"),
    ("multiply", SEQ, MERGE3.replace("TYPE", "Multiply")),
    ("subtract", SEQ, "- Dense: {units: 4, name: a}\n  - Subtract: {inputs: [a, input_layer]}"),
    ("average", SEQ, MERGE3.replace("TYPE", "Average")),
    ("maximum", SEQ, MERGE3.replace("TYPE", "Maximum")),
    ("minimum", SEQ, MERGE3.replace("TYPE", "Minimum")),
    ("rescaling", IMG, "- Rescaling: {scale: 0.5, offset: -1.0}"),
    ("rescaling_per_channel", IMG, "- Rescaling: {scale: [0.5, 2.0, -1.0], offset: [0.1, 0.0, 3.0]}"),
    ("repeat_vector", "input: {shape: [6]}", "- RepeatVector: {n: 4}"),
    ("permute", IMG, "- Permute: {dims: [3, 1, 2]}"),
    ("permute_2d", SEQ, "- Permute: {dims: [2, 1]}\n  - Dense: {units: 3}"),
    ("gaussian_noise", SEQ, "- GaussianNoise: {stddev: 0.5}"),
    ("spatial_dropout1d", SEQ, "- SpatialDropout1D: {rate: 0.5}"),
    ("spatial_dropout2d", IMG, "- SpatialDropout2D: {rate: 0.5}"),
    ("time_distributed_dense", SEQ, "- TimeDistributed: {layer: {Dense: {units: 3, activation: relu}}}"),
    ("time_distributed_conv1d", IMG, "- TimeDistributed: {layer: {Conv1D: {filters: 2, kernel_size: 3}}}"),
    ("time_distributed_pool", IMG, "- TimeDistributed: {layer: {GlobalMaxPooling1D}}"),
    ("time_distributed_masked_then_lstm", TOK, EMB + "  - TimeDistributed: {layer: {Dense: {units: 3}}}\n"
     "  - LSTM: {units: 3}"),
    ("position_embedding", TOK, "  - Embedding: {input_dim: 30, output_dim: 5}\n"
     "  - PositionEmbedding: {sequence_length: 9}"),
    ("position_embedding_longer", SEQ, "- PositionEmbedding: {sequence_length: 14}"),
    ("position_embedding_masked", TOK, EMB + "  - PositionEmbedding: {sequence_length: 9}\n  - GRU: {units: 3}"),
    ("attention_self", SEQ, "- MultiHeadAttention: {num_heads: 2, key_dim: 3}"),
    ("attention_causal", SEQ, "- MultiHeadAttention: {num_heads: 3, key_dim: 2, use_causal_mask: true}"),
    ("attention_cross_key", SEQ, "- Dense: {units: 5, name: v}\n  - Conv1D: {filters: 3, kernel_size: 1, "
     "inputs: input_layer, name: k}\n  - MultiHeadAttention: {num_heads: 2, key_dim: 4, value_dim: 3, "
     "output_shape: [2, 3], use_bias: false, inputs: [input_layer, v, k]}"),
    ("attention_masked", TOK, EMB + "  - MultiHeadAttention: {num_heads: 2, key_dim: 3}\n"
     "  - GlobalAveragePooling1D"),
    ("attention_masked_causal_block", TOK, EMB + "  - MultiHeadAttention: {num_heads: 2, key_dim: 3, "
     "use_causal_mask: true, name: att}\n  - Add: {inputs: [embedding, att]}\n  - LayerNormalization\n"
     "  - MultiHeadAttention: {num_heads: 1, key_dim: 4, output_shape: 5}\n  - LSTM: {units: 3}"),
    ("attention_masked_cross", TOK, EMB
     + "  - Embedding: {input_dim: 30, output_dim: 5, inputs: input_layer, name: d}\n"
     "  - MultiHeadAttention: {num_heads: 2, key_dim: 3, inputs: [d, embedding]}"),
]
# (test_onnx_layers.py's float inputs: IMG (9, 8, 3), SEQ (10, 4); TOK right-padded ids)
MAKERS = {IMG: _float((9, 8, 3)), SEQ: _float((10, 4)), TOK: _tokens(9), "input: {shape: [6]}": _float((6,))}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_new_layer_matches_layerc_in_onnxruntime(case):
    _, input_line, layers = case
    model = randomize(build(_spec(input_line, layers)), seed=len(layers))
    rng = np.random.default_rng(1)
    assert_matches(model, [MAKERS[input_line](rng, n) for n in BATCHES])


def test_masked_merges_are_refused_with_their_line():
    spec = _spec(TOK, EMB + "  - Dense: {units: 5, name: a}\n  - Multiply: {inputs: [embedding, a]}")
    with pytest.raises(SpecError) as e:
        to_onnx(build(spec))
    assert re.search(r"<spec>:6:\d+: error: layer 'multiply' \(Multiply\) merges masked inputs",
                     str(e.value)), str(e.value)


def test_time_distributed_of_unknown_inner_sizes_is_refused_with_its_line():
    spec = _spec("input: {shape: [5, null, 3]}", "- TimeDistributed: {layer: {Conv1D: {filters: 2, kernel_size: 2}}}")
    with pytest.raises(SpecError) as e:
        to_onnx(build(spec))
    assert re.search(r"<spec>:4:\d+: error: layer 'time_distributed' \(TimeDistributed\) wraps inputs of unknown "
                     r"size \(None, 3\)", str(e.value)), str(e.value)


def test_a_recurrent_layer_inside_time_distributed_is_exported_or_refused_with_its_line():
    ok = _spec(IMG, "- TimeDistributed: {layer: {GRU: {units: 3, return_sequences: true}}}")
    assert_matches(randomize(build(ok)), [_float((9, 8, 3))(np.random.default_rng(0), n) for n in BATCHES])
    bad = _spec(IMG, "- TimeDistributed: {layer: {LSTM: {units: 3, activation: gelu}}}")
    with pytest.raises(SpecError) as e:
        to_onnx(build(bad))
    assert re.search(r"<spec>:4:\d+: error: layer 'time_distributed' \(LSTM\) cannot be exported to ONNX with "
                     "activation gelu", str(e.value)), str(e.value)


@pytest.mark.parametrize("opset", [18, 21])
def test_new_layers_at_later_opsets(opset):
    """Reductions take their axes as an input from opset 18: the attention's softmax, the
    global pooling and the resampling run in both forms."""
    spec = _spec(TOK, EMB + "  - PositionEmbedding: {sequence_length: 9}\n"
                 "  - MultiHeadAttention: {num_heads: 2, key_dim: 3, use_causal_mask: true}\n"
                 "  - UpSampling1D\n  - GlobalMaxPooling1D\n  - RepeatVector: {n: 2}\n"
                 "  - Reshape: {target_shape: [2, 5, 1]}\n  - UpSampling2D: {interpolation: bilinear}\n"
                 "  - DepthwiseConv2D: {kernel_size: 2}\n  - Conv2DTranspose: {filters: 2, kernel_size: 2, strides: 2}")
    model = randomize(build(spec))
    proto = assert_matches(model, [_tokens(9)(np.random.default_rng(0), n) for n in BATCHES], opset=opset)
    assert proto.opset_import[0].version == opset

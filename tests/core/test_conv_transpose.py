"""Conv1DTranspose and Conv2DTranspose: Keras's output-size arithmetic, float64 gradients,
Keras parity over strides, padding, output_padding, dilation and odd sizes, SGD steps,
summary, memory and located errors."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from layerc.core.conv_transpose import transpose_out_size
from layerc.core.registry import make_layer
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients
from tests.core.parity import forward_parity, located_error, sgd_parity, summary_matches

# (spec, input shape): odd sizes, every padding, output_padding given and not, dilation
CASES = [
    (S.Conv2DTranspose(filters=3, kernel_size=3), (4, 5, 2)),
    (S.Conv2DTranspose(filters=2, kernel_size=3, strides=2, padding="same"), (3, 4, 2)),
    (S.Conv2DTranspose(filters=2, kernel_size=(2, 3), strides=(2, 3), padding="valid"), (3, 3, 3)),
    (S.Conv2DTranspose(filters=2, kernel_size=3, strides=2, padding="same", output_padding=1), (3, 4, 2)),
    (S.Conv2DTranspose(filters=2, kernel_size=4, strides=3, padding="valid", output_padding=(2, 0)), (2, 3, 2)),
    (S.Conv2DTranspose(filters=2, kernel_size=2, strides=3, padding="same", output_padding=0), (3, 2, 1)),
    (S.Conv2DTranspose(filters=2, kernel_size=3, padding="same", dilation_rate=2, activation="tanh"), (4, 5, 2)),
    (S.Conv2DTranspose(filters=4, kernel_size=1, strides=2, use_bias=False), (3, 3, 2)),
    (S.Conv1DTranspose(filters=3, kernel_size=3), (5, 2)),
    (S.Conv1DTranspose(filters=2, kernel_size=4, strides=2, padding="same"), (5, 3)),
    (S.Conv1DTranspose(filters=2, kernel_size=3, strides=3, padding="same", output_padding=2), (4, 2)),
    (S.Conv1DTranspose(filters=2, kernel_size=2, dilation_rate=3, activation="relu"), (6, 2)),
]
IDS = [f"{s.type}-{i}" for i, (s, _) in enumerate(CASES)]


def yaml_line(spec):
    args = spec.model_dump(exclude={"type", "name", "inputs", "trainable"}, exclude_none=True,
                           exclude_defaults=True)
    text = ", ".join(f"{k}: {list(v) if isinstance(v, tuple) else v}" for k, v in args.items())
    return f"{spec.type}: {{{text}}}"


def built(spec, shape, dtype="float64"):
    layer = make_layer(spec, "t", 0, dtype)
    layer.build(shape)
    return layer


def test_output_size_is_keras_arithmetic(keras):
    from keras.src.backend.common.backend_utils import compute_conv_transpose_output_shape

    for n, k, s, pad, op, d in itertools.product([1, 2, 5, 7], [1, 2, 3, 4, 5], [1, 2, 3], ["valid", "same"],
                                                 [None, 0, 1, 2], [1, 2]):
        if (op is not None and op >= s) or (s > 1 and d > 1):
            continue
        want = compute_conv_transpose_output_shape((None, n, 3), (k,), 4, s, pad, op, dilation_rate=d)[1]
        assert transpose_out_size(n, k, s, d, pad, op) == want, (n, k, s, pad, op, d)


@pytest.mark.parametrize("spec,shape", CASES, ids=IDS)
@pytest.mark.parametrize("training", [False, True])
def test_float64_gradients(spec, shape, training):
    layer = built(spec, shape)
    for w in layer.weights.values():  # a nonzero bias, and kernels away from ReLU's kink
        w[...] = np.random.default_rng(1).uniform(-1, 1, w.shape)
    X = np.random.default_rng(0).standard_normal((2, *shape))
    Y, _ = layer.forward(X, training)
    assert Y.shape[1:] == layer.output_shape(shape)
    assert check_layer_gradients(layer, X, training=training) > 0


def test_weights_are_keras_layout():
    ws = built(S.Conv2DTranspose(filters=5, kernel_size=(2, 3)), (4, 4, 7)).weight_specs((4, 4, 7))
    assert [(w.name, w.shape) for w in ws] == [("kernel", (2, 3, 5, 7)), ("bias", (5,))]
    ws = built(S.Conv1DTranspose(filters=5, kernel_size=3), (4, 7)).weight_specs((4, 7))
    assert [(w.name, w.shape) for w in ws] == [("kernel", (3, 5, 7)), ("bias", (5,))]


def test_float32_and_macs():
    layer = built(S.Conv2DTranspose(filters=4, kernel_size=3, strides=2), (5, 6, 3), "float32")
    Y, backprop = layer.forward(np.ones((2, 5, 6, 3), np.float32), True)
    assert Y.dtype == np.float32 and backprop(np.ones_like(Y)).dtype == np.float32
    assert layer.macs((5, 6, 3)) == 5 * 6 * 3 * 3 * 3 * 4  # every input pixel meets the whole kernel


@pytest.mark.parametrize("spec,shape", CASES, ids=IDS)
def test_forward_summary_and_memory_match_keras(keras, spec, shape):
    x = np.random.default_rng(2).standard_normal((3, *shape)).astype(np.float32)
    model, twin = forward_parity(f"input: {{shape: {list(shape)}}}\nlayers:\n  - {yaml_line(spec)}\n", x)
    summary_matches(model, twin)


@pytest.mark.parametrize("spec,shape", CASES[::2], ids=IDS[::2])
def test_three_sgd_steps_equal_keras(keras, spec, shape):
    body = f"input: {{shape: {list(shape)}}}\nlayers:\n  - {yaml_line(spec)}\n  - Flatten\n  - Dense: {{units: 2}}\n"
    rng = np.random.default_rng(3)
    sgd_parity(keras, body, rng.standard_normal((8, *shape)).astype(np.float32),
               rng.standard_normal((8, 2)).astype(np.float32), lr=0.05)


def test_masks_stop_as_in_keras():
    layer = built(S.Conv1DTranspose(filters=2, kernel_size=2), (4, 3))
    assert layer.compute_mask(np.zeros((1, 4, 3)), np.ones((1, 4), bool)) is None


@pytest.mark.parametrize("line,shape,words", [
    ("Conv2DTranspose: {filters: 2, kernel_size: 3}", "[8]", ["3-D input (height, width, channels)"]),
    ("Conv1DTranspose: {filters: 2, kernel_size: 3}", "[4, 4, 2]", ["2-D input (steps, channels)"]),
    ("Conv1DTranspose: {filters: 2, kernel_size: 2, padding: same, output_padding: 0}", "[1, 2]", ["empty output"]),
])
def test_shape_errors_are_located(line, shape, words):
    located_error(f"input: {{shape: {shape}}}\nlayers:\n  - Dense: {{units: 2}}\n  - {line}\n", 4, *words)


def test_argument_errors_are_located():
    d = located_error("input: {shape: [4, 4, 1]}\nlayers:\n  - Conv2DTranspose: {filters: 2, kernel_size: 3, "
                      "strides: 2, output_padding: 2}\n", 3, "output_padding", col=22)
    assert "smaller than strides" in d.message
    located_error("input: {shape: [4, 4, 1]}\nlayers:\n  - Conv2DTranspose: {filters: 2, kernel_size: 3, "
                  "strides: 2, dilation_rate: 2}\n", 3, "cannot be combined", col=22)


def test_gradients_through_both_convolution_paths(conv_path):
    """The backward pass is conv2d, by im2col or (3x3, stride 1) Winograd: both give the
    same gradients."""
    layer = built(S.Conv2DTranspose(filters=3, kernel_size=3, padding="same"), (5, 4, 2))
    X = np.random.default_rng(4).standard_normal((2, 5, 4, 2))
    assert check_layer_gradients(layer, X, training=True) > 0

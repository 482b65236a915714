"""Conv1D and Conv2D: shapes, Keras parameter counts, literal values, gradients, Keras parity."""
from __future__ import annotations


import numpy as np
import pytest

from layerc.core.base import ShapeError
from layerc.core.conv import Conv1D, Conv2D
from layerc.spec import layers as specs
from tests.core.gradcheck import check_layer_gradients

SPECS = {"Conv1D": specs.Conv1D, "Conv2D": specs.Conv2D}
CLASSES = {"Conv1D": Conv1D, "Conv2D": Conv2D}


def make(kind, input_shape, dtype="float32", seed=0, **args):
    layer = CLASSES[kind](SPECS[kind](**args), kind.lower(), seed, dtype)
    layer.build(input_shape)
    if "bias" in layer.weights:  # non-zero so the bias path is exercised
        layer.weights["bias"][...] = np.random.default_rng(seed + 1).standard_normal(
            layer.weights["bias"].shape)
    return layer


# -- shapes and parameter counts (figures checked against Keras 3.15) ----------------------

KERAS_CONV2D_SHAPES = [  # Conv2D(2, (3, 2), ...) on (7, 8, 3)
    (dict(padding="valid"), (5, 7, 2)),
    (dict(padding="valid", strides=2), (3, 4, 2)),
    (dict(padding="valid", strides=3), (2, 3, 2)),
    (dict(padding="valid", dilation_rate=2), (3, 6, 2)),
    (dict(padding="same"), (7, 8, 2)),
    (dict(padding="same", strides=2), (4, 4, 2)),
    (dict(padding="same", strides=3), (3, 3, 2)),
    (dict(padding="same", dilation_rate=2), (7, 8, 2)),
]


@pytest.mark.parametrize("args,expected", KERAS_CONV2D_SHAPES)
def test_conv2d_output_shape_matches_keras_and_forward(args, expected):
    layer = make("Conv2D", (7, 8, 3), filters=2, kernel_size=(3, 2), **args)
    assert layer.output_shape((7, 8, 3)) == expected
    Y, _ = layer.forward(np.zeros((2, 7, 8, 3), np.float32), False)
    assert Y.shape == (2, *expected)


@pytest.mark.parametrize("padding,steps", [("valid", 4), ("same", 5), ("causal", 5)])
def test_conv1d_output_shape_matches_keras_and_forward(padding, steps):
    layer = make("Conv1D", (9, 3), filters=2, kernel_size=3, strides=2, padding=padding)
    assert layer.output_shape((9, 3)) == (steps, 2)
    assert layer.output_shape((None, 3)) == (None, 2)
    Y, _ = layer.forward(np.zeros((2, 9, 3), np.float32), False)
    assert Y.shape == (2, steps, 2)


@pytest.mark.parametrize("kind,args,input_shape,params", [
    ("Conv2D", dict(filters=32, kernel_size=3), (28, 28, 1), 320),
    ("Conv2D", dict(filters=64, kernel_size=3), (13, 13, 32), 18_496),
    ("Conv2D", dict(filters=8, kernel_size=(3, 5), use_bias=False), (10, 10, 3), 360),
    ("Conv1D", dict(filters=16, kernel_size=5), (None, 8), 656),
])
def test_param_counts_match_keras(kind, args, input_shape, params):
    layer = CLASSES[kind](SPECS[kind](**args), "c", 0)
    ws = layer.weight_specs(input_shape)
    assert sum(w.size for w in ws) == params
    assert [w.name for w in ws] == (["kernel", "bias"] if args.get("use_bias", True) else ["kernel"])


def test_kernel_layouts_are_keras():
    assert make("Conv2D", (9, 9, 3), filters=4, kernel_size=(2, 3)).weights["kernel"].shape == (2, 3, 3, 4)
    assert make("Conv1D", (9, 3), filters=4, kernel_size=5).weights["kernel"].shape == (5, 3, 4)


def test_macs():
    layer = Conv2D(specs.Conv2D(filters=32, kernel_size=3), "c", 0)
    assert layer.macs((28, 28, 1)) == 26 * 26 * 9 * 32
    layer = Conv1D(specs.Conv1D(filters=4, kernel_size=3, padding="same"), "c", 0)
    assert layer.macs((10, 2)) == 10 * 3 * 2 * 4


def test_shape_errors_are_helpful():
    conv = Conv2D(specs.Conv2D(filters=8, kernel_size=3), "c", 0)
    with pytest.raises(ShapeError) as e:
        conv.output_shape((784,))
    assert "3-D input" in e.value.message and "(784,)" in e.value.message
    assert "Reshape" in e.value.hint and "28, 28, 1" in e.value.hint
    with pytest.raises(ShapeError) as e:
        Conv2D(specs.Conv2D(filters=8, kernel_size=5), "c", 0).output_shape((4, 4, 1))
    assert "kernel height 5 is larger than the input height 4" in e.value.message
    assert "same" in e.value.hint
    with pytest.raises(ShapeError):
        Conv2D(specs.Conv2D(filters=8, kernel_size=3, dilation_rate=2), "c", 0).output_shape((4, 9, 1))
    assert Conv2D(specs.Conv2D(filters=8, kernel_size=5, padding="same"), "c", 0).output_shape(
        (4, 4, 1)) == (4, 4, 8)
    with pytest.raises(ShapeError) as e:
        Conv1D(specs.Conv1D(filters=8, kernel_size=3), "c", 0).output_shape((28, 28, 1))
    assert "2-D input" in e.value.message
    with pytest.raises(ShapeError):
        Conv1D(specs.Conv1D(filters=8, kernel_size=4), "c", 0).output_shape((3, 1))


def test_mask_is_dropped():
    layer = make("Conv1D", (5, 2), filters=3, kernel_size=2)
    assert layer.compute_mask(np.zeros((1, 5, 2)), np.ones((1, 5), bool)) is None


def test_float32_end_to_end():
    layer = make("Conv2D", (6, 6, 2), filters=3, kernel_size=3, padding="same", activation="gelu")
    X = np.random.default_rng(0).standard_normal((2, 6, 6, 2)).astype(np.float32)
    Y, backprop = layer.forward(X, True)
    dX = backprop(np.ones_like(Y))
    assert Y.dtype == dX.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


# -- literal values ---------------------------------------------------------------------

def test_conv2d_literal():
    layer = make("Conv2D", (3, 3, 1), filters=1, kernel_size=2)
    layer.weights["kernel"][...] = np.array([[1, 2], [3, 4]], np.float32).reshape(2, 2, 1, 1)
    layer.weights["bias"][...] = 10
    X = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    Y, backprop = layer.forward(X, False)
    # window [[0,1],[3,4]] . [[1,2],[3,4]] = 0+2+9+16 = 27
    np.testing.assert_array_equal(Y[0, :, :, 0], [[37, 47], [67, 77]])
    dX = backprop(np.ones_like(Y))
    np.testing.assert_array_equal(dX[0, :, :, 0], [[1, 3, 2], [4, 10, 6], [3, 7, 4]])
    np.testing.assert_array_equal(layer.grads["kernel"][:, :, 0, 0], [[8, 12], [20, 24]])
    np.testing.assert_array_equal(layer.grads["bias"], [4])


def test_conv2d_same_pads_extra_at_end_like_keras():
    # kernel 2, 'same': Keras pads 0 before and 1 after, so the last output sees a zero.
    layer = make("Conv2D", (3, 1, 1), filters=1, kernel_size=(2, 1), padding="same", use_bias=False)
    layer.weights["kernel"][...] = np.array([1, 10], np.float32).reshape(2, 1, 1, 1)
    Y, _ = layer.forward(np.array([1, 2, 3], np.float32).reshape(1, 3, 1, 1), False)
    np.testing.assert_array_equal(Y.ravel(), [21, 32, 3])


def test_conv1d_causal_literal():
    layer = make("Conv1D", (4, 1), filters=1, kernel_size=2, padding="causal", dilation_rate=2,
                 use_bias=False)
    layer.weights["kernel"][...] = np.array([1, 10], np.float32).reshape(2, 1, 1)
    Y, _ = layer.forward(np.array([1, 2, 3, 4], np.float32).reshape(1, 4, 1), False)
    # y[t] = x[t - 2] + 10 x[t]
    np.testing.assert_array_equal(Y.ravel(), [10, 20, 31, 42])


# -- float64 finite-difference gradients (never skipped) ---------------------------------

GRAD_CASES = [
    ("Conv2D", (6, 7, 2), dict(filters=3, kernel_size=3)),
    ("Conv2D", (7, 6, 2), dict(filters=3, kernel_size=3, strides=2, padding="same")),
    ("Conv2D", (8, 9, 2), dict(filters=2, kernel_size=(3, 2), strides=(2, 3))),
    ("Conv2D", (7, 7, 2), dict(filters=2, kernel_size=3, dilation_rate=2, padding="same")),
    ("Conv2D", (6, 6, 3), dict(filters=2, kernel_size=(2, 3), dilation_rate=(1, 2))),
    ("Conv2D", (5, 6, 2), dict(filters=3, kernel_size=2, padding="same", use_bias=False)),
    ("Conv2D", (5, 5, 2), dict(filters=3, kernel_size=3, padding="same", activation="tanh")),
    ("Conv2D", (5, 5, 1), dict(filters=2, kernel_size=3, activation="relu")),
    ("Conv2D", (5, 6, 8), dict(filters=3, kernel_size=3, strides=2, padding="same")),  # C >= 8 path
    # 3x3, stride 1, C >= 8: Winograd F(2x2, 3x3) where `winograd` is forced, odd and even outputs
    ("Conv2D", (5, 7, 8), dict(filters=3, kernel_size=3)),
    ("Conv2D", (6, 6, 9), dict(filters=2, kernel_size=3, padding="same", activation="relu")),
    ("Conv2D", (7, 4, 8), dict(filters=2, kernel_size=3, padding="same", use_bias=False)),
    ("Conv1D", (9, 2), dict(filters=3, kernel_size=3)),
    ("Conv1D", (7, 9), dict(filters=2, kernel_size=3, padding="causal")),
    ("Conv1D", (9, 2), dict(filters=3, kernel_size=4, strides=2, padding="same")),
    ("Conv1D", (9, 2), dict(filters=3, kernel_size=3, padding="causal", dilation_rate=2)),
    ("Conv1D", (8, 2), dict(filters=2, kernel_size=3, padding="causal", strides=3,
                            activation="sigmoid", use_bias=False)),
]


@pytest.mark.parametrize("kind,input_shape,args", GRAD_CASES)
def test_gradients(kind, input_shape, args, conv_path):
    layer = make(kind, input_shape, "float64", **args)
    X = np.random.default_rng(3).standard_normal((2, *input_shape))
    check_layer_gradients(layer, X)


@pytest.mark.parametrize("input_shape,args", [
    ((7, 8, 1), dict(filters=4, kernel_size=3, activation="relu")),  # C < 8: K-major, bias in the product
    ((7, 8, 3), dict(filters=4, kernel_size=(2, 3), strides=2, padding="same", use_bias=False)),
    ((6, 6, 9), dict(filters=5, kernel_size=3, activation="relu")),  # C >= 8
    ((6, 6, 9), dict(filters=5, kernel_size=3, padding="same", dilation_rate=2, use_bias=False)),
])
def test_no_input_grad_returns_none_and_the_same_weight_gradients(input_shape, args):
    # fed by the model's data (input_grad False), backprop skips dX entirely
    layer = make("Conv2D", input_shape, **args)
    X = np.random.default_rng(2).standard_normal((3, *input_shape)).astype(np.float32)
    Y, backprop = layer.forward(X, True)
    dY = np.random.default_rng(3).standard_normal(Y.shape).astype(np.float32)
    assert backprop(dY).shape == X.shape
    full = {k: g.copy() for k, g in layer.grads.items()}
    layer.input_grad = False
    Y2, backprop2 = layer.forward(X, True)
    np.testing.assert_array_equal(Y, Y2)
    assert backprop2(dY) is None
    assert set(layer.grads) == set(full)
    for k, g in full.items():
        np.testing.assert_array_equal(layer.grads[k], g)


def test_relu_is_applied_in_place_to_our_own_output_only():
    layer = make("Conv2D", (5, 5, 2), filters=3, kernel_size=3, activation="relu")
    X = np.random.default_rng(4).standard_normal((2, 5, 5, 2)).astype(np.float32)
    X0 = X.copy()
    Y, backprop = layer.forward(X, True)
    assert Y.min() == 0 and Y.max() > 0
    np.testing.assert_array_equal(X, X0)
    dY = np.ones_like(Y)
    dX = backprop(dY)
    assert np.all(dY == 1) and dX.shape == X.shape  # dY is never modified
    layer.fused_output = True  # a fused output layer returns its logits
    Z, _ = layer.forward(X, True)
    assert Z.min() < 0
    np.testing.assert_array_equal(np.maximum(Z, 0), Y)


# -- parity with Keras 3 (torch backend, autograd for the gradients) ----------------------


PARITY_CASES = [
    ("Conv2D", (12, 12, 3), dict(filters=4, kernel_size=3, activation="relu")),
    ("Conv2D", (9, 10, 3), dict(filters=4, kernel_size=(3, 2), strides=2, padding="same")),
    ("Conv2D", (10, 9, 2), dict(filters=3, kernel_size=4, strides=(3, 2), padding="same")),
    ("Conv2D", (11, 11, 2), dict(filters=3, kernel_size=3, dilation_rate=2, padding="same",
                                 use_bias=False, activation="tanh")),
    ("Conv2D", (11, 11, 2), dict(filters=3, kernel_size=(2, 3), dilation_rate=(2, 1))),
    ("Conv2D", (8, 9, 16), dict(filters=8, kernel_size=3, padding="same", activation="relu")),
    ("Conv2D", (9, 7, 8), dict(filters=6, kernel_size=3)),  # Winograd, odd output
    ("Conv2D", (9, 8, 12), dict(filters=5, kernel_size=(2, 3), strides=(2, 1))),
    ("Conv1D", (13, 3), dict(filters=4, kernel_size=3, strides=2, padding="same")),
    ("Conv1D", (13, 10), dict(filters=4, kernel_size=3, padding="causal")),
    ("Conv1D", (13, 3), dict(filters=4, kernel_size=3, padding="causal", dilation_rate=3)),
    ("Conv1D", (13, 3), dict(filters=4, kernel_size=5, strides=3, padding="causal")),
    ("Conv1D", (13, 3), dict(filters=4, kernel_size=4, dilation_rate=2, activation="gelu")),
]


@pytest.mark.parametrize("kind,input_shape,args", PARITY_CASES)
def test_parity_with_keras(keras, kind, input_shape, args, conv_path):
    import torch

    ours = make(kind, input_shape, **args)
    theirs = getattr(keras.layers, kind)(**args)
    theirs.build((None, *input_shape))
    theirs.set_weights([ours.weights[w.name] for w in ours.weight_specs(input_shape)])
    rng = np.random.default_rng(7)
    X = rng.standard_normal((3, *input_shape)).astype(np.float32)
    Y, backprop = ours.forward(X, True)
    dY = rng.standard_normal(Y.shape).astype(np.float32)
    dX = backprop(dY)

    tX = torch.tensor(X, requires_grad=True)
    tY = theirs(tX)
    (tY * torch.tensor(dY)).sum().backward()
    np.testing.assert_allclose(Y, tY.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dX, tX.grad.numpy(), rtol=1e-5, atol=1e-5)
    for w in theirs.weights:
        name = w.path.split("/")[-1]
        np.testing.assert_allclose(ours.grads[name], w.value.grad.numpy(), rtol=1e-5, atol=1e-4)

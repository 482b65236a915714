"""UpSampling1D/2D, ZeroPadding1D/2D, Cropping1D/2D, AveragePooling1D, GlobalMaxPooling1D:
Keras's argument forms, values, float64 gradients, Keras parity, masks, located errors."""
from __future__ import annotations

import numpy as np
import pytest

from layerc.core import xp
from layerc.core.base import ShapeError
from layerc.core.conv import padded
from layerc.core.registry import make_layer
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients
from tests.core.parity import forward_parity, located_error, sgd_parity, summary_matches

# (spec, input shape without the batch): Keras's forms of every argument, odd sizes
CASES = [
    (S.UpSampling1D(), (5, 3)), (S.UpSampling1D(size=3), (4, 2)),
    (S.UpSampling2D(), (3, 5, 2)), (S.UpSampling2D(size=(2, 3)), (3, 4, 2)), (S.UpSampling2D(size=3), (2, 3, 1)),
    (S.UpSampling2D(interpolation="bilinear"), (3, 5, 2)),
    (S.UpSampling2D(size=(3, 2), interpolation="bilinear"), (5, 4, 2)),
    (S.UpSampling2D(size=4, interpolation="bilinear"), (1, 3, 2)),
    (S.ZeroPadding1D(), (5, 3)), (S.ZeroPadding1D(padding=(0, 2)), (5, 3)), (S.ZeroPadding1D(padding=3), (2, 1)),
    (S.ZeroPadding2D(), (3, 4, 2)), (S.ZeroPadding2D(padding=2), (3, 3, 1)), (S.ZeroPadding2D(padding=(0, 2)), (3, 4, 2)),
    (S.ZeroPadding2D(padding=((1, 0), (2, 3))), (3, 4, 2)),
    (S.Cropping1D(), (5, 3)), (S.Cropping1D(cropping=(0, 3)), (5, 3)), (S.Cropping1D(cropping=2), (7, 2)),
    (S.Cropping2D(), (5, 6, 2)), (S.Cropping2D(cropping=1), (5, 6, 2)), (S.Cropping2D(cropping=(1, 2)), (5, 7, 2)),
    (S.Cropping2D(cropping=((1, 0), (0, 3))), (5, 6, 2)),
    (S.AveragePooling1D(pool_size=2), (7, 3)), (S.AveragePooling1D(pool_size=3, strides=1), (7, 2)),
    (S.AveragePooling1D(pool_size=3, strides=2, padding="same"), (7, 3)),
    (S.AveragePooling1D(pool_size=3, strides=1, padding="same"), (6, 3)),
    (S.GlobalMaxPooling1D(), (6, 3)), (S.GlobalMaxPooling1D(keepdims=True), (6, 3)),
]
IDS = [f"{s.type}-{i}" for i, (s, _) in enumerate(CASES)]


def built(spec, shape, dtype="float64"):
    layer = make_layer(spec, "r", 0, dtype)
    layer.build(shape)
    return layer


def yaml_line(spec):
    args = spec.model_dump(exclude={"type", "name", "inputs", "trainable"}, exclude_none=True)
    text = ", ".join(f"{k}: {list(v) if isinstance(v, tuple) else v}" for k, v in args.items())
    return f"{spec.type}: {{{text}}}".replace("(", "[").replace(")", "]")


@pytest.mark.parametrize("spec,shape", CASES, ids=IDS)
def test_float64_gradients_and_output_shape(spec, shape):
    layer = built(spec, shape)
    X = np.random.default_rng(0).standard_normal((3, *shape))
    Y, _ = layer.forward(X, training=True)
    assert Y.shape[1:] == layer.output_shape(shape)
    assert check_layer_gradients(layer, X) > 0


def test_literal_values():
    x = np.arange(6.0).reshape(1, 3, 2)
    np.testing.assert_array_equal(built(S.UpSampling1D(), (3, 2)).forward(x, False)[0][0, :, 0], [0, 0, 2, 2, 4, 4])
    np.testing.assert_array_equal(built(S.ZeroPadding1D(padding=(1, 2)), (3, 2)).forward(x, False)[0][0, :, 1],
                                  [0, 1, 3, 5, 0, 0])
    np.testing.assert_array_equal(built(S.Cropping1D(cropping=(1, 0)), (3, 2)).forward(x, False)[0][0, :, 0], [2, 4])
    # padding same, pool 3, stride 2 on 5 steps: windows [0,1] [1,2,3] [3,4], means of real steps
    z = np.arange(5.0).reshape(1, 5, 1)
    np.testing.assert_allclose(built(S.AveragePooling1D(pool_size=3, strides=2, padding="same"), (5, 1))
                               .forward(z, False)[0][0, :, 0], [0.5, 2, 3.5])
    img = np.array([[0.0, 4.0]]).reshape(1, 1, 2, 1)  # bilinear, half-pixel centres, edges held
    np.testing.assert_allclose(built(S.UpSampling2D(size=(1, 2), interpolation="bilinear"), (1, 2, 1))
                               .forward(img, False)[0].ravel(), [0, 1, 3, 4])


def test_float32_stays_float32():
    for spec, shape in CASES:
        Y, backprop = built(spec, shape, "float32").forward(np.ones((2, *shape), np.float32), True)
        assert Y.dtype == np.float32, spec.type
        assert backprop(np.ones_like(Y)).dtype == np.float32, spec.type


@pytest.mark.parametrize("line,shape,words", [
    ("UpSampling1D", "[4, 4, 2]", ["2-D input (steps, channels)", "(4, 4, 2)"]),
    ("UpSampling2D", "[8, 2]", ["3-D input (height, width, channels)"]),
    ("ZeroPadding2D", "[8]", ["3-D input"]),
    ("Cropping1D: {cropping: [3, 2]}", "[5, 2]", ["crops 3 + 2", "only 5"]),
    ("Cropping2D: {cropping: [[0, 0], [2, 2]]}", "[5, 4, 1]", ["width, which is only 4"]),
    ("AveragePooling1D: {pool_size: 6}", "[5, 2]", ["pool_size 6"]),
    ("GlobalMaxPooling1D", "[5, 5, 2]", ["2-D input"]),
])
def test_shape_errors_are_located_at_the_layer(line, shape, words):
    located_error(f"input: {{shape: {shape}}}\nlayers:\n  - Dense: {{units: 2}}\n  - {line}\n", 4, *words)


def test_argument_forms_are_validated():
    from pydantic import ValidationError

    for bad in [lambda: S.ZeroPadding2D(padding=(1, 2, 3)), lambda: S.Cropping1D(cropping=-1),
                lambda: S.UpSampling2D(interpolation="bicubic"), lambda: S.AveragePooling1D()]:
        with pytest.raises(ValidationError):
            bad()


@pytest.mark.parametrize("spec,shape", CASES, ids=IDS)
def test_forward_summary_and_memory_match_keras(keras, spec, shape):
    body = f"input: {{shape: {list(shape)}}}\nlayers:\n  - {yaml_line(spec)}\n"
    x = np.random.default_rng(1).standard_normal((4, *shape)).astype(np.float32)
    model, twin = forward_parity(body, x)
    summary_matches(model, twin)


@pytest.mark.parametrize("spec,shape", CASES[::3], ids=IDS[::3])
def test_three_sgd_steps_equal_keras(keras, spec, shape):
    """Gradients through the layer reach a Conv before it as Keras's do."""
    conv = "Conv1D" if len(shape) == 2 else "Conv2D"
    body = (f"input: {{shape: {list(shape)}}}\nlayers:\n  - {conv}: {{filters: 3, kernel_size: 1}}\n"
            f"  - {yaml_line(spec)}\n  - Flatten\n  - Dense: {{units: 2}}\n")
    rng = np.random.default_rng(2)
    sgd_parity(keras, body, rng.standard_normal((8, *shape)).astype(np.float32),
               rng.standard_normal((8, 2)).astype(np.float32))


@pytest.mark.parametrize("line", ["UpSampling1D", "ZeroPadding1D: {padding: [1, 2]}", "Cropping1D",
                                  "AveragePooling1D: {pool_size: 2}", "GlobalMaxPooling1D: {keepdims: true}"])
def test_masks_dropped_as_keras(keras, line):
    """Keras 3's 1-D resampling and pooling layers do not support masking: the mask from
    Embedding(mask_zero) stops there, so a later GlobalAveragePooling1D averages every
    step (the same end to end), and compute_mask gives None."""
    body = (f"input: {{shape: [8], dtype: int32}}\nlayers:\n  - Embedding: {{input_dim: 9, output_dim: 3, mask_zero: true}}\n"
            f"  - {line}\n  - GlobalAveragePooling1D\n  - Dense: {{units: 2}}\n")
    x = np.random.default_rng(4).integers(1, 9, (5, 8)).astype(np.int32)
    x[:, 5:] = 0
    model, twin = forward_parity(body, x)
    layer = model.nodes[1].layer
    assert layer.compute_mask(np.zeros((5, 8, 3)), x != 0) is None
    assert not twin.get_layer(model.nodes[1].name).supports_masking


def test_bad_argument_is_located():
    located_error("input: {shape: [5, 2]}\nlayers:\n  - Dense: {units: 2}\n  - UpSampling1D: {size: 0}\n", 4, "size",
                  col=26)


@pytest.mark.parametrize("pads", [((0, 0), (0, 0)), ((1, 0), (2, 3)), ((0, 2), (1, 1)), ((3, 1), (0, 0))])
@pytest.mark.parametrize("value", [0, -np.inf])
def test_padded_fills_only_the_border_as_np_pad(pads, value, monkeypatch):
    """conv.padded writes the border and one copy of X into uninitialised memory (here
    filled with NaN, so a value it misses shows): np.pad's result, 2-D and 1-D."""
    def nan_empty(shape, dtype=float):
        return np.full(shape, np.nan, dtype)

    monkeypatch.setattr(xp, "empty", nan_empty)
    X = np.random.default_rng(0).standard_normal((2, 4, 5, 3))
    for spatial in (pads, pads[:1]):
        A = X if len(spatial) == 2 else X[:, :, 0]
        got = padded(A, spatial, value)
        np.testing.assert_array_equal(got, np.pad(A, ((0, 0), *spatial, (0, 0)), constant_values=value))
        assert (got is A) == (not any(a or b for a, b in spatial))


def test_zero_padding_output_is_its_own_array():
    X = np.ones((2, 3, 3, 1))
    layer = built(S.ZeroPadding2D(padding=0), (3, 3, 1))
    Y, backprop = layer.forward(X, True)
    assert Y is not X and not np.shares_memory(Y, X)
    np.testing.assert_array_equal(backprop(np.full(Y.shape, 2.0)), np.full(X.shape, 2.0))

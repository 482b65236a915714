"""Multiply, Subtract, Average, Maximum, Minimum: values, gradients, Keras's broadcasting,
located shape errors, and masks (values and propagation) as Keras 3 handles them."""
from __future__ import annotations

import numpy as np
import pytest

from layerc.core.base import ShapeError
from layerc.core.registry import make_layer
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients
from tests.core.parity import forward_parity, located_error, sgd_parity, summary_matches

MERGES = ["Multiply", "Subtract", "Average", "Maximum", "Minimum"]
SHAPES = [[(3, 4), (3, 4)], [(3, 4), (3, 4), (3, 4)], [(3, 4), (1, 4)], [(3, 4), (4,)], [(2, 3, 4), (3, 1)]]
NUMPY = {"Multiply": lambda xs: np.prod(np.broadcast_arrays(*xs), axis=0),
         "Subtract": lambda xs: xs[0] - xs[1],
         "Average": lambda xs: np.mean(np.broadcast_arrays(*xs), axis=0),
         "Maximum": lambda xs: np.max(np.broadcast_arrays(*xs), axis=0),
         "Minimum": lambda xs: np.min(np.broadcast_arrays(*xs), axis=0)}


def layer(type_name, dtype="float64"):
    return make_layer(getattr(S, type_name)(), "m", 0, dtype)


def cases():
    for t in MERGES:
        for shapes in SHAPES:
            if t == "Subtract" and len(shapes) != 2:
                continue
            yield t, shapes


def expand(xs):
    """Keras's merge alignment: axes of 1 after the batch axis of lower-rank inputs."""
    rank = max(x.ndim for x in xs)
    return [x.reshape(len(x), *([1] * (rank - x.ndim)), *x.shape[1:]) for x in xs]


@pytest.mark.parametrize("type_name,shapes", list(cases()))
def test_values_shapes_and_float64_gradients(type_name, shapes):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, *s)) for s in shapes]
    m = layer(type_name)
    m.build(shapes)
    Y, backprop = m.forward(xs, training=True)
    np.testing.assert_allclose(Y, NUMPY[type_name](expand(xs)))
    assert Y.shape[1:] == m.output_shape(shapes)
    dxs = backprop(np.ones_like(Y))
    assert [d.shape for d in dxs] == [x.shape for x in xs]
    assert check_layer_gradients(m, xs) > 0


def test_float32_stays_float32():
    for t in MERGES:
        Y, _ = layer(t, "float32").forward([np.ones((2, 3), np.float32), np.full((2, 3), 2, np.float32)], False)
        assert Y.dtype == np.float32, t


@pytest.mark.parametrize("type_name", MERGES)
def test_shape_errors(type_name):
    m = layer(type_name)
    assert m.output_shape([(None, 4), (7, 4)]) == (None, 4) if type_name != "Subtract" else True
    with pytest.raises(ShapeError, match=r"same shape .*got \(3, 4\), \(3, 5\)"):
        m.output_shape([(3, 4), (3, 5)])
    with pytest.raises(ShapeError, match="2 inputs"):
        m.output_shape([(4,)])
    with pytest.raises(ShapeError):
        m.forward([np.zeros((1, 3)), np.zeros((1, 4))], False)


def test_subtract_takes_exactly_two():
    with pytest.raises(ShapeError, match="exactly 2 inputs, got 3"):
        layer("Subtract").output_shape([(4,)] * 3)


@pytest.mark.parametrize("type_name", MERGES)
def test_shape_error_is_located_at_the_layer(type_name):
    located_error("input: {shape: [8]}\nlayers:\n  - Dense: {units: 4, name: a}\n"
                  "  - Dense: {units: 5, name: b, inputs: input_layer}\n"
                  f"  - {type_name}: {{inputs: [a, b]}}\n", 5, "(None, 4)", "(None, 5)", type_name)


def test_masks_combine_as_keras_compute_mask(keras):
    a = np.array([[True, False, False]])
    b = np.array([[True, True, False]])
    Xs = [np.zeros((1, 3, 2))] * 2
    for t in MERGES:
        ours, theirs = layer(t), getattr(keras.layers, t)()
        for masks in ([a, b], [a, None], [None, b], [None, None], None):
            want = theirs.compute_mask(Xs, masks)
            got = ours.compute_mask(Xs, masks)
            if want is None:
                assert got is None, (t, masks)
            else:
                np.testing.assert_array_equal(got, keras.ops.convert_to_numpy(want))


MASKED = """
input: {{shape: [7], dtype: int32}}
layers:
  - Embedding: {{input_dim: 20, output_dim: 4, mask_zero: true, name: emb}}
  - Dense: {{units: 3, name: a}}
  - {second}
  - {merge}: {{inputs: [a, b]}}
  - GlobalAveragePooling1D
  - Dense: {{units: 2}}
"""
# b keeps the embedding's mask (Dense), or has none (Conv1D drops it, as in Keras)
SECOND = {"masked": "Dense: {units: 3, name: b, inputs: emb}",
          "unmasked": "Conv1D: {filters: 3, kernel_size: 1, name: b, inputs: emb}"}


def tokens():
    rng = np.random.default_rng(3)
    x = rng.integers(1, 20, (6, 7)).astype(np.int32)
    for i, n in enumerate([7, 5, 3, 1, 6, 2]):
        x[i, n:] = 0
    return x


@pytest.mark.parametrize("merge", MERGES)
@pytest.mark.parametrize("second", sorted(SECOND))
def test_masked_inputs_match_keras(keras, merge, second):
    """Keras's mask rules end to end: Multiply, Maximum and Minimum use the masks in their
    values; every merge passes on the union of its inputs' masks when all have one (the
    pooling after it then averages the unmasked steps only), and no mask otherwise."""
    forward_parity(MASKED.format(merge=merge, second=SECOND[second]), tokens())


GRAPH = """
inputs: {{p: {{shape: [5, 3]}}, q: {{shape: [5, 3]}}, r: {{shape: [3]}}}}
layers:
  - Dense: {{units: 4, name: a, inputs: p}}
  - Dense: {{units: 4, name: b, inputs: q}}
  - Dense: {{units: 4, name: c, inputs: {c_input}}}
  - {merge}: {{inputs: {inputs}}}
  - Flatten
  - Dense: {{units: 2}}
"""


def graph(merge):
    """Three inputs merged, c (without steps) broadcasting over them; Subtract takes b - c."""
    if merge == "Subtract":
        return GRAPH.format(merge=merge, inputs="[b, c]", c_input="r").replace(
            "  - Dense: {units: 4, name: b, inputs: q}", "  - Add: {inputs: [a, q4], name: b}").replace(
            "layers:\n", "layers:\n  - Dense: {units: 4, name: q4, inputs: q}\n")
    return GRAPH.format(merge=merge, inputs="[a, b, c]", c_input="r")


def graph_inputs(n=8):
    rng = np.random.default_rng(5)
    return [rng.standard_normal((n, 5, 3)).astype(np.float32), rng.standard_normal((n, 5, 3)).astype(np.float32),
            rng.standard_normal((n, 3)).astype(np.float32)]


@pytest.mark.parametrize("merge", MERGES)
def test_forward_summary_and_memory_match_keras(keras, merge):
    model, twin = forward_parity(graph(merge), graph_inputs())
    summary_matches(model, twin)


@pytest.mark.parametrize("merge", MERGES)
def test_three_sgd_steps_equal_keras(keras, merge):
    y = np.random.default_rng(6).standard_normal((8, 2)).astype(np.float32)
    sgd_parity(keras, graph(merge), graph_inputs(), y)

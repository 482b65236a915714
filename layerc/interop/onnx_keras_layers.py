"""ONNX forms of the layers keras.applications needs: Keras's activation layers (ReLU,
LeakyReLU, PReLU, ELU, Softmax), ConvNeXt's LayerScale and Normalization; each
(graph, node, x, mask) -> (output value, output mask), as in onnx.py."""
from __future__ import annotations

import numpy as np


def _w(node, key):
    return np.asarray(node.layer.weights[key], np.float32)


def _relu(g, node, x, mask):
    s = node.layer.spec
    if s.max_value is None and not s.threshold:
        return (g.op("LeakyRelu", [x], alpha=s.negative_slope) if s.negative_slope else g.op("Relu", [x])), mask
    thr, zero = g.scalar(s.threshold, "threshold"), g.scalar(0.0, "zero")
    y = g.op("Where", [g.op("Greater", [x, thr]), x, zero])
    if s.max_value is not None:
        y = g.op("Min", [y, g.scalar(s.max_value, "max_value")])
    if s.negative_slope:
        below = g.op("Mul", [g.op("Sub", [x, thr]), g.scalar(s.negative_slope, "negative_slope")])
        y = g.op("Add", [y, g.op("Where", [g.op("Less", [x, thr]), below, zero])])
    return y, mask


def _leaky_relu(g, node, x, mask):
    return g.op("LeakyRelu", [x], alpha=node.layer.spec.negative_slope), mask


def _prelu(g, node, x, mask):
    return g.op("PRelu", [x, g.const(_w(node, "alpha"), "alpha")]), mask


def _elu(g, node, x, mask):
    return g.op("Elu", [x], alpha=node.layer.spec.alpha), mask


def _softmax(g, node, x, mask):
    axes = list(node.layer._axes(node.input_shape))
    if mask is not None:
        x = g.op("Where", [mask, x, g.scalar(-1e9, "masked")])
    if len(axes) == 1:
        y = g.op("Softmax", [x], axis=axes[0])
    else:
        e = g.op("Exp", [g.op("Sub", [x, g.reduce("ReduceMax", x, axes, True)])])
        y = g.op("Div", [e, g.reduce("ReduceSum", e, axes, True)])
    if mask is not None:
        y = g.op("Where", [mask, y, g.scalar(0.0, "zero")])
    return y, mask


def _layer_scale(g, node, x, mask):
    return g.op("Mul", [x, g.const(_w(node, "gamma"), "gamma")]), mask


LAYERS = {"ReLU": _relu, "LeakyReLU": _leaky_relu, "PReLU": _prelu, "ELU": _elu, "Softmax": _softmax,
          "LayerScale": _layer_scale}


def _normalization(g, node, x, mask):
    from ..core.normalization_pre import EPSILON

    layer, s = node.layer, node.layer.spec
    ndim = len(node.input_shape) + 1
    mean, variance = (s.mean, s.variance) if s.mean is not None else (_w(node, "mean"), _w(node, "variance"))
    m = np.asarray(layer._broadcast(ndim, mean), np.float32)
    d = np.maximum(np.sqrt(np.asarray(layer._broadcast(ndim, variance), np.float32)), np.float32(EPSILON))
    m, d = g.const(m[0], "mean"), g.const(d[0], "std")
    if s.invert:
        return g.op("Add", [g.op("Mul", [x, d]), m]), mask
    return g.op("Div", [g.op("Sub", [x, m]), d]), mask


LAYERS["Normalization"] = _normalization

"""The fast depthwise kernel (one einsum over strided windows; the stride-1 input gradient as
a correlation with the flipped kernel) gives the previous kernel's results in float64, over
strides, paddings, dilations, depth multipliers, odd sizes, chunkings and thread splits."""
from __future__ import annotations

import numpy as np
import pytest

from layerc.core import depthwise, parallel
from layerc.core.conv import conv_pads, pad_spatial


def previous_depthwise_conv2d(X, W, strides, dilation, pads, input_grad=True):
    """The kernel before the einsum rewrite (commit fff1ba5), unchunked and on one thread:
    one multiply-add of a strided view of the padded input per kernel offset."""
    N, H, Wd, C = X.shape
    kh, kw, _, M = W.shape
    Xp = pad_spatial(X, pads)
    (sh, sw), (dh, dw) = strides, dilation
    OH = (Xp.shape[1] - dh * (kh - 1) - 1) // sh + 1
    OW = (Xp.shape[2] - dw * (kw - 1) - 1) // sw + 1
    offsets = [(i * dh, j * dw) for i in range(kh) for j in range(kw)]
    Wt = W.reshape(kh * kw, C, M)

    def tap(A, t):
        a, c = offsets[t]
        return A[:, a:a + (OH - 1) * sh + 1:sh, c:c + (OW - 1) * sw + 1:sw]

    Z = sum(tap(Xp, t)[..., None] * Wt[t] for t in range(len(offsets)))

    def backprop(dZ):
        g = dZ.reshape(N, OH, OW, C, M)
        dW = np.stack([(tap(Xp, t)[..., None] * g).reshape(-1, C, M).sum(axis=0) for t in range(len(offsets))])
        if not input_grad:
            return None, dW.reshape(W.shape)
        dXp = np.zeros(Xp.shape)
        for t in range(len(offsets)):
            tap(dXp, t)[...] += (g * Wt[t]).sum(axis=-1)
        (t, _), (l, _) = pads
        return dXp[:, t:t + H, l:l + Wd], dW.reshape(W.shape)

    return Z.reshape(N, OH, OW, C * M), backprop


GEOMETRIES = [  # (input h, w, C), kernel, strides, dilation, padding, depth_multiplier
    ((7, 6, 3), (3, 3), (1, 1), (1, 1), "valid", 1),
    ((7, 6, 3), (3, 3), (1, 1), (1, 1), "same", 1),
    ((8, 9, 4), (3, 3), (2, 2), (1, 1), "same", 1),
    ((8, 9, 4), (3, 3), (2, 2), (1, 1), "valid", 2),
    ((9, 7, 2), (2, 3), (2, 1), (1, 1), "same", 3),
    ((9, 7, 2), (3, 2), (1, 2), (1, 1), "valid", 1),
    ((10, 9, 3), (3, 3), (1, 1), (2, 2), "same", 2),
    ((10, 11, 2), (3, 2), (1, 1), (2, 3), "valid", 1),
    ((11, 10, 2), (5, 5), (2, 2), (1, 1), "same", 2),
    ((9, 9, 3), (3, 3), (3, 2), (2, 1), "same", 1),
    ((6, 6, 5), (1, 1), (1, 1), (1, 1), "valid", 3),
    ((6, 5, 5), (1, 1), (2, 2), (1, 1), "same", 1),
    ((5, 5, 2), (4, 4), (1, 1), (1, 1), "same", 1),
    ((1, 7, 3), (1, 3), (1, 1), (1, 1), "same", 1),
]


def run(fn, X, W, strides, dilation, padding, input_grad, dZ):
    k = W.shape[:2]
    pads = tuple(conv_pads(X.shape[1 + a], k[a], strides[a], dilation[a], padding) for a in (0, 1))
    Z, backprop = fn(X, W, strides, dilation, pads, input_grad)
    dX, dW = backprop(dZ(Z.shape))
    return Z, dX, dW


@pytest.mark.parametrize("shape,k,strides,dilation,padding,M", GEOMETRIES)
@pytest.mark.parametrize("input_grad", [True, False])
@pytest.mark.parametrize("split", ["one piece", "chunked, threaded"])
def test_fast_kernel_equals_previous_kernel_in_float64(monkeypatch, shape, k, strides, dilation, padding, M,
                                                        input_grad, split):
    rng = np.random.default_rng(sum(shape) + 7 * M)
    X = rng.standard_normal((5, *shape))
    W = rng.standard_normal((*k, shape[-1], M))
    G = {}

    def dZ(zshape):
        return G.setdefault(zshape, rng.standard_normal(zshape))

    if split == "one piece":
        monkeypatch.setattr(parallel, "_PARALLEL_MIN", 1 << 62)
    else:
        monkeypatch.setattr(parallel, "_PARALLEL_MIN", 0)
        monkeypatch.setattr(depthwise, "_CHUNK", 7)
    want = run(previous_depthwise_conv2d, X, W, strides, dilation, padding, input_grad, dZ)
    got = run(depthwise.depthwise_conv2d, X, W, strides, dilation, padding, input_grad, dZ)
    assert got[0].shape == want[0].shape and got[0].dtype == np.float64
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
    if input_grad:
        assert got[1].shape == X.shape
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)
    else:
        assert got[1] is None
    np.testing.assert_allclose(got[2], want[2], rtol=1e-12, atol=1e-12)


def test_float32_input_stays_float32_and_matches_float64():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 12, 12, 8)).astype(np.float32)
    W = rng.standard_normal((3, 3, 8, 1)).astype(np.float32)
    pads = ((1, 1), (1, 1))
    Z, backprop = depthwise.depthwise_conv2d(X, W, (1, 1), (1, 1), pads)
    dX, dW = backprop(np.ones_like(Z))
    assert Z.dtype == dX.dtype == dW.dtype == np.float32
    Z64, backprop64 = previous_depthwise_conv2d(X.astype(float), W.astype(float), (1, 1), (1, 1), pads)
    dX64, dW64 = backprop64(np.ones(Z.shape))
    np.testing.assert_allclose(Z, Z64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dX, dX64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dW, dW64, rtol=1e-4, atol=1e-3)

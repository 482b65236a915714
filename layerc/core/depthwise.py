"""Depthwise and separable convolutions (Keras `DepthwiseConv2D`, `SeparableConv2D`), channels_last.

Each channel has its own small kernel, so there is no product to hand to BLAS. The
convolution is one `einsum` over a strided view of every kernel offset's inputs (one pass
over the outputs, the kernel offsets summed in its inner loop), a chunk of outputs at a
time, over a share of the batch per core.
"""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError, WeightSpec, regularizer_factors
from .activation_layers import clip
from .conv import conv_out_size, conv_pads, folded_forward, pad_spatial
from .parallel import matmul, split_batch
from ..spec.layers import pair


# Outputs are computed a chunk of about this many values at a time (rows of an image, or
# a few images), so the chunk and the inputs it reads stay in the cache (L3) across all
# kernel offsets. Smaller chunks measured slower: each einsum call costs its setup, and
# MobileNetV2's training step (32 images of 96x96, one thread) ran ~3% faster with 2^19
# values a chunk than with 2^15, its inference ~6%.
_CHUNK = 1 << 19


def _chunks(part, OH, row):
    """(images, output rows) slice pairs covering images `part`, about _CHUNK values each."""
    rows = max(1, min(OH, _CHUNK // row))
    images = max(1, _CHUNK // (row * OH)) if rows == OH else 1
    for n0 in range(part.start, part.stop, images):
        n = slice(n0, min(part.stop, n0 + images))
        for r0 in range(0, OH, rows):
            yield n, slice(r0, min(OH, r0 + rows))


def _inner(OW, C, sw):
    """The trailing shape of a row of outputs: one run of OW * C values with stride 1 (so
    NumPy's inner loops are a whole row long), else (OW, C)."""
    return (OW * C,) if sw == 1 else (OW, C)


def _windows(A, n, r, k, OW, strides, dilation):
    """Read-only view (kh, kw, images, rows, *inner) of the values of A (N, H, W, C,
    contiguous) that each kernel offset meets for the outputs (images n, rows r)."""
    sN, sH, sW, sC = A.strides
    (sh, sw), (dh, dw) = strides, dilation
    inner = _inner(OW, A.shape[3], sw)
    return xp.as_strided(A[n.start:, r.start * sh:], writeable=False,
                         shape=(*k, n.stop - n.start, r.stop - r.start, *inner),
                         strides=(dh * sH, dw * sW, sN, sh * sH, *((sC,) if sw == 1 else (sw * sW, sC))))


def _tiled(Wc, OW, sw, dtype):
    """Per-channel weights Wc (kh, kw, C) repeated along an output row: (kh, kw, *inner)."""
    kh, kw, C = Wc.shape
    return xp.ascontiguousarray(xp.broadcast_to(Wc[:, :, None, :], (kh, kw, OW, C)),
                                dtype=dtype).reshape(kh, kw, *_inner(OW, C, sw))


def _subscripts(sw):
    return ("ijkrl", "ijl", "krl") if sw == 1 else ("ijkrwc", "ijwc", "krwc")


def correlate(A, Wc, out_hw, strides, dilation, finish=None):
    """Z (N, OH, OW, C): every channel c of A (N, H, W, C, padded, contiguous)
    cross-correlated with Wc[:, :, c] (kh, kw, C); finish(z), if given, then runs in place on
    each chunk z of Z (rows of _inner(OW, C, sw) values) while it is in the cache."""
    N, C = A.shape[0], A.shape[3]
    (OH, OW), sw = out_hw, strides[1]
    Wl = _tiled(Wc, OW, sw, A.dtype)
    Z = xp.empty((N, OH, *_inner(OW, C, sw)), A.dtype)
    win, w, z = _subscripts(sw)

    def forward(part):
        for n, r in _chunks(part, OH, OW * C):
            xp.einsum(f"{win},{w}->{z}", _windows(A, n, r, Wc.shape[:2], OW, strides, dilation), Wl,
                      out=Z[n, r])
            if finish is not None:
                finish(Z[n, r])

    split_batch(forward, N, Z.size * Wc.shape[0] * Wc.shape[1])
    return Z.reshape(N, OH, OW, C)


def depthwise_conv2d(X, W, strides, dilation, pads, input_grad=True, bias=None, rectifier=(False, None)):
    """Each channel c of X (N, H, W, C) cross-correlated with W[:, :, c, m] for every m of
    W (kh, kw, C, M), plus bias (C * M,) if given, then clipped by the plain rectifier
    (see activation_layers.plain_rectifier) if rectifier[0]; returns (Z, backprop) with
    Z (N, OH, OW, C * M), channel c * M + m. With M = 1 the bias and rectifier run on each
    chunk of Z as it is computed; backprop ignores them (the caller's part).

    backprop(dZ) -> (dX, dW); dX is None when input_grad is False.
    """
    N, H, Wd, C = X.shape
    kh, kw, _, M = W.shape
    Xp = xp.ascontiguousarray(pad_spatial(X, pads))
    (sh, sw), (dh, dw) = strides, dilation
    OH = (Xp.shape[1] - dh * (kh - 1) - 1) // sh + 1
    OW = (Xp.shape[2] - dw * (kw - 1) - 1) // sw + 1
    finish = _finish(bias, rectifier, OW, sw) if M == 1 and (bias is not None or rectifier[0]) else None
    Zs = [correlate(Xp, W[:, :, :, m], (OH, OW), strides, dilation, finish) for m in range(M)]
    Z = Zs[0] if M == 1 else xp.stack(Zs, axis=-1).reshape(N, OH, OW, C * M)
    del Zs
    if M > 1 and bias is not None:
        Z += bias
    if M > 1 and rectifier[0]:
        clip(Z, rectifier[1], out=Z)
    inner = _inner(OW, C, sw)
    win, w, z = _subscripts(sw)

    def backprop(dZ):
        G = dZ.reshape(N, OH, OW, C, M)
        dW = xp.empty(W.shape, X.dtype)
        dXp = xp.zeros(Xp.shape, X.dtype) if input_grad and (sh, sw) != (1, 1) else None
        dX = None
        for m in range(M):
            Gm = xp.ascontiguousarray(G[..., m])
            dW[:, :, :, m] = _kernel_grad(Xp, Gm.reshape(N, OH, *inner), (kh, kw), OW, strides, dilation)
            if not input_grad:
                continue
            if dXp is None:
                # stride 1: dX is G correlated with the flipped kernel, G padded so that the
                # result covers the unpadded input only
                (t, b), (l, r) = pads
                ph, pw = dh * (kh - 1), dw * (kw - 1)
                d = correlate(pad_spatial(Gm, ((ph - t, ph - b), (pw - l, pw - r))), W[::-1, ::-1, :, m],
                              (H, Wd), (1, 1), dilation)
                dX = d if dX is None else dX + d
            else:
                _scatter(dXp, Gm, W[:, :, :, m], OW, strides, dilation)
        if not input_grad or dX is not None:
            return dX, dW
        (t, _), (l, _) = pads
        return dXp[:, t:t + H, l:l + Wd], dW

    return Z, backprop


def _finish(bias, rectifier, OW, sw):
    """The in-place bias add and rectifier for correlate's chunks (rows of _inner(OW, C, sw))."""
    row = None if bias is None else (xp.tile(bias, OW) if sw == 1 else bias)

    def finish(z):
        if row is not None:
            z += row
        if rectifier[0]:
            clip(z, rectifier[1], out=z)

    return finish


def _kernel_grad(Xp, G, k, OW, strides, dilation):
    """dW (kh, kw, C) of one depthwise kernel from the outputs' gradient G (N, OH, *inner)."""
    N, OH, C = G.shape[0], G.shape[1], Xp.shape[3]
    win, w, z = _subscripts(strides[1])
    parts = {}

    def backward(part):
        acc = xp.zeros((*k, *G.shape[2:]), Xp.dtype)
        for n, r in _chunks(part, OH, OW * C):
            acc += xp.einsum(f"{win},{z}->{w}", _windows(Xp, n, r, k, OW, strides, dilation), G[n, r])
        parts[part.start] = acc

    split_batch(backward, N, G.size * k[0] * k[1])
    acc = parts[0]
    for key in sorted(parts)[1:]:  # a fixed order: the same sums every run
        acc = acc + parts[key]
    return acc.reshape(*k, OW, C).sum(axis=2)


def _scatter(dXp, G, Wc, OW, strides, dilation):
    """dXp += each kernel offset's share of G (N, OH, OW, C) times Wc (kh, kw, C), for
    strides above 1 (kernel offsets then meet interleaved inputs)."""
    N, OH, C = G.shape[0], G.shape[1], G.shape[3]
    (sh, sw), (dh, dw) = strides, dilation
    kh, kw = Wc.shape[:2]

    def backward(part):
        for n, r in _chunks(part, OH, OW * C):
            g = G[n, r]
            s = xp.empty(g.shape, dXp.dtype)
            for i in range(kh):
                for j in range(kw):
                    a, c = i * dh, j * dw
                    xp.multiply(g, Wc[i, j], out=s)
                    dXp[n, a + r.start * sh:a + (r.stop - 1) * sh + 1:sh, c:c + (OW - 1) * sw + 1:sw] += s

    split_batch(backward, N, G.size * kh * kw)


class DepthwiseConv2D(Layer):
    """Depthwise 2-D convolution (Keras `DepthwiseConv2D`), channels_last.

    Shapes: X (batch, height, width, C) -> Y (batch, out_h, out_w, C * depth_multiplier);
    kernel (kh, kw, C, depth_multiplier), bias (C * depth_multiplier,).
    """

    splits_work = True
    bn = None  # the BatchNormalization computed with this layer in inference (fuse_batchnorm)

    def _geometry(self):
        s = self.spec
        return pair(s.kernel_size), pair(s.strides), pair(s.dilation_rate)

    def fuse_batchnorm(self, bn) -> bool:
        """As Conv2D.fuse_batchnorm (not for SeparableConv2D, whose output is the pointwise one)."""
        if type(self) is not DepthwiseConv2D or self.spec.activation != "linear" or bn.spec.axis % 4 != 3:
            return False
        self.bn, bn.folded = bn, True
        return True

    def kernel_scaled(self, scale):
        """The kernel (kh, kw, C, M) with output channel c * M + m times scale[c * M + m]."""
        W = self.weights["kernel"]
        return W * scale.reshape(W.shape[2:])

    def _spatial(self, input_shape):
        kind = type(self).__name__
        if len(input_shape) != 3:
            raise ShapeError(f"{kind} expects a 3-D input (height, width, channels), got shape "
                             f"{tuple(input_shape)}", "add a Reshape before it giving (height, width, channels)")
        if input_shape[-1] is None:
            raise ShapeError(f"{kind} needs a known number of channels, got input shape {tuple(input_shape)}")
        k, st, d = self._geometry()
        out = [conv_out_size(n, k[a], st[a], d[a], self.spec.padding) for a, n in enumerate(input_shape[:2])]
        for a, o in enumerate(out):
            if o is not None and o < 1:
                what = ("height", "width")[a]
                raise ShapeError(f"{kind} kernel {what} {k[a]} (spanning {d[a] * (k[a] - 1) + 1}) is larger "
                                 f"than the input {what} {input_shape[a]} (input shape {tuple(input_shape)}, "
                                 f"padding 'valid')", "use padding: same or a smaller kernel_size/dilation_rate")
        return out

    def _channels(self, input_shape):
        return input_shape[-1] * self.spec.depth_multiplier

    def output_shape(self, input_shape):
        return (*self._spatial(input_shape), self._channels(input_shape))

    def _depthwise_spec(self, input_shape, name):
        s = self.spec
        return WeightSpec(name, (*pair(s.kernel_size), input_shape[-1], s.depth_multiplier),
                          s.depthwise_initializer, regularizer=regularizer_factors(s.depthwise_regularizer))

    def _bias(self, n):
        s = self.spec
        return [WeightSpec("bias", (n,), s.bias_initializer,
                           regularizer=regularizer_factors(s.bias_regularizer))] if s.use_bias else []

    def weight_specs(self, input_shape):
        return [self._depthwise_spec(input_shape, "kernel"), *self._bias(self._channels(input_shape))]

    def _pixels(self, input_shape):
        n = 1
        for d in self._spatial(input_shape):
            n *= d or 1
        return n

    def macs(self, input_shape):
        k, _, _ = self._geometry()
        return self._pixels(input_shape) * k[0] * k[1] * input_shape[-1] * self.spec.depth_multiplier

    def compute_mask(self, X, mask):
        return None

    def _depthwise(self, X, W, bias=None, rectifier=(False, None)):
        k, st, d = self._geometry()
        pads = tuple(conv_pads(X.shape[1 + a], k[a], st[a], d[a], self.spec.padding) for a in (0, 1))
        return depthwise_conv2d(X, W, st, d, pads, self.input_grad, bias, rectifier)

    def forward(self, X, training, mask=None):
        if self.bn is not None and not training:
            return folded_forward(self, X)
        return self.convolve(X, training)

    def convolve(self, X, training, W=None, bias=None, rectifier=(False, None)):
        """forward with this kernel and bias, or with W and bias when W is given, then the
        plain rectifier if rectifier[0] (see activation_layers.plain_rectifier)."""
        if W is None:
            W, bias = self.weights["kernel"], self.weights["bias"] if self.spec.use_bias else None
        Z, conv_backprop = self._depthwise(X, W, bias, rectifier)
        Y, act_backprop = self.activate(Z, self.spec.activation)

        def backprop(dY):
            dZ = act_backprop(dY)
            if self.spec.use_bias:
                self.grads["bias"] = dZ.reshape(-1, dZ.shape[-1]).sum(axis=0)
            dX, self.grads["kernel"] = conv_backprop(dZ)
            return dX

        return Y, backprop


class SeparableConv2D(DepthwiseConv2D):
    """Depthwise then pointwise (1x1) 2-D convolution (Keras `SeparableConv2D`), channels_last.

    Shapes: X (batch, height, width, C) -> Y (batch, out_h, out_w, filters);
    depthwise_kernel (kh, kw, C, depth_multiplier),
    pointwise_kernel (1, 1, C * depth_multiplier, filters), bias (filters,).
    """

    def output_shape(self, input_shape):
        return (*self._spatial(input_shape), self.spec.filters)

    def weight_specs(self, input_shape):
        s = self.spec
        pointwise = WeightSpec("pointwise_kernel", (1, 1, self._channels(input_shape), s.filters),
                               s.pointwise_initializer, regularizer=regularizer_factors(s.pointwise_regularizer))
        return [self._depthwise_spec(input_shape, "depthwise_kernel"), pointwise, *self._bias(s.filters)]

    def macs(self, input_shape):
        return super().macs(input_shape) + self._pixels(input_shape) * self._channels(input_shape) * self.spec.filters

    def forward(self, X, training, mask=None):
        D, depthwise_backprop = self._depthwise(X, self.weights["depthwise_kernel"])
        P = self.weights["pointwise_kernel"][0, 0]
        D2 = D.reshape(-1, D.shape[-1])
        Z = matmul(D2, P).reshape(*D.shape[:-1], P.shape[1])
        if self.spec.use_bias:
            Z += self.weights["bias"]
        Y, act_backprop = self.activate(Z, self.spec.activation)

        def backprop(dY):
            dZ = act_backprop(dY)
            dZ2 = dZ.reshape(-1, dZ.shape[-1])
            if self.spec.use_bias:
                self.grads["bias"] = dZ2.sum(axis=0)
            self.grads["pointwise_kernel"] = (D2.T @ dZ2)[None, None]
            dD = matmul(dZ2, xp.ascontiguousarray(P.T)).reshape(D.shape)
            dX, self.grads["depthwise_kernel"] = depthwise_backprop(dD)
            return dX

        return Y, backprop

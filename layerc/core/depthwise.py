"""Depthwise and separable convolutions (Keras `DepthwiseConv2D`, `SeparableConv2D`), channels_last.

Each channel has its own small kernel, so there is no product to hand to BLAS: the
convolution is accumulated kernel offset by kernel offset, each a whole-array multiply-add
of a strided view of the (padded) input, over a share of the batch per core.
"""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError, WeightSpec, regularizer_factors
from .conv import conv_out_size, conv_pads, pad_spatial
from .parallel import matmul, split_batch
from ..spec.layers import pair


# Outputs are computed a chunk of about this many values at a time (a few rows of an
# image, or a few small images): the chunk and its scratch stay in the L2 cache across all
# kernel offsets, instead of every offset streaming whole arrays through memory (~3x faster).
_CHUNK = 1 << 15


def depthwise_conv2d(X, W, strides, dilation, pads, input_grad=True):
    """Each channel c of X (N, H, W, C) cross-correlated with W[:, :, c, m] for every m of
    W (kh, kw, C, M); returns (Z, backprop) with Z (N, OH, OW, C * M), channel c * M + m.

    backprop(dZ) -> (dX, dW); dX is None when input_grad is False.
    """
    N, H, Wd, C = X.shape
    kh, kw, _, M = W.shape
    Xp = pad_spatial(X, pads)
    (sh, sw), (dh, dw) = strides, dilation
    OH = (Xp.shape[1] - dh * (kh - 1) - 1) // sh + 1
    OW = (Xp.shape[2] - dw * (kw - 1) - 1) // sw + 1
    offsets = [(i * dh, j * dw) for i in range(kh) for j in range(kw)]
    # with one output per channel (the usual case) everything stays 4-D: a trailing axis
    # of length 1 would make NumPy's inner loops one element long
    Wt = W.reshape(kh * kw, C, M)
    shape = (N, OH, OW, C) if M == 1 else (N, OH, OW, C, M)
    if M == 1:
        Wt = Wt[..., 0]
    per_row = OW * C * M
    rows = max(1, min(OH, _CHUNK // per_row))
    images = max(1, _CHUNK // (per_row * OH)) if rows == OH else 1

    def chunks(part):
        """(images, output rows) index pairs covering images `part`, about _CHUNK values each."""
        for n0 in range(part.start, part.stop, images):
            n = slice(n0, min(part.stop, n0 + images))
            for r0 in range(0, OH, rows):
                yield n, slice(r0, min(OH, r0 + rows))

    def tap(t, n, r):
        """The input values kernel offset t meets for outputs (images n, rows r)."""
        a, c = offsets[t]
        v = Xp[n, a + r.start * sh:a + (r.stop - 1) * sh + 1:sh, c:c + (OW - 1) * sw + 1:sw]
        return v if M == 1 else v[..., None]

    Z = xp.empty(shape, X.dtype)
    work = Z.size * len(offsets)

    def forward(part):
        tmp = xp.empty((images, rows, *shape[2:]), X.dtype)
        for n, r in chunks(part):
            z = Z[n, r]
            s = tmp[:z.shape[0], :z.shape[1]]
            xp.multiply(tap(0, n, r), Wt[0], out=z)
            for t in range(1, len(offsets)):
                xp.multiply(tap(t, n, r), Wt[t], out=s)
                z += s

    split_batch(forward, N, work)

    def backprop(dZ):
        dZ = dZ.reshape(shape)
        dXp = xp.zeros(Xp.shape, X.dtype) if input_grad else None
        parts = {}

        def backward(part):
            tmp = xp.empty((images, rows, *shape[2:]), X.dtype)
            dW = xp.zeros(Wt.shape, X.dtype)
            for n, r in chunks(part):
                g = dZ[n, r]
                s = tmp[:g.shape[0], :g.shape[1]]
                for t, (a, c) in enumerate(offsets):
                    xp.multiply(tap(t, n, r), g, out=s)
                    dW[t] += s.reshape(-1, *Wt.shape[1:]).sum(axis=0)
                    if input_grad:
                        xp.multiply(g, Wt[t], out=s)
                        dXp[n, a + r.start * sh:a + (r.stop - 1) * sh + 1:sh,
                            c:c + (OW - 1) * sw + 1:sw] += s if M == 1 else s.sum(axis=-1)
            parts[part.start] = dW

        split_batch(backward, N, work)
        dW = parts[0]
        for k in sorted(parts)[1:]:  # a fixed order: the same sums every run
            dW = dW + parts[k]
        dW = dW.reshape(W.shape)
        if not input_grad:
            return None, dW
        (t, _), (l, _) = pads
        return dXp[:, t:t + H, l:l + Wd], dW

    return Z.reshape(N, OH, OW, C * M), backprop


class DepthwiseConv2D(Layer):
    """Depthwise 2-D convolution (Keras `DepthwiseConv2D`), channels_last.

    Shapes: X (batch, height, width, C) -> Y (batch, out_h, out_w, C * depth_multiplier);
    kernel (kh, kw, C, depth_multiplier), bias (C * depth_multiplier,).
    """

    splits_work = True

    def _geometry(self):
        s = self.spec
        return pair(s.kernel_size), pair(s.strides), pair(s.dilation_rate)

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

    def _depthwise(self, X, W):
        k, st, d = self._geometry()
        pads = tuple(conv_pads(X.shape[1 + a], k[a], st[a], d[a], self.spec.padding) for a in (0, 1))
        return depthwise_conv2d(X, W, st, d, pads, self.input_grad)

    def forward(self, X, training, mask=None):
        Z, conv_backprop = self._depthwise(X, self.weights["kernel"])
        if self.spec.use_bias:
            Z += self.weights["bias"]
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

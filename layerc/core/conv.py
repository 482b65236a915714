"""Convolutions (Keras `Conv1D`, `Conv2D`), channels_last, as im2col + one matrix product.

Conv1D runs through the 2-D kernel with a height of 1. The forward pass gathers
every receptive field into a matrix from a strided view of the (padded) input and
multiplies it by the kernel once; the backward pass is one product for the kernel
gradient, and the input gradient is folded back (col2im) kernel offset by kernel
offset, each a small product added into a strided slice of the input's gradient.
"""
from __future__ import annotations

from . import activations, xp
from .base import Layer, ShapeError, kernel_and_bias
from .parallel import split_batch
from ..spec.layers import pair, single


def conv_out_size(n, k, stride, dilation, padding):
    """Keras's output length of a convolution or pooling axis (None stays None)."""
    if n is None:
        return None
    if padding in ("same", "causal"):
        return -(-n // stride)
    return (n - dilation * (k - 1) - 1) // stride + 1


def conv_pads(n, k, stride, dilation, padding):
    """(before, after) zero padding of one axis; Keras puts an odd extra pad at the end."""
    span = dilation * (k - 1) + 1
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return span - 1, 0
    total = max((-(-n // stride) - 1) * stride + span - n, 0)
    return total // 2, total - total // 2


def pad_spatial(X, pads, value=0):
    """X (N, H, W, C) padded on H and W by pads ((top, bottom), (left, right))."""
    (t, b), (l, r) = pads
    if not (t or b or l or r):
        return X
    N, H, W, C = X.shape
    Xp = xp.full((N, H + t + b, W + l + r, C), value, X.dtype)
    Xp[:, t:t + H, l:l + W] = X
    return Xp


def windows(Xp, k, out, strides, dilation):
    """Strided view (N, OH, OW, kh, kw, C) of every receptive field of Xp (N, H, W, C)."""
    sN, sH, sW, sC = Xp.strides
    N, C = Xp.shape[0], Xp.shape[3]
    return xp.as_strided(
        Xp, (N, out[0], out[1], k[0], k[1], C),
        (sN, sH * strides[0], sW * strides[1], sH * dilation[0], sW * dilation[1], sC),
        writeable=False)


def offset_slice(i, j, out, strides, dilation):
    """Index of the input elements that kernel offset (i, j) touches, one per output pixel."""
    r0, c0 = i * dilation[0], j * dilation[1]
    return (slice(None), slice(r0, r0 + strides[0] * (out[0] - 1) + 1, strides[0]),
            slice(c0, c0 + strides[1] * (out[1] - 1) + 1, strides[1]))


_BLOCK_ROWS = 2048  # rows of im2col columns copied and multiplied at a time (C >= 8)


def conv2d(X, W, strides, dilation, pads, bias=None, input_grad=True, keep=True):
    """Cross-correlation of X (N, H, W, C) with W (kh, kw, C, F), plus bias (F,) if given;
    returns (Z, backprop).

    backprop(dZ) -> (dX, dW, db); dX is None when input_grad is False (the input is the
    model's data), db is None without a bias. keep=False (inference) keeps nothing for
    backward; backprop then recomputes what it needs.
    """
    N, H, Wd, C = X.shape
    kh, kw, _, F = W.shape
    K = kh * kw * C
    Xp = pad_spatial(X, pads)
    Hp, Wp = Xp.shape[1:3]
    out = ((Hp - dilation[0] * (kh - 1) - 1) // strides[0] + 1,
           (Wp - dilation[1] * (kw - 1) - 1) // strides[1] + 1)
    M = N * out[0] * out[1]
    view = windows(Xp, (kh, kw), out, strides, dilation)
    Wm = W.reshape(K, F)
    if C < 8:
        # Few channels (a first layer): the columns are built K-major, (K, M), offset by
        # offset over whole image rows instead of C-long runs (~7x faster for C=1); BLAS
        # takes the transpose as is. The bias rides in the product as a row of ones, so
        # the big output is written once, and its gradient comes out of dW's product.
        rows = K + (bias is not None)
        colsT = xp.empty((rows, M), X.dtype)
        dst, src = colsT[:K].reshape(kh, kw, C, N, *out), view.transpose(3, 4, 5, 0, 1, 2)
        split_batch(lambda b: xp.copyto(dst[:, :, :, b], src[:, :, :, b]), N, M * K)
        if bias is not None:
            colsT[K] = 1
            Wm = xp.concatenate([Wm, bias[None]])
        cols = colsT.T
        Z = cols @ Wm
    else:
        # The windows are copied and multiplied a block of images at a time, so each
        # block's columns are still in cache for the product (~20% faster than one big
        # copy, then one big product). Training keeps all the columns for dW; inference
        # reuses one block-sized buffer.
        per_image = out[0] * out[1]
        block = max(1, _BLOCK_ROWS // per_image)
        cols = xp.empty((M if keep else min(N, block) * per_image, K), X.dtype)
        Z = xp.empty((M, F), X.dtype)
        for n0 in range(0, N, block):
            n1 = min(N, n0 + block)
            c = cols[n0 * per_image:n1 * per_image] if keep else cols[:(n1 - n0) * per_image]
            xp.copyto(c.reshape(n1 - n0, *out, kh, kw, C), view[n0:n1])
            xp.matmul(c, Wm, out=Z[n0 * per_image:n1 * per_image])
        if bias is not None:
            Z += bias
    Z = Z.reshape(N, out[0], out[1], F)

    def backprop(dZ):
        if not keep and C >= 8:  # forward ran in inference mode
            return conv2d(X, W, strides, dilation, pads, bias, input_grad)[1](dZ)
        dZm = dZ.reshape(M, F)
        if C < 8:
            dWb = colsT @ dZm  # (K [+1], F): the kernel's rows, then the bias's
            dW, db = dWb[:K].reshape(W.shape), (dWb[K] if bias is not None else None)
        else:
            dW = (dZm.T @ cols).T.reshape(W.shape)  # this operand order is ~15% faster in OpenBLAS
            db = xp.ones(M, dZ.dtype) @ dZm if bias is not None else None  # BLAS, ~5x sum(axis=0)
        if not input_grad:
            return None, dW, db
        # One product per kernel offset into a reused buffer: it stays in cache and
        # its rows are contiguous, so the scatter-add runs over long rows. One big
        # product followed by a scatter from its interleaved (kh, kw, C) rows was
        # ~1.5x slower for the benchmark CNN.
        dXp = xp.zeros(Xp.shape, X.dtype)
        dcol = xp.empty((M, C), X.dtype)
        dcol4 = dcol.reshape(N, *out, C)
        for i in range(kh):
            for j in range(kw):
                xp.matmul(dZm, W[i, j].T, out=dcol)
                target = dXp[offset_slice(i, j, out, strides, dilation)]
                split_batch(lambda b: xp.add(target[b], dcol4[b], out=target[b]), N, M * C)
        (t, _), (l, _) = pads
        return dXp[:, t:t + H, l:l + Wd], dW, db

    return Z, backprop


class _Conv(Layer):
    """Shared Conv1D/Conv2D logic; subclasses map their shapes to 2-D ones."""

    rank = 2

    def _geometry(self):
        s = self.spec
        if self.rank == 1:
            return ((1, single(s.kernel_size)), (1, single(s.strides)),
                    (1, single(s.dilation_rate)))
        return pair(s.kernel_size), pair(s.strides), pair(s.dilation_rate)

    def _check(self, input_shape):
        kind = type(self).__name__
        if self.rank == 2 and len(input_shape) != 3:
            hint = "add a Reshape before it giving (height, width, channels)"
            side = int(round(input_shape[0] ** 0.5)) if len(input_shape) == 1 and input_shape[0] else 0
            if side and side * side == input_shape[0]:
                hint = f"add a Reshape before it: {{target_shape: [{side}, {side}, 1]}}"
            elif len(input_shape) == 2:
                hint += ", or use Conv1D for (steps, channels) sequences"
            raise ShapeError(
                f"Conv2D expects a 3-D input (height, width, channels), got shape "
                f"{tuple(input_shape)}", hint)
        if self.rank == 1 and len(input_shape) != 2:
            raise ShapeError(
                f"Conv1D expects a 2-D input (steps, channels), got shape {tuple(input_shape)}",
                "add a Reshape before it giving (steps, channels), e.g. {target_shape: [100, 1]}")
        if input_shape[-1] is None:
            raise ShapeError(f"{kind} needs a known number of channels, got input shape "
                             f"{tuple(input_shape)}", None)
        k, st, d = self._geometry()
        spatial = input_shape[:-1] if self.rank == 2 else (1, input_shape[0])
        out = []
        for axis, n in enumerate(spatial):
            o = conv_out_size(n, k[axis], st[axis], d[axis], self._padding(axis))
            if o is not None and o < 1:
                span = d[axis] * (k[axis] - 1) + 1
                what = ("height", "width")[axis] if self.rank == 2 else "length"
                size = f"{k[axis]}" + (f" (spanning {span} with dilation)" if d[axis] > 1 else "")
                raise ShapeError(
                    f"{kind} kernel {what if self.rank == 2 else 'size'} {size} is larger than "
                    f"the input {what} {n} "
                    f"(input shape {tuple(input_shape)}, padding 'valid')",
                    "use padding: same, a smaller kernel_size/dilation_rate, or remove a "
                    "pooling layer before it")
            out.append(o)
        return out if self.rank == 2 else out[1:]

    def _padding(self, axis):
        return "valid" if (self.rank == 1 and axis == 0) else self.spec.padding

    def output_shape(self, input_shape):
        return (*self._check(input_shape), self.spec.filters)

    def weight_specs(self, input_shape):
        k, _, _ = self._geometry()
        s = self.spec
        kshape = (*k, input_shape[-1], s.filters) if self.rank == 2 else (k[1], input_shape[-1], s.filters)
        return kernel_and_bias(s, kshape)

    def macs(self, input_shape):
        k, _, _ = self._geometry()
        pixels = 1
        for d in self._check(input_shape):
            pixels *= d or 1
        return pixels * k[0] * k[1] * input_shape[-1] * self.spec.filters

    def compute_mask(self, X, mask):
        return None

    def forward(self, X, training, mask=None):
        k, st, d = self._geometry()
        X2 = X if self.rank == 2 else X[:, None]
        W = self.weights["kernel"]
        W2 = W if self.rank == 2 else W[None]
        pads = tuple(conv_pads(X2.shape[1 + a], k[a], st[a], d[a], self._padding(a)) for a in (0, 1))
        bias = self.weights["bias"] if self.spec.use_bias else None
        Z, conv_backprop = conv2d(X2, W2, st, d, pads, bias, self.input_grad, keep=training)
        if self.rank == 1:
            Z = Z[:, 0]
        if self.spec.activation == "relu" and not self.fused_output:
            Y, act_backprop = activations.relu_(Z)  # Z is ours: rectify it in place
        else:
            Y, act_backprop = self.activate(Z, self.spec.activation)

        def backprop(dY):
            dZ = act_backprop(dY)
            dX, dW, db = conv_backprop(dZ if self.rank == 2 else dZ[:, None])
            self.grads["kernel"] = dW if self.rank == 2 else dW[0]
            if db is not None:
                self.grads["bias"] = db
            if dX is None:
                return None
            return dX if self.rank == 2 else dX[:, 0]

        return Y, backprop


class Conv2D(_Conv):
    """2-D convolution (Keras `Conv2D`), channels_last.

    Shapes: X (batch, height, width, n_in) -> Y (batch, out_h, out_w, filters);
    kernel (kh, kw, n_in, filters), bias (filters,).
    """

    rank = 2


class Conv1D(_Conv):
    """1-D convolution over steps (Keras `Conv1D`), padding valid, same or causal.

    Shapes: X (batch, steps, n_in) -> Y (batch, out_steps, filters);
    kernel (k, n_in, filters), bias (filters,).
    """

    rank = 1

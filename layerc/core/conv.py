"""Convolutions (Keras `Conv1D`, `Conv2D`), channels_last, as im2col + one matrix product.

Conv1D runs through the 2-D kernel with a height of 1. The forward pass gathers
every receptive field into a matrix from a strided view of the (padded) input and
multiplies it by the kernel once; the backward pass is one product for the kernel
gradient, and the input gradient is folded back (col2im) kernel offset by kernel
offset, each a small product added into a strided slice of the input's gradient.
"""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError, kernel_and_bias
from .parallel import one_blas_thread, split_batch
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


_BLOCK_ROWS = 2048  # rows of im2col columns copied and multiplied at a time


def conv2d(X, W, strides, dilation, pads, bias=None, input_grad=True, keep=True, relu=False,
           pool=None):
    """Cross-correlation of X (N, H, W, C) with W (kh, kw, C, F), plus bias (F,) if given,
    then ReLU if `relu`, then max pooling over non-overlapping `pool` (ph, pw) windows
    (valid padding) if given; returns (Y, backprop).

    im2col and one product, with the columns' rows in pooling order: for each image, one
    block of output pixels per pool-window offset (all windows' top-left pixels, then all
    their next ones, ...). The pooled maximum is then an elementwise maximum of whole
    blocks, the gradient goes back to the winners block by block, and output pixels no
    window covers are never computed. Max pooling commutes with the bias and ReLU, so only
    the pooled maxima are rectified. Without pooling there is one block, in plain order.

    Each core takes a share of the batch and runs all of it with a one-thread BLAS (two
    one-thread products run ~1.3x faster than one two-thread product here).

    backprop(dY) -> (dX, dW, db); dX is None when input_grad is False (the input is the
    model's data), db is None without a bias. keep=False (inference) keeps nothing for
    backward; backprop then recomputes what it needs.
    """
    N, H, Wd, C = X.shape
    kh, kw, _, F = W.shape
    K = kh * kw * C
    Xp = pad_spatial(X, pads)
    out = ((Xp.shape[1] - dilation[0] * (kh - 1) - 1) // strides[0] + 1,
           (Xp.shape[2] - dilation[1] * (kw - 1) - 1) // strides[1] + 1)
    ph, pw = pool or (1, 1)
    yout = (out[0] // ph, out[1] // pw)  # output pixels per image and pool offset
    step = (strides[0] * ph, strides[1] * pw)  # input pixels between them
    starts = [(di * strides[0], dj * strides[1]) for di in range(ph) for dj in range(pw)]
    views = [windows(Xp[:, r:, c:], (kh, kw), yout, step, dilation) for r, c in starts]
    n_off = len(starts)
    per_image = n_off * yout[0] * yout[1]
    M = N * per_image
    # The bias rides in the products as a column of ones: the output is written once and
    # the bias gradient is the last row of dW's product.
    Wx = W.reshape(K, F) if bias is None else xp.concatenate([W.reshape(K, F), bias[None]])
    Kx = len(Wx)
    # Few channels (a first layer): columns are built K-major, offset by offset over whole
    # image rows instead of C-long runs (~7x faster for C=1); BLAS takes the transpose.
    kmajor = C < 8
    block = max(1, _BLOCK_ROWS // per_image)  # images whose columns are built at a time
    Y = xp.empty((N, *yout, F), X.dtype)
    Z = Y.reshape(M, F) if pool is None else xp.empty((M, F), X.dtype)
    winner = xp.empty(Y.shape, xp.int8) if pool is not None and keep else None
    # Training keeps every image's columns for dW; inference reuses a block per thread.
    kept = xp.empty((Kx, M) if kmajor else (M, Kx), X.dtype) if keep else None

    def columns(n0, n1, cols):
        """The (rows, Kx) im2col matrix of images n0:n1 (written into cols, or into the
        kept columns at those images' rows)."""
        r0, r1 = (n0 * per_image, n1 * per_image) if keep else (0, (n1 - n0) * per_image)
        cols = kept if keep else cols
        if kmajor:
            dst = cols[:K, r0:r1].reshape(kh, kw, C, n1 - n0, n_off, *yout)
            for k, view in enumerate(views):
                xp.copyto(dst[:, :, :, :, k], view[n0:n1].transpose(3, 4, 5, 0, 1, 2))
            if bias is not None:
                cols[K, r0:r1] = 1
            return cols[:, r0:r1].T
        dst = cols[r0:r1, :K].reshape(n1 - n0, n_off, *yout, kh, kw, C)
        for k, view in enumerate(views):
            xp.copyto(dst[:, k], view[n0:n1])
        if bias is not None:
            cols[r0:r1, K] = 1
        return cols[r0:r1]

    def forward(part):
        cols = None if keep else xp.empty(
            (Kx, block * per_image) if kmajor else (block * per_image, Kx), X.dtype)
        for n0 in range(part.start, part.stop, block):
            n1 = min(part.stop, n0 + block)
            xp.matmul(columns(n0, n1, cols), Wx, out=Z[n0 * per_image:n1 * per_image])
        y = Y[part]
        if pool is not None:
            blocks = Z[part.start * per_image:part.stop * per_image].reshape(-1, n_off, *yout, F)
            xp.copyto(y, blocks[:, 0])
            if winner is not None:
                w = winner[part]
                w.fill(0)
                beats = xp.empty(y.shape, bool)
            for k in range(1, n_off):
                if winner is not None:
                    # k grows, so a new winner is the max of the old one and k; ties
                    # keep the first maximum, as Keras's backends do
                    xp.greater(blocks[:, k], y, out=beats)
                    xp.maximum(w, beats.view(xp.int8) * xp.int8(k), out=w)
                xp.maximum(y, blocks[:, k], out=y)
        if relu:
            xp.maximum(y, 0, out=y)

    with one_blas_thread():
        split_batch(forward, N, M * Kx)

    def backprop(dY):
        if not keep:  # forward ran in inference mode
            return conv2d(X, W, strides, dilation, pads, bias, input_grad, True, relu, pool)[1](dY)
        dXp = xp.zeros(Xp.shape, X.dtype) if input_grad else None
        dZ = xp.empty((M, F), X.dtype) if pool is not None else None
        dWx = {}

        def backward(part):
            rows = slice(part.start * per_image, part.stop * per_image)
            g = dY[part]
            if relu:
                g = g * (Y[part] > 0)
            if pool is not None:
                dz = dZ[rows]
                blocks = dz.reshape(-1, n_off, *yout, F)
                w = winner[part]
                for k in range(n_off):
                    xp.multiply(g, w == k, out=blocks[:, k])
            else:
                dz = g.reshape(-1, F)
            # (the faster operand order for each layout in OpenBLAS, by 10-30%)
            dWx[part.start] = kept[:, rows] @ dz if kmajor else (dz.T @ kept[rows]).T
            if not input_grad:
                return
            # One product per kernel offset into a reused buffer, then one add per pool
            # offset into a strided slice of dXp: ~1.5x faster than one big product
            # and a scatter from its interleaved (kh, kw, C) columns.
            dcol = xp.empty((len(dz), C), X.dtype)
            dcol_blocks = dcol.reshape(-1, n_off, *yout, C)
            target = dXp[part]
            for i in range(kh):
                for j in range(kw):
                    xp.matmul(dz, W[i, j].T, out=dcol)
                    for k, (r, c) in enumerate(starts):
                        r0, c0 = r + i * dilation[0], c + j * dilation[1]
                        target[:, r0:r0 + step[0] * (yout[0] - 1) + 1:step[0],
                               c0:c0 + step[1] * (yout[1] - 1) + 1:step[1]] += dcol_blocks[:, k]

        with one_blas_thread():
            split_batch(backward, N, M * Kx)
        dW = None
        for k in sorted(dWx):  # a fixed order: the same sum every run
            dW = dWx[k] if dW is None else dW + dWx[k]
        db = dW[K].copy() if bias is not None else None
        dW = xp.ascontiguousarray(dW[:K]).reshape(W.shape)
        if not input_grad:
            return None, dW, db
        (t, _), (l, _) = pads
        return dXp[:, t:t + H, l:l + Wd], dW, db

    return Y, backprop


class _Conv(Layer):
    """Shared Conv1D/Conv2D logic; subclasses map their shapes to 2-D ones."""

    rank = 2
    pool = None  # (ph, pw) when a following max pooling is fused in (see fuse_pool)
    splits_work = True

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

    def fuse_pool(self, pool_layer) -> bool:
        """Take over the max pooling that alone consumes this layer's output (the model
        then skips that layer), when the maths allows: ReLU or no activation, windows that
        do not overlap, valid padding. Returns whether it did."""
        window = pool_layer.fusable_window() if self.spec.activation in ("relu", "linear") else None
        if window is None or pool_layer.rank != self.rank:
            return False
        self.pool = window
        return True

    def forward(self, X, training, mask=None):
        k, st, d = self._geometry()
        X2 = X if self.rank == 2 else X[:, None]
        W = self.weights["kernel"]
        W2 = W if self.rank == 2 else W[None]
        pads = tuple(conv_pads(X2.shape[1 + a], k[a], st[a], d[a], self._padding(a)) for a in (0, 1))
        bias = self.weights["bias"] if self.spec.use_bias else None
        relu = self.spec.activation == "relu" and not self.fused_output
        Z, conv_backprop = conv2d(X2, W2, st, d, pads, bias, self.input_grad, keep=training,
                                  relu=relu, pool=self.pool)
        if self.rank == 1:
            Z = Z[:, 0]
        Y, act_backprop = (Z, None) if relu else self.activate(Z, self.spec.activation)

        def backprop(dY):
            dZ = act_backprop(dY) if act_backprop else dY
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

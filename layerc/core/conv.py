"""Convolutions (Keras `Conv1D`, `Conv2D`), channels_last, as im2col + one matrix product.

Conv1D runs through the 2-D kernel with a height of 1. The forward pass gathers
every receptive field into a matrix from a strided view of the (padded) input and
multiplies it by the kernel once; the backward pass is one product for the kernel
gradient, and the input gradient is folded back (col2im) kernel offset by kernel
offset, each a small product added into a strided slice of the input's gradient.
"""
from __future__ import annotations

from . import activations, winograd, xp
from .base import Layer, ShapeError, elements, kernel_and_bias
from .parallel import matmul, one_blas_thread, split_batch
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
    return padded(X, pads, value)


def padded(X, pads, value=0):
    """X (N, *spatial, C) with pads[a] = (before, after) values added along spatial axis a;
    only the border is filled, the rest is one copy of X."""
    if not any(a or b for a, b in pads):
        return X
    shape = (len(X), *(n + a + b for n, (a, b) in zip(X.shape[1:], pads)), X.shape[-1])
    Xp = xp.empty(shape, X.dtype)
    inner = [slice(a, a + n) for n, (a, _) in zip(X.shape[1:], pads)]
    for axis, (a, b) in enumerate(pads):  # each axis's slabs, within the inner range of the axes before
        before = (slice(None), *inner[:axis])
        if a:
            Xp[(*before, slice(0, a))] = value
        if b:
            Xp[(*before, slice(shape[axis + 1] - b, None))] = value
    Xp[(slice(None), *inner)] = X
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


# im2col columns are copied and multiplied a block of images at a time, the block's
# columns and outputs about this many floats (~3 MB: measured best for K = 10 and 289)
_BLOCK_FLOATS = 3 << 18


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
    A 3x3 stride-1 convolution with enough channels takes Winograd's F(2x2, 3x3) instead
    (core.winograd); pooled 2x2, its output tiles are the pooling windows.

    Each core takes a share of the batch and runs all of it with a one-thread BLAS (two
    one-thread products run ~1.3x faster than one two-thread product here).

    backprop(dY) -> (dX, dW, db); dX is None when input_grad is False (the input is the
    model's data), db is None without a bias. keep=False (inference) keeps nothing for
    backward; backprop then recomputes what it needs.
    """
    N, H, Wd, C = X.shape
    kh, kw, _, F = W.shape
    if (kh, kw) == (1, 1) and pool is None and not any(pads[0] + pads[1]):
        return pointwise(X, W, strides, bias, input_grad, relu)
    K = kh * kw * C
    Xp = pad_spatial(X, pads)
    out = ((Xp.shape[1] - dilation[0] * (kh - 1) - 1) // strides[0] + 1,
           (Xp.shape[2] - dilation[1] * (kw - 1) - 1) // strides[1] + 1)
    ph, pw = pool or (1, 1)
    yout = (out[0] // ph, out[1] // pw)  # output pixels per image and pool offset
    step = (strides[0] * ph, strides[1] * pw)  # input pixels between them
    starts = [(di * strides[0], dj * strides[1]) for di in range(ph) for dj in range(pw)]
    n_off = len(starts)
    per_image = n_off * yout[0] * yout[1]
    M = N * per_image
    Y = xp.empty((N, *yout, F), X.dtype)
    winner = xp.empty(Y.shape, xp.int8) if pool is not None and keep else None
    wino = winograd.usable((kh, kw), strides, dilation, pool, C, F, out)
    # im2col's products carry the bias as a column of ones when there are at least as many
    # output rows as kernel rows; else (a big kernel, few pixels) appending the bias row to
    # the kernel would copy more than adding it to the output does.
    ones_column = not wino and bias is not None and M >= K
    late_bias = bias is not None and not ones_column  # added to Y, its gradient a sum of dY
    if wino:
        U = winograd.transform_kernel(W)
        tiles = yout if pool is not None else winograd.tiles_for(out)
        # tiles sticking out past the output read zeros past the input
        Xw = pad_spatial(Xp, ((0, max(0, 2 * tiles[0] + 2 - Xp.shape[1])),
                              (0, max(0, 2 * tiles[1] + 2 - Xp.shape[2]))))
        kept = {}  # part start -> its transformed input V
        direct = None
    else:
        direct = _Im2col(X, Xp, W, bias if ones_column else None, yout, step, starts, dilation, keep,
                         Y if pool is None else None)

    def finish(images, blocks):
        """Pool the output blocks of `images` into Y, add a bias not yet added, rectify."""
        y = Y[images]
        if pool is not None:
            _max_pool(blocks, y, None if winner is None else winner[images])
        if late_bias:
            y += bias
        if relu:
            activations.rectify(y, out=y)

    def forward(part):
        if wino:
            Y4, V = winograd.forward(Xw[part], U, tiles)
            if keep:
                kept[part.start] = V
            if pool is None:
                winograd.untile(Y4, Y[part])
            finish(part, list(Y4))
        else:
            direct.forward(part, finish)

    with one_blas_thread():
        split_batch(forward, N, M * (K + 1))

    def backprop(dY):
        if not keep:  # forward ran in inference mode
            return conv2d(X, W, strides, dilation, pads, bias, input_grad, True, relu, pool)[1](dY)
        dXp = xp.zeros((Xw if wino else Xp).shape, X.dtype) if input_grad else None
        grads = {}

        def backward(part):
            g = dY[part]
            if relu:
                g = g * (Y[part] > 0)
            target = dXp[part] if input_grad else None
            if wino:
                if pool is None:
                    dY4 = winograd.tile(g, tiles)
                else:
                    dY4 = xp.empty((n_off, len(g), *yout, F), X.dtype)
                    _route(g, winner[part], list(dY4))
                dW_part = winograd.backward(dY4, kept[part.start], U, target)
            else:
                def route(images, blocks):  # the output gradient of images (in part)
                    rel = slice(images.start - part.start, images.stop - part.start)
                    _route(g[rel], winner[images], blocks)
                dW_part = direct.backward(part, g if pool is None else route, target)
            grads[part.start] = (dW_part, g.reshape(-1, F).sum(axis=0) if late_bias else None)

        with one_blas_thread():
            split_batch(backward, N, M * (K + 1))
        parts = [grads[k] for k in sorted(grads)]  # a fixed order: the same sums every run
        dW = _ordered_sum([p[0] for p in parts])
        db = _ordered_sum([p[1] for p in parts]) if late_bias else None
        if wino:
            dW = winograd.kernel_grad(dW)
        else:
            db = dW[K].copy() if ones_column else db
            dW = xp.ascontiguousarray(dW[:K]).reshape(W.shape)
        if not input_grad:
            return None, dW, db
        (t, _), (l, _) = pads
        return dXp[:, t:t + H, l:l + Wd], dW, db

    return Y, backprop


def pointwise(X, W, strides, bias=None, input_grad=True, relu=False):
    """conv2d for a 1x1 kernel without padding: one product of the (strided) pixels as rows,
    (N * OH * OW, C), with W (1, 1, C, F), no im2col copy (a copy of the strided pixels only
    for strides above 1), the bias added and ReLU applied in place; backward is one product
    for dW and one for dX, written straight into dX (or its strided pixels)."""
    N, H, Wd, C = X.shape
    F = W.shape[3]
    sh, sw = strides
    Xs = xp.ascontiguousarray(X if (sh, sw) == (1, 1) else X[:, ::sh, ::sw])
    out = Xs.shape[1:3]
    X2, Wm = Xs.reshape(-1, C), W.reshape(C, F)
    Y2 = matmul(X2, Wm)
    if bias is not None:
        Y2 += bias
    if relu:
        activations.rectify(Y2, out=Y2)

    def backprop(dY):
        dY2 = xp.ascontiguousarray(dY).reshape(-1, F)
        if relu:
            dY2 = dY2 * (Y2 > 0)
        dW = (X2.T @ dY2).reshape(W.shape)
        db = dY2.sum(axis=0) if bias is not None else None
        if not input_grad:
            return None, dW, db
        dXs = matmul(dY2, Wm.T).reshape(N, *out, C)  # BLAS reads the transpose: no copy of W
        if (sh, sw) == (1, 1):
            return dXs, dW, db
        dX = xp.zeros(X.shape, X.dtype)
        dX[:, ::sh, ::sw] = dXs
        return dX, dW, db

    return Y2.reshape(N, *out, F), backprop


class _Im2col:
    """The im2col convolution of conv2d: columns in pooling order (see conv2d), kept for
    dW when training."""

    def __init__(self, X, Xp, W, bias, yout, step, starts, dilation, keep, Y=None):
        N, C = X.shape[0], X.shape[3]
        self.kh, self.kw, _, F = W.shape
        self.K = K = self.kh * self.kw * C
        self.W, self.C, self.F, self.yout, self.step, self.starts = W, C, F, yout, step, starts
        self.dilation, self.keep, self.has_bias = dilation, keep, bias is not None
        self.views = [windows(Xp[:, r:, c:], (self.kh, self.kw), yout, step, dilation)
                      for r, c in starts]
        self.per_image = len(starts) * yout[0] * yout[1]
        M = N * self.per_image
        # The bias rides in the products as a column of ones: the output is written once
        # and the bias gradient is the last row of dW's product.
        self.Wx = W.reshape(K, F) if bias is None else xp.concatenate([W.reshape(K, F), bias[None]])
        self.Kx = len(self.Wx)
        self.kmajor = kmajor_columns(C, self.kw, dilation)
        self.block = max(1, _BLOCK_FLOATS // ((self.Kx + F) * self.per_image))  # images per block
        self.Y = Y  # the output when it is not pooled (written in place), else None
        # Training keeps every image's columns for dW; inference reuses a block per thread.
        self.kept = xp.empty((self.Kx, M) if self.kmajor else (M, self.Kx), X.dtype) if keep else None

    def columns(self, n0, n1, cols):
        """The (rows, Kx) im2col matrix of images n0:n1 (written into cols, or into the
        kept columns at those images' rows)."""
        kh, kw, C, K, n_off = self.kh, self.kw, self.C, self.K, len(self.starts)
        r0, r1 = (n0 * self.per_image, n1 * self.per_image) if self.keep else (0, (n1 - n0) * self.per_image)
        cols = self.kept if self.keep else cols
        if self.kmajor:
            dst = cols[:K, r0:r1].reshape(kh, kw, C, n1 - n0, n_off, *self.yout)
            for k, view in enumerate(self.views):
                xp.copyto(dst[:, :, :, :, k], view[n0:n1].transpose(3, 4, 5, 0, 1, 2))
            if self.has_bias:
                cols[K, r0:r1] = 1
            return cols[:, r0:r1].T
        dst = cols[r0:r1, :K].reshape(n1 - n0, n_off, *self.yout, kh, kw, C)
        for k, view in enumerate(self.views):
            xp.copyto(dst[:, k], view[n0:n1])
        if self.has_bias:
            cols[r0:r1, K] = 1
        return cols[r0:r1]

    def forward(self, part, finish):
        """Convolve images `part` a block at a time, calling finish(images, blocks) with
        each block's outputs, one (n, th, tw, F) array per pool offset, while in cache."""
        rows, dtype = self.per_image, self.W.dtype
        cols = None if self.keep else xp.empty(
            (self.Kx, self.block * rows) if self.kmajor else (self.block * rows, self.Kx), dtype)
        Z = None if self.Y is not None else xp.empty((self.block * rows, self.F), dtype)
        for n0 in range(part.start, part.stop, self.block):
            n1 = min(part.stop, n0 + self.block)
            z = self.Y[n0:n1].reshape(-1, self.F) if self.Y is not None else Z[:(n1 - n0) * rows]
            xp.matmul(self.columns(n0, n1, cols), self.Wx, out=z)
            z = z.reshape(n1 - n0, len(self.starts), *self.yout, self.F)
            finish(slice(n0, n1), [z[:, k] for k in range(len(self.starts))])

    def backward(self, part, dz, dXp):
        """dW (with the bias's row) of images `part`; dz is their output gradient
        (n, th, tw, F), or (pooled) route(images, blocks) writes it into one block per
        pool offset, for a block of images at a time: dW's product takes each block while
        it is in cache. Adds the input gradient into dXp when it is given."""
        rows, F, n_off = self.per_image, self.F, len(self.starts)
        routed = callable(dz)
        full = xp.empty(((part.stop - part.start) * rows, F), self.W.dtype) if routed and dXp is not None else None
        buf = xp.empty((self.block * rows, F), self.W.dtype) if routed and full is None else None
        dWx = None
        for n0 in range(part.start, part.stop, self.block):
            n1 = min(part.stop, n0 + self.block)
            r = slice(n0 * rows, n1 * rows)
            if not routed:
                d = dz[n0 - part.start:n1 - part.start].reshape(-1, F)
            else:
                d = full[r.start - part.start * rows:r.stop - part.start * rows] if full is not None \
                    else buf[:(n1 - n0) * rows]
                blocks = d.reshape(n1 - n0, n_off, *self.yout, F)
                dz(slice(n0, n1), [blocks[:, k] for k in range(n_off)])
            # (K, F) in C order either way: dW needs no transposing copy after
            part_dW = self.kept[:, r] @ d if self.kmajor else self.kept[r].T @ d
            dWx = part_dW if dWx is None else dWx + part_dW
        if dXp is not None:
            fold(full if routed else dz.reshape(-1, F), self.W, dXp, self.starts, self.step,
                 self.yout, self.dilation)
        return dWx


def kmajor_columns(C, kw, dilation):
    """Whether im2col builds its columns K-major: when the runs it would copy are short.
    A receptive field's row is kw * C contiguous input values (C with dilation); under 16
    (a first layer with few channels), the columns are built offset by offset over whole
    image rows instead (~7x faster for C=1, 3x3) and BLAS takes the transpose. Longer runs
    (ResNet's 7x7 stem on 3 channels: 21) copy and multiply faster row-major (1.3x)."""
    return C * (kw if dilation[1] == 1 else 1) < 16


def fold(dz, W, dXp, starts, step, yout, dilation):
    """col2im: add into dXp (N, H, W, C) what the output rows dz (N * per_image, F) send
    back through the kernel W (kh, kw, C, F), dz's rows being one block of yout pixels per
    start (r, c) for each image (see conv2d), pixels `step` apart.

    This is the input gradient of a convolution, and the forward pass of a transposed one.
    """
    kh, kw, C, _ = W.shape
    # One product per kernel offset into a reused buffer, then one add per pool
    # offset into a strided slice of dXp: ~1.5x faster than one big product
    # and a scatter from its interleaved (kh, kw, C) columns.
    dcol = xp.empty((len(dz), C), dz.dtype)
    blocks = dcol.reshape(-1, len(starts), *yout, C)
    (sh, sw), (th, tw) = step, yout
    for i in range(kh):
        for j in range(kw):
            xp.matmul(dz, W[i, j].T, out=dcol)
            for k, (r, c) in enumerate(starts):
                r0, c0 = r + i * dilation[0], c + j * dilation[1]
                dXp[:, r0:r0 + sh * (th - 1) + 1:sh, c0:c0 + sw * (tw - 1) + 1:sw] += blocks[:, k]


def folded_forward(layer, X):
    """Inference through a convolution `layer` and the BatchNormalization `layer.bn` after it
    as one convolution: the kernel's output channels times BN's scale, BN's shift (plus the
    bias times the scale) as the bias, BN's folded rectifier applied in place. The same
    affine map as the two layers (rounding apart), without BN's passes over the output.
    backprop recomputes the two layers unfolded and goes back through both (their weights'
    gradients as without the fold). When the kernel outweighs the output (late layers of a
    small batch), scaling it would cost more than BN's pass: the two layers then run unfolded."""
    bn = layer.bn

    def backprop(dY):
        Z, conv_backprop = layer.convolve(X, False)
        return conv_backprop(bn.inference(Z)[1](dY))

    if not kernel_fold_pays(len(X) * elements(layer.output_shape(X.shape[1:])), layer.weights["kernel"].size):
        Z, _ = layer.convolve(X, False)
        return bn.inference(Z)[0], backprop
    scale, shift = bn.inference_affine()
    bias = shift + layer.weights["bias"] * scale if layer.spec.use_bias else shift
    Y, _ = layer.convolve(X, False, layer.kernel_scaled(scale), bias, bn.rectifier)
    return Y, backprop


def kernel_fold_pays(output_size, kernel_size):
    """Whether folding a BatchNormalization into the kernel (a pass over the kernel) is
    cheaper than its pass over the output: the output has at least as many values. (ResNet50,
    16 images of 64x64: stages 4 and 5, 22 M of the 23.5 M kernel values, run unfolded.)"""
    return output_size >= kernel_size


def _ordered_sum(arrays):
    """arrays[0] + arrays[1] + ..., in that order."""
    total = arrays[0]
    for a in arrays[1:]:
        total = total + a
    return total


def _max_pool(blocks, Y, winner):
    """Y = the elementwise max of the blocks (one per pool offset); winner (int8, or None)
    = the index of each window's first maximum, as Keras's backends route ties."""
    xp.copyto(Y, blocks[0])
    if winner is not None:
        winner.fill(0)
        beats = xp.empty(Y.shape, bool)
    for k in range(1, len(blocks)):
        if winner is not None:
            # k grows, so a new winner is the max of the old one and k (~6x faster than
            # a masked copy)
            xp.greater(blocks[k], Y, out=beats)
            xp.maximum(winner, beats.view(xp.int8) * xp.int8(k), out=winner)
        xp.maximum(Y, blocks[k], out=Y)


def _route(g, winner, blocks):
    """Each block (pool offset k) gets the pooled gradient g where k won, else 0."""
    for k, block in enumerate(blocks):
        xp.multiply(g, winner == k, out=block)


class _Conv(Layer):
    """Shared Conv1D/Conv2D logic; subclasses map their shapes to 2-D ones."""

    rank = 2
    pool = None  # (ph, pw) when a following max pooling is fused in (see fuse_pool)
    bn = None  # the BatchNormalization computed with this layer in inference (fuse_batchnorm)
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

    def fuse_batchnorm(self, bn) -> bool:
        """Compute the BatchNormalization that alone consumes this layer's output, in
        inference (see folded_forward); no activation may come between. Returns whether it does."""
        if self.spec.activation != "linear" or bn.spec.axis % (self.rank + 2) != self.rank + 1:
            return False
        self.bn, bn.folded = bn, True
        return True

    def kernel_scaled(self, scale):
        """The kernel with each output channel times scale (F,)."""
        return self.weights["kernel"] * scale

    def forward(self, X, training, mask=None):
        if self.bn is not None and not training and self.pool is None:
            return folded_forward(self, X)
        return self.convolve(X, training)

    def convolve(self, X, training, W=None, bias=None, rectifier=(False, None)):
        """forward with this kernel and bias, or with W and bias when W is given, then the
        plain rectifier if rectifier[0] (see activation_layers.plain_rectifier)."""
        k, st, d = self._geometry()
        X2 = X if self.rank == 2 else X[:, None]
        if W is None:
            W = self.weights["kernel"]
            bias = self.weights["bias"] if self.spec.use_bias else None
        W2 = W if self.rank == 2 else W[None]
        pads = tuple(conv_pads(X2.shape[1 + a], k[a], st[a], d[a], self._padding(a)) for a in (0, 1))
        relu = self.spec.activation == "relu" and not self.fused_output or rectifier == (True, None)
        Z, conv_backprop = conv2d(X2, W2, st, d, pads, bias, self.input_grad, keep=training,
                                  relu=relu, pool=self.pool)
        if rectifier[0] and rectifier[1] is not None:
            from .activation_layers import clip

            clip(Z, rectifier[1], out=Z)
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

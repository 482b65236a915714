"""Pooling layers (Keras `MaxPooling1D/2D`, `AveragePooling2D`, global pooling), channels_last.

Windowed pooling loops over the pool offsets (4 for the usual 2x2), each a strided
view of the input, so the work is a few whole-array operations. Max pooling keeps
the offset of each window's first maximum and routes the gradient there only, as
Keras's backends do on ties (common after a ReLU, where windows are all zeros).
"""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError
from .conv import conv_out_size, conv_pads, offset_slice, pad_spatial
from .parallel import split_batch
from ..spec.layers import pair, single


class _Pool(Layer):
    """Shared MaxPooling1D/MaxPooling2D/AveragePooling2D logic on (N, H, W, C) arrays."""

    rank = 2
    mode = "max"

    def _geometry(self):
        s = self.spec
        strides = s.pool_size if s.strides is None else s.strides
        if self.rank == 1:
            return (1, single(s.pool_size)), (1, single(strides))
        return pair(s.pool_size), pair(strides)

    def output_shape(self, input_shape):
        kind = type(self).__name__
        if len(input_shape) != self.rank + 1:
            want = "(height, width, channels)" if self.rank == 2 else "(steps, channels)"
            raise ShapeError(
                f"{kind} expects a {self.rank + 1}-D input {want}, got shape {tuple(input_shape)}",
                f"add a Reshape before it giving {want}")
        pool, strides = self._geometry()
        spatial = input_shape[:-1] if self.rank == 2 else (1, input_shape[0])
        out = []
        for axis, n in enumerate(spatial):
            padding = "valid" if (self.rank == 1 and axis == 0) else self.spec.padding
            o = conv_out_size(n, pool[axis], strides[axis], 1, padding)
            if o is not None and o < 1:
                raise ShapeError(
                    f"{kind} pool_size {pool[axis]} is larger than its input {tuple(input_shape)}"
                    f" with padding 'valid'",
                    "use padding: same or a smaller pool_size, or remove an earlier "
                    "downsampling layer")
            out.append(o)
        return (*(out if self.rank == 2 else out[1:]), input_shape[-1])

    def macs(self, input_shape):
        return 0

    def compute_mask(self, X, mask):
        return None

    def fusable_window(self):
        """The (ph, pw) window a convolution can fold in (max pooling over windows that
        neither overlap nor skip, valid padding), else None."""
        pool, strides = self._geometry()
        if self.mode != "max" or strides != pool or self.spec.padding != "valid":
            return None
        return pool

    def forward(self, X, training, mask=None):
        pool, strides = self._geometry()
        X2 = X if self.rank == 2 else X[:, None]
        N, H, W, C = X2.shape
        pads = ((0, 0), (0, 0)) if self.spec.padding == "valid" else tuple(
            conv_pads(X2.shape[1 + a], pool[a], strides[a], 1, "valid" if a == 0 and self.rank == 1
                      else "same") for a in (0, 1))
        fill = -xp.inf if self.mode == "max" else 0
        Xp = pad_spatial(X2, pads, fill)
        out = ((Xp.shape[1] - pool[0]) // strides[0] + 1, (Xp.shape[2] - pool[1]) // strides[1] + 1)
        offsets = [(i, j) for i in range(pool[0]) for j in range(pool[1])]
        slices = [offset_slice(i, j, out, strides, (1, 1)) for i, j in offsets]
        disjoint = strides[0] >= pool[0] and strides[1] >= pool[1]
        better = None
        if self.mode == "max":
            Y, better = self._max(Xp, slices, training)
        else:
            Y = Xp[slices[0]].copy()
            for sl in slices[1:]:
                Y += Xp[sl]
            count = self._valid_counts(H, W, pads, out, slices, X.dtype)
            Y /= count
        # windows tiling Xp exactly write every element of dX: no zeroing
        tiled = strides == pool and all(out[a] * pool[a] == Xp.shape[1 + a] for a in (0, 1))

        def backprop(dY):
            dY2 = dY if self.rank == 2 else dY[:, None]
            dXp = (xp.empty if tiled and self.mode == "max" else xp.zeros)(Xp.shape, X.dtype)
            if self.mode == "avg":
                dY2 = dY2 / count
                for sl in slices:
                    dXp[sl] += dY2
            else:
                wins_all = better if better is not None else self._max(Xp, slices, True)[1]

                def part(b):
                    wins = self._winners([w if w is None else w[b] for w in wins_all])
                    for k, sl in enumerate(slices):
                        if disjoint:
                            xp.multiply(dY2[b], wins[k], out=dXp[b][sl])
                        else:
                            dXp[b][sl] += dY2[b] * wins[k]

                split_batch(part, len(dXp), dXp.size)
            (t, _), (l, _) = pads
            dX = dXp[:, t:t + H, l:l + W]
            return dX if self.rank == 2 else dX[:, 0]

        return (Y if self.rank == 2 else Y[:, 0]), backprop

    @staticmethod
    def _max(Xp, slices, training):
        """(Y, better): the max over the offsets' views and, when training, for each offset
        k >= 1 a bool array marking where it beats every earlier offset (None in inference)."""
        views = [Xp[sl] for sl in slices]
        Y = xp.empty(views[0].shape, Xp.dtype)
        better = [None] + [xp.empty(Y.shape, bool) for _ in views[1:]] if training else None

        def part(b):
            y = Y[b]
            if len(views) == 1:
                xp.copyto(y, views[0][b])
                return
            if training:
                xp.greater(views[1][b], views[0][b], out=better[1][b])
            xp.maximum(views[0][b], views[1][b], out=y)
            for k in range(2, len(views)):
                if training:
                    xp.greater(views[k][b], y, out=better[k][b])
                xp.maximum(y, views[k][b], out=y)

        split_batch(part, len(Y), Xp.size)
        return Y, better

    @staticmethod
    def _winners(better):
        """Per offset, where it holds the window's first maximum: the last offset that beat
        all before it (ties keep the earlier one, as Keras's backends do)."""
        if len(better) == 1:
            return [True]
        masks = [None] * len(better)
        later = better[-1].copy()
        masks[-1] = better[-1]
        for k in range(len(better) - 2, 0, -1):
            masks[k] = xp.greater(better[k], later)  # better[k] and not a later winner
            later |= better[k]
        masks[0] = ~later
        return masks

    @staticmethod
    def _valid_counts(H, W, pads, out, slices, dtype):
        """Per-window count of real (non-padding) elements: the divisor of Keras (TF, JAX backends)."""
        if not any(p for ab in pads for p in ab):
            return dtype.type(len(slices))
        ones = pad_spatial(xp.ones((1, H, W, 1), dtype), pads, 0)
        return sum(ones[sl] for sl in slices)[0]


class MaxPooling2D(_Pool):
    """Max over pool windows (Keras `MaxPooling2D`); strides default to pool_size.

    Shapes: X (batch, height, width, channels) -> Y (batch, out_h, out_w, channels).
    """

    rank, mode = 2, "max"


class AveragePooling2D(_Pool):
    """Mean over pool windows (Keras `AveragePooling2D`); with padding same the mean is
    over the window's real elements only, as Keras.

    Shapes: X (batch, height, width, channels) -> Y (batch, out_h, out_w, channels).
    """

    rank, mode = 2, "avg"


class MaxPooling1D(_Pool):
    """Max over windows of steps (Keras `MaxPooling1D`); strides default to pool_size.

    Shapes: X (batch, steps, channels) -> Y (batch, out_steps, channels).
    """

    rank, mode = 1, "max"


class _GlobalPool(Layer):
    """Shared global pooling over every axis between batch and channels."""

    rank = 2

    def output_shape(self, input_shape):
        kind = type(self).__name__
        if len(input_shape) != self.rank + 1:
            want = "(height, width, channels)" if self.rank == 2 else "(steps, channels)"
            raise ShapeError(
                f"{kind} expects a {self.rank + 1}-D input {want}, got shape {tuple(input_shape)}",
                "use the 1-D or 2-D variant that matches the input" if len(input_shape) in (2, 3)
                else f"add a Reshape before it giving {want}")
        return (*([1] * self.rank), input_shape[-1]) if self.spec.keepdims else (input_shape[-1],)

    def compute_mask(self, X, mask):
        return None

    def _keep(self, Y):
        return Y if self.spec.keepdims else Y.reshape(Y.shape[0], Y.shape[-1])

    def _expand(self, dY):
        return dY.reshape(dY.shape[0], *([1] * self.rank), dY.shape[-1])


class GlobalAveragePooling2D(_GlobalPool):
    """Mean over height and width (Keras `GlobalAveragePooling2D`).

    Shapes: X (batch, height, width, channels) -> Y (batch, channels), or (batch, 1, 1, channels)
    with keepdims.
    """

    def forward(self, X, training, mask=None):
        n = X.dtype.type(X.shape[1] * X.shape[2])
        Y = X.sum(axis=(1, 2), keepdims=True) / n

        def backprop(dY):
            return xp.broadcast_to(self._expand(dY) / n, X.shape).copy()

        return self._keep(Y), backprop


class GlobalMaxPooling2D(_GlobalPool):
    """Max over height and width (Keras `GlobalMaxPooling2D`); tied maxima share the
    gradient equally, as Keras's backends (reduce_max's gradient) do.

    Shapes: X (batch, height, width, channels) -> Y (batch, channels), or (batch, 1, 1, channels)
    with keepdims.
    """

    def forward(self, X, training, mask=None):
        axes = tuple(range(1, self.rank + 1))
        Y = X.max(axis=axes, keepdims=True)

        def backprop(dY):
            hit = (X == Y).astype(X.dtype)
            return hit * (self._expand(dY) / hit.sum(axis=axes, keepdims=True))

        return self._keep(Y), backprop


class GlobalAveragePooling1D(_GlobalPool):
    """Mean over steps (Keras `GlobalAveragePooling1D`); with a mask, the mean of the
    unmasked steps only. The output has no mask.

    Shapes: X (batch, steps, channels), mask (batch, steps) -> Y (batch, channels), or
    (batch, 1, channels) with keepdims.
    """

    rank = 1

    def forward(self, X, training, mask=None):
        if mask is None:
            n = X.dtype.type(X.shape[1])
            # the sum over steps as one product with a row of ones: ~5x faster than sum(axis=1)
            Y = xp.matmul(xp.ones((1, X.shape[1]), X.dtype), X) / n

            def backprop(dY):
                return xp.broadcast_to(self._expand(dY) / n, X.shape).copy()

            return self._keep(Y), backprop
        m = mask.astype(X.dtype)[:, :, None]
        # A fully masked row would be 0/0 (NaN) in Keras; it gives 0 here instead.
        n = xp.maximum(m.sum(axis=1, keepdims=True), 1)
        Y = (X * m).sum(axis=1, keepdims=True) / n

        def backprop(dY):
            return m * (self._expand(dY) / n)

        return self._keep(Y), backprop


class AveragePooling1D(_Pool):
    """Mean over windows of steps (Keras `AveragePooling1D`); with padding same the mean
    is over the window's real steps only, as Keras.

    Shapes: X (batch, steps, channels) -> Y (batch, out_steps, channels).
    """

    rank, mode = 1, "avg"


class GlobalMaxPooling1D(GlobalMaxPooling2D):
    """Max over steps (Keras `GlobalMaxPooling1D`, which ignores a mask); tied maxima share
    the gradient equally.

    Shapes: X (batch, steps, channels) -> Y (batch, channels), or (batch, 1, channels) with
    keepdims.
    """

    rank = 1

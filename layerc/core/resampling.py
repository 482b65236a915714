"""Resampling layers (Keras `UpSampling1D/2D`, `ZeroPadding1D/2D`, `Cropping1D/2D`), channels_last.

None of them supports masking in Keras 3, so their output has no mask.
"""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError
from .conv import padded
from ..spec.layers import pair


def _want(rank):
    return "(steps, channels)" if rank == 1 else "(height, width, channels)"


def edges(value, rank):
    """((before, after), ...) per spatial axis from Keras's forms: an int, a pair (one
    value per axis in 2-D, before/after in 1-D) or, in 2-D, a pair of pairs."""
    if isinstance(value, int):
        return ((value, value),) * rank
    if rank == 1:
        return (tuple(value),)
    return tuple((v, v) if isinstance(v, int) else tuple(v) for v in value)


class _Spatial(Layer):
    """A layer that changes the spatial axes (1 to rank) of its input only."""

    rank = 2

    def _check(self, input_shape):
        if len(input_shape) != self.rank + 1:
            want = _want(self.rank)
            raise ShapeError(f"{type(self).__name__} expects a {self.rank + 1}-D input {want}, got "
                             f"shape {tuple(input_shape)}", f"add a Reshape before it giving {want}")

    def compute_mask(self, X, mask):
        return None


class _ZeroPadding(_Spatial):
    def _pads(self):
        return edges(self.spec.padding, self.rank)

    def output_shape(self, input_shape):
        self._check(input_shape)
        return (*(None if n is None else n + a + b for n, (a, b) in zip(input_shape, self._pads())),
                input_shape[-1])

    def forward(self, X, training, mask=None):
        pads = self._pads()
        Y = padded(X, pads)
        if Y is X:
            return X.copy(), lambda dY: dY
        inner = (slice(None), *(slice(a, a + n) for n, (a, _) in zip(X.shape[1:], pads)))
        return Y, lambda dY: dY[inner]


class ZeroPadding1D(_ZeroPadding):
    """Zeros added before and after the steps (Keras `ZeroPadding1D`).

    Shapes: X (batch, steps, channels) -> Y (batch, before + steps + after, channels).
    """

    rank = 1


class ZeroPadding2D(_ZeroPadding):
    """Zero rows and columns around each image (Keras `ZeroPadding2D`).

    Shapes: X (batch, height, width, channels) -> Y (batch, top + height + bottom,
    left + width + right, channels).
    """

    rank = 2


class _Cropping(_Spatial):
    def _crops(self):
        return edges(self.spec.cropping, self.rank)

    def output_shape(self, input_shape):
        self._check(input_shape)
        out = []
        for axis, (n, (a, b)) in enumerate(zip(input_shape, self._crops())):
            if n is not None and a + b >= n:
                what = "steps" if self.rank == 1 else ("height", "width")[axis]
                raise ShapeError(f"{type(self).__name__} crops {a} + {b} of the input's {what}, which is only "
                                 f"{n} (input shape {tuple(input_shape)})", "crop less than the input size")
            out.append(None if n is None else n - a - b)
        return (*out, input_shape[-1])

    def forward(self, X, training, mask=None):
        inner = (slice(None), *(slice(a, n - b) for n, (a, b) in zip(X.shape[1:], self._crops())))
        shape = X.shape

        def backprop(dY):
            dX = xp.zeros(shape, dY.dtype)
            dX[inner] = dY
            return dX

        return xp.ascontiguousarray(X[inner]), backprop


class Cropping1D(_Cropping):
    """Steps cut from the start and end (Keras `Cropping1D`).

    Shapes: X (batch, steps, channels) -> Y (batch, steps - before - after, channels).
    """

    rank = 1


class Cropping2D(_Cropping):
    """Rows and columns cut from each image's edges (Keras `Cropping2D`).

    Shapes: X (batch, height, width, channels) -> Y (batch, height - top - bottom,
    width - left - right, channels).
    """

    rank = 2


def bilinear_matrix(n, factor, dtype):
    """(n * factor, n) weights of Keras's bilinear resize along one axis (half-pixel
    centres, edges clamped)."""
    A = xp.zeros((n * factor, n), dtype)
    src = xp.maximum((xp.arange(n * factor) + 0.5) / factor - 0.5, 0)
    i0 = xp.floor(src).astype(int)
    i1 = xp.minimum(i0 + 1, n - 1)
    frac = src - i0
    rows = xp.arange(n * factor)
    xp.add.at(A, (rows, i0), 1 - frac)
    xp.add.at(A, (rows, i1), frac)
    return A


class _UpSampling(_Spatial):
    def _sizes(self):
        return (self.spec.size,) if self.rank == 1 else pair(self.spec.size)

    def output_shape(self, input_shape):
        self._check(input_shape)
        return (*(None if n is None else n * s for n, s in zip(input_shape, self._sizes())), input_shape[-1])

    def forward(self, X, training, mask=None):
        if getattr(self.spec, "interpolation", "nearest") == "bilinear":
            return self._bilinear(X)
        Y = X
        for axis, s in enumerate(self._sizes(), 1):
            Y = xp.repeat(Y, s, axis=axis)
        shape = X.shape

        def backprop(dY):
            split = [len(dY)]
            for n, s in zip(shape[1:-1], self._sizes()):
                split += [n, s]
            return dY.reshape(*split, shape[-1]).sum(axis=tuple(range(2, 2 * self.rank + 1, 2)))

        return Y, backprop

    def _bilinear(self, X):
        N, H, W, C = X.shape
        sh, sw = self._sizes()
        Ah, Aw = bilinear_matrix(H, sh, X.dtype), bilinear_matrix(W, sw, X.dtype)
        T = (Ah @ X.reshape(N, H, W * C)).reshape(N * H * sh, W, C)
        Y = (Aw @ T).reshape(N, H * sh, W * sw, C)

        def backprop(dY):
            dT = Aw.T @ dY.reshape(N * H * sh, W * sw, C)
            return (Ah.T @ dT.reshape(N, H * sh, W * C)).reshape(X.shape)

        return Y, backprop


class UpSampling1D(_UpSampling):
    """Each step repeated `size` times (Keras `UpSampling1D`).

    Shapes: X (batch, steps, channels) -> Y (batch, steps * size, channels).
    """

    rank = 1


class UpSampling2D(_UpSampling):
    """Images enlarged `size` times, by repetition (nearest) or bilinear interpolation as
    Keras's resize (Keras `UpSampling2D`).

    Shapes: X (batch, height, width, channels) -> Y (batch, height * size_h, width * size_w,
    channels).
    """

    rank = 2

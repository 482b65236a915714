"""Normalization (Keras's preprocessing layer): standardise with a mean and variance given in
the spec or adapted from the training data (Keras's `adapt`), kept as weights."""
from __future__ import annotations

from . import xp
from ..spec.layers.normalization import _shape_of
from .base import Layer, ShapeError, WeightSpec
from .normalization import _resolve_axis

EPSILON = 1e-7  # Keras's backend.epsilon(), the floor of the standard deviation


class NotAdapted(ValueError):
    """A Normalization layer without statistics: neither given in the spec nor adapted."""


class Collected(Exception):
    """Raised by a layer collecting its adapt statistics, so the forward pass stops there."""


class Normalization(Layer):
    """Y = (X - mean) / max(sqrt(variance), 1e-7), per position along `axis` (Keras 3's
    numerics); `invert`: Y = mean + X * max(sqrt(variance), 1e-7).

    Without the spec's mean and variance they are weights (`mean`, `variance`, and `count`,
    the number of values they were computed from: 0 until adapted), computed by `adapt`
    (layerc.train.adapt) from the layer's inputs over the training data.

    Shapes: X (batch, ...) -> Y, same shape; mean, variance the input's sizes along `axis`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stats = None  # (count, mean, M2) while adapting, else None

    def _keep(self, input_shape) -> tuple:
        """The kept axes, as indices into the input shape without the batch axis."""
        axis = self.spec.axis
        axes = [] if axis is None else [axis] if isinstance(axis, int) else axis
        keep = sorted(_resolve_axis("Normalization", a, input_shape) for a in axes)
        if len(set(keep)) != len(keep):
            raise ShapeError(f"Normalization axis {axis} names an axis twice", None)
        return tuple(keep)

    def stats_shape(self, input_shape) -> tuple:
        return tuple(input_shape[a] for a in self._keep(input_shape))

    def output_shape(self, input_shape):
        self._keep(input_shape)
        if self.spec.mean is not None:
            given = _shape_of(self.spec.mean)
            want = self.stats_shape(input_shape)
            if len(given) > len(want) or any(g not in (1, w) for g, w in zip(given[::-1], want[::-1])):
                raise ShapeError(f"Normalization mean has shape {list(given)} but the input has sizes "
                                 f"{list(want)} along axis {self.spec.axis}",
                                 "give one value, or one per position along the kept axes")
        return tuple(input_shape)

    def weight_specs(self, input_shape):
        if self.spec.mean is not None:
            return []
        shape = self.stats_shape(input_shape)
        return [WeightSpec("mean", shape, "zeros", trainable=False),
                WeightSpec("variance", shape, "ones", trainable=False),
                WeightSpec("count", (), "zeros", trainable=False)]

    def needs_adapt(self) -> bool:
        return self.spec.mean is None and float(self.weights["count"]) == 0

    def _broadcast(self, ndim, values):
        """values (the kept axes' sizes, or fewer trailing ones) shaped to broadcast against X."""
        keep = self._keep(self.input_shape)
        A = xp.asarray(values, self.dtype)
        shape = [1] * ndim
        for i, a in enumerate(keep[len(keep) - A.ndim:]):
            shape[a + 1] = A.shape[i]
        return A.reshape(shape)

    def forward(self, X, training, mask=None):
        X = X.astype(self.dtype, copy=False)
        if self.stats is not None:
            self._collect(X)
            raise Collected()
        if self.spec.mean is not None:
            mean, variance = self.spec.mean, self.spec.variance
        elif self.needs_adapt():
            raise NotAdapted(f"Normalization '{self.name}' has no mean and variance: they are adapted from "
                             "the training data when training starts (or give them in the spec)")
        else:
            mean, variance = self.weights["mean"], self.weights["variance"]
        M = self._broadcast(X.ndim, mean)
        D = xp.maximum(xp.sqrt(self._broadcast(X.ndim, variance)), self.dtype.type(EPSILON))
        if self.spec.invert:
            return M + X * D, lambda dY: dY * D
        return (X - M) / D, lambda dY: dY / D

    # -- adapt: statistics streamed over batches (Chan et al.'s pairwise update, in float64) --
    def start_adapt(self):
        shape = self.weights["mean"].shape
        self.stats = (0, xp.zeros(shape), xp.zeros(shape))

    def _collect(self, X):
        keep = self._keep(self.input_shape)
        reduce = tuple(a for a in range(X.ndim) if a - 1 not in keep)
        B = X.astype(xp.float64)
        n_b = 1
        for a in reduce:
            n_b *= X.shape[a]
        if n_b == 0:
            return
        mean_b = B.mean(axis=reduce)
        m2_b = ((B - B.mean(axis=reduce, keepdims=True)) ** 2).sum(axis=reduce)
        n_a, mean_a, m2_a = self.stats
        n = n_a + n_b
        delta = mean_b - mean_a
        self.stats = (n, mean_a + delta * (n_b / n), m2_a + m2_b + delta * delta * (n_a * n_b / n))

    def finish_adapt(self) -> int:
        """Store the adapted statistics; returns the number of values each was computed from."""
        n, mean, m2 = self.stats
        self.stats = None
        if n:
            self.weights["mean"][...] = mean
            self.weights["variance"][...] = m2 / n
            self.weights["count"][...] = n
        return n


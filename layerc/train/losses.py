"""Losses that return their value and the gradient with respect to y_pred together.

Reduction is Keras's "sum_over_batch_size": the mean over every leading position of the
per-sample loss. Crossentropy on probabilities clips to [1e-7, 1 - 1e-7] like Keras;
`from_logits=True` works from logits with log-softmax / softplus forms, stably. When the
output layer's activation is softmax (sigmoid) and the loss is categorical (binary)
crossentropy on probabilities, the trainer asks `fuses(activation)` and then trains
with `logits_version()`, running the output layer without its activation.
"""
from __future__ import annotations

from ..core import xp

EPSILON = 1e-7  # keras.backend.epsilon()
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "huber_loss": "huber"}


class Loss:
    """Base class: `loss(y_true, y_pred) -> (value, dY)`.

    Subclasses implement `_per_sample(T, Y) -> (L, G)`: L the per-position losses,
    G the gradient of `L.sum()` with respect to Y.

    Shapes: y_pred (N, ..., C); y_true the same (or (N, ...) integer labels for the
    sparse loss); dY like y_pred.
    """

    name = "loss"
    fused_activation: str | None = None  # the output activation a logits version absorbs

    def __init__(self, from_logits: bool = False):
        self.from_logits = from_logits

    def __call__(self, y_true, y_pred):
        Y = xp.asarray(y_pred)
        if not xp.issubdtype(Y.dtype, xp.floating):
            Y = Y.astype(xp.float32)
        L, G = self._per_sample(y_true, Y)
        count = max(L.size, 1)
        value = float(xp.sum(L, dtype=xp.float64)) / count
        G *= G.dtype.type(1.0 / count)
        return value, G.reshape(Y.shape)

    def fuses(self, activation_name: str | None) -> bool:
        """True if this loss can absorb the output layer's `activation_name` (stable, fused)."""
        return (not self.from_logits and self.fused_activation is not None
                and activation_name == self.fused_activation)

    def logits_version(self) -> "Loss":
        """The same loss taking logits (from_logits=True)."""
        raise ValueError(f"{self.name} has no logits form")

    def _per_sample(self, y_true, Y):
        raise NotImplementedError


def _same_rank(T, Y):
    """Keras's squeeze_or_expand_to_same_rank: (N,) targets against (N, 1) predictions."""
    if T.shape != Y.shape and T.size == Y.size and _squeezed(T.shape) == _squeezed(Y.shape):
        T = T.reshape(Y.shape)
    if T.shape != Y.shape:
        raise ValueError(f"targets of shape {T.shape} do not match predictions of shape {Y.shape}")
    return T, Y


def _squeezed(shape):
    return shape[:-1] if shape and shape[-1] == 1 else shape


def _targets(y_true, Y):
    return _same_rank(xp.asarray(y_true).astype(Y.dtype, copy=False), Y)


def _log_softmax(Z):
    S = Z - xp.max(Z, axis=-1, keepdims=True)
    S -= xp.log(xp.sum(xp.exp(S), axis=-1, keepdims=True))
    return S


def _clipped(Y, axis_normalise: bool):
    """Keras's probability path: optional y / sum(y), then clip; returns (Q, P, inside)."""
    P = Y / xp.sum(Y, axis=-1, keepdims=True) if axis_normalise else Y
    lo, hi = P.dtype.type(EPSILON), P.dtype.type(1.0 - EPSILON)
    Q = xp.clip(P, lo, hi)
    inside = (P >= lo) & (P <= hi)
    return Q, P, inside


def _through_normalise(G, P, Y):
    """Gradient through P = Y / sum(Y): (G - sum(G * P)) / sum(Y)."""
    G -= xp.sum(G * P, axis=-1, keepdims=True)
    G /= xp.sum(Y, axis=-1, keepdims=True)
    return G


class CategoricalCrossentropy(Loss):
    name = "categorical_crossentropy"
    fused_activation = "softmax"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0):
        super().__init__(from_logits)
        self.label_smoothing = label_smoothing

    def logits_version(self):
        return CategoricalCrossentropy(True, self.label_smoothing)

    def _per_sample(self, y_true, Y):
        T = xp.asarray(y_true).astype(Y.dtype, copy=False)
        if T.shape != Y.shape:
            raise ValueError(f"one-hot targets of shape {T.shape} do not match predictions of "
                             f"shape {Y.shape} (integer labels need sparse_categorical_crossentropy)")
        if self.label_smoothing:
            ls = self.label_smoothing
            T = T * Y.dtype.type(1.0 - ls) + Y.dtype.type(ls / Y.shape[-1])
        if self.from_logits:
            logp = _log_softmax(Y)
            L = -xp.sum(T * logp, axis=-1)
            G = xp.exp(logp) * xp.sum(T, axis=-1, keepdims=True) - T
            return L, G
        Q, P, inside = _clipped(Y, True)
        L = -xp.sum(T * xp.log(Q), axis=-1)
        G = xp.where(inside, -T / Q, Y.dtype.type(0))
        return L, _through_normalise(G, P, Y)


class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"
    fused_activation = "softmax"

    def logits_version(self):
        return SparseCategoricalCrossentropy(True)

    def _per_sample(self, y_true, Y):
        labels = xp.asarray(y_true)
        if labels.ndim == Y.ndim and labels.shape[-1] == 1:
            labels = labels.reshape(labels.shape[:-1])
        if labels.shape != Y.shape[:-1]:
            raise ValueError(f"integer labels of shape {labels.shape} do not match predictions "
                             f"of shape {Y.shape} (expected labels of shape {Y.shape[:-1]})")
        n_classes = Y.shape[-1]
        idx = labels.astype(xp.intp, copy=False).reshape(-1, 1)
        if idx.size and (idx.min() < 0 or idx.max() >= n_classes):
            raise ValueError(f"labels must lie in [0, {n_classes - 1}], got values from "
                             f"{idx.min()} to {idx.max()}")
        Y2 = Y.reshape(-1, n_classes)
        rows = xp.arange(Y2.shape[0])
        if self.from_logits:
            G = _log_softmax(Y2)
            L = -G[rows, idx[:, 0]]
            xp.exp(G, out=G)
            G[rows, idx[:, 0]] -= 1
            return L.reshape(labels.shape), G
        Q, P, inside = _clipped(Y2, True)
        q = Q[rows, idx[:, 0]]
        L = -xp.log(q)
        G = xp.zeros_like(Y2)
        G[rows, idx[:, 0]] = xp.where(inside[rows, idx[:, 0]], -1 / q, Y.dtype.type(0))
        return L.reshape(labels.shape), _through_normalise(G, P, Y2)


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0):
        super().__init__(from_logits)
        self.label_smoothing = label_smoothing

    def logits_version(self):
        return BinaryCrossentropy(True, self.label_smoothing)

    def _per_sample(self, y_true, Y):
        T, Yv = _targets(y_true, Y)
        if self.label_smoothing:
            ls = self.label_smoothing
            T = T * Y.dtype.type(1.0 - ls) + Y.dtype.type(0.5 * ls)
        if self.from_logits:
            # max(z, 0) - z t + log(1 + exp(-|z|)); gradient sigmoid(z) - t
            E = xp.exp(-xp.abs(Yv))
            L = xp.maximum(Yv, 0) - Yv * T + xp.log1p(E)
            G = xp.where(Yv >= 0, 1 / (1 + E), E / (1 + E)) - T
            return L, G
        Q, _, inside = _clipped(Yv, False)
        one = Y.dtype.type(1)
        L = -(T * xp.log(Q) + (one - T) * xp.log(one - Q))
        G = xp.where(inside, (Q - T) / (Q * (one - Q)), Y.dtype.type(0))
        return L, G


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def _per_sample(self, y_true, Y):
        T, Yv = _targets(y_true, Y)
        D = Yv - T
        return D * D, D * Y.dtype.type(2)


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def _per_sample(self, y_true, Y):
        T, Yv = _targets(y_true, Y)
        D = Yv - T
        return xp.abs(D), xp.sign(D)


class Huber(Loss):
    name = "huber"

    def __init__(self, delta: float = 1.0):
        super().__init__(False)
        self.delta = delta

    def _per_sample(self, y_true, Y):
        T, Yv = _targets(y_true, Y)
        D = Yv - T
        A = xp.abs(D)
        d = Y.dtype.type(self.delta)
        half = Y.dtype.type(0.5)
        small = A <= d
        L = xp.where(small, half * D * D, d * A - half * d * d)
        G = xp.where(small, D, d * xp.sign(D))
        return L, G


LOSSES = {
    cls.name: cls for cls in (CategoricalCrossentropy, SparseCategoricalCrossentropy,
                              BinaryCrossentropy, MeanSquaredError, MeanAbsoluteError, Huber)
}


def get_loss(loss_spec) -> Loss:
    """A Loss from a spec model of `layerc.spec.train` (or a bare name such as "mse").

    Args:
        loss_spec: a LossSpec model, a name, or a Loss (returned as is).
    """
    if isinstance(loss_spec, Loss):
        return loss_spec
    if isinstance(loss_spec, str):
        name = _ALIASES.get(loss_spec, loss_spec)
        if name not in LOSSES:
            raise ValueError(f"unknown loss {loss_spec!r}; known: {', '.join(LOSSES)}")
        return LOSSES[name]()
    args = {k: getattr(loss_spec, k) for k in type(loss_spec).model_fields if k != "type"}
    return LOSSES[loss_spec.type](**args)

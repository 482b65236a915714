"""Keras's activation layers (ReLU, LeakyReLU, PReLU, ELU, Softmax) and ConvNeXt's LayerScale,
with Keras 3's numerics (keras.src.activations.relu's branches, torch's elu and leaky_relu)."""
from __future__ import annotations

from . import xp
from .activations import rectify
from .base import Layer, ShapeError, WeightSpec, regularizer_factors
from .normalization import _resolve_axis


class _Elementwise(Layer):
    """An activation applied value by value: Y the input's shape, the mask passed on."""

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, X, training, mask=None):
        Y, slope = self.apply(X)
        return Y, lambda dY: dY * slope

    def apply(self, X):
        """(Y, dY/dX)."""
        raise NotImplementedError


def plain_rectifier(layer):
    """(True, max_value) when `layer` is a plain rectifier, max(X, 0) clipped at max_value
    (None: no clip): an `Activation: relu`, or a `ReLU` with no threshold or negative slope
    (ReLU6 is max_value 6). Else (False, None)."""
    s, kind = layer.spec, type(layer).__name__
    if kind == "Activation" and s.activation == "relu":
        return True, None
    if kind == "ReLU" and not s.threshold and not s.negative_slope:
        return True, s.max_value
    return False, None


def clip(X, max_value, out=None):
    """max(X, 0) (into out, which may be X), clipped at max_value unless it is None; NaN
    stays NaN, as in Keras's relu and relu6."""
    if max_value is None:
        return rectify(X, out=out)
    return xp.clip(X, X.dtype.type(0), X.dtype.type(max_value), out=out)


def clip_passes(Y, max_value):
    """Where a rectifier's output Y passes the gradient (bool, Y's shape): 0 < Y (< max_value);
    the same points as 0 < X (< max_value) for its input X."""
    passes = Y > 0
    if max_value is not None:
        xp.logical_and(passes, Y < Y.dtype.type(max_value), out=passes)
    return passes


class ReLU(_Elementwise):
    """Keras `ReLU`: X above `threshold` (clipped at `max_value`), else
    negative_slope * (X - threshold). Shapes: X (batch, ...) -> Y, same shape.

    A plain rectifier (ReLU6 included) runs in one pass over X and keeps only Y; its
    backward multiplies by a mask of Y (see plain_rectifier)."""

    def forward(self, X, training, mask=None):
        plain, max_value = plain_rectifier(self)
        if not plain:
            return super().forward(X, training, mask)
        Y = clip(X, max_value)
        return Y, lambda dY: dY * clip_passes(Y, max_value)

    def apply(self, X):
        s = self.spec
        t = X.dtype.type
        above = X > s.threshold if s.threshold else X > 0
        Y = xp.where(above, X, t(0))
        slope = above.astype(X.dtype)
        if s.max_value is not None:
            Y = xp.minimum(Y, t(s.max_value))
            slope *= X < s.max_value
        if s.negative_slope:
            below = X < s.threshold
            Y = Y + xp.where(below, t(s.negative_slope) * (X - t(s.threshold)), t(0))
            slope += below * t(s.negative_slope)
        return Y, slope


class LeakyReLU(_Elementwise):
    """Keras `LeakyReLU`: X for X >= 0, negative_slope * X below."""

    def apply(self, X):
        slope = xp.where(X > 0, 1, self.spec.negative_slope).astype(X.dtype)
        return X * slope, slope


class ELU(_Elementwise):
    """Keras `ELU`: X for X > 0, alpha * (exp(X) - 1) below."""

    def apply(self, X):
        alpha = X.dtype.type(self.spec.alpha)
        neg = alpha * xp.expm1(xp.minimum(X, 0))
        pos = X > 0
        return xp.where(pos, X, neg), xp.where(pos, 1, neg + alpha).astype(X.dtype)


class PReLU(Layer):
    """Keras `PReLU`: X for X > 0, alpha * X below, `alpha` learned per value of the input
    (size 1 along `shared_axes`, numbered with the batch axis as 0).

    Shapes: X (batch, d1, ..., dn) -> Y, same shape; alpha (d1, ..., dn), 1 on shared axes.
    """

    def _axes(self, input_shape):
        axes = self.spec.shared_axes
        axes = [] if axes is None else [axes] if isinstance(axes, int) else list(axes)
        for a in axes:
            if a > len(input_shape):
                raise ShapeError(f"PReLU shared_axes {a} is out of range for input shape {tuple(input_shape)}",
                                 f"use axes between 1 and {len(input_shape)} (0 is the batch)")
        return axes

    def output_shape(self, input_shape):
        shape = self.alpha_shape(input_shape)
        if any(d is None for d in shape):
            raise ShapeError(f"PReLU needs a known size along every axis it does not share, got input shape "
                             f"{tuple(input_shape)}", "add the unknown axes to shared_axes")
        return tuple(input_shape)

    def alpha_shape(self, input_shape):
        shared = self._axes(input_shape)
        return tuple(1 if i + 1 in shared else d for i, d in enumerate(input_shape))

    def weight_specs(self, input_shape):
        return [WeightSpec("alpha", self.alpha_shape(input_shape), self.spec.alpha_initializer,
                           regularizer=regularizer_factors(self.spec.alpha_regularizer))]

    def forward(self, X, training, mask=None):
        A = self.weights["alpha"]
        neg = xp.minimum(X, 0)
        Y = xp.maximum(X, 0) + A * neg

        def backprop(dY):
            shared = tuple(i for i in range(X.ndim) if i == 0 or A.shape[i - 1] == 1 and X.shape[i] != 1)
            self.grads["alpha"] = (dY * neg).sum(axis=shared).reshape(A.shape)
            return dY * ((X > 0) + A * (X < 0))

        return Y, backprop


class Softmax(Layer):
    """Keras `Softmax` over `axis` (one or several, batch axis 0); with an incoming mask the
    masked positions take -1e9 before and 0 after, as in Keras.

    Shapes: X (batch, ...) -> Y, same shape.
    """

    def _axes(self, input_shape):
        axis = self.spec.axis
        axes = [_resolve_axis("Softmax", a, input_shape) + 1 for a in (axis if isinstance(axis, list) else [axis])]
        if len(set(axes)) != len(axes):
            raise ShapeError(f"Softmax axis {axis} names an axis twice", None)
        return tuple(axes)

    def output_shape(self, input_shape):
        self._axes(input_shape)
        return tuple(input_shape)

    def forward(self, X, training, mask=None):
        axes = self._axes(X.shape[1:])
        keep = None if mask is None else _broadcast_mask(mask, X)
        Z = X if keep is None else xp.where(keep, X, X.dtype.type(-1e9))
        E = xp.exp(Z - Z.max(axis=axes, keepdims=True))
        S = E / E.sum(axis=axes, keepdims=True)
        Y = S if keep is None else xp.where(keep, S, X.dtype.type(0))

        def backprop(dY):
            g = dY if keep is None else xp.where(keep, dY, dY.dtype.type(0))
            dZ = S * (g - (g * S).sum(axis=axes, keepdims=True))
            return dZ if keep is None else xp.where(keep, dZ, dZ.dtype.type(0))

        return Y, backprop


def _broadcast_mask(mask, X):
    """Keras's Softmax mask: aligned with the input from the last axis, each size 1 or the input's."""
    if mask.ndim > X.ndim or any(m not in (1, d) for m, d in zip(mask.shape[::-1], X.shape[::-1])):
        raise ShapeError(f"Softmax's mask of shape {mask.shape} does not broadcast to its input {X.shape}",
                         "Keras's Softmax takes a mask aligned with the input's last axes")
    return mask


class LayerScale(Layer):
    """ConvNeXt's `LayerScale`: Y = X * gamma along the last axis.

    Shapes: X (batch, ..., projection_dim) -> Y, same shape; gamma (projection_dim,).
    """

    def output_shape(self, input_shape):
        if not input_shape or input_shape[-1] not in (None, self.spec.projection_dim):
            raise ShapeError(f"LayerScale has projection_dim {self.spec.projection_dim} but its input's last "
                             f"axis is {input_shape[-1] if input_shape else 'missing'}",
                             "set projection_dim to the input's channels")
        return tuple(input_shape)

    def weight_specs(self, input_shape):
        value = self.spec.init_values

        def constant(shape, rng, dtype):
            return xp.full(shape, value, dtype)

        return [WeightSpec("gamma", (self.spec.projection_dim,), constant)]

    def forward(self, X, training, mask=None):
        G = self.weights["gamma"]

        def backprop(dY):
            self.grads["gamma"] = (dY * X).reshape(-1, G.shape[0]).sum(axis=0)
            return dY * G

        return X * G, backprop

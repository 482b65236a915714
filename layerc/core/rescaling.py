"""Rescaling (Keras `Rescaling`): x * scale + offset."""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError


class Rescaling(Layer):
    """Y = X * scale + offset, in the model's dtype (integer inputs are cast first).
    `scale` and `offset` are numbers or lists broadcast against the input's last axis.

    Shapes: X (batch, ...) -> Y, same shape.
    """

    def output_shape(self, input_shape):
        for key in ("scale", "offset"):
            v = getattr(self.spec, key)
            if isinstance(v, list) and len(v) != 1 and (not input_shape or input_shape[-1] not in (None, len(v))):
                raise ShapeError(f"Rescaling {key} has {len(v)} values but the input's last axis "
                                 f"is {input_shape[-1] if input_shape else 'missing'}",
                                 "give one value, or one per channel of the last axis")
        return tuple(input_shape)

    def forward(self, X, training, mask=None):
        dtype = self.dtype
        scale = xp.asarray(self.spec.scale, dtype)
        offset = xp.asarray(self.spec.offset, dtype)
        Y = X.astype(dtype, copy=False) * scale + offset

        def backprop(dY):
            if not self.input_grad or not xp.issubdtype(X.dtype, xp.floating):
                return None
            return xp.broadcast_to(dY * scale, X.shape).astype(X.dtype, copy=False)

        return Y, backprop

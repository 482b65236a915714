"""Flatten and Reshape: change the per-sample shape, keeping the batch axis."""
from __future__ import annotations

import math

from .base import Layer, ShapeError


def _size(shape):
    return None if any(d is None for d in shape) else math.prod(shape)


class Flatten(Layer):
    """Flatten each sample to one dimension (Keras `Flatten`).

    Shapes: X (batch, d1, d2, ...) -> Y (batch, d1 * d2 * ...).
    """

    def output_shape(self, input_shape):
        return (_size(input_shape),)

    def forward(self, X, training, mask=None):
        shape = X.shape
        return X.reshape(shape[0], -1), lambda dY: dY.reshape(shape)

    def compute_mask(self, X, mask):
        return None


class Reshape(Layer):
    """Reshape each sample to `target_shape`, one entry of which may be -1 (Keras `Reshape`).

    Shapes: X (batch, ...) -> Y (batch, *target_shape).
    """

    def output_shape(self, input_shape):
        target = list(self.spec.target_shape)
        size, known = _size(input_shape), math.prod(d for d in target if d != -1)
        if -1 in target:
            if size is None:
                target[target.index(-1)] = None
            elif size % known:
                raise ShapeError(
                    f"Reshape cannot fit input shape {tuple(input_shape)} ({size} values) "
                    f"into target_shape {self.spec.target_shape}: {size} is not a multiple "
                    f"of {known}", None)
            else:
                target[target.index(-1)] = size // known
        elif size is not None and size != known:
            raise ShapeError(
                f"Reshape target_shape {self.spec.target_shape} holds {known} values but the "
                f"input shape {tuple(input_shape)} holds {size}",
                "make the product of target_shape equal the input size, or use -1 for one "
                "entry")
        return tuple(target)

    def forward(self, X, training, mask=None):
        target = self.output_shape(X.shape[1:])
        shape = X.shape
        Y = X.reshape(shape[0], *target)
        return Y, lambda dY: dY.reshape(shape)

    def compute_mask(self, X, mask):
        return None

"""Dropout: zero a random fraction of the input while training, scaling the rest."""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError


class Dropout(Layer):
    """Inverted dropout (Keras `Dropout`): kept units are scaled by 1 / (1 - rate).

    Args (spec): rate, the fraction dropped; noise_shape, the mask's shape without the
    batch axis (None entries: the input's size; 1: the mask is shared along that axis).

    Shapes: X (batch, ...) -> Y, same shape.
    """

    def output_shape(self, input_shape):
        noise = self.spec.noise_shape
        if noise is not None:
            if len(noise) != len(input_shape):
                raise ShapeError(
                    f"Dropout noise_shape {list(noise)} has {len(noise)} dimensions but the "
                    f"input shape {tuple(input_shape)} has {len(input_shape)}",
                    "give one noise_shape entry per input dimension (batch axis excluded)",
                )
            for n, d in zip(noise, input_shape):
                if n is not None and n != 1 and d is not None and n != d:
                    raise ShapeError(
                        f"Dropout noise_shape {list(noise)} does not broadcast to the "
                        f"input shape {tuple(input_shape)}",
                        "each noise_shape entry must be null, 1 or the input's size",
                    )
        return tuple(input_shape)

    def _noise_shape(self, X):
        if self.spec.noise_shape is None:
            return X.shape
        return (X.shape[0], *(d if n is None else n
                              for n, d in zip(self.spec.noise_shape, X.shape[1:])))

    def forward(self, X, training, mask=None):
        rate = self.spec.rate
        if not training or rate == 0.0:
            return X, _identity
        keep = self.rng.random(self._noise_shape(X), dtype=xp.float32) >= rate
        M = keep.astype(X.dtype)
        M *= X.dtype.type(1.0 / (1.0 - rate))
        Y = X * M

        def backprop(dY):
            return dY * M

        return Y, backprop


def _identity(dY):
    return dY

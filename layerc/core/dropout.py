"""Dropout: zero a random fraction of the input while training, scaling the rest."""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError


class Dropout(Layer):
    """Inverted dropout (Keras `Dropout`): kept units are scaled by 1 / (1 - rate).

    Args (spec): rate, the fraction dropped; noise_shape, the mask's shape without the
    batch axis (None entries: the input's size; 1: the mask is shared along that axis), or
    with it, as Keras writes it: a batch entry of 1 shares one mask across the batch, None or
    a batch size draws one per sample (Keras fails on a batch of another size than a fixed one).

    Shapes: X (batch, ...) -> Y, same shape.
    """

    def output_shape(self, input_shape):
        noise = self.spec.noise_shape
        if noise is not None:
            if len(noise) not in (len(input_shape), len(input_shape) + 1):
                raise ShapeError(
                    f"Dropout noise_shape {list(noise)} has {len(noise)} dimensions but the "
                    f"input shape {tuple(input_shape)} has {len(input_shape)}",
                    "give one noise_shape entry per input dimension (batch axis excluded), "
                    "or one more for the batch axis first, as Keras writes it",
                )
            for n, d in zip(noise[len(noise) - len(input_shape):], input_shape):
                if n is not None and n != 1 and d is not None and n != d:
                    raise ShapeError(
                        f"Dropout noise_shape {list(noise)} does not broadcast to the "
                        f"input shape {tuple(input_shape)}",
                        "each noise_shape entry must be null, 1 or the input's size",
                    )
        return tuple(input_shape)

    def _noise_shape(self, X):
        noise = self.spec.noise_shape
        if noise is None:
            return X.shape
        batch = X.shape[0]
        if len(noise) == X.ndim:
            batch, noise = (1 if noise[0] == 1 else batch), noise[1:]
        return (batch, *(d if n is None else n for n, d in zip(noise, X.shape[1:])))

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

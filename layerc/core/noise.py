"""GaussianNoise and SpatialDropout1D/2D: training-time noise, identity at inference."""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError
from .dropout import Dropout


class GaussianNoise(Layer):
    """Adds N(0, stddev^2) noise while training (Keras `GaussianNoise`), drawn from the
    layer's generator (saved in checkpoints, so resume is exact).

    Shapes: X (batch, ...) -> Y, same shape.
    """

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, X, training, mask=None):
        if not training or self.spec.stddev == 0:
            return X, _identity
        noise = self.rng.standard_normal(X.shape, dtype=xp.float32 if X.dtype == xp.float32 else xp.float64)
        noise *= X.dtype.type(self.spec.stddev)
        return X + noise, _identity


class SpatialDropout1D(Dropout):
    """Dropout of whole channels (Keras `SpatialDropout1D`): one mask per sample and channel.

    Shapes: X (batch, steps, channels) -> Y, same shape.
    """

    rank = 2

    def output_shape(self, input_shape):
        if len(input_shape) != self.rank:
            raise ShapeError(f"{self.spec.type} expects inputs of rank {self.rank + 1} with the batch, "
                             f"got shape {tuple(input_shape)}", None)
        return tuple(input_shape)

    def _noise_shape(self, X):
        return (X.shape[0], 1, X.shape[2])


class SpatialDropout2D(SpatialDropout1D):
    """Dropout of whole feature maps (Keras `SpatialDropout2D`).

    Shapes: X (batch, rows, cols, channels) (channels_first: (batch, channels, rows, cols))
    -> Y, same shape.
    """

    rank = 3

    def _noise_shape(self, X):
        if self.spec.data_format == "channels_first":
            return (X.shape[0], X.shape[1], 1, 1)
        return (X.shape[0], 1, 1, X.shape[3])


def _identity(dY):
    return dY

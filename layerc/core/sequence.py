"""RepeatVector and Permute: rearrange a sample's axes (Keras; neither keeps a mask)."""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError


class RepeatVector(Layer):
    """Repeats a vector n times (Keras `RepeatVector`).

    Shapes: X (batch, F) -> Y (batch, n, F).
    """

    def output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ShapeError(f"RepeatVector expects a vector per sample (features,), got "
                             f"{tuple(input_shape)}", "put a Flatten or a pooling layer before it")
        return (self.spec.n, input_shape[0])

    def forward(self, X, training, mask=None):
        Y = xp.repeat(X[:, None, :], self.spec.n, axis=1)
        return Y, lambda dY: dY.sum(axis=1)

    def compute_mask(self, X, mask):
        return None


class Permute(Layer):
    """Permutes the non-batch axes (Keras `Permute`; dims count from 1).

    Shapes: X (batch, d1, ..., dk) -> Y (batch, d[dims[0]], ..., d[dims[k-1]]).
    """

    def output_shape(self, input_shape):
        dims = self.spec.dims
        if len(dims) != len(input_shape):
            raise ShapeError(f"Permute dims {dims} has {len(dims)} entries but the input shape "
                             f"{tuple(input_shape)} has {len(input_shape)} axes",
                             "give one entry per non-batch axis")
        return tuple(input_shape[d - 1] for d in dims)

    def forward(self, X, training, mask=None):
        axes = (0, *self.spec.dims)
        back = tuple(int(i) for i in xp.argsort(axes))
        return X.transpose(axes), lambda dY: dY.transpose(back)

    def compute_mask(self, X, mask):
        return None

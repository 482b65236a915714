"""PositionEmbedding: a learned vector per position, added to a sequence (layerc's own layer)."""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError, WeightSpec


class PositionEmbedding(Layer):
    """Adds row t of a learned `embeddings` (sequence_length, features) to step t of X.

    Keras's core has no position layer; keras_hub's `PositionEmbedding` has the same
    arguments and weight but returns the position vectors alone, to be added to the token
    embeddings: this layer does the addition too, so the input's mask (Embedding's
    mask_zero) is passed on. Steps are axis -2; at most `sequence_length` of them.

    Shapes: X (batch, ..., T, F) -> Y, same shape; embeddings (sequence_length, F).
    """

    def output_shape(self, input_shape):
        L = self.spec.sequence_length
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ShapeError(f"PositionEmbedding needs inputs (steps, features) with known "
                             f"features, got {tuple(input_shape)}", "put it after an Embedding")
        if input_shape[-2] is not None and input_shape[-2] > L:
            raise ShapeError(f"PositionEmbedding has sequence_length {L} but its input has "
                             f"{input_shape[-2]} steps", f"set sequence_length: {input_shape[-2]}")
        return tuple(input_shape)

    def weight_specs(self, input_shape):
        return [WeightSpec("embeddings", (self.spec.sequence_length, input_shape[-1]),
                           self.spec.initializer)]

    def forward(self, X, training, mask=None):
        E = self.weights["embeddings"]
        T = X.shape[-2]
        if T > len(E):
            raise ValueError(f"PositionEmbedding '{self.name}' got {T} steps, more than its "
                             f"sequence_length {len(E)}")
        Y = X + E[:T]

        def backprop(dY):
            g = xp.zeros_like(E)
            g[:T] = dY.reshape(-1, T, E.shape[1]).sum(axis=0)
            self.grads["embeddings"] = g
            return dY if self.input_grad else None

        return Y, backprop

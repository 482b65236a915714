"""Embedding: look up a learned vector for each integer token."""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError, WeightSpec, regularizer_factors


class Embedding(Layer):
    """Token embedding (Keras `Embedding`); index 0 is a padding token with mask_zero.

    Shapes: X (batch, steps) integers in [0, input_dim) -> Y (batch, steps, output_dim);
    embeddings (input_dim, output_dim).
    """

    def output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ShapeError(
                f"Embedding expects a 1-D input of token indices (steps,), got shape "
                f"{tuple(input_shape)}",
                "feed integer token sequences shaped (steps,), e.g. input shape [80]",
            )
        return (input_shape[0], self.spec.output_dim)

    def weight_specs(self, input_shape):
        s = self.spec
        return [WeightSpec("embeddings", (s.input_dim, s.output_dim), s.embeddings_initializer,
                           regularizer=regularizer_factors(s.embeddings_regularizer))]

    def forward(self, X, training, mask=None):
        if not xp.issubdtype(X.dtype, xp.integer):
            X = X.astype(xp.intp)  # Keras casts non-integer token ids the same way
        n_in = self.spec.input_dim
        if X.size and (X.min() < 0 or X.max() >= n_in):
            bad = X[(X < 0) | (X >= n_in)][0]
            where = tuple(int(i) for i in xp.argwhere(X == bad)[0])
            raise ValueError(f"Embedding '{self.name}' got token index {int(bad)} at position "
                             f"{where}, outside the valid range 0..{n_in - 1} "
                             f"(input_dim={n_in})")
        E = self.weights["embeddings"]
        Y = E.take(X, axis=0)

        def backprop(dY):
            # A 1-D np.add.at over flat (row * n_out + column) positions: measured ~4x
            # faster than 2-D add.at, bincount or a one-hot matmul (5000x64, 64x80 tokens).
            n_out = E.shape[1]
            ids = X
            if dY.ndim == 3 and not dY.flags.c_contiguous and dY.transpose(1, 0, 2).flags.c_contiguous:
                # a time-major gradient (a recurrent layer's): read it in its own order
                ids, dY = X.T, dY.transpose(1, 0, 2)
            flat = (ids.reshape(-1, 1) * n_out + xp.arange(n_out)).ravel()
            g = xp.zeros(E.size, E.dtype)
            xp.add.at(g, flat, dY.reshape(-1))
            self.grads["embeddings"] = g.reshape(E.shape)
            return None

        return Y, backprop

    def compute_mask(self, X, mask):
        return X != 0 if self.spec.mask_zero else None

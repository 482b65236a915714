"""Activation: apply an activation function as a layer of its own."""
from __future__ import annotations

from .base import Layer


class Activation(Layer):
    """Keras `Activation`. Shapes: X (batch, ...) -> Y, same shape."""

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, X, training, mask=None):
        return self.activate(X, self.spec.activation)

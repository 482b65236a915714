"""TimeDistributed (Keras `TimeDistributed`): one layer applied to every time step."""
from __future__ import annotations

from .base import Layer, ShapeError, WeightSpec


class TimeDistributed(Layer):
    """Applies the wrapped layer to each step of axis 1, by folding the steps into the batch.

    The weights are the wrapped layer's, with its names (Keras's order and layouts). The
    input's mask is passed on (Keras's); a mask with more axes than (batch, steps) is folded
    like the input for the wrapped layer. A BatchNormalization inside computes its batch
    statistics over all steps at once (Keras: per step, updating the moving ones T times).

    Shapes: X (batch, T, *inner_in) -> Y (batch, T, *inner_out).
    """

    def __init__(self, spec, name, seed, dtype="float32"):
        super().__init__(spec, name, seed, dtype)
        from .registry import make_layer

        self.inner = make_layer(spec.layer, spec.layer.name or name, seed, dtype)
        self.splits_work = self.inner.splits_work

    def _inner_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ShapeError(f"TimeDistributed needs inputs of at least (steps, features), got "
                             f"{tuple(input_shape)}", "it applies its layer to each step of axis 1")
        if self.inner.multi_input:
            raise ShapeError(f"TimeDistributed wraps a one-input layer, not {self.spec.layer.type}", None)
        return tuple(input_shape[1:])

    def output_shape(self, input_shape):
        return (input_shape[0], *self.inner.output_shape(self._inner_shape(input_shape)))

    def weight_specs(self, input_shape):
        return [WeightSpec(w.name, w.shape, w.initializer, w.trainable and not self.inner.frozen,
                           w.regularizer) for w in self.inner.weight_specs(self._inner_shape(input_shape))]

    def macs(self, input_shape):
        return (input_shape[0] or 1) * self.inner.macs(self._inner_shape(input_shape))

    def scratch_elements(self, input_shape):
        extra = getattr(self.inner, "scratch_elements", None)
        return (input_shape[0] or 1) * extra(self._inner_shape(input_shape)) if extra else 0

    def build(self, input_shape):
        self.input_shape = input_shape
        self.inner.build(self._inner_shape(input_shape))
        self.weights, self.grads = self.inner.weights, self.inner.grads
        self.trainable = {k: t and not self.frozen for k, t in self.inner.trainable.items()}
        self.regularizers = dict(self.inner.regularizers)

    def forward(self, X, training, mask=None):
        inner = self.inner
        inner.weights, inner.grads, inner.rng = self.weights, self.grads, self.rng
        inner.fused_output, inner.input_grad = self.fused_output, self.input_grad
        B, T = X.shape[:2]
        folded = None if mask is None or mask.ndim < 3 else mask.reshape(B * T, *mask.shape[2:])
        Y, back = inner.forward(X.reshape(B * T, *X.shape[2:]), training, folded)
        self.grads = inner.grads

        def backprop(dY):
            dX = back(dY.reshape(B * T, *dY.shape[2:]))
            self.grads = inner.grads
            return None if dX is None else dX.reshape(X.shape)

        return Y.reshape(B, T, *Y.shape[1:]), backprop

"""Bidirectional (Keras `Bidirectional`): a recurrent layer forwards and a copy backwards."""
from __future__ import annotations

from . import xp
from .base import Layer, WeightSpec
from .gru import GRU
from .lstm import LSTM
from .recurrent import SimpleRNN


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy backwards, merging the outputs (Keras).

    Weights are the forward layer's then the backward layer's, named "forward/<name>"
    and "backward/<name>". Shapes: X (batch, T, F) -> (batch, [T,] 2 * units) for
    merge_mode concat, else (batch, [T,] units).
    """

    splits_work = True

    def __init__(self, spec, name, seed, dtype="float32"):
        super().__init__(spec, name, seed, dtype)
        inner = spec.layer
        cls = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}[inner.type]
        back_spec = inner.model_copy(update={"go_backwards": not inner.go_backwards})
        seeds = xp.random.SeedSequence(seed).generate_state(2)
        kind = inner.type.lower()
        self.forward_layer = cls(inner, f"forward_{kind}", int(seeds[0]), dtype)
        self.backward_layer = cls(back_spec, f"backward_{kind}", int(seeds[1]), dtype)
        for layer in (self.forward_layer, self.backward_layer):
            layer.zero_output_for_mask = inner.return_sequences
        self._sides = (("forward", self.forward_layer), ("backward", self.backward_layer))

    def output_shape(self, input_shape):
        shape = self.forward_layer.output_shape(input_shape)
        if self.spec.merge_mode == "concat":
            return (*shape[:-1], 2 * shape[-1])
        return shape

    def weight_specs(self, input_shape):
        return [WeightSpec(f"{side}/{w.name}", w.shape, w.initializer,
                           w.trainable and not layer.frozen, w.regularizer)
                for side, layer in self._sides for w in layer.weight_specs(input_shape)]

    def macs(self, input_shape):
        return 2 * self.forward_layer.macs(input_shape)

    def build(self, input_shape):
        self.input_shape = input_shape
        self.weights, self.grads = {}, {}
        for side, layer in self._sides:
            layer.build(input_shape)
            for k, w in layer.weights.items():
                self.weights[f"{side}/{k}"] = w
                self.grads[f"{side}/{k}"] = layer.grads[k]
                self.trainable[f"{side}/{k}"] = layer.trainable[k] and not self.frozen
                if k in layer.regularizers:
                    self.regularizers[f"{side}/{k}"] = layer.regularizers[k]

    def compute_mask(self, X, mask):
        return mask if self.spec.layer.return_sequences else None

    def forward(self, X, training, mask=None):
        seqs = self.spec.layer.return_sequences
        for side, layer in self._sides:
            layer.weights = {k: self.weights[f"{side}/{k}"] for k in layer.weights}
            layer.rng = self.rng  # dropout masks come from this layer's generator
        Yf, back_f = self.forward_layer.forward(X, training, mask)
        Yb, back_b = self.backward_layer.forward(X, training, mask)
        if seqs:
            Yb = Yb[:, ::-1]
        mode = self.spec.merge_mode
        if mode == "concat":
            Y = xp.concatenate([Yf, Yb], axis=-1)
        elif mode == "sum":
            Y = Yf + Yb
        elif mode == "ave":
            Y = (Yf + Yb) * X.dtype.type(0.5)
        else:
            Y = Yf * Yb

        def backprop(dY):
            if mode == "concat":
                u = Yf.shape[-1]
                dYf, dYb = dY[..., :u], dY[..., u:]
            elif mode == "sum":
                dYf = dYb = dY
            elif mode == "ave":
                dYf = dYb = dY * dY.dtype.type(0.5)
            else:
                dYf, dYb = dY * Yb, dY * Yf
            if seqs:
                dYb = dYb[:, ::-1]
            dX = back_f(xp.ascontiguousarray(dYf)) + back_b(xp.ascontiguousarray(dYb))
            for side, layer in self._sides:
                for k, g in layer.grads.items():
                    self.grads[f"{side}/{k}"] = g
            return dX

        return Y, backprop

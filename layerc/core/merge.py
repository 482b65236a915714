"""Add and Concatenate: layers that merge several inputs into one."""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError


def _fmt(shapes):
    return ", ".join(str(tuple(s)) for s in shapes)


def _check_count(name, shapes):
    if len(shapes) < 2:
        raise ShapeError(f"{name} needs at least 2 inputs, got {len(shapes)}",
                         "list two or more layer names under `inputs`")


class Add(Layer):
    """Element-wise sum of two or more inputs of the same shape (Keras `Add`).

    Shapes: [X1, X2, ...] each (batch, ...) -> Y (batch, ...).
    """

    multi_input = True

    def output_shape(self, input_shapes):
        _check_count("Add", input_shapes)
        first = tuple(input_shapes[0])
        for s in input_shapes[1:]:
            if len(s) != len(first) or any(a is not None and b is not None and a != b
                                            for a, b in zip(first, s)):
                raise ShapeError(f"Add needs inputs of the same shape, got {_fmt(input_shapes)}",
                                 "add a Dense or Reshape so the shapes agree")
        return tuple(next((d for d in dims if d is not None), None)
                     for dims in zip(*input_shapes))

    def forward(self, Xs, training, mask=None):
        self.output_shape([X.shape[1:] for X in Xs])
        Y = Xs[0] + Xs[1]
        for X in Xs[2:]:
            Y += X
        n = len(Xs)
        return Y, lambda dY: [dY] * n

    def compute_mask(self, Xs, masks):
        # Keras 3 (since 3.4): unmasked if any input is unmasked, else the union.
        if masks is None or any(m is None for m in masks):
            return None
        out = masks[0]
        for m in masks[1:]:
            out = out | m
        return out


class Concatenate(Layer):
    """Join two or more inputs along `axis` (Keras `Concatenate`, axis counts the batch).

    Shapes: [X1 (batch, ..., a1, ...), X2 (batch, ..., a2, ...)] -> Y (batch, ..., a1 + a2, ...).
    """

    multi_input = True

    def _axis(self, rank):
        axis = self.spec.axis
        if not -rank <= axis < rank or axis % rank == 0:
            raise ShapeError(
                f"Concatenate axis {axis} is not a non-batch axis of inputs of rank {rank} "
                f"(batch included)",
                f"use an axis between 1 and {rank - 1}, or -1 for the last")
        return axis % rank

    def output_shape(self, input_shapes):
        _check_count("Concatenate", input_shapes)
        rank = len(input_shapes[0]) + 1
        if any(len(s) + 1 != rank for s in input_shapes):
            raise ShapeError(
                f"Concatenate needs inputs of the same rank, got {_fmt(input_shapes)}",
                "add a Reshape or Flatten so the inputs have the same number of dimensions")
        a = self._axis(rank) - 1
        out = []
        for i, dims in enumerate(zip(*input_shapes)):
            if i == a:
                out.append(None if None in dims else sum(dims))
                continue
            known = {d for d in dims if d is not None}
            if len(known) > 1:
                raise ShapeError(
                    f"Concatenate along axis {self.spec.axis} needs inputs whose other "
                    f"dimensions match, got {_fmt(input_shapes)}",
                    "reshape or pool the inputs so only the concatenation axis differs")
            out.append(known.pop() if known else None)
        return tuple(out)

    def forward(self, Xs, training, mask=None):
        self.output_shape([X.shape[1:] for X in Xs])
        a = self._axis(Xs[0].ndim)
        Y = xp.concatenate(Xs, axis=a)
        splits = xp.cumsum([X.shape[a] for X in Xs])[:-1]
        return Y, lambda dY: xp.split(dY, splits, axis=a)

    def compute_mask(self, Xs, masks):
        if masks is None or all(m is None for m in masks):
            return None
        full = []
        for X, m in zip(Xs, masks):
            if m is None:
                full.append(xp.ones(X.shape, bool))
            elif m.ndim < X.ndim:
                full.append(xp.broadcast_to(m[..., None], X.shape))
            else:
                full.append(m)
        return xp.concatenate(full, axis=self._axis(Xs[0].ndim)).any(axis=-1)

"""Merge layers: several inputs into one (Add, Concatenate, Multiply, Subtract, Average,
Maximum, Minimum)."""
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

    # (True, max_value) once the model folds the plain rectifier after it into this layer
    # (fuse_activation): applied to the sum in place, its gradient mask taken from Y.
    rectifier = (False, None)

    def fuse_activation(self, layer) -> bool:
        """Take over the plain rectifier (Activation relu, ReLU, ReLU6) that alone consumes
        this layer's output (a residual block's output); returns whether it did."""
        from .activation_layers import plain_rectifier

        self.rectifier = plain_rectifier(layer)
        return self.rectifier[0]

    # The LayerNormalization that alone consumes this layer's output, once the model folds
    # it into this layer (fuse_norm): the sum is then made in its buffer and normalised there.
    norm = None

    def fuse_norm(self, layer) -> bool:
        """Take over the LayerNormalization that alone consumes this layer's output (a
        transformer's residual block: Add then LayerNormalization); returns whether it did."""
        if type(layer).__name__ != "LayerNormalization" or self.rectifier[0]:
            return False
        self.norm = layer
        return True

    def forward(self, Xs, training, mask=None):
        self.output_shape([X.shape[1:] for X in Xs])
        n = len(Xs)
        if self.norm is not None:
            Y, norm_backprop = self.norm.forward_sum(Xs, training)
            return Y, lambda dY: [norm_backprop(dY)] * n
        Y = Xs[0] + Xs[1]
        for X in Xs[2:]:
            Y += X
        fused, max_value = self.rectifier
        if not fused:
            return Y, lambda dY: [dY] * n
        from .activation_layers import clip, clip_passes

        clip(Y, max_value, out=Y)
        return Y, lambda dY: [dY * clip_passes(Y, max_value)] * n

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


def _broadcast_shape(name, input_shapes):
    """Keras's merge output shape: inputs aligned on their last axes, a 1 (or None)
    broadcasting against any size, other sizes equal."""
    out = list(input_shapes[0])
    for s in input_shapes[1:]:
        a, b = (out, list(s)) if len(out) >= len(s) else (list(s), out)
        lead, tail = a[:len(a) - len(b)], []
        for i, j in zip(a[len(a) - len(b):], b):
            if i is None or j is None:
                tail.append(None)
            elif i == 1 or j == 1 or i == j:
                tail.append(j if i == 1 else i)
            else:
                raise ShapeError(f"{name} needs inputs of the same shape (or sizes of 1 that broadcast), "
                                 f"got {_fmt(input_shapes)}", "add a Dense or Reshape so the shapes agree")
        out = lead + tail
    return tuple(out)


def _unbroadcast(g, shape):
    """The gradient g of a broadcast result, summed back to an input of `shape` (batch first)."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(1, 1 + lead))) if lead else g
    axes = tuple(a for a in range(1, g.ndim) if shape[a] == 1 and g.shape[a] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


class _Elementwise(Layer):
    """An element-wise merge with Keras's shape rules; a lower-rank input gets axes of 1
    after its batch axis, as Keras's merges add them. Masks combine as Add's do."""

    multi_input = True
    n_inputs = None  # exactly this many inputs, or None: two or more

    def output_shape(self, input_shapes):
        name = type(self).__name__
        if self.n_inputs is not None and len(input_shapes) != self.n_inputs:
            raise ShapeError(f"{name} takes exactly {self.n_inputs} inputs, got {len(input_shapes)}",
                             f"list {self.n_inputs} layer names under `inputs`")
        _check_count(name, input_shapes)
        return _broadcast_shape(name, input_shapes)

    compute_mask = Add.compute_mask

    def forward(self, Xs, training, mask=None):
        self.output_shape([X.shape[1:] for X in Xs])
        rank = max(X.ndim for X in Xs)
        shapes = [X.shape for X in Xs]
        Xs = [X.reshape(len(X), *([1] * (rank - X.ndim)), *X.shape[1:]) for X in Xs]
        Y, grads = self._merge(Xs, self._masks(Xs, mask))

        def backprop(dY):
            return [_unbroadcast(g, s).reshape(s) for g, s in zip(grads(dY), shapes)]

        return Y, backprop

    @staticmethod
    def _masks(Xs, masks):
        """Each input's mask widened to its own shape (None where it has none)."""
        if masks is None:
            return [None] * len(Xs)
        return [None if m is None else xp.broadcast_to(m.reshape(*m.shape, *([1] * (X.ndim - m.ndim))), X.shape)
                for X, m in zip(Xs, masks)]

    def _merge(self, Xs, masks):
        """(Y, grads): grads(dY) gives each (expanded) input's gradient, broadcast shape."""
        raise NotImplementedError


class Subtract(_Elementwise):
    """Element-wise difference of two inputs (Keras `Subtract`).

    Shapes: [X1, X2] each (batch, ...) -> Y (batch, ...).
    """

    n_inputs = 2

    def _merge(self, Xs, masks):
        return Xs[0] - Xs[1], lambda dY: [dY, -dY]


class Average(_Elementwise):
    """Element-wise mean of two or more inputs (Keras `Average`).

    Shapes: [X1, X2, ...] each (batch, ...) -> Y (batch, ...).
    """

    def _merge(self, Xs, masks):
        Y = Xs[0] + Xs[1]
        for X in Xs[2:]:
            Y = Y + X
        n = Y.dtype.type(len(Xs))
        return Y / n, lambda dY: [dY / n] * len(Xs)


class Multiply(_Elementwise):
    """Element-wise product of two or more inputs (Keras `Multiply`). As Keras: a masked
    input counts as 1 where masked out, and when every input has a mask the output is 0
    where all of them mask it out.

    Shapes: [X1, X2, ...] each (batch, ...) -> Y (batch, ...).
    """

    def _merge(self, Xs, masks):
        Xs = [X if m is None else xp.where(m, X, X.dtype.type(1)) for X, m in zip(Xs, masks)]
        keep = None
        if all(m is not None for m in masks):
            keep = masks[0]
            for m in masks[1:]:
                keep = keep | m

        def product(skip=None):
            out = None
            for k, X in enumerate(Xs):
                if k != skip:
                    out = X if out is None else out * X
            return out

        Y = product()
        if keep is not None:
            Y = xp.where(keep, Y, Y.dtype.type(0))

        def grads(dY):
            g = dY if keep is None else dY * keep
            return [g * product(k) * (1 if m is None else m) for k, m in enumerate(masks)]

        return Y, grads


class _Extreme(_Elementwise):
    """Maximum/Minimum: Keras's pairwise fold, where a masked-out value takes the running
    result's and the running result, where masked out, takes the new input's. The gradient
    goes to the input each output came from (the earlier one on a tie)."""

    better = None  # xp.greater or xp.less

    def _merge(self, Xs, masks):
        Y, src, keep = Xs[0], xp.zeros(Xs[0].shape, xp.int32), masks[0]
        for k in range(1, len(Xs)):
            X, m = Xs[k], masks[k]
            X, Y, src = xp.broadcast_arrays(X, Y, src)
            xsrc = xp.full(X.shape, k, xp.int32)
            if m is not None:
                X, xsrc = xp.where(m, X, Y), xp.where(m, xsrc, src)
            if keep is not None:
                Y, src = xp.where(keep, Y, X), xp.where(keep, src, xsrc)
            take = self.better(X, Y)
            Y, src = xp.where(take, X, Y), xp.where(take, xsrc, src)
            keep = keep | m if keep is not None and m is not None else None

        def grads(dY):
            return [xp.where(src == k, dY, dY.dtype.type(0)) for k in range(len(Xs))]

        return Y, grads


class Maximum(_Extreme):
    """Element-wise maximum of two or more inputs (Keras `Maximum`); masks as Keras.

    Shapes: [X1, X2, ...] each (batch, ...) -> Y (batch, ...).
    """

    better = staticmethod(lambda a, b: xp.greater(a, b))


class Minimum(_Extreme):
    """Element-wise minimum of two or more inputs (Keras `Minimum`); masks as Keras.

    Shapes: [X1, X2, ...] each (batch, ...) -> Y (batch, ...).
    """

    better = staticmethod(lambda a, b: xp.less(a, b))

"""BatchNormalization and LayerNormalization with Keras 3's weights and numerics."""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError, WeightSpec, elements

_MASK_EPSILON = 1e-7  # Keras's backend.epsilon(), added to the masked count


def _resolve_axis(layer_name, axis, input_shape):
    """Index into input_shape (batch excluded) of a Keras axis (batch included)."""
    rank = len(input_shape) + 1
    if not -rank <= axis < rank:
        raise ShapeError(
            f"{layer_name} axis {axis} is out of range for input shape {tuple(input_shape)} "
            f"(rank {rank} with the batch axis)",
            f"use an axis between 1 and {rank - 1}, or -1 for the last",
        )
    a = axis % rank
    if a == 0:
        raise ShapeError(f"{layer_name} cannot normalise over the batch axis (axis {axis})",
                         "use axis -1 (the channels) or another non-batch axis")
    if input_shape[a - 1] is None:
        raise ShapeError(
            f"{layer_name} needs a known size along axis {axis}, got input shape "
            f"{tuple(input_shape)}", None)
    return a - 1


def _channel_rows(X):
    """X (..., C) as a 2-D array (rows, k * C), k the size of the axis before C (1 for 2-D X),
    and k: per-channel vectors tiled k times then broadcast along whole rows, so NumPy's
    inner loops run over k * C values instead of C (~2x faster for small C)."""
    k = X.shape[-2] if X.ndim > 2 else 1
    return xp.ascontiguousarray(X).reshape(-1, k * X.shape[-1]), k


def _channel_sum(A2, k, B2=None):
    """Per-channel sums (C,) of A2 (rows, k * C) as _channel_rows gives it, or of A2 * B2,
    each in one pass (a matrix-vector product, or einsum's fused multiply-sum)."""
    total = xp.ones(A2.shape[0], A2.dtype) @ A2 if B2 is None else xp.einsum("ij,ij->j", A2, B2)
    return total.reshape(k, -1).sum(axis=0)


class BatchNormalization(Layer):
    """Batch normalization (Keras `BatchNormalization`).

    Training normalises with the batch's mean and biased variance over every axis but
    `axis` (masked steps excluded) and updates the moving statistics,
    `moving = momentum * moving + (1 - momentum) * batch`; inference uses the moving ones.

    Shapes: X (batch, ..., C, ...) -> Y, same shape; gamma, beta, moving_mean,
    moving_variance (C,), the first two only with `scale` / `center`.
    """

    def output_shape(self, input_shape):
        _resolve_axis("BatchNormalization", self.spec.axis, input_shape)
        return tuple(input_shape)

    def weight_specs(self, input_shape):
        s = self.spec
        C = (input_shape[_resolve_axis("BatchNormalization", s.axis, input_shape)],)
        ws = []
        if s.scale:
            ws.append(WeightSpec("gamma", C, s.gamma_initializer))
        if s.center:
            ws.append(WeightSpec("beta", C, s.beta_initializer))
        ws.append(WeightSpec("moving_mean", C, s.moving_mean_initializer, trainable=False))
        ws.append(WeightSpec("moving_variance", C, s.moving_variance_initializer,
                             trainable=False))
        return ws

    def macs(self, input_shape):
        return 2 * elements(input_shape)

    def forward(self, X, training, mask=None):
        s, W = self.spec, self.weights
        a = s.axis % X.ndim
        if a == X.ndim - 1 and mask is None:
            return self._forward_last(X, training and not self.frozen)
        shape = [1] * X.ndim
        shape[a] = X.shape[a]
        axes = tuple(i for i in range(X.ndim) if i != a)
        f = X.dtype.type
        if not training or self.frozen:  # Keras 3: a frozen BatchNormalization runs in inference mode
            r = 1 / xp.sqrt(W["moving_variance"] + f(s.epsilon))
            scale = (r * W["gamma"] if s.scale else r).reshape(shape)
            Y = (X - W["moving_mean"].reshape(shape)) * scale
            if s.center:
                Y += W["beta"].reshape(shape)

            def backprop_inference(dY):
                self._param_grads(dY, (X - W["moving_mean"].reshape(shape)) * r.reshape(shape),
                                  axes)
                return dY * scale

            return Y, backprop_inference

        if mask is None:
            w = None
            mean = X.mean(axis=axes, keepdims=True)
            D = X - mean
            var = xp.mean(xp.square(D), axis=axes, keepdims=True)
        else:
            if mask.ndim != X.ndim - 1:
                raise ValueError(f"BatchNormalization got a mask of shape {mask.shape} for "
                                 f"inputs of shape {X.shape}; it needs one dimension less")
            # Weights m / (count + eps) make the statistics Keras's masked moments.
            m = xp.expand_dims(mask, -1).astype(X.dtype)
            count = xp.broadcast_to(m, X.shape).sum(axis=axes, keepdims=True)
            w = m / (count + f(_MASK_EPSILON))
            mean = (X * w).sum(axis=axes, keepdims=True)
            D = X - mean
            var = (xp.square(D) * w).sum(axis=axes, keepdims=True)
        keep, new = f(s.momentum), f(1.0 - s.momentum)
        W["moving_mean"][...] = W["moving_mean"] * keep + mean.reshape(-1) * new
        W["moving_variance"][...] = W["moving_variance"] * keep + var.reshape(-1) * new
        r = 1 / xp.sqrt(var + f(s.epsilon))
        Xhat = D * r
        Y = Xhat * W["gamma"].reshape(shape) if s.scale else Xhat.copy()
        if s.center:
            Y += W["beta"].reshape(shape)

        def backprop(dY):
            self._param_grads(dY, Xhat, axes)
            G = dY * W["gamma"].reshape(shape) if s.scale else dY
            if w is None:
                n = f(X.size // X.shape[a])
                mean_G = G.sum(axis=axes, keepdims=True) / n
                mean_GX = (G * Xhat).sum(axis=axes, keepdims=True) / n
                return r * (G - mean_G - Xhat * mean_GX)
            # General weights: d var / d mean = -2 sum(w D) is only ~0, so keep it.
            dvar = (G * D).sum(axis=axes, keepdims=True) * (-r * r * r / 2)
            dmean = -r * G.sum(axis=axes, keepdims=True) - 2 * dvar * (w * D).sum(
                axis=axes, keepdims=True)
            return G * r + w * (2 * dvar * D + dmean)

        return Y, backprop

    def _forward_last(self, X, training):
        """The forward pass over channels last without a mask: the same maths as the general
        one in fewer passes, on rows of k * C values (see _channel_rows)."""
        s, W = self.spec, self.weights
        X2, k = _channel_rows(X)
        f, n = X.dtype.type, X2.shape[0] * k
        C = X.shape[-1]
        gamma = W["gamma"] if s.scale else xp.ones(C, X.dtype)
        if not training:
            r = 1 / xp.sqrt(W["moving_variance"] + f(s.epsilon))
            scale = r * gamma
            Y = X2 * xp.tile(scale, k)
            Y += xp.tile((W["beta"] if s.center else 0) - W["moving_mean"] * scale, k)

            def backprop_inference(dY):
                dY2 = xp.ascontiguousarray(dY).reshape(X2.shape)
                self._channel_grads(dY2, X2 - xp.tile(W["moving_mean"], k), k, r)
                return (dY2 * xp.tile(scale, k)).reshape(X.shape)

            return Y.reshape(X.shape), backprop_inference
        mean = _channel_sum(X2, k) / f(n)
        Xhat = X2 - xp.tile(mean, k)
        var = _channel_sum(Xhat, k, Xhat) / f(n)
        keep, new = f(s.momentum), f(1.0 - s.momentum)
        W["moving_mean"][...] = W["moving_mean"] * keep + mean * new
        W["moving_variance"][...] = W["moving_variance"] * keep + var * new
        r = 1 / xp.sqrt(var + f(s.epsilon))
        Xhat *= xp.tile(r, k)
        Y = Xhat * xp.tile(gamma, k) if s.scale else Xhat.copy()
        if s.center:
            Y += xp.tile(W["beta"], k)

        def backprop(dY):
            dY2 = xp.ascontiguousarray(dY).reshape(X2.shape)
            sum_G, sum_GX = self._channel_grads(dY2, Xhat, k)
            # r * (G - mean(G) - Xhat * mean(G * Xhat)) with G = dY * gamma, whose sums are
            # gamma times dY's (the parameter gradients)
            dX = dY2 * xp.tile(r * gamma, k)
            dX += xp.tile(r * gamma * sum_G / -f(n), k)
            dX -= Xhat * xp.tile(r * gamma * sum_GX / f(n), k)
            return dX.reshape(X.shape)

        return Y.reshape(X.shape), backprop

    def _channel_grads(self, dY2, D2, k, r=None):
        """gamma's and beta's gradients from dY and Xhat = D * r, as rows; returns the
        per-channel sums of dY and of dY * Xhat."""
        sum_G = _channel_sum(dY2, k)
        sum_GX = _channel_sum(dY2, k, D2)
        if r is not None:
            sum_GX *= r
        if self.spec.scale:
            self.grads["gamma"] = sum_GX
        if self.spec.center:
            self.grads["beta"] = sum_G
        return sum_G, sum_GX

    def _param_grads(self, dY, Xhat, axes):
        if self.spec.scale:
            self.grads["gamma"] = (dY * Xhat).sum(axis=axes)
        if self.spec.center:
            self.grads["beta"] = dY.sum(axis=axes)


class LayerNormalization(Layer):
    """Layer normalization (Keras `LayerNormalization`) over `axis` (an int or a list).

    Shapes: X (batch, ...) -> Y, same shape; gamma, beta shaped like the normalised axes.
    """

    def _axes(self, input_shape):
        axis = self.spec.axis
        axes = axis if isinstance(axis, list) else [axis]
        found = sorted({_resolve_axis("LayerNormalization", a, input_shape) for a in axes})
        if len(found) != len(axes):
            raise ShapeError(f"LayerNormalization axis {axis} names an axis twice", None)
        return found

    def output_shape(self, input_shape):
        self._axes(input_shape)
        return tuple(input_shape)

    def weight_specs(self, input_shape):
        s = self.spec
        self._axes(input_shape)
        # Keras orders the weight's dimensions by the sorted axis values as written, so
        # axis [-1, 1] gives (last, first); forward reshapes it to the broadcast shape
        # exactly as Keras does, keeping Keras's weights loadable unchanged.
        axes = sorted(s.axis) if isinstance(s.axis, list) else [s.axis]
        shape = tuple(input_shape[_resolve_axis("LayerNormalization", a, input_shape)]
                      for a in axes)
        ws = []
        if s.scale:
            ws.append(WeightSpec("gamma", shape, s.gamma_initializer))
        if s.center:
            ws.append(WeightSpec("beta", shape, s.beta_initializer))
        return ws

    def macs(self, input_shape):
        return 2 * elements(input_shape)

    def forward(self, X, training, mask=None):
        s, W = self.spec, self.weights
        norm = [a + 1 for a in self._axes(X.shape[1:])]
        axes = tuple(norm)
        other = tuple(i for i in range(X.ndim) if i not in norm)
        shape = [X.shape[i] if i in norm else 1 for i in range(X.ndim)]
        f = X.dtype.type
        if norm == [X.ndim - 1]:
            return self._forward_last(X, training)
        mean = X.mean(axis=axes, keepdims=True)
        D = X - mean
        var = xp.mean(xp.square(D), axis=axes, keepdims=True)
        r = 1 / xp.sqrt(var + f(s.epsilon))
        Xhat = D * r
        Y = Xhat * W["gamma"].reshape(shape) if s.scale else Xhat.copy()
        if s.center:
            Y += W["beta"].reshape(shape)

        def backprop(dY):
            if s.scale:
                self.grads["gamma"] = (dY * Xhat).sum(axis=other).reshape(W["gamma"].shape)
            if s.center:
                self.grads["beta"] = dY.sum(axis=other).reshape(W["beta"].shape)
            G = dY * W["gamma"].reshape(shape) if s.scale else dY
            mean_G = G.mean(axis=axes, keepdims=True)
            mean_GX = (G * Xhat).mean(axis=axes, keepdims=True)
            return r * (G - mean_G - Xhat * mean_GX)

        return Y, backprop

    def _forward_last(self, X, training):
        """The forward pass over the last axis only: the same maths as the general one in
        fewer passes (the row sums are matrix-vector products, the sums of products einsum's
        fused loop, the normalisation in place; in inference, the scale and shift too)."""
        s, W = self.spec, self.weights
        C = X.shape[-1]
        X2 = xp.ascontiguousarray(X).reshape(-1, C)
        f = X.dtype.type
        ones = xp.ones(C, X.dtype)
        Xhat = X2 - (X2 @ ones / f(C))[:, None]
        r = 1 / xp.sqrt(xp.einsum("ij,ij->i", Xhat, Xhat) / f(C) + f(s.epsilon))
        Xhat *= r[:, None]
        if training:  # backprop needs Xhat
            Y = Xhat * W["gamma"].reshape(-1) if s.scale else Xhat.copy()
        else:  # backprop (input gradients) is then rare: it recomputes Xhat from X
            Y = Xhat
            if s.scale:
                Y *= W["gamma"].reshape(-1)
            Xhat = None
        if s.center:
            Y += W["beta"].reshape(-1)

        def backprop(dY):
            nonlocal Xhat
            if Xhat is None:
                Xhat = (X2 - (X2 @ ones / f(C))[:, None]) * r[:, None]
            dY2 = xp.ascontiguousarray(dY).reshape(X2.shape)
            if s.scale:
                self.grads["gamma"] = xp.einsum("ij,ij->j", dY2, Xhat).reshape(W["gamma"].shape)
            if s.center:
                self.grads["beta"] = (xp.ones(len(dY2), X.dtype) @ dY2).reshape(W["beta"].shape)
            G = dY2 * W["gamma"].reshape(-1) if s.scale else dY2.copy()
            mean_GX = xp.einsum("ij,ij->i", G, Xhat) / f(C)
            G -= (G @ ones / f(C))[:, None]
            G -= Xhat * mean_GX[:, None]
            G *= r[:, None]
            return G.reshape(X.shape)

        return Y.reshape(X.shape), backprop

"""BatchNormalization and LayerNormalization with Keras 3's weights and numerics."""
from __future__ import annotations

from . import xp
from .base import Layer, ShapeError, WeightSpec, elements
from .dense import tile_row
from .parallel import split_batch

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


def _column_sums(A2, B2=None, ones=None):
    """Sums down the rows (width,) of A2 (rows, width), or of A2 * B2, each in one pass (a
    matrix-vector product with `ones`, at least len(A2) of them, or einsum's fused
    multiply-sum); _fold turns a total into per-channel sums."""
    if B2 is not None:
        return xp.einsum("ij,ij->j", A2, B2)
    return (xp.ones(len(A2), A2.dtype) if ones is None else ones[:len(A2)]) @ A2


def _fold(total, k):
    """Per-channel sums (C,) of a row total (k * C,) of _channel_rows' rows."""
    return total.reshape(k, -1).sum(axis=0)


# BatchNormalization's passes run a block of about this many values at a time, so that a
# block's chain of passes (scale, shift, clip; mask, sums, the input gradient) stays in the
# cache and the arrays go through memory once. 2^17 (512 KB of float32) measured ~10% faster
# than 2^16 on MobileNetV2's and ResNet50's BatchNormalizations: fewer NumPy calls a pass.
_BN_BLOCK = 1 << 17


def _block_rows(width):
    """Rows of a block of _blockwise for rows of `width` values."""
    return max(1, _BN_BLOCK // max(width, 1))


def _blockwise(fn, A2):
    """fn(rows) over blocks of A2's rows, the rows split over the cores (core.parallel);
    when fn returns sums (a tuple of arrays), their totals, added in row order."""
    rows, width = A2.shape
    step = _block_rows(width)
    parts = {}

    def run(part):
        total = None
        for r0 in range(part.start, part.stop, step):
            got = fn(slice(r0, min(part.stop, r0 + step)))
            if got is not None:
                total = got if total is None else tuple(t + g for t, g in zip(total, got))
        parts[part.start] = total

    split_batch(run, rows, A2.size)
    totals = [parts[key] for key in sorted(parts)]
    if totals[0] is None:
        return None
    return tuple(sum(column[1:], column[0]) for column in zip(*totals))


def _block_operand(v, k, A2):
    """Per-channel v (C,) as an operand for _blockwise's blocks of A2 (rows, k * C): tiled
    k times along a row, then, when A2 has many blocks, repeated down a whole block
    (_rows_of(operand, n) for a block of n rows). NumPy's elementwise loops run ~1.5x
    faster against a full operand than against one row broadcast down the block, which
    repays writing the block once from 8 blocks on; the values are the same either way."""
    row = xp.tile(v, k)
    step = _block_rows(A2.shape[1])
    if A2.shape[0] < 8 * step:
        return row
    return xp.ascontiguousarray(xp.broadcast_to(row, (step, row.size)))


def _rows_of(operand, n):
    """The operand of _block_operand for a block of n rows."""
    return operand if operand.ndim == 1 else operand[:n]


def _pass_on(dY):
    return dY


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

    # (True, max_value) once the model folds a following rectifier into this layer
    # (fuse_activation); it is then applied to Y in place, its mask taken from Y.
    rectifier = (False, None)

    def fuse_activation(self, layer) -> bool:
        """Take over the plain rectifier (Activation relu, ReLU, ReLU6) that alone consumes
        this layer's output (the model then skips that layer). Returns whether it did."""
        from .activation_layers import plain_rectifier

        self.rectifier = plain_rectifier(layer)
        return self.rectifier[0]

    # True once the model lets the convolution before it compute this layer in inference
    # (Conv2D.fuse_batchnorm, conv.folded_forward); this layer then passes its input on.
    folded = False

    def inference_affine(self):
        """(scale, shift) per channel: inference maps X to X * scale + shift."""
        s, W = self.spec, self.weights
        f = W["moving_variance"].dtype.type
        scale = 1 / xp.sqrt(W["moving_variance"] + f(s.epsilon))
        if s.scale:
            scale = scale * W["gamma"]
        return scale, (W["beta"] if s.center else 0) - W["moving_mean"] * scale

    def inference(self, X):
        """forward in inference mode without the fold (channels last, no mask)."""
        return self._forward_last(X, False)

    def forward(self, X, training, mask=None):
        s = self.spec
        a = s.axis % X.ndim
        if self.folded and not training and mask is None:
            return X, _pass_on  # the convolution before it computed this layer
        if a == X.ndim - 1 and mask is None:
            return self._forward_last(X, training and not self.frozen)
        Y, backprop = self._normalize(X, training, mask)
        if not self.rectifier[0]:
            return Y, backprop
        from .activation_layers import clip, clip_passes

        max_value = self.rectifier[1]
        clip(Y, max_value, out=Y)  # Y is this layer's own
        return Y, lambda dY: backprop(dY * clip_passes(Y, max_value))

    def _normalize(self, X, training, mask):
        s, W = self.spec, self.weights
        a = s.axis % X.ndim
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
        """The pass over channels last without a mask, on rows of k * C values (see
        _channel_rows), a block of rows at a time (see _blockwise) so that each block's
        chain of passes runs in the cache: the statistics as Keras's moments, E[X] and
        E[X^2] - E[X]^2, from the blocks' sums; then Y = X * scale + shift, rectified in
        place when a rectifier is folded in. Only X and Y are kept: backward takes the sums
        of G = dY (masked by the rectifier) and of G * X (of G * Y with a rectifier, when
        Y's rounding allows: see backprop), then dX = G * scale + X * b + c
        (per-channel b, c: Keras's gradient of (X - mean) * scale + beta through the batch's
        moments)."""
        s, W = self.spec, self.weights
        X2, k = _channel_rows(X)
        f, n = X.dtype.type, X2.shape[0] * k
        C = X.shape[-1]
        gamma = W["gamma"] if s.scale else xp.ones(C, X.dtype)
        Y = xp.empty(X2.shape, X.dtype)
        if training:
            ones = xp.ones(min(len(X2), _block_rows(X2.shape[1])), X.dtype)
            sums = _blockwise(lambda rows: (_column_sums(X2[rows], ones=ones), _column_sums(X2[rows], X2[rows])), X2)
            mean = _fold(sums[0], k) / f(n)
            var = xp.maximum(_fold(sums[1], k) / f(n) - mean * mean, f(0))
            keep, new = f(s.momentum), f(1.0 - s.momentum)
            W["moving_mean"][...] = W["moving_mean"] * keep + mean * new
            W["moving_variance"][...] = W["moving_variance"] * keep + var * new
        else:
            mean, var = W["moving_mean"], W["moving_variance"]
        r = 1 / xp.sqrt(var + f(s.epsilon))
        scale = r * gamma
        t_scale = _block_operand(scale, k, X2)
        t_shift = _block_operand((W["beta"] if s.center else 0) - mean * scale, k, X2)
        fused, max_value = self.rectifier
        if fused:
            from .activation_layers import clip, clip_passes

        def normalize(rows):
            n_rows = rows.stop - rows.start
            y = xp.multiply(X2[rows], _rows_of(t_scale, n_rows), out=Y[rows])
            y += _rows_of(t_shift, n_rows)
            if fused:
                clip(y, max_value, out=y)

        _blockwise(normalize, X2)

        def backprop(dY):
            dY2 = xp.ascontiguousarray(dY).reshape(X2.shape)
            G = xp.empty(X2.shape, X.dtype)

            # With a rectifier, G is 0 wherever Y was clipped and Y = Xhat * gamma + beta
            # elsewhere, so sum(G * Xhat) comes from the Y this pass reads for the mask anyway,
            # and X is read in the second pass only. Y's rounding, ~2^-24 |Y|, is then
            # 2^-24 |Y| / |gamma| in Xhat: only where |Y| (at most max_value, or about
            # |beta|) is within 64 |gamma| (else from X, as without a rectifier).
            if fused:
                beta = W["beta"] if s.center else xp.zeros(C, X.dtype)
                bound = xp.abs(beta) if max_value is None else xp.maximum(xp.abs(beta), f(max_value))
                from_y = bool(xp.all(gamma != 0) and xp.all(xp.abs(gamma) * f(64) >= bound))
            else:
                from_y = False

            ones = xp.ones(min(len(X2), _block_rows(X2.shape[1])), X.dtype)

            def masked_sums(rows):
                if not fused:
                    return _column_sums(dY2[rows], ones=ones), _column_sums(dY2[rows], X2[rows])
                y = Y[rows]
                g = xp.multiply(dY2[rows], clip_passes(y, max_value), out=G[rows])
                return _column_sums(g, ones=ones), _column_sums(g, y if from_y else X2[rows])

            sum_G, sum_GZ = (_fold(total, k) for total in _blockwise(masked_sums, X2))
            if from_y:  # sum(G * Xhat) = (sum(G * Y) - beta * sum(G)) / gamma
                sum_GXhat = (sum_GZ - beta * sum_G) / gamma
            else:  # sum(G * Xhat) = r * (sum(G * X) - mean * sum(G))
                sum_GXhat = r * (sum_GZ - mean * sum_G)
            if s.scale:
                self.grads["gamma"] = sum_GXhat
            if s.center:
                self.grads["beta"] = sum_G
            if training:
                # dX = scale * (G - mean(G) - Xhat * mean(G * Xhat)) = G * scale + X * b + c
                b = scale * r * sum_GXhat / -f(n)
                t_b, t_c = _block_operand(b, k, X2), _block_operand(scale * sum_G / -f(n) - b * mean, k, X2)

            def input_grad(rows):
                n_rows = rows.stop - rows.start
                g = xp.multiply(G[rows] if fused else dY2[rows], _rows_of(t_scale, n_rows), out=G[rows])
                if training:
                    g += xp.multiply(X2[rows], _rows_of(t_b, n_rows))
                    g += _rows_of(t_c, n_rows)

            _blockwise(input_grad, X2)
            return G.reshape(X.shape)

        return Y.reshape(X.shape), backprop

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

    def forward_sum(self, Xs, training):
        """forward(Xs[0] + Xs[1] + ...) for the Add that alone feeds this layer (see
        merge.Add.fuse_norm): the sum is made in the buffer the normalisation then works in
        place. Returns (Y, backprop); backprop gives the sum's gradient (each addend's)."""
        if [a + 1 for a in self._axes(Xs[0].shape[1:])] == [Xs[0].ndim - 1]:
            return self._forward_last(Xs[0], training, Xs[1:])
        S = Xs[0] + Xs[1]
        for X in Xs[2:]:
            S += X
        return self.forward(S, training)

    def _forward_last(self, X, training, addends=()):
        """The pass over the last axis only, for X + the addends (a fused Add): the same
        maths as the general one in fewer passes. The sum of the addends, the centring and
        the scaling by 1 / std are made in one buffer in place (the row sums are
        matrix-vector products, the sums of squares einsum's fused loop); gamma and beta
        then apply on rows of k * C values (k the size of the axis before C) with gamma
        and beta tiled k times, so that NumPy's inner loops run over k * C values instead
        of C. Training keeps Xhat beside Y; inference makes Y in Xhat's buffer, and a
        backprop after it (input gradients) recomputes Xhat, the same bits."""
        s, W = self.spec, self.weights
        C = X.shape[-1]
        f = X.dtype.type
        k = X.shape[-2] if X.ndim > 2 and X.shape[-2] else 1
        ones = xp.ones(C, X.dtype)
        gamma = tile_row(W["gamma"], k) if s.scale else None
        beta = tile_row(W["beta"], k) if s.center else None

        def centred():
            """X + addends - their row means, (rows, C), in a buffer of its own."""
            if addends:
                D = xp.add(X, addends[0])
                for A in addends[1:]:
                    D += A
                D = D.reshape(-1, C)
                D -= (D @ ones / f(C))[:, None]
                return D
            X2 = xp.ascontiguousarray(X).reshape(-1, C)
            return xp.subtract(X2, (X2 @ ones / f(C))[:, None])

        Xhat = centred()
        r = 1 / xp.sqrt(xp.einsum("ij,ij->i", Xhat, Xhat) / f(C) + f(s.epsilon))
        Xhat *= r[:, None]
        rows = (-1, k * C)
        if training:  # backprop needs Xhat
            Y = xp.multiply(Xhat.reshape(rows), gamma) if s.scale else Xhat.reshape(rows).copy()
        else:  # backprop (input gradients) is then rare: it recomputes Xhat
            Y = Xhat.reshape(rows)
            if s.scale:
                Y *= gamma
            Xhat = None
        if s.center:
            Y += beta

        def backprop(dY):
            nonlocal Xhat
            if Xhat is None:
                Xhat = centred()
                Xhat *= r[:, None]
            dY2 = xp.ascontiguousarray(dY).reshape(-1, C)
            column = xp.ones(len(dY2), X.dtype)
            # dY * Xhat once: its column sums are gamma's gradient, its rows' products with
            # gamma the rows' sums of G * Xhat (G = dY * gamma), both matrix-vector products
            DX = xp.multiply(dY2, Xhat)
            if s.scale:
                self.grads["gamma"] = (column @ DX).reshape(W["gamma"].shape)
            if s.center:
                self.grads["beta"] = (column @ dY2).reshape(W["beta"].shape)
            G = xp.multiply(dY2.reshape(rows), gamma).reshape(-1, C) if s.scale else dY2.copy()
            mean_GX = DX @ (W["gamma"].reshape(-1) if s.scale else ones) / f(C)
            G -= (G @ ones / f(C))[:, None]
            G -= xp.multiply(Xhat, mean_GX[:, None], out=DX)
            G *= r[:, None]
            return G.reshape(X.shape)

        return Y.reshape(X.shape), backprop

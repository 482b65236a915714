"""MultiHeadAttention (Keras `MultiHeadAttention`) over batched [B, H, T, d] products."""
from __future__ import annotations

import math

from . import xp
from .base import Layer, ShapeError, WeightSpec, regularizer_factors
from .parallel import matmul, split_batch

_NEG = -1e9  # Keras's large negative score for masked positions


class MultiHeadAttention(Layer):
    """Scaled dot-product attention with `num_heads` heads (Keras 3's weights and masks).

    Inputs are [query] (self-attention), [query, value] or [query, value, key]. The
    attention mask combines the query's, value's and key's padding masks and, with
    `use_causal_mask`, the causal mask, as Keras's `_compute_attention_mask` does; masked
    positions get probability 0 (a query step with no position left, a padding step,
    attends to nothing). The output's mask is the query's.

    Shapes: query (batch, T, Dq), value (batch, S, Dv), key (batch, S, Dk) -> Y (batch, T,
    *output_shape) (default (batch, T, Dq)); kernels in Keras's EinsumDense layouts:
    query/key (D, heads, key_dim), value (Dv, heads, value_dim), attention_output
    (heads, value_dim, *output_shape); biases (heads, key_dim), ..., (*output_shape).
    """

    multi_input = True
    input_counts = (1, 2, 3)
    splits_work = True  # the attention of each batch part runs on its own thread

    # -- shapes ------------------------------------------------------------------------------
    def _dims(self, shapes):
        s = self.spec
        if not 1 <= len(shapes) <= 3:
            raise ShapeError(f"MultiHeadAttention takes 1 to 3 inputs (query, value, key), got "
                             f"{len(shapes)}", "write `inputs: [query, value]` or `[query, value, key]`")
        for role, shape in zip(("query", "value", "key"), shapes):
            if len(shape) != 2 or shape[-1] is None:
                raise ShapeError(f"MultiHeadAttention's {role} must be (steps, features) with known "
                                 f"features, got {tuple(shape)}",
                                 "attention over more axes (attention_axes) is not supported")
        axes = s.attention_axes
        if axes is not None and list(axes if isinstance(axes, list) else [axes]) not in ([1], [-2]):
            raise ShapeError(f"MultiHeadAttention attention_axes {axes} is not supported: layerc "
                             "attends over the steps axis only", "leave attention_axes out (or write 1)")
        q, v = shapes[0], shapes[1] if len(shapes) > 1 else shapes[0]
        k = shapes[2] if len(shapes) > 2 else v
        if v[0] is not None and k[0] is not None and v[0] != k[0]:
            raise ShapeError(f"MultiHeadAttention's value and key need the same steps, got "
                             f"{tuple(v)} and {tuple(k)}", None)
        if s.use_causal_mask and q[0] is not None and v[0] is not None and q[0] != v[0]:
            raise ShapeError(f"use_causal_mask needs query and value of the same steps, got "
                             f"{tuple(q)} and {tuple(v)}", None)
        out = s.output_shape
        out = (q[-1],) if out is None else (tuple(out) if isinstance(out, list) else (out,))
        return q, v, k, out

    def output_shape(self, input_shapes):
        q, _, _, out = self._dims(input_shapes)
        return (q[0], *out)

    def weight_specs(self, input_shapes):
        s = self.spec
        q, v, k, out = self._dims(input_shapes)
        H, dk, dv = s.num_heads, s.key_dim, s.value_dim or s.key_dim
        kreg, breg = regularizer_factors(s.kernel_regularizer), regularizer_factors(s.bias_regularizer)
        ws = []
        for name, kernel, bias in (("query", (q[-1], H, dk), (H, dk)), ("key", (k[-1], H, dk), (H, dk)),
                                   ("value", (v[-1], H, dv), (H, dv)),
                                   ("attention_output", (H, dv, *out), out)):
            ws.append(WeightSpec(f"{name}/kernel", kernel, s.kernel_initializer,
                                 regularizer=kreg))
            if s.use_bias:
                ws.append(WeightSpec(f"{name}/bias", bias, s.bias_initializer, regularizer=breg))
        return ws

    def macs(self, input_shapes):
        s = self.spec
        q, v, k, out = self._dims(input_shapes)
        H, dk, dv = s.num_heads, s.key_dim, s.value_dim or s.key_dim
        T, S = q[0] or 1, v[0] or 1
        return (T * q[-1] * H * dk + S * k[-1] * H * dk + S * v[-1] * H * dv
                + H * T * S * (dk + dv) + T * H * dv * math.prod(out))

    def scratch_elements(self, input_shapes):
        """Values per sample kept besides the output: the projections and the [H, T, S]
        scores, probabilities and dropout mask."""
        s = self.spec
        q, v, _, _ = self._dims(input_shapes)
        H, dk, dv = s.num_heads, s.key_dim, s.value_dim or s.key_dim
        T, S = q[0] or 1, v[0] or 1
        return 3 * H * T * S + H * (T * (dk + dv) + S * (dk + dv))

    # -- compute -----------------------------------------------------------------------------
    def _allowed(self, Xs, masks, T, S):
        """The boolean attention mask, broadcastable to (B, H, T, S), or None."""
        masks = list(masks or []) + [None] * 3
        q_mask = masks[0]
        v_mask = masks[1] if len(Xs) > 1 else masks[0]
        k_mask = masks[2] if len(Xs) > 2 else None
        allowed = None
        for m, shape in ((q_mask, (slice(None), None, slice(None), None)),
                         (v_mask, (slice(None), None, None, slice(None))),
                         (k_mask, (slice(None), None, None, slice(None)))):
            if m is not None:
                m = m.astype(bool)[shape]
                allowed = m if allowed is None else allowed & m
        if self.spec.use_causal_mask:
            causal = xp.tril(xp.ones((T, S), bool))[None, None]
            allowed = causal if allowed is None else allowed & causal
        return allowed

    def forward(self, Xs, training, mask=None):
        s, W = self.spec, self.weights
        Xs = Xs if isinstance(Xs, list) else [Xs]
        Xq = Xs[0]
        Xv = Xs[1] if len(Xs) > 1 else Xq
        Xk = Xs[2] if len(Xs) > 2 else Xv
        B, T, S = Xq.shape[0], Xq.shape[1], Xv.shape[1]
        H, dk, dv = s.num_heads, s.key_dim, s.value_dim or s.key_dim
        f = Xq.dtype.type
        scale = f(1.0 / math.sqrt(dk))
        # inputs that are one array (self-attention) are projected by one product
        groups = _groups([(Xq, "query"), (Xk, "key"), (Xv, "value")])
        proj = {}
        for X, names in groups:
            proj.update(self._project(X, names))
        Q = proj["query"].reshape(B, T, H, dk).transpose(0, 2, 1, 3)
        Q *= scale
        K = proj["key"].reshape(B, S, H, dk).transpose(0, 2, 1, 3)
        V = proj["value"].reshape(B, S, H, dv).transpose(0, 2, 1, 3)
        allowed = self._allowed(Xs, mask, T, S)
        if allowed is not None:
            allowed = allowed.transpose(0, 1, 3, 2)
        # Scores are kept transposed, (B, H, S, T): the softmax's max and sum then run over
        # axis -2, where NumPy's reductions are elementwise across rows (the max ~3x faster
        # than along short rows) and the sum is one product with a row of ones (~5x).
        drop = None
        if training and s.dropout > 0:
            drop = (self.rng.random((B, H, S, T), dtype=xp.float32) >= s.dropout).astype(Xq.dtype)
            drop *= f(1.0 / (1.0 - s.dropout))
        P = xp.empty((B, H, S, T), Xq.dtype)
        Pd = P if drop is None else xp.empty_like(P)
        O = xp.empty((B, T, H, dv), Xq.dtype)
        ones = xp.ones((1, S), Xq.dtype)
        dens = xp.empty((B, H, 1, T), Xq.dtype)

        def attend(b):  # rows b of the batch: scores, masked stable softmax, dropout, P @ V
            Z = xp.matmul(K[b], Q[b].transpose(0, 1, 3, 2), out=P[b])
            a = None if allowed is None else allowed[b] if len(allowed) == B else allowed
            if a is not None:
                xp.putmask(Z, ~xp.broadcast_to(a, Z.shape), f(_NEG))
            Z -= Z.max(axis=-2, keepdims=True)
            xp.exp(Z, out=Z)
            if a is not None:
                Z *= a
            den = xp.matmul(ones, Z, out=dens[b])
            if a is not None:
                den[den == 0] = 1  # a query step with nothing to attend to gets zeros
            Ob = O[b].transpose(0, 2, 1, 3)
            if not training:  # normalise the (T, dv) output, not the (S, T) probabilities
                xp.matmul(Z.transpose(0, 1, 3, 2), V[b], out=Ob)
                Ob /= den.transpose(0, 1, 3, 2)
                return
            Z /= den
            if drop is not None:
                xp.multiply(Z, drop[b], out=Pd[b])
            xp.matmul(Pd[b].transpose(0, 1, 3, 2), V[b], out=Ob)

        split_batch(attend, B, B * H * T * S)
        O2 = O.reshape(B * T, H * dv)
        Wo = W["attention_output/kernel"]
        Y = matmul(O2, Wo.reshape(H * dv, -1))
        if s.use_bias:
            Y += W["attention_output/bias"].reshape(-1)
        out_shape = Wo.shape[2:]
        Y = Y.reshape(B, T, *out_shape)

        normalised = [True] if training else []

        def backprop(dY):
            if not normalised:  # an inference forward left the probabilities unnormalised
                xp.divide(P, dens, out=P)
                normalised.append(True)
            dY2 = dY.reshape(B * T, -1)
            self.grads["attention_output/kernel"] = matmul(O2.T, dY2).reshape(Wo.shape)
            if s.use_bias:
                self.grads["attention_output/bias"] = dY2.sum(axis=0).reshape(out_shape)
            dO = matmul(dY2, Wo.reshape(H * dv, -1).T).reshape(B, T, H, dv).transpose(0, 2, 1, 3)
            grads = {}  # name -> (B, H, steps, d) view into its group's gradient buffer
            buffers = []
            for X, names in groups:
                widths = [self.weights[f"{n}/kernel"].shape[1:] for n in names]
                dZ = xp.empty((X.shape[0] * X.shape[1], sum(h * d for h, d in widths)), X.dtype)
                at = 0
                for n, (h, d) in zip(names, widths):
                    grads[n] = dZ[:, at:at + h * d].reshape(X.shape[0], X.shape[1], h, d).transpose(0, 2, 1, 3)
                    at += h * d
                buffers.append(dZ)

            def attend_back(b):
                xp.matmul(Pd[b], dO[b], out=grads["value"][b])
                dZ = xp.matmul(V[b], dO[b].transpose(0, 1, 3, 2))
                if drop is not None:
                    dZ *= drop[b]
                # sum over s of dP * P is the row dot of dO and the output (FlashAttention's D)
                D = (dO[b] * O[b].transpose(0, 2, 1, 3)).sum(axis=-1)[:, :, None, :]
                dZ -= D
                dZ *= P[b]
                dQ = grads["query"][b]
                xp.matmul(dZ.transpose(0, 1, 3, 2), K[b], out=dQ)
                dQ *= scale
                xp.matmul(dZ, Q[b], out=grads["key"][b])

            split_batch(attend_back, B, B * H * T * S)
            by_array = {id(X): self._project_back(X, names, dZ) for (X, names), dZ in zip(groups, buffers)}
            # an array given twice gets its whole gradient once (the model adds per input)
            return [by_array.pop(id(X), None) for X in Xs]

        return Y, backprop

    def _kernels(self, names):
        Ws = [self.weights[f"{n}/kernel"] for n in names]
        W = Ws[0].reshape(Ws[0].shape[0], -1) if len(Ws) == 1 else xp.concatenate(
            [w.reshape(w.shape[0], -1) for w in Ws], axis=1)
        return Ws, W

    def _project(self, X, names):
        """{name: X (B, T, D) @ kernel (D, H, d) + bias as (B*T, H*d)} for names sharing X,
        in one product."""
        Ws, W = self._kernels(names)
        Z = matmul(X.reshape(-1, X.shape[-1]), W)
        if self.spec.use_bias:
            Z += xp.concatenate([self.weights[f"{n}/bias"].reshape(-1) for n in names])
        out, at = {}, 0
        for n, w in zip(names, Ws):
            width = w.shape[1] * w.shape[2]
            out[n] = Z[:, at:at + width]
            at += width
        return out

    def _project_back(self, X, names, dZ):
        """Store the kernel and bias gradients of `_project` for dZ (B*T, sum of H*d); return dX."""
        Ws, W = self._kernels(names)
        X2 = X.reshape(-1, X.shape[-1])
        dW = matmul(X2.T, dZ)
        db = dZ.sum(axis=0) if self.spec.use_bias else None
        at = 0
        for n, w in zip(names, Ws):
            width = w.shape[1] * w.shape[2]
            self.grads[f"{n}/kernel"] = dW[:, at:at + width].reshape(w.shape)
            if db is not None:
                self.grads[f"{n}/bias"] = db[at:at + width].reshape(w.shape[1:])
            at += width
        if not self.input_grad:
            return None
        return matmul(dZ, W.T).reshape(X.shape)

    def compute_mask(self, Xs, masks):
        return masks[0] if masks else None



def _groups(pairs):
    """[(array, [names])]: the names of the inputs that are the same array, in order."""
    out = []
    for X, name in pairs:
        for Y, names in out:
            if Y is X:
                names.append(name)
                break
        else:
            out.append((X, [name]))
    return out


"""MultiHeadAttention (Keras `MultiHeadAttention`) over batched [B, H, T, d] products."""
from __future__ import annotations

import math

from . import xp
from .base import Layer, ShapeError, WeightSpec, regularizer_factors
from .dense import column_sums, tile_row
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
        # inputs that are one array (self-attention) are projected by one product; the
        # query's kernel and bias carry the 1 / sqrt(key_dim) scale (weights, not activations)
        groups = _groups([(Xq, "query"), (Xk, "key"), (Xv, "value")])
        proj, kernels, outs = {}, [], []
        for X, names in groups:
            Z, Wcat, bcat, buffer = self._projection(X, names, scale)
            proj.update(Z)
            kernels.append(Wcat)
            bias_row = None if bcat is None else tile_row(bcat, X.shape[1])  # (steps * widths,)
            outs.append((X, Wcat, bias_row, buffer.reshape(X.shape[0], X.shape[1], -1)))
        Q = proj["query"].reshape(B, T, H, dk).transpose(0, 2, 1, 3)
        K = proj["key"].reshape(B, S, H, dk).transpose(0, 2, 1, 3)
        V = proj["value"].reshape(B, S, H, dv).transpose(0, 2, 1, 3)
        allowed = self._allowed(Xs, mask, T, S)
        if allowed is not None:
            allowed = allowed.transpose(0, 1, 3, 2)
        # Scores are kept transposed, (B, H, S, T): the softmax's reductions then run over
        # axis -2, elementwise across rows (the sum is one product with a row of ones).
        drop = None
        if training and s.dropout > 0:
            drop = (self.rng.random((B, H, S, T), dtype=xp.float32) >= s.dropout).astype(Xq.dtype)
            drop *= f(1.0 / (1.0 - s.dropout))
        O = xp.empty((B, T, H, dv), Xq.dtype)
        ones = xp.ones((1, S), Xq.dtype)
        n = _block(H * S * T * Xq.dtype.itemsize)

        def attention(keep):
            """Write O; when keep, return (P, P after dropout, R) for backprop, else run each
            block in one reused buffer (inference). Without dropout P holds the
            exponentials undivided and R (B, H, 1, T) the reciprocals of their sums (the
            probabilities are P * R); with dropout P holds the probabilities and R is None."""
            P = xp.empty((B, H, S, T), Xq.dtype) if keep else None
            Pd = P if drop is None else xp.empty_like(P)
            R = xp.empty((B, H, 1, T), Xq.dtype) if keep and drop is None else None

            def attend(rows):  # rows of the batch, a few samples at a time (in cache)
                scratch = None if keep else xp.empty((n, H, S, T), Xq.dtype)
                for b in _blocks(rows, n):
                    if not projected:  # this block's projections, used while still in cache
                        for X3, Wcat, bcat, Z3 in outs:
                            _project_rows(X3[b], Wcat, bcat, Z3[b])
                    Z = P[b] if keep else scratch[:b.stop - b.start]
                    a = None if allowed is None else allowed[b] if len(allowed) == B else allowed
                    recip = _exp_scores(K[b], Q[b], a, Z, ones, f)
                    if drop is not None:
                        Z *= recip
                        Z = xp.multiply(Z, drop[b], out=Pd[b])
                        xp.matmul(Z.transpose(0, 1, 3, 2), V[b], out=O[b].transpose(0, 2, 1, 3))
                        continue
                    # the exponentials' products with V, then each query step's output
                    # divided by its sum: a quarter of the scores' values when dv = S / 4
                    Ob = O[b]
                    xp.matmul(Z.transpose(0, 1, 3, 2), V[b], out=Ob.transpose(0, 2, 1, 3))
                    xp.multiply(Ob, _per_step(recip), out=Ob)
                    if keep:
                        R[b] = recip

            split_batch(attend, B, B * H * T * S)
            projected.append(True)
            return P, Pd, R

        projected = []  # the projections are made by the first pass over the blocks
        kept = [attention(training)]
        O2 = O.reshape(B * T, H * dv)
        Wo = W["attention_output/kernel"]
        Y = matmul(O2, Wo.reshape(H * dv, -1))
        if s.use_bias:  # on rows of T * output values (see dense.tile_row)
            Y2 = Y.reshape(-1, max(T, 1) * Y.shape[-1])
            Y2 += tile_row(W["attention_output/bias"].reshape(-1), max(T, 1))
        out_shape = Wo.shape[2:]
        Y = Y.reshape(B, T, *out_shape)

        def backprop(dY):
            if kept[0][0] is None:  # after an inference forward (input gradients): recompute
                kept[0] = attention(True)
            P, Pd, R = kept[0]
            dY2 = dY.reshape(B * T, -1)
            self.grads["attention_output/kernel"] = matmul(O2.T, dY2).reshape(Wo.shape)
            if s.use_bias:
                self.grads["attention_output/bias"] = column_sums(dY2).reshape(out_shape)
            dO4 = matmul(dY2, Wo.reshape(H * dv, -1).T).reshape(B, T, H, dv)
            dO = dO4.transpose(0, 2, 1, 3)
            # sum over s of dP * P is the row dot of dO and the output (FlashAttention's D)
            D = xp.einsum("ij,ij->i", dO4.reshape(-1, dv), O.reshape(-1, dv)).reshape(B, T, H)
            D = D.transpose(0, 2, 1)[:, :, None, :]  # (B, H, 1, T), as the scores' rows
            if R is not None:
                # P holds exp(scores), the probabilities being P * R: with dO and D scaled
                # by R (a quarter of the scores' values), the products below take P as is
                dO = (dO4 * _per_step(R)).transpose(0, 2, 1, 3)
                D = D * R
            grads = {}  # name -> (B, H, steps, d) view into its group's gradient buffer
            buffers = []
            for X, names in groups:
                widths = [self.weights[f"{n}/kernel"].shape[1:] for n in names]
                dZ = xp.empty((X.shape[0] * X.shape[1], sum(h * d for h, d in widths)), X.dtype)
                at = 0
                for name, (h, d) in zip(names, widths):
                    grads[name] = dZ[:, at:at + h * d].reshape(X.shape[0], X.shape[1], h, d).transpose(0, 2, 1, 3)
                    at += h * d
                buffers.append(dZ)

            def attend_back(rows):
                scratch = xp.empty((n, H, S, T), dY.dtype)
                for b in _blocks(rows, n):
                    xp.matmul(Pd[b], dO[b], out=grads["value"][b])
                    dZ = xp.matmul(V[b], dO[b].transpose(0, 1, 3, 2), out=scratch[:b.stop - b.start])
                    if drop is not None:
                        dZ *= drop[b]
                    dZ -= D[b]
                    dZ *= P[b]
                    # the query's scale is applied to its kernel's gradient (_project_back)
                    xp.matmul(dZ.transpose(0, 1, 3, 2), K[b], out=grads["query"][b])
                    xp.matmul(dZ, Q[b], out=grads["key"][b])

            split_batch(attend_back, B, B * H * T * S)
            by_array = {id(X): self._project_back(X, names, dZ, Wcat, scale)
                        for (X, names), dZ, Wcat in zip(groups, buffers, kernels)}
            # an array given twice gets its whole gradient once (the model adds per input)
            return [by_array.pop(id(X), None) for X in Xs]

        return Y, backprop

    def _projection(self, X, names, scale):
        """({name: (B*T, H*d) view of the buffer}, the kernels side by side, the biases side
        by side or None, the (B*T, sum of H*d) buffer) for names sharing X (B, T, D): the
        buffer gets X @ kernel (D, H, d) + bias a block of samples at a time
        (`_project_rows`), one product per block for all the names, so each block's
        projections are still in cache for its scores; the query's kernel and bias are scaled."""
        Ws = [self.weights[f"{n}/kernel"] for n in names]
        W = xp.concatenate([w.reshape(w.shape[0], -1) * (scale if n == "query" else 1)
                            for n, w in zip(names, Ws)], axis=1)
        bias = None
        if self.spec.use_bias:
            bias = xp.concatenate([self.weights[f"{n}/bias"].reshape(-1) * (scale if n == "query" else 1)
                                   for n in names])
        Z = xp.empty((X.shape[0] * X.shape[1], W.shape[1]), xp.result_type(X, W))
        out, at = {}, 0
        for n, w in zip(names, Ws):
            width = w.shape[1] * w.shape[2]
            out[n] = Z[:, at:at + width]
            at += width
        return out, W, bias, Z

    def _project_back(self, X, names, dZ, W, scale):
        """Store the kernel and bias gradients of `_project` for dZ (B*T, sum of H*d), whose
        query part is the gradient of the scaled query; return dX."""
        X2 = X.reshape(-1, X.shape[-1])
        dW = matmul(X2.T, dZ)
        db = column_sums(dZ) if self.spec.use_bias else None
        at = 0
        for n in names:
            shape = self.weights[f"{n}/kernel"].shape
            width = shape[1] * shape[2]
            k = scale if n == "query" else 1
            self.grads[f"{n}/kernel"] = (dW[:, at:at + width] * k).reshape(shape)
            if db is not None:
                self.grads[f"{n}/bias"] = (db[at:at + width] * k).reshape(shape[1:])
            at += width
        if not self.input_grad:
            return None
        return matmul(dZ, W.T).reshape(X.shape)

    def compute_mask(self, Xs, masks):
        return masks[0] if masks else None


# Samples per block of the score loops: a block's scores stay in the core's cache through
# the softmax's passes (the whole batch's would not: ~10% slower).
_BLOCK_BYTES = 1 << 19
# exp of unshifted scores is used when every query step's sum of them lies in
# (_TINY, _HUGE): then no score overflowed (each is below ln _HUGE, ~69) and the
# largest of each step is within ~23 + ln(S) of 0, so whatever underflowed has a
# probability below e^-60 (it is 0 in Keras's shifted exp too). The softmax is shift-
# invariant, so this is Keras's result; otherwise the scores are recomputed and each
# step's max is subtracted first (Keras's stable softmax).
_TINY, _HUGE = 1e-10, 1e30


def _per_step(R):
    """R (b, H, 1, T), one value per head and query step, as (b, T, H, 1): to scale the
    (b, T, H, d) outputs (or their gradients) step by step."""
    return R.reshape(len(R), R.shape[1], -1).transpose(0, 2, 1)[..., None]


def _block(sample_bytes):
    return max(1, _BLOCK_BYTES // sample_bytes)


def _blocks(rows, n):
    for a in range(rows.start, rows.stop, n):
        yield slice(a, min(a + n, rows.stop))


def _softmax_scores(K, Q, allowed, Z, ones, f):
    """Z (b, H, S, T) = softmax over S of the scores K @ Q^T (Q already scaled), zero where
    `allowed` (broadcastable to Z) is False; a query step with nothing allowed gets zeros."""
    Z *= _exp_scores(K, Q, allowed, Z, ones, f)  # a product per score is ~1.5x faster than a quotient


def _exp_scores(K, Q, allowed, Z, ones, f):
    """The softmax of `_softmax_scores` before its division: Z (b, H, S, T) = the exponentials
    (shifted by each query step's max when unshifted ones could overflow or underflow),
    zero where not allowed; returns the reciprocals of their sums over S, (b, H, 1, T)
    (1 for a query step with nothing allowed)."""
    xp.matmul(K, Q.transpose(0, 1, 3, 2), out=Z)
    with xp.errstate(over="ignore"):
        xp.exp(Z, out=Z)
    if allowed is not None:
        xp.copyto(Z, 0, where=~allowed)
    den = xp.matmul(ones, Z)
    check = den if allowed is None else xp.where(allowed.any(axis=-2, keepdims=True), den, 1)
    if not (check.min() > _TINY and check.max() < _HUGE):  # (NaN too): the stable way
        xp.matmul(K, Q.transpose(0, 1, 3, 2), out=Z)
        if allowed is not None:
            xp.copyto(Z, f(_NEG), where=~allowed)
        Z -= Z.max(axis=-2, keepdims=True)
        xp.exp(Z, out=Z)
        if allowed is not None:
            xp.copyto(Z, 0, where=~allowed)
        den = xp.matmul(ones, Z, out=den)
    if allowed is not None:
        den[den == 0] = 1  # a query step with nothing to attend to gets zeros
    return 1 / den


def _project_rows(X3, W, bias_row, Z3):
    """Z3 (b, steps, widths) = X3 (b, steps, D) @ W + bias: a block's projections (the rows'
    products are the whole batch's, so blocks of any size give the same bits); bias_row is
    the bias tiled steps times, added to each sample's steps * widths values at once."""
    xp.matmul(X3.reshape(-1, X3.shape[-1]), W, out=Z3.reshape(-1, Z3.shape[-1]))
    if bias_row is not None:
        rows = Z3.reshape(len(Z3), -1)
        rows += bias_row


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


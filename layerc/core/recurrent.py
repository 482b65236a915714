"""Recurrent layers: SimpleRNN, LSTM, GRU and the Bidirectional wrapper (Keras 3 semantics).

Every layer projects all time steps' inputs in one matrix product before the time
loop, keeps only `h @ U` inside it, and backpropagates through time collecting the
per-step pre-activation gradients, so the kernel and recurrent-kernel gradients are
each one matrix product at the end.

Sequences run time-major internally (T, N, ...), so each step is a contiguous block.
With the default activations (sigmoid gates, tanh candidate) the sigmoid gates are
computed as 0.5 * tanh(x / 2) + 0.5 with the 1/2 folded into the weights, so one
`tanh` covers a whole (N, gates * units) block.

Inference (training=False) with the default activations takes a lean path that keeps
only the current state (and the outputs when returning sequences); its backprop, rarely
wanted, recomputes the pass with the histories.

The time loops run OpenBLAS with one thread (restored afterwards): the per-step products
are small ((batch, units) @ (units, gates * units)), and waking a second BLAS thread
for each costs more than it saves; on a loaded machine it costs several times the
product itself, as a descheduled worker stalls every step.
"""
from __future__ import annotations

from . import activations, initializers
from . import xp
from .base import Layer, ShapeError, WeightSpec, regularizer_factors
from .parallel import one_blas_thread


def _check_input(kind, input_shape):
    if len(input_shape) != 2:
        raise ShapeError(
            f"{kind} expects a 2-D input (timesteps, features), got shape {tuple(input_shape)}",
            "put an Embedding before it for integer token ids, or a Reshape: "
            "{target_shape: [timesteps, features]} for other data",
        )
    if input_shape[1] is None:
        raise ShapeError(f"{kind} needs a known feature dimension, got shape {tuple(input_shape)}")


def _steps(T, backwards=False):
    """The time steps of a scan, in order, with OpenBLAS on one thread while they run."""
    with one_blas_thread():
        yield from (range(T - 1, -1, -1) if backwards else range(T))


def _dropout_mask(rng, rate, shape, dtype):
    keep = rng.random(shape) >= rate
    return keep.astype(dtype) * dtype.type(1 / (1 - rate))


def _rec(h, U, rm):
    """(N, G*u): h @ U, or with per-gate recurrent-dropout masks rm (G, N, u) each gate's own."""
    if rm is None:
        return h @ U
    G, N, u = rm.shape
    R = xp.matmul(h * rm, U.reshape(u, G, u).transpose(1, 0, 2))
    return R.transpose(1, 0, 2).reshape(N, G * u)


def _rec_T(dR, UT, rm):
    """The transpose of `_rec`: dh from dR (N, G*u); UT is U.T, contiguous."""
    if rm is None:
        return dR @ UT
    G, N, u = rm.shape
    U = UT.T
    dH = xp.matmul(dR.reshape(N, G, u).transpose(1, 0, 2), U.reshape(u, G, u).transpose(1, 2, 0))
    return (dH * rm).sum(axis=0)


def _rec_dU(Hp, dR, rm):
    """dU from the states fed to `_rec` (T, N, u) and their output gradients (T, N, G*u)."""
    u = Hp.shape[-1]
    if rm is None:
        return Hp.reshape(-1, u).T @ dR.reshape(-1, dR.shape[-1])
    G = rm.shape[0]
    dR = dR.reshape(-1, G, u)
    return xp.concatenate([(Hp * rm[g]).reshape(-1, u).T @ dR[:, g] for g in range(G)], axis=1)


class _Workspace:
    """Scratch arrays kept between calls.

    Fresh memory costs a page fault per 4 KiB on first touch, which for the
    sequence-sized buffers of a recurrent layer costs more than their arithmetic.
    Buffers are checked out by a forward pass into its `held` dict and returned
    with `give` when its backprop is done, so two pending passes never share one.
    """

    def __init__(self):
        self.pool = {}

    def take(self, held, name, shape, dtype):
        a = self.pool.pop(name, None)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = xp.empty(shape, dtype)
        held[name] = a
        return a

    def give(self, held):
        self.pool.update(held)
        held.clear()


class _Gates:
    """Per-column-group activations applied in place, and their derivatives.

    Args:
        groups: [(activation name, number of units)] in column order.
        dtype: the compute dtype.
    """

    def __init__(self, groups, dtype, fast_ok=True):
        self.groups = groups
        self.fast = fast_ok and all(name in ("sigmoid", "tanh") for name, _ in groups)
        if self.fast:
            t = dtype.type
            cols = [(t(0.5), t(0.5), t(0.5)) if name == "sigmoid" else (t(1), t(1), t(0))
                    for name, n in groups for _ in range(n)]
            self.scale, self.alpha, self.beta = (xp.array(c, dtype) for c in zip(*cols))
            self.affine = any(name == "sigmoid" for name, _ in groups)
            # y = alpha * tanh(scale * z) + beta has dy/dz = gamma - (y - beta)^2
            self.gamma = xp.where(self.beta > 0, t(0.25), t(1)).astype(dtype)

    def apply(self, Z):
        """Activate Z (N, cols) in place; in the fast mode Z holds scale-folded pre-activations."""
        if self.fast:
            xp.tanh(Z, out=Z)
            if self.affine:
                Z *= self.alpha
                Z += self.beta
            return
        start = 0
        for name, n in self.groups:
            Z[:, start:start + n] = activations.get(name)(Z[:, start:start + n])[0]
            start += n

    def derivative(self, Y, Zpre, D):
        """dY/dZ for all steps into D, from the outputs Y (fast mode) or the pre-activations Zpre."""
        if self.fast:
            xp.subtract(Y, self.beta, out=D)
            xp.square(D, out=D)
            return xp.subtract(self.gamma, D, out=D)
        start = 0
        for name, n in self.groups:
            Z = Zpre[..., start:start + n]
            D[..., start:start + n] = activations.get(name)(Z)[1](xp.ones_like(Z))
            start += n
        return D


class _RNN(Layer):
    """Shared machinery of SimpleRNN, LSTM and GRU: shapes, weights, dropout, masking.

    Subclasses set `n_gates` and implement `_gate_groups` and `_scan`.
    """

    n_gates = 1

    def __init__(self, spec, name, seed, dtype="float32"):
        super().__init__(spec, name, seed, dtype)
        # Keras's Bidirectional zeroes outputs at masked steps when returning sequences.
        self.zero_output_for_mask = False
        self._ws = _Workspace()
        self._passes = 0

    # -- shapes --------------------------------------------------------------------
    def output_shape(self, input_shape):
        _check_input(type(self).__name__, input_shape)
        if self.spec.return_sequences:
            return (input_shape[0], self.spec.units)
        return (self.spec.units,)

    def compute_mask(self, X, mask):
        return mask if self.spec.return_sequences else None

    def _bias_shape(self):
        return (self.n_gates * self.spec.units,)

    def _bias_initializer(self):
        return self.spec.bias_initializer

    def weight_specs(self, input_shape):
        _check_input(type(self).__name__, input_shape)
        s, gu = self.spec, self.n_gates * self.spec.units
        ws = [
            WeightSpec("kernel", (input_shape[1], gu), s.kernel_initializer,
                       regularizer=regularizer_factors(s.kernel_regularizer)),
            WeightSpec("recurrent_kernel", (s.units, gu), s.recurrent_initializer,
                       regularizer=regularizer_factors(s.recurrent_regularizer)),
        ]
        if s.use_bias:
            ws.append(WeightSpec("bias", self._bias_shape(), self._bias_initializer(),
                                 regularizer=regularizer_factors(s.bias_regularizer)))
        return ws

    def macs(self, input_shape):
        T, F = input_shape
        gu = self.n_gates * self.spec.units
        return (T or 1) * (F * gu + self.spec.units * gu)

    # -- compute ---------------------------------------------------------------------
    def _dropout_masks(self, training, N, F):
        """Input and recurrent dropout masks, drawn once per batch (Keras 3's cells).

        Without recurrent dropout Keras uses one input mask (N, F) for all gates; with it,
        one mask per gate for the inputs (G, N, F) and for the state (G, N, units).
        """
        s, G, dt = self.spec, self.n_gates, self.dtype
        if not training or (s.dropout == 0 and s.recurrent_dropout == 0):
            return None, None
        if s.recurrent_dropout == 0:
            return _dropout_mask(self.rng, s.dropout, (N, F), dt), None
        in_m = _dropout_mask(self.rng, s.dropout, (G, N, F), dt) if s.dropout > 0 else None
        return in_m, _dropout_mask(self.rng, s.recurrent_dropout, (G, N, s.units), dt)

    def _split_bias(self, gates):
        """(bias added to the input projection, recurrent bias handled by the scan)."""
        if not self.spec.use_bias:
            return None, None
        return self.weights["bias"], None

    def forward(self, X, training, mask=None):
        if X.ndim != 3:
            self.output_shape(X.shape[1:])
        gates = _Gates(self._gate_groups(), X.dtype, self._fast_ok())
        if training or not (gates.fast and self._lean_ok()):
            return self._forward(X, training, mask, gates)
        Y = self._forward_lean(X, mask, gates)

        def backprop(dY):
            # an inference pass keeps no histories: recompute them (same maths, no dropout)
            return self._forward(X, False, mask, gates)[1](dY)

        return Y, backprop

    def _lean_ok(self):
        """Whether `_infer` handles this configuration (with fast gates)."""
        return False

    def _time_major(self, X, mask):
        """X as (T, N, F) (a view) and the mask as (T, N, 1) booleans or None, in scan order."""
        Xt = X.transpose(1, 0, 2)
        Mb = None
        if mask is not None and not mask.all():
            Mb = xp.ascontiguousarray(mask.T, dtype=bool)[..., None]
        if self.spec.go_backwards:
            Xt = Xt[::-1]
            Mb = None if Mb is None else Mb[::-1]
        return Xt, Mb

    def _output(self, Hseq, Mb):
        """The layer output from the per-step states Hseq (T, N, u) (return_sequences)."""
        Y = Hseq.transpose(1, 0, 2)
        if self.zero_output_for_mask and Mb is not None:
            Y = Y * Mb.transpose(1, 0, 2)
        return Y

    def _forward_lean(self, X, mask, gates):
        """Inference: the input projection as one product, then `_infer`'s time loop."""
        s, u, G = self.spec, self.spec.units, self.n_gates
        N, T, F = X.shape
        b_in, b_rec = self._split_bias(gates)
        cols = self._lean_columns()
        W = self.weights["kernel"] * gates.scale
        U = self.weights["recurrent_kernel"] * gates.scale
        b_in = None if b_in is None else b_in * gates.scale
        if cols is not None:
            W, U = W[:, cols], U[:, cols]
            b_in = None if b_in is None else b_in[cols]
        Xt, Mb = self._time_major(X, mask)
        X2 = xp.ascontiguousarray(Xt).reshape(T * N, F)
        A = X2 @ W
        if b_in is not None:
            A += b_in
        A = A.reshape(T, N, G * u)
        Hseq = xp.empty((T, N, u), X.dtype) if s.return_sequences else None
        with one_blas_thread():
            h = self._infer(A, xp.ascontiguousarray(U), b_rec, Mb, Hseq)
        return self._output(Hseq, Mb) if s.return_sequences else h

    def _lean_columns(self):
        """Column order of the gates in the lean path (None: the Keras order)."""
        return None

    def _forward(self, X, training, mask, gates):
        s, u, G = self.spec, self.spec.units, self.n_gates
        N, T, F = X.shape
        W, U = self.weights["kernel"], self.weights["recurrent_kernel"]
        b_in, b_rec = self._split_bias(gates)
        if gates.fast:
            W, U = W * gates.scale, U * gates.scale
            b_in = None if b_in is None else b_in * gates.scale

        Xt, Mb = self._time_major(X, mask)
        in_m, rec_m = self._dropout_masks(training, N, F)

        held = {}
        self._passes += 1
        this_pass = self._passes

        def take(name, shape):
            return self._ws.take(held, name, shape, X.dtype)

        X2 = take("X2", (T * N, F))
        if in_m is None:
            xp.copyto(X2.reshape(T, N, F), Xt)
        else:
            xp.multiply(Xt, in_m if in_m.ndim == 2 else in_m[0], out=X2.reshape(T, N, F))
        if in_m is None or in_m.ndim == 2:
            A = xp.matmul(X2, W, out=take("A", (T * N, G * u)))
        else:  # one input dropout mask per gate (with recurrent dropout, as Keras)
            A = xp.concatenate([(Xt * in_m[g]).reshape(T * N, F) @ W[:, g * u:(g + 1) * u]
                                for g in range(G)], axis=1)
        if b_in is not None:
            A += b_in
        A = A.reshape(T, N, G * u)

        if s.return_sequences:
            Hs = xp.empty((T + 1, N, u), X.dtype)  # the output is a view of it
        else:
            Hs = take("Hs", (T + 1, N, u))
        Hs[0] = 0
        scan_back = self._scan(A, U, b_rec, Mb, rec_m, gates, Hs, take)
        Y = self._output(Hs[1:], Mb) if s.return_sequences else Hs[T].copy()
        if not training:
            # nothing is pending: free the buffers now; a backprop must come before
            # the next forward pass
            self._ws.give(held)

        def backprop(dY):
            if not training and self._passes != this_pass:
                raise RuntimeError(f"{self.name}: backprop of an inference pass is only "
                                   "possible before the next forward pass")
            if s.return_sequences:
                dH, dlast = dY.transpose(1, 0, 2), xp.zeros((N, u), X.dtype)
                if self.zero_output_for_mask and Mb is not None:
                    dH = dH * Mb
            else:
                dH, dlast = None, dY.astype(X.dtype, copy=True)
            dA, dU, db_rec = scan_back(dH, dlast)
            dA2 = dA.reshape(T * N, G * u)
            Wk = self.weights["kernel"]
            dXt = None
            if in_m is None or in_m.ndim == 2:
                self.grads["kernel"] = X2.T @ dA2
                if self.input_grad:
                    dXt = (dA2 @ Wk.T).reshape(T, N, F)
                    if in_m is not None:
                        dXt *= in_m
            else:
                dXt = xp.zeros((T, N, F), X.dtype) if self.input_grad else None
                dW = xp.empty_like(Wk)
                for g in range(G):
                    cols = slice(g * u, (g + 1) * u)
                    Xg = (Xt * in_m[g]).reshape(T * N, F)
                    dW[:, cols] = Xg.T @ dA2[:, cols]
                    if dXt is not None:
                        dXt += (dA2[:, cols] @ Wk[:, cols].T).reshape(T, N, F) * in_m[g]
                self.grads["kernel"] = dW
            self.grads["recurrent_kernel"] = dU
            if s.use_bias:
                self.grads["bias"] = self._bias_grad(dA2.sum(axis=0), db_rec)
            self._ws.give(held)
            if dXt is None:
                return None
            if s.go_backwards:
                dXt = dXt[::-1]
            # (N, T, F) as a view of the time-major result; consumers read it as they need
            return dXt.transpose(1, 0, 2)

        return Y, backprop

    def _bias_grad(self, db_in, db_rec):
        return db_in

    def _fast_ok(self):
        return True


class SimpleRNN(_RNN):
    """Fully connected recurrent layer (Keras `SimpleRNN`): h = act(x @ W + h @ U + b).

    Shapes: X (batch, T, F) -> (batch, units), or (batch, T, units) with return_sequences;
    kernel (F, units), recurrent_kernel (units, units), bias (units,).
    """

    def _gate_groups(self):
        return [(self.spec.activation, self.spec.units)]

    def _scan(self, A, U, b_rec, Mb, rm, gates, Hs, take):
        T, N, u = A.shape
        Zpre = None if gates.fast else xp.empty_like(A)
        R = xp.empty((N, u), A.dtype)
        for t in _steps(T):
            a = A[t]
            a += _rec(Hs[t], U, rm) if rm is not None else xp.matmul(Hs[t], U, out=R)
            if Zpre is not None:
                Zpre[t] = a
            gates.apply(a)
            Hs[t + 1] = a
            if Mb is not None:
                xp.copyto(Hs[t + 1], Hs[t], where=~Mb[t])

        def back(dH, carry):
            D = gates.derivative(A, Zpre, take("D", A.shape))
            UT = xp.ascontiguousarray(self.weights["recurrent_kernel"].T)
            dA = take("dA", A.shape)
            for t in _steps(T, backwards=True):
                dh = carry if dH is None else dH[t] + carry
                if Mb is not None:
                    keep = xp.where(Mb[t], 0, dh)
                    dh *= Mb[t]
                xp.multiply(dh, D[t], out=dA[t])
                carry = _rec_T(dA[t], UT, rm)
                if Mb is not None:
                    carry += keep
            return dA, _rec_dU(Hs[:-1], dA, rm), None

        return back


class LSTM(_RNN):
    """Long short-term memory (Keras `LSTM`), gate order i, f, c, o.

    Shapes: X (batch, T, F) -> (batch, units), or (batch, T, units) with return_sequences;
    kernel (F, 4u), recurrent_kernel (u, 4u), bias (4u,).
    """

    n_gates = 4

    def _gate_groups(self):
        s, u = self.spec, self.spec.units
        return [(s.recurrent_activation, 2 * u), (s.activation, u), (s.recurrent_activation, u)]

    def _bias_initializer(self):
        if not self.spec.unit_forget_bias:
            return self.spec.bias_initializer
        init, u = initializers.get(self.spec.bias_initializer), self.spec.units

        def unit_forget_bias(shape, rng, dtype):
            return xp.concatenate([init((u,), rng, dtype), xp.ones((u,), dtype),
                                   init((2 * u,), rng, dtype)])

        return unit_forget_bias

    def _lean_ok(self):
        return self.spec.recurrent_activation == "sigmoid" and self.spec.activation == "tanh"

    def _lean_columns(self):
        # i, f, o, c: the sigmoid gates side by side, so one affine covers them
        u = self.spec.units
        return xp.r_[0:2 * u, 3 * u:4 * u, 2 * u:3 * u]

    def _infer(self, A, U, b_rec, Mb, Hseq):
        """The inference time loop: only h and c are kept (and Hseq when given)."""
        T, N, G4 = A.shape
        u = G4 // 4
        dt = A.dtype
        half = dt.type(0.5)
        R = xp.empty((N, G4), dt)
        S = R[:, :3 * u]  # sigmoid columns (their 1/2 is folded into the weights)
        i, f, o, g = (R[:, k * u:(k + 1) * u] for k in range(4))
        h, h_new = xp.zeros((N, u), dt), xp.empty((N, u), dt)
        c, c_new = xp.zeros((N, u), dt), xp.empty((N, u), dt)
        tmp = xp.empty((N, u), dt)
        keep = None if Mb is None else ~Mb
        for t in _steps(T):
            xp.matmul(h, U, out=R)
            R += A[t]
            xp.tanh(R, out=R)
            S *= half
            S += half
            xp.multiply(f, c, out=c_new)
            xp.multiply(i, g, out=tmp)
            c_new += tmp
            xp.tanh(c_new, out=tmp)
            out = h_new if Hseq is None else Hseq[t]
            xp.multiply(o, tmp, out=out)
            if keep is not None:
                xp.copyto(c_new, c, where=keep[t])
                xp.copyto(out, h, where=keep[t])
            c, c_new = c_new, c
            if Hseq is None:
                h, h_new = out, h
            else:
                h = out
        return h if Hseq is None else None

    def _scan(self, A, U, b_rec, Mb, rm, gates, Hs, take):
        T, N, G4 = A.shape
        u = G4 // 4
        dt = A.dtype
        cell_act = activations.get(self.spec.activation)
        fast = gates.fast and self.spec.activation == "tanh"
        Cs = take("Cs", (T + 1, N, u))
        Cs[0] = 0
        TC = take("TC", (T, N, u))
        Zpre = None if gates.fast else xp.empty_like(A)
        R = xp.empty((N, G4), dt)
        tmp = xp.empty((N, u), dt)
        for t in _steps(T):
            a = A[t]
            a += _rec(Hs[t], U, rm) if rm is not None else xp.matmul(Hs[t], U, out=R)
            if Zpre is not None:
                Zpre[t] = a
            gates.apply(a)
            c = Cs[t + 1]
            xp.multiply(a[:, u:2 * u], Cs[t], out=c)
            xp.multiply(a[:, :u], a[:, 2 * u:3 * u], out=tmp)
            c += tmp
            if fast:
                xp.tanh(c, out=TC[t])
            else:
                TC[t] = cell_act(c)[0]
            xp.multiply(a[:, 3 * u:], TC[t], out=Hs[t + 1])
            if Mb is not None:
                keep = ~Mb[t]
                xp.copyto(c, Cs[t], where=keep)
                xp.copyto(Hs[t + 1], Hs[t], where=keep)

        def back(dH, dh_carry):
            # Gate derivatives are formed step by step while the step's data is in
            # cache; whole-sequence precomputation costs more memory traffic.
            if gates.fast:
                D, beta, gamma = xp.empty((N, G4), dt), gates.beta, gates.gamma
            else:
                Dall = gates.derivative(A, Zpre, take("D", A.shape))
            if not fast:
                Dtc = cell_act(Cs[1:])[1](xp.ones_like(TC))
            UT = xp.ascontiguousarray(self.weights["recurrent_kernel"].T)
            dA = take("dA", A.shape)
            dc_carry = xp.zeros((N, u), dt)
            dc, P = xp.empty((N, u), dt), xp.empty((N, u), dt)
            for t in _steps(T, backwards=True):
                a, tc, da = A[t], TC[t], dA[t]
                if gates.fast:
                    xp.subtract(a, beta, out=D)
                    xp.square(D, out=D)
                    xp.subtract(gamma, D, out=D)
                else:
                    D = Dall[t]
                if fast:
                    xp.multiply(tc, tc, out=P)
                    xp.subtract(1, P, out=P)
                else:
                    P[...] = Dtc[t]
                P *= a[:, 3 * u:]
                dh = dh_carry if dH is None else dH[t] + dh_carry
                if Mb is not None:
                    m = Mb[t]
                    dh_keep = xp.where(m, 0, dh)
                    dc_keep = xp.where(m, 0, dc_carry)
                    dh *= m
                    dc_carry *= m
                xp.multiply(dh, P, out=dc)
                dc += dc_carry
                xp.multiply(dc, a[:, 2 * u:3 * u], out=da[:, :u])
                xp.multiply(dc, Cs[t], out=da[:, u:2 * u])
                xp.multiply(dc, a[:, :u], out=da[:, 2 * u:3 * u])
                xp.multiply(dh, tc, out=da[:, 3 * u:])
                da *= D
                xp.multiply(dc, a[:, u:2 * u], out=dc_carry)
                dh_carry = _rec_T(da, UT, rm)
                if Mb is not None:
                    dh_carry += dh_keep
                    dc_carry += dc_keep
            return dA, _rec_dU(Hs[:-1], dA, rm), None

        return back


class GRU(_RNN):
    """Gated recurrent unit (Keras `GRU`), gate order z, r, h; h = z * h_prev + (1 - z) * hh.

    Shapes: X (batch, T, F) -> (batch, units), or (batch, T, units) with return_sequences;
    kernel (F, 3u), recurrent_kernel (u, 3u), bias (2, 3u) with reset_after (input row,
    recurrent row), else (3u,).
    """

    n_gates = 3

    def _gate_groups(self):
        s, u = self.spec, self.spec.units
        return [(s.recurrent_activation, 2 * u), (s.activation, u)]

    def _fast_ok(self):
        # the candidate's recurrent term is gated by r after the product, so its
        # columns cannot carry a folded scale
        return self.spec.activation == "tanh"

    def _bias_shape(self):
        u3 = 3 * self.spec.units
        return (2, u3) if self.spec.reset_after else (u3,)

    def _split_bias(self, gates):
        if not self.spec.use_bias:
            return None, None
        b = self.weights["bias"]
        if not self.spec.reset_after:
            return b, None
        u = self.spec.units
        b_in = b[0].copy()
        b_in[:2 * u] += b[1, :2 * u]  # the z and r recurrent biases act like input biases
        return b_in, b[1, 2 * u:]

    def _bias_grad(self, db_in, db_rec):
        if not self.spec.reset_after:
            return db_in
        u = self.spec.units
        return xp.stack([db_in, xp.concatenate([db_in[:2 * u], db_rec])])

    def _lean_ok(self):
        return self.spec.recurrent_activation == "sigmoid"

    def _infer(self, A, U, b_rec, Mb, Hseq):
        """The inference time loop: only h is kept (and Hseq when given)."""
        T, N, G3 = A.shape
        u = G3 // 3
        dt = A.dtype
        half = dt.type(0.5)
        after = self.spec.reset_after
        R = xp.empty((N, G3 if after else 2 * u), dt)
        ZR = R[:, :2 * u]
        z, r = R[:, :u], R[:, u:2 * u]
        HH = R[:, 2 * u:] if after else xp.empty((N, u), dt)
        U_zr, U_h = (U, None) if after else (xp.ascontiguousarray(U[:, :2 * u]), U[:, 2 * u:])
        h, h_new = xp.zeros((N, u), dt), xp.empty((N, u), dt)
        keep = None if Mb is None else ~Mb
        for t in _steps(T):
            a = A[t]
            xp.matmul(h, U_zr, out=R)
            ZR += a[:, :2 * u]
            xp.tanh(ZR, out=ZR)
            ZR *= half
            ZR += half
            if after:
                if b_rec is not None:
                    HH += b_rec
                HH *= r
            else:
                xp.multiply(r, h, out=h_new)
                xp.matmul(h_new, U_h, out=HH)
            HH += a[:, 2 * u:]
            xp.tanh(HH, out=HH)
            out = h_new if Hseq is None else Hseq[t]
            xp.subtract(h, HH, out=out)
            out *= z
            out += HH
            if keep is not None:
                xp.copyto(out, h, where=keep[t])
            if Hseq is None:
                h, h_new = out, h
            else:
                h = out
        return h if Hseq is None else None

    def _scan(self, A, U, b_rec, Mb, rm, gates, Hs, take):
        T, N, G3 = A.shape
        u = G3 // 3
        dt = A.dtype
        after = self.spec.reset_after
        RH = take("RH", (T, N, u))  # reset_after: h @ U_h + b_h; else r * h_prev
        Zpre = None if gates.fast else xp.empty_like(A)
        rm_zr = None if rm is None else rm[:2]
        rm_h = None if rm is None else rm[2]
        U_zr, U_h = U[:, :2 * u], U[:, 2 * u:]
        R = xp.empty((N, G3), dt)
        for t in _steps(T):
            a = A[t]
            hp = Hs[t]
            if after:
                if rm is None:
                    xp.matmul(hp, U, out=R)
                else:
                    R = _rec(hp, U, rm)
                a[:, :2 * u] += R[:, :2 * u]
                RH[t] = R[:, 2 * u:]
                if b_rec is not None:
                    RH[t] += b_rec
            else:
                a[:, :2 * u] += _rec(hp, U_zr, rm_zr)
            if Zpre is not None:
                Zpre[t, :, :2 * u] = a[:, :2 * u]
            self._act_zr(gates, a, u)
            z, r, hh = a[:, :u], a[:, u:2 * u], a[:, 2 * u:]
            if after:
                hh += r * RH[t]
            else:
                xp.multiply(r, hp if rm_h is None else hp * rm_h, out=RH[t])
                hh += RH[t] @ U_h
            if Zpre is not None:
                Zpre[t, :, 2 * u:] = hh
            self._act_h(gates, hh)
            h = Hs[t + 1]
            xp.subtract(hp, hh, out=h)
            h *= z
            h += hh
            if Mb is not None:
                xp.copyto(h, hp, where=~Mb[t])

        def back(dH, carry):
            D = gates.derivative(A, Zpre, take("D", A.shape))
            Z, Rg, HH = (A[..., k * u:(k + 1) * u] for k in range(3))
            Kz = xp.subtract(Hs[:-1], HH, out=take("Kz", RH.shape))
            Kz *= D[..., :u]
            Kh = xp.subtract(1, Z, out=take("Kh", RH.shape))
            Kh *= D[..., 2 * u:]
            UT = xp.ascontiguousarray(self.weights["recurrent_kernel"].T)
            UT_zr, UT_h = UT[:2 * u], UT[2 * u:]
            dA = take("dA", A.shape)
            if after:
                Kr = xp.multiply(RH, D[..., u:2 * u], out=take("Kr", RH.shape))
                dR = take("dR", A.shape)
            else:
                Dr = D[..., u:2 * u]
                Hh = Hs[:-1] if rm_h is None else Hs[:-1] * rm_h
            for t in _steps(T, backwards=True):
                dh = carry if dH is None else dH[t] + carry
                if Mb is not None:
                    keep = xp.where(Mb[t], 0, dh)
                    dh *= Mb[t]
                da = dA[t]
                dph = da[:, 2 * u:]
                xp.multiply(dh, Kz[t], out=da[:, :u])
                xp.multiply(dh, Kh[t], out=dph)
                if after:
                    xp.multiply(dph, Kr[t], out=da[:, u:2 * u])
                    dr = dR[t]
                    dr[:, :2 * u] = da[:, :2 * u]
                    xp.multiply(dph, Rg[t], out=dr[:, 2 * u:])
                    carry = _rec_T(dr, UT, rm)
                else:
                    d_rh = dph @ UT_h
                    xp.multiply(d_rh, Hh[t], out=da[:, u:2 * u])
                    da[:, u:2 * u] *= Dr[t]
                    d_rh *= Rg[t]
                    if rm_h is not None:
                        d_rh *= rm_h
                    carry = _rec_T(da[:, :2 * u], UT_zr, rm_zr) + d_rh
                carry += dh * Z[t]
                if Mb is not None:
                    carry += keep
            if after:
                dU = _rec_dU(Hs[:-1], dR, rm)
                db_rec = dR[..., 2 * u:].sum(axis=(0, 1))
            else:
                dU = xp.concatenate([_rec_dU(Hs[:-1], dA[..., :2 * u], rm_zr),
                                     RH.reshape(-1, u).T @ dA[..., 2 * u:].reshape(-1, u)], axis=1)
                db_rec = None
            return dA, dU, db_rec

        return back

    @staticmethod
    def _act_zr(gates, a, u):
        if gates.fast:
            zr = a[:, :2 * u]
            xp.tanh(zr, out=zr)
            zr *= gates.alpha[:2 * u]
            zr += gates.beta[:2 * u]
        else:
            name = gates.groups[0][0]
            a[:, :2 * u] = activations.get(name)(a[:, :2 * u])[0]

    @staticmethod
    def _act_h(gates, hh):
        if gates.fast:
            xp.tanh(hh, out=hh)
        else:
            hh[...] = activations.get(gates.groups[1][0])(hh)[0]


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy backwards, merging the outputs (Keras).

    Weights are the forward layer's then the backward layer's, named "forward/<name>"
    and "backward/<name>". Shapes: X (batch, T, F) -> (batch, [T,] 2 * units) for
    merge_mode concat, else (batch, [T,] units).
    """

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
        return [WeightSpec(f"{side}/{w.name}", w.shape, w.initializer, w.trainable, w.regularizer)
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
                self.trainable[f"{side}/{k}"] = layer.trainable[k]
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

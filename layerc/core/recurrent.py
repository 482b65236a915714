"""Recurrent layers: SimpleRNN, LSTM, GRU and the Bidirectional wrapper (Keras 3 semantics).

Every layer projects all time steps' inputs in one matrix product before the time
loop, keeps only the recurrent product inside it, and backpropagates through time
collecting the per-step pre-activation gradients, so the kernel and recurrent-kernel
gradients are each one matrix product at the end. (LSTM with the default activations
and no dropout instead stacks [x_t; 1; h_{t-1}] for one product per step, and one
product for all its weight gradients: see `LSTM._stack`.)

Batch rows are independent through time, so a big enough batch is split in parts, one
per core, each running its whole pass (products, time loop, weight-gradient products)
on its own thread with OpenBLAS on one thread, with no step-by-step synchronisation;
the parts' weight gradients are summed at the end. (Per-step products are small, and
waking a second BLAS thread for each costs more than it saves.)

Inside a part, sequences are time-major and transposed: (T, features, rows). Each
step's gates are then contiguous row blocks of one (gates * units, rows) array, so the
elementwise gate work runs on contiguous memory (NumPy's fast path), and the step's
product is one (gates * units, units) @ (units, rows) product. With the default
activations (sigmoid gates, tanh candidate) the sigmoid gates are computed as
0.5 * tanh(x / 2) + 0.5 with the 1/2 folded into the weights, so one `tanh` covers a
step's whole gate block.

Inference (training=False) with the default activations takes a lean path that keeps
only the current state (and the outputs when returning sequences); its backprop, rarely
wanted, recomputes the pass with the histories.
"""
from __future__ import annotations

from types import SimpleNamespace

from . import activations, initializers
from . import xp
from .base import Layer, ShapeError, WeightSpec, regularizer_factors
from .parallel import n_threads, one_blas_thread, split_batch

# multiply-adds per time step (batch x units x gates x units) from which the batch is split
# over threads: below it the Python work of two loops, serialised by the GIL, outweighs the
# product time saved
_SPLIT_MIN = 1 << 20
_CHUNK = 8  # time steps whose carry-independent backprop factors are formed together


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
    """The time steps of a scan, in order."""
    return range(T - 1, -1, -1) if backwards else range(T)


def _rows(a, rows, gate_major=False):
    """a's rows of a batch part: a[rows], or a[:, rows] for per-gate stacks (G, N, ...)."""
    if a is None:
        return None
    return a[:, rows] if gate_major else a[rows]


def _run_parts(fn, parts):
    """fn(p, rows) for each batch part, concurrently, with OpenBLAS on one thread (set
    here, in the calling thread, so no part restores the count while another runs)."""
    with one_blas_thread():
        split_batch(lambda ps: [fn(p, parts[p]) for p in range(ps.start, ps.stop)],
                    len(parts), 1 << 62)  # always split: `_parts` decided the sizes


def _fm(a):
    """A (T, features, rows) sequence as (features, T, rows), contiguous: the layout
    whose (features, T * rows) reshape feeds the weight-gradient products."""
    return xp.ascontiguousarray(a.transpose(1, 0, 2))


def _step_mask(mask, backwards):
    """A part's mask (n, T) as (T, 1, n) booleans in scan order; None if nothing is masked."""
    if mask is None or mask.all():
        return None
    Mb = xp.ascontiguousarray(mask.T, dtype=bool)[:, None, :]
    return Mb[::-1] if backwards else Mb


def _dropout_mask(rng, rate, shape, dtype):
    keep = rng.random(shape) >= rate
    return keep.astype(dtype) * dtype.type(1 / (1 - rate))


def _rec(h, UT, rm, out=None):
    """(G*u, n): the recurrent term U.T @ h of a state h (u, n); with per-gate
    recurrent-dropout masks rm (G, u, n), each gate's own (UT is U.T, contiguous)."""
    if rm is None:
        return xp.matmul(UT, h, out=out)
    G, u, n = rm.shape
    return xp.matmul(UT.reshape(G, u, u), h * rm).reshape(G * u, n)


def _rec_T(dR, U, rm):
    """The transpose of `_rec`: dh (u, n) from dR (G*u, n); U (u, G*u) as stored."""
    if rm is None:
        return U @ dR
    G, u, n = rm.shape
    dH = xp.matmul(U.reshape(u, G, u).transpose(1, 0, 2), dR.reshape(G, u, n))
    return (dH * rm).sum(axis=0)


def _rec_dU(Hf, dRf, rm):
    """dU (u, G*u) from the states fed to `_rec`, Hf (u, T, n), and their gradients
    dRf (G*u, T, n), both as `_fm` gives them."""
    u = Hf.shape[0]
    if rm is None:
        return Hf.reshape(u, -1) @ dRf.reshape(dRf.shape[0], -1).T
    G = rm.shape[0]
    dRf = dRf.reshape(G, u, -1)
    return xp.concatenate([(Hf * rm[g][:, None]).reshape(u, -1) @ dRf[g].T for g in range(G)],
                          axis=1)


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
    """Per-row-group activations of a (..., gates * units, rows) block, applied in place,
    and their derivatives.

    Args:
        groups: [(activation name, number of units)] in row order.
        dtype: the compute dtype.
    """

    def __init__(self, groups, dtype, fast_ok=True):
        self.spans, start = [], 0
        for name, n in groups:
            self.spans.append((name, start, start + n))
            start += n
        self.fast = fast_ok and all(name in ("sigmoid", "tanh") for name, _ in groups)
        self.half = dtype.type(0.5)
        if self.fast:  # the weights' column factors: sigmoid(x) = 0.5 * tanh(x / 2) + 0.5
            self.scale = xp.concatenate([xp.full(b - a, 0.5 if name == "sigmoid" else 1, dtype)
                                         for name, a, b in self.spans])

    def _blocks(self, start, stop):
        """(activation, slice relative to start) of the groups meeting rows [start, stop)."""
        for name, a, b in self.spans:
            if a < stop and b > start:
                yield name, slice(max(a, start) - start, min(b, stop) - start)

    def apply(self, Z, start=0):
        """Activate Z (rows start.. of a step's gate block, (rows, n)) in place; in the
        fast mode Z holds scale-folded pre-activations."""
        if self.fast:
            xp.tanh(Z, out=Z)
        for name, rows in self._blocks(start, start + Z.shape[0]):
            z = Z[rows]
            if not self.fast:
                z[...] = activations.get(name)(z)[0]
            elif name == "sigmoid":
                z *= self.half
                z += self.half

    def derivative(self, Y, Zpre, D):
        """dY/dZ into D (..., rows, n), from the outputs Y (fast mode) or the
        pre-activations Zpre."""
        for name, rows in self._blocks(0, Y.shape[-2]):
            d = D[..., rows, :]
            if self.fast:
                y = Y[..., rows, :]
                xp.multiply(y, y, out=d)
                if name == "sigmoid":
                    xp.subtract(y, d, out=d)  # y (1 - y)
                else:
                    xp.subtract(1, d, out=d)  # 1 - y^2
            else:
                z = Zpre[..., rows, :]
                d[...] = activations.get(name)(z)[1](xp.ones_like(z))
        return D


class _RNN(Layer):
    """Shared machinery of SimpleRNN, LSTM and GRU: shapes, weights, dropout, masking.

    Subclasses set `n_gates` and implement `_gate_groups` and `_scan`.
    """

    n_gates = 1
    splits_work = True

    def __init__(self, spec, name, seed, dtype="float32"):
        super().__init__(spec, name, seed, dtype)
        # Keras's Bidirectional zeroes outputs at masked steps when returning sequences.
        self.zero_output_for_mask = False
        self._ws = []  # a _Workspace per batch part
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

    def _gate_order(self):
        """The gates' internal order as indices into Keras's order (None: Keras's)."""
        return None

    def _columns(self):
        """The internal gate order as Keras's weight columns (None: Keras's order)."""
        order, u = self._gate_order(), self.spec.units
        if order is None:
            return None
        return xp.concatenate([xp.arange(g * u, (g + 1) * u) for g in order])

    def _prepare(self, gates):
        """A pass's weights in the internal gate order: the forward's transposed WT, UT
        (scale-folded in the fast mode) and bias columns, and the unscaled W, U that
        the gradients see."""
        W, U = self.weights["kernel"], self.weights["recurrent_kernel"]
        b_in, b_rec = self._split_bias(gates)
        cols = self._columns()
        if cols is not None:
            W, U = W[:, cols], U[:, cols]
            b_in = None if b_in is None else b_in[cols]
        Ws, Us = (W * gates.scale, U * gates.scale) if gates.fast else (W, U)
        if gates.fast and b_in is not None:
            b_in = b_in * gates.scale
        return SimpleNamespace(W=W, U=U, WT=xp.ascontiguousarray(Ws.T),
                               UT=xp.ascontiguousarray(Us.T),
                               b_in=None if b_in is None else b_in[:, None],
                               b_rec=None if b_rec is None else b_rec[:, None])

    def _parts(self, N):
        """Row slices of the batch to run on separate threads (one when the work is small)."""
        k = n_threads() if N * self.n_gates * self.spec.units ** 2 >= _SPLIT_MIN else 1
        k = max(1, min(k, N))
        cuts = [N * i // k for i in range(k + 1)]
        return [slice(a, b) for a, b in zip(cuts, cuts[1:])]

    def _workspace(self, p):
        while len(self._ws) <= p:
            self._ws.append(_Workspace())
        return self._ws[p]

    def _lean_ok(self):
        """Whether `_infer` handles this configuration (with fast gates)."""
        return False

    def _project(self, X, mask, w, in_m, take):
        """A part's inputs as XF (F, T, n), its mask as (T, 1, n) booleans or None, and
        the input projections A (T, G*u, n) (bias included), in scan order."""
        N, T, F = X.shape
        Xt = X.transpose(1, 0, 2)
        Mb = _step_mask(mask, self.spec.go_backwards)
        if self.spec.go_backwards:
            Xt = Xt[::-1]
        XF = take("XF", (F, T, N))
        xp.copyto(XF, Xt.transpose(2, 0, 1))
        if in_m is not None and in_m.ndim == 2:
            XF *= in_m.T[:, None]
        A = take("A", (T, w.WT.shape[0], N))
        if in_m is None or in_m.ndim == 2:
            xp.matmul(w.WT, XF.transpose(1, 0, 2), out=A)
        else:  # one input dropout mask per gate (with recurrent dropout, as Keras)
            u = self.spec.units
            for g in range(self.n_gates):
                xp.matmul(w.WT[g * u:(g + 1) * u], (XF * in_m[g].T[:, None]).transpose(1, 0, 2),
                          out=A[:, g * u:(g + 1) * u])
        if w.b_in is not None:
            A += w.b_in
        return XF, Mb, A

    def _output(self, Hs, Mb, Y):
        """Write a part's output rows Y from its states Hs (T + 1, u, n)."""
        if not self.spec.return_sequences:
            Y[...] = Hs[-1].T
        elif self.zero_output_for_mask and Mb is not None:
            xp.multiply(Hs[1:], Mb, out=Y.transpose(1, 2, 0))
        else:
            Y[...] = Hs[1:].transpose(2, 0, 1)

    def forward(self, X, training, mask=None):
        if X.ndim != 3:
            self.output_shape(X.shape[1:])
        gates = _Gates(self._gate_groups(), X.dtype, self._fast_ok())
        return self._pass(X, training, mask, gates, not training and gates.fast and self._lean_ok())

    def _pass(self, X, training, mask, gates, lean):
        """The pass by batch parts; `lean`: `_forward_lean`'s, else `_forward_part`'s."""
        s, u = self.spec, self.spec.units
        N, T, F = X.shape
        in_m, rec_m = self._dropout_masks(training, N, F)  # drawn for the whole batch
        order = self._gate_order()
        if order is not None:
            in_m = in_m[order] if in_m is not None and in_m.ndim == 3 else in_m
            rec_m = None if rec_m is None else rec_m[order]
        w = self._prepare(gates)
        parts = self._parts(N)
        Y = xp.empty((N, T, u) if s.return_sequences else (N, u), X.dtype)
        self._passes += 1
        this_pass = self._passes
        backs = [None] * len(parts)

        def forward_part(p, rows):
            Xp, mp, Yp, ws = X[rows], _rows(mask, rows), Y[rows], self._workspace(p)
            if lean:
                return self._forward_lean(Xp, mp, gates, w, Yp, ws)
            in_p = _rows(in_m, rows, gate_major=in_m is not None and in_m.ndim == 3)
            rm = None if rec_m is None else rec_m[:, rows].transpose(0, 2, 1)
            backs[p] = self._forward_part(Xp, training, mp, gates, w, in_p, rm, Yp, ws)

        _run_parts(forward_part, parts)

        def backprop(dY):
            if lean:
                # an inference pass keeps no histories: recompute them (same maths, no dropout)
                return self._pass(X, False, mask, gates, False)[1](dY)
            if not training and self._passes != this_pass:
                raise RuntimeError(f"{self.name}: backprop of an inference pass is only "
                                   "possible before the next forward pass")
            dX = xp.empty((N, T, F), X.dtype) if self.input_grad else None
            grads = [None] * len(parts)

            def backprop_part(p, rows):
                grads[p] = backs[p](dY[rows], None if dX is None else dX[rows])

            _run_parts(backprop_part, parts)
            for name in grads[0]:  # the weight gradients sum over the parts, in order
                g = grads[0][name]
                for more in grads[1:]:
                    g += more[name]
                self.grads[name] = g
            if order is not None:  # back to Keras's column order
                inv = xp.argsort(self._columns())
                for name, g in self.grads.items():
                    self.grads[name] = g[..., inv]
            return dX

        return Y, backprop

    def _forward_part(self, X, training, mask, gates, w, in_m, rm, Y, ws):
        """A batch part's forward pass, writing its output rows Y; returns its
        backprop(dY, dX), which writes dX (when given) and returns the weight gradients.
        rm: the part's recurrent dropout masks (G, u, n) or None."""
        s, u = self.spec, self.spec.units
        N, T, F = X.shape
        held = {}

        def take(name, shape):
            return ws.take(held, name, shape, X.dtype)

        Hs, Mb, grads_back = self._forward_scan(X, mask, gates, w, in_m, rm, take)
        self._output(Hs, Mb, Y)
        if not training:
            # nothing is pending: free the buffers now; a backprop must come before
            # the next forward pass
            ws.give(held)

        def backprop(dY, dX):
            if s.return_sequences:
                dH = xp.ascontiguousarray(dY.transpose(1, 2, 0), dtype=X.dtype)
                if self.zero_output_for_mask and Mb is not None:
                    dH *= Mb
                dlast = xp.zeros((u, N), X.dtype)
            else:
                dH, dlast = None, xp.array(dY.T, X.dtype)
            grads, dXf = grads_back(dH, dlast, dX is not None)
            ws.give(held)
            if dX is not None:
                dX[...] = (dXf[:, ::-1] if s.go_backwards else dXf).transpose(2, 1, 0)
            return grads

        return backprop

    def _forward_scan(self, X, mask, gates, w, in_m, rm, take):
        """A part's projection and time loop: (states Hs (T + 1, u, n), step mask Mb,
        grads_back(dH, dlast, want_dX) -> (weight gradients, dXf (F, T, n) or None))."""
        s, u, G = self.spec, self.spec.units, self.n_gates
        N, T, F = X.shape
        XF, Mb, A = self._project(X, mask, w, in_m, take)
        Hs = take("Hs", (T + 1, u, N))
        Hs[0] = 0
        scan_back = self._scan(A, w, Mb, rm, gates, Hs, take)

        def grads_back(dH, dlast, want_dX):
            dAf, dU, db_rec = scan_back(dH, dlast)  # dAf (G*u, T, n)
            dA2 = dAf.reshape(G * u, T * N)
            X2 = XF.reshape(F, T * N)
            grads = {}
            dXf = None
            if in_m is None or in_m.ndim == 2:
                grads["kernel"] = X2 @ dA2.T
                if want_dX:
                    dXf = (w.W @ dA2).reshape(F, T, N)
                    if in_m is not None:
                        dXf *= in_m.T[:, None]
            else:
                dXf = xp.zeros((F, T, N), X.dtype) if want_dX else None
                dW = xp.empty((F, G * u), X.dtype)
                for g in range(G):
                    gu = slice(g * u, (g + 1) * u)
                    Xg = XF * in_m[g].T[:, None]  # XF is the undropped input here
                    dW[:, gu] = Xg.reshape(F, -1) @ dA2[gu].T
                    if dXf is not None:
                        dXf += (w.W[:, gu] @ dA2[gu]).reshape(F, T, N) * in_m[g].T[:, None]
                grads["kernel"] = dW
            grads["recurrent_kernel"] = dU
            if s.use_bias:
                grads["bias"] = self._bias_grad(dA2.sum(axis=1), db_rec)
            return grads, dXf

        return Hs, Mb, grads_back

    def _forward_lean(self, X, mask, gates, w, Y, ws):
        """Inference of a batch part into its output rows Y: the input projection as one
        product, then `_infer`'s time loop."""
        held = {}
        N, T, _ = X.shape
        u = self.spec.units

        def take(name, shape):
            return ws.take(held, name, shape, X.dtype)

        _, Mb, A = self._project(X, mask, w, None, take)
        if self.spec.return_sequences:
            Hs = take("Hs", (T + 1, u, N))
            self._infer(A, w, Mb, Hs[1:])
        else:
            Hs = self._infer(A, w, Mb, None)[None]
        self._output(Hs, Mb, Y)
        ws.give(held)

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

    def _scan(self, A, w, Mb, rm, gates, Hs, take):
        T, u, N = A.shape
        Zpre = None if gates.fast else take("Zpre", A.shape)
        R = xp.empty((u, N), A.dtype)
        for t in _steps(T):
            a = A[t]
            a += _rec(Hs[t], w.UT, rm, R)
            if Zpre is not None:
                Zpre[t] = a
            gates.apply(a)
            Hs[t + 1] = a
            if Mb is not None:
                xp.copyto(Hs[t + 1], Hs[t], where=~Mb[t])

        def back(dH, carry):
            D = gates.derivative(A, Zpre, take("D", A.shape))
            dA = take("dA", A.shape)
            for t in _steps(T, backwards=True):
                dh = carry if dH is None else dH[t] + carry
                if Mb is not None:
                    keep = xp.where(Mb[t], 0, dh)
                    dh *= Mb[t]
                xp.multiply(dh, D[t], out=dA[t])
                carry = _rec_T(dA[t], w.U, rm)
                if Mb is not None:
                    carry += keep
            dAf = _fm(dA)
            return dAf, _rec_dU(_fm(Hs[:-1]), dAf, rm), None

        return back


class LSTM(_RNN):
    """Long short-term memory (Keras `LSTM`), gate order i, f, c, o.

    Shapes: X (batch, T, F) -> (batch, units), or (batch, T, units) with return_sequences;
    kernel (F, 4u), recurrent_kernel (u, 4u), bias (4u,).

    Internally the gates run in the order o, i, f, c: the sigmoid gates side by side, so
    one block covers them, and those the cell gradient scales (i, f, c) too.
    """

    n_gates = 4

    def _gate_order(self):
        return [3, 0, 1, 2]

    def _gate_groups(self):
        s, u = self.spec, self.spec.units
        return [(s.recurrent_activation, 3 * u), (s.activation, u)]

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

    def _stacked_ok(self, gates, in_m, rm):
        """Whether the stacked-product paths serve: default activations, no dropout."""
        return gates.fast and self._lean_ok() and in_m is None and rm is None

    def _stack(self, X, mask, w, take):
        """The stacked-product layout of a part: WUb = [W^T b U^T] (4u, F + 1 + u) and
        XH (T + 1, F + 1 + u, n), XH[t] step t's [x_t; 1; h_{t-1}] in scan order (the steps
        write h_t into XH[t + 1, F + 1:]). Each step's gates are then ONE product
        WUb @ XH[t]: faster than a projection pass plus a recurrent product and an add per
        step (~15% for inference, ~8% for a train step), and the kernel, bias and
        recurrent-kernel gradients are one product of the stacked rows with dA. Also
        returns the step mask Mb.

        (A feature-major XH, (F + 1 + u, T + 1, n), would save the gradient product its
        copy of XH, but it measured no faster for training and 6% slower for inference.)"""
        N, T, F = X.shape
        u, dt = self.spec.units, X.dtype
        Xt = X.transpose(1, 2, 0)  # (T, F, n)
        if self.spec.go_backwards:
            Xt = Xt[::-1]
        XH = take("XH", (T + 1, F + 1 + u, N))
        xp.copyto(XH[:T, :F], Xt)
        XH[:, F] = 1
        XH[0, F + 1:] = 0
        b = w.b_in if w.b_in is not None else xp.zeros((4 * u, 1), dt)
        WUb = xp.concatenate([w.WT, b, w.UT], axis=1)
        return WUb, XH, _step_mask(mask, self.spec.go_backwards)

    @staticmethod
    def _gate_views(a):
        """A step's gate block a (4u, n) and its views: the sigmoid rows o, i, f and o, i,
        f, c~ (slicing per step costs ~1% of inference, so a reused block's are kept)."""
        u = a.shape[0] // 4
        return a, a[:3 * u], a[:u], a[u:2 * u], a[2 * u:3 * u], a[3 * u:]

    @staticmethod
    def _steps_stacked(WUb, XH, Mb, gate_buf, c_buf, tc_buf):
        """The time loop of the stacked layout (scale-folded sigmoid gates, tanh): step t
        leaves its activated gates in gate_buf(t) (`_gate_views` of a (4u, n) block), its
        cell state in c_buf(t + 1) (c_buf(0) is the zero start), tanh(c) in tc_buf(t), and
        h_t in XH[t + 1, F + 1:]."""
        u = WUb.shape[0] // 4
        T = XH.shape[0] - 1
        half = WUb.dtype.type(0.5)
        H = XH[:, -u:]
        for t in range(T):
            (a, sig, o, i, f, g), c_prev, c, tc = gate_buf(t), c_buf(t), c_buf(t + 1), tc_buf(t)
            h = H[t + 1]
            xp.matmul(WUb, XH[t], out=a)
            xp.tanh(a, out=a)
            sig *= half  # sigmoid(x) = 0.5 * tanh(x / 2) + 0.5
            sig += half
            xp.multiply(f, c_prev, out=c)
            xp.multiply(i, g, out=tc)
            c += tc
            xp.tanh(c, out=tc)
            xp.multiply(o, tc, out=h)
            if Mb is not None:  # masked steps carry the state over
                keep = ~Mb[t]
                xp.copyto(c, c_prev, where=keep)
                xp.copyto(h, H[t], where=keep)

    def _forward_lean(self, X, mask, gates, w, Y, ws):
        """Inference of a batch part into its output rows Y, by the stacked product
        (`_stack`); only the current c is kept (two buffers in turn)."""
        held = {}
        N, T, F = X.shape
        u, dt = self.spec.units, X.dtype

        def take(name, shape):
            return ws.take(held, name, shape, dt)

        WUb, XH, Mb = self._stack(X, mask, w, take)
        R = self._gate_views(xp.empty((4 * u, N), dt))
        cs = (xp.zeros((u, N), dt), xp.empty((u, N), dt))
        tc = xp.empty((u, N), dt)
        self._steps_stacked(WUb, XH, Mb, lambda t: R, lambda t: cs[t % 2], lambda t: tc)
        self._output(XH[:, F + 1:], Mb, Y)
        ws.give(held)

    def _forward_scan(self, X, mask, gates, w, in_m, rm, take):
        if not self._stacked_ok(gates, in_m, rm):
            return super()._forward_scan(X, mask, gates, w, in_m, rm, take)
        N, T, F = X.shape
        u = self.spec.units
        WUb, XH, Mb = self._stack(X, mask, w, take)
        A = take("A", (T, 4 * u, N))
        Cs = take("Cs", (T + 1, u, N))
        Cs[0] = 0
        TC = take("TC", (T, u, N))
        self._steps_stacked(WUb, XH, Mb, lambda t: self._gate_views(A[t]), Cs.__getitem__,
                            TC.__getitem__)
        Hs = XH[:, F + 1:]  # (T + 1, u, n) view

        def grads_back(dH, dlast, want_dX):
            dAf = self._back(A, Cs, TC, None, Mb, None, w, gates, dH, dlast, take)
            dA2 = dAf.reshape(4 * u, T * N)
            # kernel, bias and recurrent-kernel gradients: one product of the stacked rows
            # of all steps, (F + 1 + u, T * n) (the reshape copies), split by rows
            dWUb = XH[:T].transpose(1, 0, 2).reshape(F + 1 + u, T * N) @ dA2.T
            grads = {"kernel": dWUb[:F], "recurrent_kernel": dWUb[F + 1:]}
            if self.spec.use_bias:
                grads["bias"] = dWUb[F]
            dXf = (w.W @ dA2).reshape(F, T, N) if want_dX else None
            return grads, dXf

        return Hs, Mb, grads_back

    def _scan(self, A, w, Mb, rm, gates, Hs, take):
        T, G4, N = A.shape
        u = G4 // 4
        cell_act = activations.get(self.spec.activation)
        fast = gates.fast and self.spec.activation == "tanh"
        Cs = take("Cs", (T + 1, u, N))
        Cs[0] = 0
        TC = take("TC", (T, u, N))
        Zpre = None if gates.fast else take("Zpre", A.shape)
        R = xp.empty((G4, N), A.dtype)
        tmp = xp.empty((u, N), A.dtype)
        for t in _steps(T):
            a = A[t]
            a += _rec(Hs[t], w.UT, rm, R)
            if Zpre is not None:
                Zpre[t] = a
            gates.apply(a)
            c = Cs[t + 1]
            xp.multiply(a[2 * u:3 * u], Cs[t], out=c)
            xp.multiply(a[u:2 * u], a[3 * u:], out=tmp)
            c += tmp
            if fast:
                xp.tanh(c, out=TC[t])
            else:
                TC[t] = cell_act(c)[0]
            xp.multiply(a[:u], TC[t], out=Hs[t + 1])
            if Mb is not None:
                keep = ~Mb[t]
                xp.copyto(c, Cs[t], where=keep)
                xp.copyto(Hs[t + 1], Hs[t], where=keep)

        def back(dH, dh_carry):
            dAf = self._back(A, Cs, TC, Zpre, Mb, rm, w, gates, dH, dh_carry, take)
            return dAf, _rec_dU(_fm(Hs[:-1]), dAf, rm), None

        return back

    def _back(self, A, Cs, TC, Zpre, Mb, rm, w, gates, dH, dh_carry, take):
        """Backprop through time from the forward's activated gates A (T, 4u, n), cell
        states Cs and their activations TC; returns the pre-activation gradients as dAf
        (4u, T, n), the layout the weight-gradient products read as (4u, T * n). (The
        steps write dA step-major and `_fm` reorders it once: writing each step straight
        into dAf's strided (4u, n) slice measured slower than that copy.)

        The factors that do not depend on the carried gradients are formed for a chunk of
        steps at a time, with a few calls while the chunk is in cache, leaving the steps
        only the carried chain:
          dc = dh * P + dc',  P = o * tanh'(c);  da_o = dh * Ko,  Ko = tanh(c) * o'
          (da_i, da_f, da_c) = dc * K3,  K3 = (c~ * i', c_prev * f', i * c~')
        (x' the derivative of gate x's activation at its pre-activation)."""
        T, G4, N = A.shape
        u = G4 // 4
        dt = A.dtype
        cell_act = activations.get(self.spec.activation)
        fast = gates.fast and self.spec.activation == "tanh"
        if not gates.fast:
            Dall = gates.derivative(A, Zpre, take("D", A.shape))
        if not fast:
            Dtc = cell_act(Cs[1:])[1](xp.ones_like(TC))
        dA = take("dA", A.shape)
        K = xp.empty((_CHUNK, G4, N), dt)
        P = xp.empty((_CHUNK, u, N), dt)
        dc_carry = xp.zeros((u, N), dt)
        dc = xp.empty((u, N), dt)
        for t in _steps(T, backwards=True):
            k = t % _CHUNK
            if t == T - 1 or k == _CHUNK - 1:  # the chunk of steps t0..t
                t0 = t - k
                Kc, Pc, Ac, TCc = K[:k + 1], P[:k + 1], A[t0:t + 1], TC[t0:t + 1]
                if gates.fast:
                    gates.derivative(Ac, None, Kc)
                else:
                    Kc[...] = Dall[t0:t + 1]
                Kc[:, :u] *= TCc
                Kc[:, u:2 * u] *= Ac[:, 3 * u:]
                Kc[:, 2 * u:3 * u] *= Cs[t0:t + 1]
                Kc[:, 3 * u:] *= Ac[:, u:2 * u]
                if fast:
                    xp.multiply(TCc, TCc, out=Pc)
                    xp.subtract(1, Pc, out=Pc)
                else:
                    Pc[...] = Dtc[t0:t + 1]
                Pc *= Ac[:, :u]
            da = dA[t]
            dh = dh_carry if dH is None else dH[t] + dh_carry
            if Mb is not None:
                m = Mb[t]
                dh_keep = xp.where(m, 0, dh)
                dc_keep = xp.where(m, 0, dc_carry)
                dh *= m
                dc_carry *= m
            xp.multiply(dh, P[k], out=dc)
            dc += dc_carry
            xp.multiply(dh, K[k, :u], out=da[:u])
            xp.multiply(K[k, u:].reshape(3, u, N), dc, out=da[u:].reshape(3, u, N))
            xp.multiply(dc, A[t, 2 * u:3 * u], out=dc_carry)
            dh_carry = _rec_T(da, w.U, rm)
            if Mb is not None:
                dh_carry += dh_keep
                dc_carry += dc_keep
        return _fm(dA)


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

    def _infer(self, A, w, Mb, Hseq):
        """The inference time loop: only h is kept (and Hseq (T, u, n) when given)."""
        T, G3, N = A.shape
        u = G3 // 3
        dt = A.dtype
        half = dt.type(0.5)
        after = self.spec.reset_after
        R = xp.empty((G3 if after else 2 * u, N), dt)
        ZR = R[:2 * u]
        z, r = R[:u], R[u:2 * u]
        HH = R[2 * u:] if after else xp.empty((u, N), dt)
        UT_zr, UT_h = (w.UT, None) if after else (w.UT[:2 * u], w.UT[2 * u:])
        h, h_new = xp.zeros((u, N), dt), xp.empty((u, N), dt)
        keep = None if Mb is None else ~Mb
        for t in _steps(T):
            a = A[t]
            xp.matmul(UT_zr, h, out=R)
            ZR += a[:2 * u]
            xp.tanh(ZR, out=ZR)
            ZR *= half
            ZR += half
            if after:
                if w.b_rec is not None:
                    HH += w.b_rec
                HH *= r
            else:
                xp.multiply(r, h, out=h_new)
                xp.matmul(UT_h, h_new, out=HH)
            HH += a[2 * u:]
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
        return h

    def _scan(self, A, w, Mb, rm, gates, Hs, take):
        T, G3, N = A.shape
        u = G3 // 3
        dt = A.dtype
        after = self.spec.reset_after
        RH = take("RH", (T, u, N))  # reset_after: U_h.T @ h + b_h; else r * h_prev
        Zpre = None if gates.fast else take("Zpre", A.shape)
        rm_zr = None if rm is None else rm[:2]
        rm_h = None if rm is None else rm[2]
        UT_zr, UT_h = w.UT[:2 * u], w.UT[2 * u:]
        R = xp.empty((G3, N), dt)
        tmp = xp.empty((u, N), dt)
        for t in _steps(T):
            a = A[t]
            hp = Hs[t]
            if after:
                Rt = _rec(hp, w.UT, rm, R)
                a[:2 * u] += Rt[:2 * u]
                if w.b_rec is None:
                    RH[t] = Rt[2 * u:]
                else:
                    xp.add(Rt[2 * u:], w.b_rec, out=RH[t])
            else:
                a[:2 * u] += _rec(hp, UT_zr, rm_zr, R[:2 * u])
            if Zpre is not None:
                Zpre[t, :2 * u] = a[:2 * u]
            gates.apply(a[:2 * u])
            z, r, hh = a[:u], a[u:2 * u], a[2 * u:]
            if after:
                xp.multiply(r, RH[t], out=tmp)
            else:
                xp.multiply(r, hp if rm_h is None else hp * rm_h, out=RH[t])
                xp.matmul(UT_h, RH[t], out=tmp)
            hh += tmp
            if Zpre is not None:
                Zpre[t, 2 * u:] = hh
            gates.apply(hh, 2 * u)
            h = Hs[t + 1]
            xp.subtract(hp, hh, out=h)
            h *= z
            h += hh
            if Mb is not None:
                xp.copyto(h, hp, where=~Mb[t])

        def back(dH, carry):
            D = gates.derivative(A, Zpre, take("D", A.shape))
            Z, Rg, HH = (A[:, k * u:(k + 1) * u] for k in range(3))
            Kz = xp.subtract(Hs[:-1], HH, out=take("Kz", RH.shape))
            Kz *= D[:, :u]
            Kh = xp.subtract(1, Z, out=take("Kh", RH.shape))
            Kh *= D[:, 2 * u:]
            U_zr, U_h = w.U[:, :2 * u], w.U[:, 2 * u:]
            dA = take("dA", A.shape)
            if after:
                Kr = xp.multiply(RH, D[:, u:2 * u], out=take("Kr", RH.shape))
                dR = take("dR", A.shape)
            else:
                Dr = D[:, u:2 * u]
                Hh = Hs[:-1] if rm_h is None else Hs[:-1] * rm_h
            for t in _steps(T, backwards=True):
                dh = carry if dH is None else dH[t] + carry
                if Mb is not None:
                    keep = xp.where(Mb[t], 0, dh)
                    dh *= Mb[t]
                da = dA[t]
                dph = da[2 * u:]
                xp.multiply(dh, Kz[t], out=da[:u])
                xp.multiply(dh, Kh[t], out=dph)
                if after:
                    xp.multiply(dph, Kr[t], out=da[u:2 * u])
                    dr = dR[t]
                    dr[:2 * u] = da[:2 * u]
                    xp.multiply(dph, Rg[t], out=dr[2 * u:])
                    carry = _rec_T(dr, w.U, rm)
                else:
                    d_rh = U_h @ dph
                    xp.multiply(d_rh, Hh[t], out=da[u:2 * u])
                    da[u:2 * u] *= Dr[t]
                    d_rh *= Rg[t]
                    if rm_h is not None:
                        d_rh *= rm_h
                    carry = _rec_T(da[:2 * u], U_zr, rm_zr) + d_rh
                carry += dh * Z[t]
                if Mb is not None:
                    carry += keep
            dAf, Hf = _fm(dA), _fm(Hs[:-1])
            if after:
                dU = _rec_dU(Hf, _fm(dR), rm)
                db_rec = dR[:, 2 * u:].sum(axis=(0, 2))
            else:
                RHf = _fm(RH).reshape(u, -1)
                dU = xp.concatenate([_rec_dU(Hf, dAf[:2 * u], rm_zr),
                                     RHf @ dAf[2 * u:].reshape(u, -1).T], axis=1)
                db_rec = None
            return dAf, dU, db_rec

        return back


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

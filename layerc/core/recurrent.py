"""Recurrent layers' shared machinery (Keras 3 semantics) and SimpleRNN; LSTM, GRU and the
Bidirectional wrapper build on it in `core.lstm`, `core.gru` and `core.bidirectional`.

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

from . import activations
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


def _gate_step(a, h, w, rm, R, gates, zpre):
    """One step's gates in place: a (its input projection, (G*u, n)) plus the recurrent
    term of the state h (through the buffer R), kept in zpre when given (activations
    whose derivative needs the pre-activation), then activated."""
    a += _rec(h, w.UT, rm, R)
    if zpre is not None:
        zpre[...] = a
    gates.apply(a)
    return a


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
            Hs[t + 1] = _gate_step(A[t], Hs[t], w, rm, R, gates, None if Zpre is None else Zpre[t])
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

"""LSTM (Keras `LSTM`) on the shared recurrent machinery of `core.recurrent`."""
from __future__ import annotations

from . import activations, initializers
from . import xp
from .recurrent import _CHUNK, _RNN, _fm, _gate_step, _rec_T, _rec_dU, _step_mask, _steps


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
            a = _gate_step(A[t], Hs[t], w, rm, R, gates, None if Zpre is None else Zpre[t])
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

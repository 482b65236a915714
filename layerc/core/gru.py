"""GRU (Keras `GRU`, reset_after or not) on the shared recurrent machinery of `core.recurrent`."""
from __future__ import annotations

from . import xp
from .recurrent import _RNN, _fm, _rec, _rec_T, _rec_dU, _steps


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

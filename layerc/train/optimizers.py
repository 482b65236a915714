"""Optimizers, sorted in order of increasing complexity, with Keras 3's update formulas.

Every optimizer updates the parameter arrays in place: state arrays are allocated once,
in the parameters' dtype, and the updates are in-place NumPy operations through a few
shared scratch buffers, so float32 stays float32 and a step allocates almost nothing.
"""
from __future__ import annotations

import math

from ..core import xp
from ..core.parallel import split_batch
from .schedules import make_schedule

# The updates run a chunk of a variable's values at a time (elementwise updates only),
# about this many: a chunk's parameter, gradient, state and scratch stay in the L2 cache.
_CHUNK = 1 << 15


class Optimizer:
    """Base class: clipping, decoupled weight decay, schedule, state and the step counter.

    Args:
        learning_rate: a float, a schedule spec, or a callable `step -> float`.
        clipnorm: clip each gradient to this L2 norm (per variable, as Keras 3).
        clipvalue: clip each gradient element to [-clipvalue, clipvalue].
        weight_decay: decoupled decay, `W -= W * weight_decay * lr` before the update.
    """

    slots: tuple[str, ...] = ()  # names of the per-parameter state arrays (Keras's names)
    n_scratch = 1  # temporary arrays the update needs

    def __init__(self, learning_rate=0.001, clipnorm=None, clipvalue=None, weight_decay=None):
        if clipnorm is not None and clipvalue is not None:
            raise ValueError("set only one of clipnorm and clipvalue")
        self.schedule = make_schedule(learning_rate)
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.weight_decay = weight_decay
        self.iterations = 0
        self.lr_scale = 1.0  # set through `learning_rate = ...` (ReduceLROnPlateau)
        self.state: list[dict] | None = None
        self._scratch: dict = {}

    # -- learning rate -------------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step: the schedule's value times `lr_scale`."""
        return self.schedule(self.iterations) * self.lr_scale

    @learning_rate.setter
    def learning_rate(self, value: float):
        base = self.schedule(self.iterations)
        self.lr_scale = float(value) / base if base else 0.0

    # -- state -----------------------------------------------------------------------------------
    def build(self, params) -> None:
        """Allocate the state arrays for `params` (done by the first `step` otherwise)."""
        self.state = [{s: self._init_slot(s, P) for s in self._slots_for()} for P in params]
        for P in sorted(params, key=lambda P: -P.size):  # largest first: one allocation per dtype
            self._buffers(P)

    def _slots_for(self):
        return self.slots

    def _init_slot(self, name, P):
        return xp.zeros_like(P)

    def get_state(self) -> dict:
        """Plain arrays (for an .npz checkpoint): iterations, lr_scale and `{slot}_{i}`."""
        out = {"iterations": xp.asarray(self.iterations, dtype=xp.int64),
               "lr_scale": xp.asarray(self.lr_scale, dtype=xp.float64)}
        for i, slots in enumerate(self.state or []):
            for name, A in slots.items():
                out[f"{name}_{i}"] = A.copy()
        return out

    def set_state(self, state: dict) -> None:
        """Restore what `get_state` returned (arrays are copied)."""
        self.iterations = int(state["iterations"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        names = self._slots_for()
        n = sum(1 for k in state if k.startswith(f"{names[0]}_")) if names else 0
        self.state = [{s: xp.array(state[f"{s}_{i}"]) for s in names} for i in range(n)]
        if not names:
            self.state = None

    # -- the step ------------------------------------------------------------------------------
    def step(self, params, grads) -> None:
        """Update `params` in place from `grads` (same order, shapes and dtypes).

        Shapes: grads[i] like params[i].
        """
        if self.state is None:
            self.build(params)
        elif len(self.state) != len(params):
            raise ValueError(f"optimizer state holds {len(self.state)} variables, "
                             f"the model has {len(params)}")
        lr = self.learning_rate
        for i, (P, g) in enumerate(zip(params, grads)):
            st = self.state[i]
            for A in st.values():
                if A.shape != P.shape:
                    raise ValueError(f"optimizer state {A.shape} does not match variable {P.shape}")
            bufs = self._buffers(P)
            g = self._clip(g, bufs[-1])
            if P.size <= _CHUNK or not all(A.flags.c_contiguous for A in (P, *st.values())):
                self._decay_and_update(P, g, st, lr, bufs[:-1])
                continue
            # Each chunk's chain of passes runs while its arrays are in cache: every array
            # goes through memory once instead of once a pass (values as on whole arrays).
            flat_P, flat_g = P.reshape(-1), g.reshape(-1)
            flat_st = {k: A.reshape(-1) for k, A in st.items()}
            flat_tmp = [t.reshape(-1) for t in bufs[:-1]]

            def chunks(part):
                for c0 in range(part.start * _CHUNK, min(part.stop * _CHUNK, P.size), _CHUNK):
                    c = slice(c0, c0 + _CHUNK)
                    self._decay_and_update(flat_P[c], flat_g[c], {k: A[c] for k, A in flat_st.items()},
                                           lr, [t[c] for t in flat_tmp])

            split_batch(chunks, -(-P.size // _CHUNK), P.size)
        self.iterations += 1

    def _decay_and_update(self, P, g, st, lr, tmp):
        if self.weight_decay:
            P *= P.dtype.type(1.0 - self.weight_decay * lr)
        self._update(P, g, st, lr, tmp)

    def _update(self, P, g, st, lr, tmp):
        """Update P in place from g, the state st and scratch tmp (arrays shaped like P),
        value by value: step may call it on chunks of the flattened arrays."""
        raise NotImplementedError

    def _buffers(self, P):
        """n_scratch + 1 scratch views shaped like P (the last holds the clipped gradient)."""
        key = P.dtype.str
        flat = self._scratch.get(key)
        if flat is None or flat.shape[1] < P.size:
            flat = xp.empty((self.n_scratch + 1, P.size), P.dtype)
            self._scratch[key] = flat
        return [flat[k, :P.size].reshape(P.shape) for k in range(self.n_scratch + 1)]

    def _clip(self, g, out):
        if self.clipnorm:
            norm = math.sqrt(float(xp.vdot(g, g)))
            if norm > self.clipnorm:
                return xp.multiply(g, g.dtype.type(self.clipnorm / norm), out=out)
        elif self.clipvalue:
            return xp.clip(g, -self.clipvalue, self.clipvalue, out=out)
        return g


class SGD(Optimizer):
    """Keras SGD: m = momentum * m - lr * g; W += m (nesterov: W += momentum * m - lr * g)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kw):
        super().__init__(learning_rate, **kw)
        self.momentum = momentum
        self.nesterov = nesterov

    def _slots_for(self):
        return ("momentum",) if self.momentum else ()

    def _update(self, P, g, st, lr, tmp):
        step = xp.multiply(g, P.dtype.type(lr), out=tmp[0])
        if not self.momentum:
            P -= step
            return
        m, mu = st["momentum"], P.dtype.type(self.momentum)
        m *= mu
        m -= step
        if self.nesterov:
            P -= step
            P += xp.multiply(m, mu, out=step)
        else:
            P += m


class RMSprop(Optimizer):
    """Keras RMSprop, optionally centered and with momentum."""

    n_scratch = 2

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kw):
        super().__init__(learning_rate, **kw)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _slots_for(self):
        return (("velocity",) + (("momentum",) if self.momentum else ())
                + (("average_gradient",) if self.centered else ()))

    def _update(self, P, g, st, lr, tmp):
        t = P.dtype.type
        v = st["velocity"]
        v *= t(self.rho)
        sq = xp.multiply(g, g, out=tmp[0])
        sq *= t(1 - self.rho)
        v += sq
        denom = xp.add(v, t(self.epsilon), out=tmp[0])
        if self.centered:
            a = st["average_gradient"]
            a *= t(self.rho)
            a += xp.multiply(g, t(1 - self.rho), out=tmp[1])
            denom -= xp.multiply(a, a, out=tmp[1])
        xp.sqrt(denom, out=denom)
        inc = xp.multiply(g, t(lr), out=tmp[1])
        inc /= denom
        if self.momentum:
            m = st["momentum"]
            m *= t(self.momentum)
            m += inc
            P -= m
        else:
            P -= inc


class Adagrad(Optimizer):
    """Keras Adagrad: acc += g**2; W -= lr * g / sqrt(acc + epsilon)."""

    slots = ("accumulator",)
    n_scratch = 2

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kw):
        super().__init__(learning_rate, **kw)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def _init_slot(self, name, P):
        return xp.full_like(P, self.initial_accumulator_value)

    def _update(self, P, g, st, lr, tmp):
        t = P.dtype.type
        acc = st["accumulator"]
        acc += xp.multiply(g, g, out=tmp[0])
        denom = xp.add(acc, t(self.epsilon), out=tmp[0])
        xp.sqrt(denom, out=denom)
        P -= xp.divide(xp.multiply(g, t(lr), out=tmp[1]), denom, out=tmp[1])


class Adam(Optimizer):
    """Keras Adam: W -= alpha * m / (sqrt(v) + epsilon), alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)."""

    n_scratch = 2

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kw):
        super().__init__(learning_rate, **kw)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def _slots_for(self):
        return ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def _update(self, P, g, st, lr, tmp):
        t = P.dtype.type
        b1, b2 = self.beta_1, self.beta_2
        k = self.iterations + 1
        alpha = lr * math.sqrt(1 - b2 ** k) / (1 - b1 ** k)
        m, v = st["momentum"], st["velocity"]
        m *= t(b1)
        m += xp.multiply(g, t(1 - b1), out=tmp[0])
        v *= t(b2)
        sq = xp.multiply(g, g, out=tmp[0])
        sq *= t(1 - b2)
        v += sq
        if self.amsgrad:
            v = xp.maximum(st["velocity_hat"], v, out=st["velocity_hat"])
        denom = xp.sqrt(v, out=tmp[0])
        denom += t(self.epsilon)
        num = xp.multiply(m, t(alpha), out=tmp[1])
        num /= denom
        P -= num


class AdamW(Adam):
    """Keras AdamW: Adam with decoupled weight decay (W *= 1 - weight_decay * lr first)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **kw):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay=weight_decay, **kw)


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adagrad": Adagrad, "adam": Adam, "adamw": AdamW}


def make_optimizer(optimizer_spec) -> Optimizer:
    """An Optimizer from an optimizer spec model of `layerc.spec.train`, or a bare name."""
    if isinstance(optimizer_spec, str):
        return OPTIMIZERS[optimizer_spec.lower()]()
    spec = optimizer_spec
    args = {k: getattr(spec, k) for k in type(spec).model_fields if k != "type"}
    return OPTIMIZERS[spec.type](**args)

"""Weight initializers with Keras 3's definitions and defaults.

Each is `init(shape, rng, dtype) -> array`; `rng` is a numpy Generator.
"""
from __future__ import annotations

import math

from . import xp


def _fans(shape):
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _uniform(limit):
    return lambda shape, rng, dtype: rng.uniform(-limit, limit, shape).astype(dtype)


def _truncated_normal(shape, rng, stddev):
    """Normal draws re-drawn until within two standard deviations (Keras's TruncatedNormal)."""
    out = rng.standard_normal(shape)
    bad = xp.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = xp.abs(out) > 2
    return out * stddev


def _variance_scaling(scale, mode, distribution):
    def init(shape, rng, dtype):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, n)
        if distribution == "uniform":
            limit = math.sqrt(3 * variance)
            return rng.uniform(-limit, limit, shape).astype(dtype)
        # 0.879... is the stddev of a unit normal truncated to [-2, 2]
        return _truncated_normal(shape, rng, math.sqrt(variance) / 0.87962566103423978).astype(dtype)

    return init


def zeros(shape, rng, dtype):
    return xp.zeros(shape, dtype)


def ones(shape, rng, dtype):
    return xp.ones(shape, dtype)


def orthogonal(shape, rng, dtype):
    """Keras's Orthogonal(gain=1): QR of a normal matrix, sign-corrected."""
    rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
    cols = shape[-1]
    flat = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = xp.linalg.qr(flat)
    q = q * xp.sign(xp.diag(r))
    if rows < cols:
        q = q.T
    return q.reshape(shape).astype(dtype)


INITIALIZERS = {
    "zeros": zeros,
    "ones": ones,
    "glorot_uniform": _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": _variance_scaling(1.0, "fan_avg", "normal"),
    "he_uniform": _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": _variance_scaling(2.0, "fan_in", "normal"),
    "lecun_uniform": _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": _variance_scaling(1.0, "fan_in", "normal"),
    "orthogonal": orthogonal,
    "random_normal": lambda shape, rng, dtype: (rng.standard_normal(shape) * 0.05).astype(dtype),
    "random_uniform": _uniform(0.05),
    "uniform": _uniform(0.05),
    "truncated_normal": lambda shape, rng, dtype: _truncated_normal(shape, rng, 0.05).astype(dtype),
}


def get(name: str):
    return INITIALIZERS[name]

"""Activation functions with Keras 3's definitions.

Each entry maps a name to `forward(Z) -> (Y, backprop)`; `backprop(dY) -> dZ`.
Results keep Z's dtype.
"""
from __future__ import annotations

import math
from functools import lru_cache

from . import xp
from .parallel import split_batch

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
LEAKY_SLOPE = 0.2  # Keras 3's default negative_slope
ELU_ALPHA = 1.0


def linear(Z):
    return Z, lambda dY: dY


def rectify(Z, out=None):
    """max(Z, 0) (into out): against a row of zeros, which NumPy runs ~2x faster than
    against the scalar 0 (same values, NaN and -0.0 included)."""
    if not Z.ndim:
        return xp.maximum(Z, 0, out=out)
    return xp.maximum(Z, _zeros(Z.shape[-1], Z.dtype.str), out=out)


@lru_cache(maxsize=64)
def _zeros(n, dtype):
    z = xp.zeros(n, dtype)
    z.flags.writeable = False
    return z


def relu(Z):
    Y = rectify(Z)
    return Y, lambda dY: dY * (Z > 0)


def relu_(Z):
    """relu rectifying Z in place, for a layer's own fresh pre-activation, split over the
    batch across cores; keeps only Y (Y > 0 exactly where Z > 0, NaN included)."""
    split_batch(lambda b: rectify(Z[b], out=Z[b]), len(Z), Z.size)

    def backprop(dY):
        dZ = xp.empty(dY.shape, dY.dtype)
        split_batch(lambda b: xp.multiply(dY[b], Z[b] > 0, out=dZ[b]), len(dY), dY.size)
        return dZ

    return Z, backprop


def sigmoid(Z):
    Y = _sigmoid(Z)
    return Y, lambda dY: dY * Y * (1 - Y)


def tanh(Z):
    Y = xp.tanh(Z)
    return Y, lambda dY: dY * (1 - Y * Y)


def softmax(Z):
    E = xp.exp(Z - Z.max(axis=-1, keepdims=True))
    return softmax_(E, shifted=True)


def softmax_(Z, shifted=False):
    """softmax overwriting Z, for a layer's own fresh pre-activation (the same operations,
    so the same bits, without the temporaries); shifted: Z already holds exp(Z - max)."""
    if not shifted:
        Z -= Z.max(axis=-1, keepdims=True)
        xp.exp(Z, out=Z)
    Z /= Z.sum(axis=-1, keepdims=True)

    def backprop(dY):
        return Z * (dY - (dY * Z).sum(axis=-1, keepdims=True))

    return Z, backprop


def gelu(Z):
    """Exact GELU (Keras's default approximate=False): x * Phi(x)."""
    Phi = 0.5 * (1 + erf(Z * Z.dtype.type(1 / math.sqrt(2))))
    Y = Z * Phi

    def backprop(dY):
        pdf = xp.exp(-0.5 * Z * Z) * Z.dtype.type(1 / math.sqrt(2 * math.pi))
        return dY * (Phi + Z * pdf)

    return Y, backprop


def elu(Z):
    neg = ELU_ALPHA * xp.expm1(xp.minimum(Z, 0))
    Y = xp.where(Z > 0, Z, neg)
    return Y, lambda dY: dY * xp.where(Z > 0, 1, neg + ELU_ALPHA).astype(Z.dtype)


def selu(Z):
    neg = SELU_ALPHA * xp.expm1(xp.minimum(Z, 0))
    Y = SELU_SCALE * xp.where(Z > 0, Z, neg)
    return Y, lambda dY: dY * (SELU_SCALE * xp.where(Z > 0, 1, neg + SELU_ALPHA)).astype(Z.dtype)


def leaky_relu(Z):
    slope = xp.where(Z > 0, 1, LEAKY_SLOPE).astype(Z.dtype)
    return Z * slope, lambda dY: dY * slope


def silu(Z):
    S = _sigmoid(Z)
    return Z * S, lambda dY: dY * S * (1 + Z * (1 - S))


def softplus(Z):
    Y = xp.logaddexp(Z.dtype.type(0), Z)
    return Y, lambda dY: dY * _sigmoid(Z)


def softsign(Z):
    D = 1 + xp.abs(Z)
    return Z / D, lambda dY: dY / (D * D)


def hard_sigmoid(Z):
    """Keras 3: relu6(x + 3) / 6."""
    Y = xp.clip(Z / 6 + Z.dtype.type(0.5), 0, 1)
    return Y, lambda dY: dY * ((Z > -3) & (Z < 3)) / Z.dtype.type(6)


def hard_silu(Z):
    """Keras 3 (MobileNetV3's hard swish): x * relu6(x + 3) / 6."""
    H, dH = hard_sigmoid(Z)
    return Z * H, lambda dY: dY * H + dH(dY * Z)


def _sigmoid(Z):
    # Split by sign so exp never overflows.
    E = xp.exp(-xp.abs(Z))
    return xp.where(Z >= 0, 1 / (1 + E), E / (1 + E))


def erf(X):
    """Error function, vectorised (W. J. Cody's rational approximations, ~1e-15)."""
    A = xp.abs(X).astype(xp.float64)
    out = xp.empty_like(A)
    small = A < 0.5
    z = A[small] ** 2
    out[small] = A[small] * _poly(z, _ERF_P) / _poly(z, _ERF_Q)
    mid = (A >= 0.5) & (A < 4.0)
    a = A[mid]
    out[mid] = 1 - xp.exp(-a * a) * _poly(a, _ERFC_P) / _poly(a, _ERFC_Q)
    big = ~(small | mid)
    a = A[big]
    z = 1 / (a * a)
    r = z * _poly(z, _ERFC_R) / _poly(z, _ERFC_S)
    out[big] = 1 - xp.exp(-a * a) / a * (1 / math.sqrt(math.pi) + r)
    return (xp.sign(X) * out).astype(X.dtype)


def _poly(x, coeffs):
    y = xp.zeros_like(x) + coeffs[0]
    for c in coeffs[1:]:
        y = y * x + c
    return y


# Cody (1969), erf on |x| < 0.5: x * P(x^2) / Q(x^2)
_ERF_P = [1.85777706184603153e-1, 3.16112374387056560e0, 1.13864154151050156e2,
          3.77485237685302021e2, 3.20937758913846947e3]
_ERF_Q = [1.0, 2.36012909523441209e1, 2.44024637934444173e2,
          1.28261652607737228e3, 2.84423683343917062e3]
# erfc on 0.5 <= x < 4: exp(-x^2) * P(x) / Q(x)
_ERFC_P = [2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e0,
           6.61191906371416295e1, 2.98635138197400131e2, 8.81952221241769090e2,
           1.71204761263407058e3, 2.05107837782607147e3, 1.23033935479799725e3]
_ERFC_Q = [1.0, 1.57449261107098347e1, 1.17693950891312499e2,
           5.37181101862009858e2, 1.62138957456669019e3, 3.29079923573345963e3,
           4.36261909014324716e3, 3.43936767414372164e3, 1.23033935480374942e3]
# erfc on x >= 4: exp(-x^2)/x * (1/sqrt(pi) + R(1/x^2)/x^2)
_ERFC_R = [-1.63153871373020978e-2, -3.05326634961232344e-1, -3.60344899949804439e-1,
           -1.25781726111229246e-1, -1.60837851487422766e-2, -6.58749161529837803e-4]
_ERFC_S = [1.0, 2.56852019228982242e0, 1.87295284992346725e0,
           5.27905102951428412e-1, 6.05183413124413191e-2, 2.33520497626869185e-3]

ACTIVATIONS = {
    "linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax,
    "gelu": gelu, "elu": elu, "selu": selu, "leaky_relu": leaky_relu, "silu": silu,
    "swish": silu, "softplus": softplus, "softsign": softsign, "hard_sigmoid": hard_sigmoid,
    "hard_silu": hard_silu, "hard_swish": hard_silu,
}


# Variants that overwrite their input: for a layer's own fresh pre-activation.
IN_PLACE = {"relu": relu_, "softmax": softmax_}


def get(name: str | None):
    """The forward function of activation `name` (None is linear)."""
    return ACTIVATIONS["linear" if name is None else name]

"""Weight penalties with Keras's semantics: l1 * sum(|W|) + l2 * sum(W**2)."""
from __future__ import annotations

from ..core import xp


def penalty(W, l1: float, l2: float, grad=None):
    """The penalty's value and its gradient.

    Args:
        W: the weight array.
        l1, l2: the factors (Keras's defaults for "l1"/"l2" are 0.01).
        grad: optional array shaped like W; the penalty's gradient is added to it in
            place and it is returned instead of a new array.

    Returns:
        (value as a Python float, dW).
    """
    dtype = W.dtype.type
    value = 0.0
    dW = xp.zeros_like(W) if grad is None else grad
    if l1:
        value += l1 * float(xp.sum(xp.abs(W), dtype=xp.float64))
        dW += dtype(l1) * xp.sign(W)
    if l2:
        value += l2 * float(xp.vdot(W, W))
        dW += dtype(2 * l2) * W
    return value, dW

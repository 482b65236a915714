"""Float64 finite-difference gradient checks shared by the layer and loss tests."""
from __future__ import annotations

import numpy as np


def _numeric(f, A, eps, picks):
    out = {}
    for idx in picks:
        old = A[idx]
        A[idx] = old + eps
        fp = f()
        A[idx] = old - eps
        fm = f()
        A[idx] = old
        out[idx] = (fp - fm) / (2 * eps)
    return out


def _picks(A, n, rng):
    if A.size <= n:
        return [tuple(i) for i in np.ndindex(A.shape)]
    flat = rng.choice(A.size, n, replace=False)
    return [np.unravel_index(i, A.shape) for i in flat]


def check_layer_gradients(layer, X, *, training=False, mask=None, eps=1e-6, rtol=1e-4,
                          atol=1e-7, n_checks=40, seed=0):
    """Compare backprop's dX and every weight gradient with central differences.

    The layer must be built in float64. Its generator is reseeded before every
    forward pass, so dropout masks are the same fixed mask in every evaluation.
    X may be a list (multi-input layers); integer inputs get no input gradient.
    """
    rng = np.random.default_rng(seed)
    xs = X if isinstance(X, list) else [X]

    def forward():
        layer.rng = np.random.default_rng(1234)
        return layer.forward(X if isinstance(X, list) else xs[0], training, mask)

    Y, backprop = forward()
    dY = rng.standard_normal(np.shape(Y))
    state = {k: v.copy() for k, v in layer.weights.items()}

    def loss():
        for k, v in state.items():  # undo moving-statistics updates between evaluations
            if not layer.trainable.get(k, True):
                layer.weights[k][...] = v
        return float(np.sum(forward()[0] * dY))

    Y, backprop = forward()
    dX = backprop(dY)
    dxs = dX if isinstance(dX, list) else [dX]
    grads = {k: np.array(g, copy=True) for k, g in layer.grads.items()}
    checked = 0
    for A, dA in zip(xs, dxs):
        if not np.issubdtype(np.asarray(A).dtype, np.floating):
            continue
        assert dA is not None and dA.shape == A.shape, f"dX shape {np.shape(dA)} != {A.shape}"
        for idx, num in _numeric(loss, A, eps, _picks(A, n_checks, rng)).items():
            np.testing.assert_allclose(dA[idx], num, rtol=rtol, atol=atol, err_msg=f"dX{idx}")
            checked += 1
    for name, W in layer.weights.items():
        if not layer.trainable.get(name, True):
            continue
        assert grads[name].shape == W.shape, f"grad {name} shape {grads[name].shape} != {W.shape}"
        for idx, num in _numeric(loss, W, eps, _picks(W, n_checks, rng)).items():
            np.testing.assert_allclose(grads[name][idx], num, rtol=rtol, atol=atol,
                                       err_msg=f"d{name}{idx}")
            checked += 1
    assert checked > 0, "nothing was checked"
    return checked

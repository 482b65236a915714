"""LSTM's stacked-product training path (`LSTM._stack`: one [W^T b U^T] @ [x; 1; h] product
per step, one product for all weight gradients) against the projection path it replaces
when there is no dropout: same outputs, input and weight gradients, in every layout."""
from __future__ import annotations

import numpy as np
import pytest

from layerc.core import recurrent
from layerc.core.lstm import LSTM
from tests.core.gradcheck import check_layer_gradients
from tests.core.test_recurrent import make

N, T, F = 7, 2 * recurrent._CHUNK + 3, 4

CASES = [
    {},
    {"return_sequences": True},
    {"go_backwards": True},
    {"return_sequences": True, "go_backwards": True},
    {"use_bias": False},
    {"unit_forget_bias": False, "return_sequences": True},
]


def _id(args):
    return "-".join(f"{k}={v}" for k, v in args.items()) or "default"


def _mask():
    mask = np.ones((N, T), bool)
    mask[1, T - 4:] = False
    mask[4, 2:] = False
    mask[6, :3] = False
    return mask


def _run(args, X, mask, dtype):
    layer = make("LSTM", dtype=dtype, T_=T, F_=F, **args)
    Y, backprop = layer.forward(X.astype(dtype), True, mask)
    dY = np.random.default_rng(3).standard_normal(Y.shape).astype(dtype)
    return Y, backprop(dY), dict(layer.grads)


@pytest.mark.parametrize("args", CASES, ids=[_id(a) for a in CASES])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("parts", [1, 3])
def test_stacked_equals_projection(args, masked, parts, monkeypatch):
    if parts > 1:
        monkeypatch.setenv("LAYERC_NUM_THREADS", str(parts))
        monkeypatch.setattr(recurrent, "_SPLIT_MIN", 0)
    X = np.random.default_rng(0).standard_normal((N, T, F))
    mask = _mask() if masked else None
    stacked = _run(args, X, mask, "float64")
    monkeypatch.setattr(LSTM, "_stacked_ok", lambda self, gates, in_m, rm: False)
    projected = _run(args, X, mask, "float64")
    for a, b in zip(stacked[:2], projected[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert sorted(stacked[2]) == sorted(projected[2])
    for k in stacked[2]:
        assert stacked[2][k].shape == projected[2][k].shape, k
        np.testing.assert_allclose(stacked[2][k], projected[2][k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_stacked_float32_close():
    X = np.random.default_rng(0).standard_normal((N, T, F))
    a = _run({"return_sequences": True}, X, _mask(), "float32")
    b = _run({"return_sequences": True}, X, _mask(), "float64")
    for x, y in zip(a[:2], b[:2]):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    for k in a[2]:
        np.testing.assert_allclose(a[2][k], b[2][k], rtol=1e-4, atol=1e-4, err_msg=k)


@pytest.mark.parametrize("args", CASES[:3], ids=[_id(a) for a in CASES[:3]])
def test_stacked_training_gradients(args):
    """Finite differences through the training pass (training=True, no dropout)."""
    layer = make("LSTM", T_=T, F_=F, **args)
    X = np.random.default_rng(0).standard_normal((N, T, F))
    check_layer_gradients(layer, X, training=True, mask=_mask(), n_checks=20)

"""Recurrent layers with the batch split over threads, and sequences longer than the
backprop's chunk of steps: same results as one part, gradients, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from layerc.core import recurrent
from tests.core.gradcheck import check_layer_gradients
from tests.core.test_recurrent import make

N, T = 7, 2 * recurrent._CHUNK + 3  # several chunks, a partial one first

CASES = [
    ("SimpleRNN", {"return_sequences": True}),
    ("SimpleRNN", {"recurrent_dropout": 0.3}),
    ("LSTM", {}),
    ("LSTM", {"return_sequences": True, "go_backwards": True}),
    ("LSTM", {"dropout": 0.3}),
    ("LSTM", {"dropout": 0.3, "recurrent_dropout": 0.2, "return_sequences": True}),
    ("LSTM", {"activation": "softsign", "recurrent_activation": "hard_sigmoid"}),
    ("GRU", {}),
    ("GRU", {"return_sequences": True, "go_backwards": True}),
    ("GRU", {"reset_after": False, "recurrent_dropout": 0.3}),
    ("GRU", {"dropout": 0.2, "recurrent_dropout": 0.3}),
    ("Bidirectional", {"layer": {"type": "LSTM", "units": 3, "return_sequences": True}}),
]


def _id(case):
    return f"{case[0]}-" + "-".join(f"{k}={v}" for k, v in case[1].items() if k != "layer")


def _mask():
    mask = np.ones((N, T), bool)
    mask[1, T - 4:] = False
    mask[4, 2:] = False
    mask[6, :3] = False  # left padding too
    return mask


@pytest.fixture
def split(monkeypatch):
    """Every layer splits its batch over 3 threads (this machine's count aside)."""
    monkeypatch.setenv("LAYERC_NUM_THREADS", "3")
    monkeypatch.setattr(recurrent, "_SPLIT_MIN", 0)


def _run(type_, args, X, mask, training, dtype):
    layer = make(type_, dtype=dtype, T_=T, **args)
    Y, backprop = layer.forward(X, training, mask)
    dY = np.random.default_rng(3).standard_normal(Y.shape).astype(dtype)
    return Y, backprop(dY), dict(layer.grads)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
def test_split_equals_one_part(case, masked, training, monkeypatch):
    type_, args = case
    X = np.random.default_rng(0).standard_normal((N, T, 4))
    mask = _mask() if masked else None
    one = _run(type_, args, X, mask, training, "float64")
    monkeypatch.setenv("LAYERC_NUM_THREADS", "3")
    monkeypatch.setattr(recurrent, "_SPLIT_MIN", 0)
    parts = _run(type_, args, X, mask, training, "float64")
    for a, b in zip(one[:2], parts[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert list(one[2]) == list(parts[2])
    for k in one[2]:
        np.testing.assert_allclose(one[2][k], parts[2][k], rtol=1e-12, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("case", CASES[:-1], ids=[_id(c) for c in CASES[:-1]])
def test_split_gradients(case, split):
    type_, args = case
    layer = make(type_, T_=T, **args)
    training = bool(args.get("dropout") or args.get("recurrent_dropout"))
    X = np.random.default_rng(0).standard_normal((N, T, 4))
    check_layer_gradients(layer, X, training=training, mask=_mask(), n_checks=20)


@pytest.mark.parametrize("type_", ["LSTM", "GRU"])
def test_split_is_deterministic(type_, split):
    X = np.random.default_rng(0).standard_normal((N, T, 4)).astype("float32")
    runs = [_run(type_, {"return_sequences": True}, X, _mask(), True, "float32") for _ in range(3)]
    for run in runs[1:]:
        for a, b in zip(runs[0][:2], run[:2]):
            np.testing.assert_array_equal(a, b)
        for k in run[2]:
            np.testing.assert_array_equal(runs[0][2][k], run[2][k])


def test_benchmark_size_splits_on_two_cores(monkeypatch):
    monkeypatch.setenv("LAYERC_NUM_THREADS", "2")
    layer = make("LSTM", dtype="float32", units=128, T_=80, F_=64)
    assert layer._parts(64) == [slice(0, 32), slice(32, 64)]
    assert layer._parts(4) == [slice(0, 4)]  # too small to pay for a second thread

"""SimpleRNN, LSTM, GRU and Bidirectional: gradients, shapes, literals, masking, dropout, Keras parity."""
from __future__ import annotations

import math

import numpy as np
import pytest

from layerc.core.base import ShapeError
from layerc.core.bidirectional import Bidirectional
from layerc.core.gru import GRU
from layerc.core.lstm import LSTM
from layerc.core.recurrent import SimpleRNN, _dropout_mask
from layerc.core.registry import layer_class
from layerc.spec import layers as S
from tests.core.gradcheck import check_layer_gradients

N, T, F, U = 3, 5, 4, 3
CLASSES = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}


def make(type_, dtype="float64", seed=1, weight_scale=0.5, T_=T, F_=F, **args):
    """A built layer with random weights (nonzero biases) for spec `type_(**args)`."""
    if type_ == "Bidirectional":
        spec = S.Bidirectional(**args)
        layer = Bidirectional(spec, "bidi", seed, dtype)
    else:
        spec = getattr(S, type_)(**{"units": U, **args})
        layer = CLASSES[type_](spec, type_.lower(), seed, dtype)
    layer.build((T_, F_))
    rng = np.random.default_rng(seed + 100)
    for w in layer.weights.values():
        w[...] = rng.standard_normal(w.shape) * weight_scale
    return layer


def data(dtype="float64", seed=0, n=N, t=T, f=F):
    return np.random.default_rng(seed).standard_normal((n, t, f)).astype(dtype)


def right_padded_mask(n=N, t=T):
    mask = np.ones((n, t), bool)
    mask[1, t - 2:] = False
    mask[2, 1:] = False
    return mask


# -- 1. gradient checks ----------------------------------------------------------

RNN_CASES = [
    {},
    {"return_sequences": True},
    {"go_backwards": True},
    {"go_backwards": True, "return_sequences": True},
    {"use_bias": False},
    {"activation": "relu"},
    {"dropout": 0.3},
    {"dropout": 0.3, "recurrent_dropout": 0.4, "return_sequences": True},
    {"recurrent_dropout": 0.4},
]
GATED_EXTRA = [{"recurrent_activation": "hard_sigmoid", "activation": "softsign"}]
VARIANTS = (
    [("SimpleRNN", c) for c in RNN_CASES]
    + [("LSTM", c) for c in RNN_CASES + GATED_EXTRA + [{"unit_forget_bias": False}]]
    + [("GRU", c) for c in RNN_CASES + GATED_EXTRA]
    + [("GRU", {"reset_after": False, **c}) for c in RNN_CASES + GATED_EXTRA]
)


def _id(v):
    return f"{v[0]}-" + "-".join(f"{k}={val}" for k, val in v[1].items())


@pytest.mark.parametrize("variant", VARIANTS, ids=[_id(v) for v in VARIANTS])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_gradients(variant, masked):
    type_, args = variant
    layer = make(type_, **args)
    training = bool(args.get("dropout") or args.get("recurrent_dropout"))
    mask = right_padded_mask() if masked else None
    check_layer_gradients(layer, data(), training=training, mask=mask)


BIDI = [(mode, seqs, inner) for mode in ["concat", "sum", "mul", "ave"]
        for seqs in [False, True] for inner in ["LSTM", "GRU", "SimpleRNN"]]


@pytest.mark.parametrize("mode,seqs,inner", BIDI)
def test_bidirectional_gradients(mode, seqs, inner):
    layer = make("Bidirectional", merge_mode=mode,
                 layer={"type": inner, "units": U, "return_sequences": seqs})
    check_layer_gradients(layer, data(), mask=right_padded_mask())


def test_bidirectional_gradients_with_dropout():
    layer = make("Bidirectional", layer={"type": "LSTM", "units": U, "return_sequences": True,
                                         "dropout": 0.3, "recurrent_dropout": 0.3})
    check_layer_gradients(layer, data(), training=True)


# -- 2. shapes and weights --------------------------------------------------------------

@pytest.mark.parametrize("type_", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("seqs", [False, True])
def test_output_shape_matches_forward(type_, seqs):
    layer = make(type_, dtype="float32", return_sequences=seqs)
    X = data("float32")
    Y, _ = layer.forward(X, False)
    assert Y.shape[1:] == layer.output_shape((T, F))
    assert Y.dtype == np.float32
    assert layer.output_shape((None, F)) == ((None, U) if seqs else (U,))


@pytest.mark.parametrize("mode,width", [("concat", 2 * U), ("sum", U), ("mul", U), ("ave", U)])
def test_bidirectional_output_shape(mode, width):
    layer = make("Bidirectional", dtype="float32", merge_mode=mode,
                 layer={"type": "GRU", "units": U, "return_sequences": True})
    Y, backprop = layer.forward(data("float32"), False)
    assert Y.shape[1:] == layer.output_shape((T, F)) == (T, width)
    assert layer.output_shape((None, F)) == (None, width)
    assert backprop(np.ones_like(Y)).dtype == np.float32


# Verified with Keras 3.15 (torch backend) in this session.
KERAS_COUNTS = [
    ("LSTM", {"units": 128}, 64, 98_816),
    ("GRU", {"units": 64}, 32, 18_816),
    ("GRU", {"units": 64, "reset_after": False}, 32, 18_624),
    ("SimpleRNN", {"units": 64}, 32, 6_208),
    ("Bidirectional", {"layer": {"type": "LSTM", "units": 16}}, 8, 3_200),
]


@pytest.mark.parametrize("type_,args,features,count", KERAS_COUNTS)
def test_param_counts_equal_keras(type_, args, features, count):
    spec = getattr(S, type_)(**args)
    layer = layer_class(type_)(spec, "x", 0)
    assert sum(w.size for w in layer.weight_specs((None, features))) == count


def test_weight_layouts():
    lstm = LSTM(S.LSTM(units=5), "l", 0)
    assert [(w.name, w.shape) for w in lstm.weight_specs((7, 3))] == [
        ("kernel", (3, 20)), ("recurrent_kernel", (5, 20)), ("bias", (20,))]
    gru = GRU(S.GRU(units=5), "g", 0)
    assert [w.shape for w in gru.weight_specs((7, 3))] == [(3, 15), (5, 15), (2, 15)]
    gru = GRU(S.GRU(units=5, reset_after=False), "g", 0)
    assert gru.weight_specs((7, 3))[2].shape == (15,)
    bidi = Bidirectional(S.Bidirectional(layer={"type": "SimpleRNN", "units": 2}), "b", 0)
    assert [w.name for w in bidi.weight_specs((7, 3))] == [
        "forward/kernel", "forward/recurrent_kernel", "forward/bias",
        "backward/kernel", "backward/recurrent_kernel", "backward/bias"]


def test_unit_forget_bias_initialises_forget_gate_to_one():
    layer = LSTM(S.LSTM(units=4), "l", 0)
    layer.build((None, 3))
    b = layer.weights["bias"]
    assert b.dtype == np.float32
    np.testing.assert_array_equal(b, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    layer = LSTM(S.LSTM(units=4, unit_forget_bias=False), "l", 0)
    layer.build((None, 3))
    np.testing.assert_array_equal(layer.weights["bias"], np.zeros(16))


def test_bidirectional_inner_layers_get_distinct_seeds():
    layer = Bidirectional(S.Bidirectional(layer={"type": "LSTM", "units": 4}), "b", 7)
    layer.build((None, 3))
    assert not np.allclose(layer.weights["forward/kernel"], layer.weights["backward/kernel"])


@pytest.mark.parametrize("shape", [(10,), (5, 6, 7)])
@pytest.mark.parametrize("type_", ["SimpleRNN", "LSTM", "GRU"])
def test_shape_error_for_non_sequences(type_, shape):
    layer = CLASSES[type_](getattr(S, type_)(units=2), "x", 0)
    with pytest.raises(ShapeError) as err:
        layer.output_shape(shape)
    assert "(timesteps, features)" in err.value.message
    assert "Embedding" in err.value.hint and "Reshape" in err.value.hint


def test_macs():
    layer = LSTM(S.LSTM(units=8), "l", 0)
    assert layer.macs((10, 4)) == 10 * (4 * 32 + 8 * 32)


# -- 3. literal checks with hand-set weights ---------------------------------------------

def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_simple_rnn_literal():
    layer = SimpleRNN(S.SimpleRNN(units=1, activation="linear", return_sequences=True), "r", 0, "float64")
    layer.build((3, 1))
    layer.weights["kernel"][...] = 2.0
    layer.weights["recurrent_kernel"][...] = 0.5
    layer.weights["bias"][...] = 1.0
    Y, _ = layer.forward(np.array([[[1.0], [0.0], [-1.0]]]), False)
    # h1 = 2 + 1 = 3; h2 = 0 + 1.5 + 1 = 2.5; h3 = -2 + 1.25 + 1 = 0.25
    np.testing.assert_allclose(Y[0, :, 0], [3.0, 2.5, 0.25])


def test_lstm_literal():
    layer = LSTM(S.LSTM(units=1, return_sequences=True), "l", 0, "float64")
    layer.build((2, 1))
    layer.weights["kernel"][...] = [[0.0, 0.0, 1.0, 0.0]]  # only the candidate sees x
    layer.weights["recurrent_kernel"][...] = 0.0
    layer.weights["bias"][...] = [0.0, 1.0, 0.0, 0.0]
    Y, _ = layer.forward(np.array([[[0.5], [-1.0]]]), False)
    i = o = 0.5
    f = _sig(1.0)
    c1 = i * math.tanh(0.5)
    c2 = f * c1 + i * math.tanh(-1.0)
    np.testing.assert_allclose(Y[0, :, 0], [o * math.tanh(c1), o * math.tanh(c2)])


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_literal(reset_after):
    layer = GRU(S.GRU(units=1, reset_after=reset_after, return_sequences=True), "g", 0, "float64")
    layer.build((2, 1))
    layer.weights["kernel"][...] = [[0.0, 0.0, 1.0]]
    layer.weights["recurrent_kernel"][...] = [[0.0, 0.0, 2.0]]
    layer.weights["bias"][...] = 0.0
    Y, _ = layer.forward(np.array([[[1.0], [0.5]]]), False)
    z = r = 0.5
    h1 = (1 - z) * math.tanh(1.0)
    h2 = z * h1 + (1 - z) * math.tanh(0.5 + r * 2.0 * h1)  # the same either way with zero bias
    np.testing.assert_allclose(Y[0, :, 0], [h1, h2])


def test_gru_reset_after_recurrent_bias_is_gated_by_r():
    layer = GRU(S.GRU(units=1, return_sequences=True), "g", 0, "float64")
    layer.build((1, 1))
    layer.weights["kernel"][...] = 0.0
    layer.weights["recurrent_kernel"][...] = 0.0
    layer.weights["bias"][...] = [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    Y, _ = layer.forward(np.zeros((1, 1, 1)), False)
    np.testing.assert_allclose(Y[0, 0, 0], 0.5 * math.tanh(0.5 * 1.0))


# -- masking -------------------------------------------------------------------------

MASK_LAYERS = [("SimpleRNN", {}), ("LSTM", {}), ("GRU", {}), ("GRU", {"reset_after": False}),
               ("LSTM", {"go_backwards": True})]


@pytest.mark.parametrize("type_,args", MASK_LAYERS)
@pytest.mark.parametrize("seqs", [False, True])
def test_right_padding_with_mask_equals_unpadded(type_, args, seqs):
    layer = make(type_, return_sequences=seqs, **args)
    X = data(t=6)
    lengths = [6, 4, 1]
    mask = np.arange(6)[None, :] < np.array(lengths)[:, None]
    Xpad = np.where(mask[..., None], X, 7.0)  # padding values must not matter
    Y, backprop = layer.forward(Xpad, False, mask)
    dY = np.ones_like(Y)
    dX = backprop(dY)
    assert np.all(dX[~mask] == 0)
    for n, length in enumerate(lengths):
        Yn, _ = layer.forward(X[n:n + 1, :length], False)
        if not seqs:
            np.testing.assert_allclose(Y[n], Yn[0], atol=1e-12)
        elif args.get("go_backwards"):
            # processing order: the padded steps come first and leave the zero state
            np.testing.assert_allclose(Y[n, 6 - length:], Yn[0], atol=1e-12)
            np.testing.assert_allclose(Y[n, :6 - length], 0.0)
        else:
            np.testing.assert_allclose(Y[n, :length], Yn[0], atol=1e-12)
            # a masked step repeats the last output (Keras)
            np.testing.assert_allclose(Y[n, length:], np.broadcast_to(Yn[0, -1], (6 - length, U)))


@pytest.mark.parametrize("seqs", [False, True])
def test_bidirectional_right_padding_with_mask_equals_unpadded(seqs):
    layer = make("Bidirectional", layer={"type": "LSTM", "units": U, "return_sequences": seqs})
    X = data(t=6)
    lengths = [6, 3, 2]
    mask = np.arange(6)[None, :] < np.array(lengths)[:, None]
    Y, _ = layer.forward(np.where(mask[..., None], X, -3.0), False, mask)
    for n, length in enumerate(lengths):
        Yn, _ = layer.forward(X[n:n + 1, :length], False)
        if seqs:
            np.testing.assert_allclose(Y[n, :length], Yn[0], atol=1e-12)
            np.testing.assert_allclose(Y[n, length:], 0.0)  # Keras zeroes masked steps here
        else:
            np.testing.assert_allclose(Y[n], Yn[0], atol=1e-12)


def test_compute_mask():
    mask = right_padded_mask()
    assert make("LSTM", return_sequences=True).compute_mask(None, mask) is mask
    assert make("LSTM").compute_mask(None, mask) is None
    bidi = make("Bidirectional", layer={"type": "GRU", "units": U, "return_sequences": True})
    assert bidi.compute_mask(None, mask) is mask
    assert make("Bidirectional", layer={"type": "GRU", "units": U}).compute_mask(None, mask) is None


# -- dropout ---------------------------------------------------------------------------

@pytest.mark.parametrize("type_", ["SimpleRNN", "LSTM", "GRU"])
def test_dropout_is_identity_in_inference(type_):
    X = data()
    plain, _ = make(type_).forward(X, False)
    dropped, _ = make(type_, dropout=0.5, recurrent_dropout=0.5).forward(X, False)
    np.testing.assert_array_equal(plain, dropped)


@pytest.mark.parametrize("type_", ["SimpleRNN", "LSTM", "GRU"])
def test_input_dropout_mask_is_drawn_once_per_batch(type_):
    layer = make(type_, dropout=0.5, return_sequences=True)
    X = data()
    layer.rng = np.random.default_rng(5)
    Y, _ = layer.forward(X, True)
    keep = _dropout_mask(np.random.default_rng(5), 0.5, (N, F), layer.dtype)
    expected, _ = make(type_, return_sequences=True).forward(X * keep[:, None, :], False)
    np.testing.assert_allclose(Y, expected, atol=1e-12)
    Y2, _ = layer.forward(X, True)
    assert not np.allclose(Y, Y2)  # a new batch draws a new mask


def test_recurrent_dropout_draws_one_mask_per_gate():
    layer = make("LSTM", recurrent_dropout=0.5)
    layer.rng = np.random.default_rng(3)
    in_m, rec_m = layer._dropout_masks(True, N, F)
    assert in_m is None and rec_m.shape == (4, N, U)
    assert set(np.unique(rec_m)) <= {0.0, 2.0}
    assert make("GRU", dropout=0.2, recurrent_dropout=0.5)._dropout_masks(True, N, F)[0].shape == (3, N, F)


# -- scratch buffers -----------------------------------------------------------------

def test_two_pending_training_passes_keep_their_own_buffers():
    layer = make("LSTM", return_sequences=True)
    X1, X2 = data(seed=1), data(seed=2)
    dY = np.ones((N, T, U))
    Y1, back1 = layer.forward(X1, True)
    Y2, back2 = layer.forward(X2, True)
    d2 = back2(dY)
    d1 = back1(dY)
    Y1b, back1b = layer.forward(X1, True)
    np.testing.assert_array_equal(Y1, Y1b)
    np.testing.assert_array_equal(d1, back1b(dY))
    assert not np.allclose(d1, d2)


def test_inference_backprop_after_another_forward_is_refused():
    layer = make("SimpleRNN")  # no lean inference path: the pass's buffers are reused
    _, back = layer.forward(data(), False)
    layer.forward(data(seed=3), False)
    with pytest.raises(RuntimeError):
        back(np.ones((N, U)))


@pytest.mark.parametrize("type_", ["LSTM", "GRU"])
def test_lean_inference_backprop_recomputes(type_):
    """The lean inference pass keeps nothing; its backprop recomputes, so it works even
    after another pass and equals the training-mode backprop (no dropout)."""
    layer = make(type_, return_sequences=True)
    dY = np.random.default_rng(5).standard_normal((N, T, U))
    _, back = layer.forward(data(), False)
    layer.forward(data(seed=3), False)
    dX = back(dY)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    _, back_train = layer.forward(data(), True)
    np.testing.assert_allclose(dX, back_train(dY), rtol=1e-12, atol=1e-12)
    for k, g in grads.items():
        np.testing.assert_allclose(g, layer.grads[k], rtol=1e-12, atol=1e-12)


LEAN_CASES = [{}, {"return_sequences": True}, {"go_backwards": True},
              {"go_backwards": True, "return_sequences": True}, {"use_bias": False}]
LEAN_VARIANTS = ([("LSTM", c) for c in LEAN_CASES + [{"dropout": 0.3, "recurrent_dropout": 0.2}]]
                 + [("GRU", c) for c in LEAN_CASES]
                 + [("GRU", {"reset_after": False, **c}) for c in LEAN_CASES])


@pytest.mark.parametrize("variant", LEAN_VARIANTS, ids=[_id(v) for v in LEAN_VARIANTS])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lean_inference_equals_training_forward(variant, masked, dtype):
    """Inference keeps no histories (its own time loop) yet gives the training-mode
    output, to float rounding (dropout only acts in training)."""
    type_, args = variant
    layer = make(type_, dtype=dtype, **args)
    assert layer._lean_ok()
    X = data(dtype, n=6, t=7)
    mask = None
    if masked:
        mask = right_padded_mask(6, 7)
        mask[3, 4:] = False
        mask[4, :2] = False  # left padding too
    lean, _ = layer.forward(X, False, mask)
    layer.spec = layer.spec.model_copy(update={"dropout": 0.0, "recurrent_dropout": 0.0})
    full, _ = layer.forward(X, True, mask)
    tol = 2e-6 if dtype == "float32" else 1e-12
    assert lean.dtype == full.dtype == np.dtype(dtype)
    np.testing.assert_allclose(lean, full, rtol=tol, atol=tol)


@pytest.mark.parametrize("type_", ["SimpleRNN", "LSTM", "GRU"])
def test_no_input_gradient_when_fed_by_data(type_):
    """input_grad=False (the layer reads the model's data): dX is skipped, weight
    gradients are unchanged."""
    layer = make(type_, return_sequences=True)
    X, dY = data(), np.random.default_rng(4).standard_normal((N, T, U))
    _, back = layer.forward(X, True)
    dX = back(dY)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    layer.input_grad = False
    _, back = layer.forward(X, True)
    assert dX is not None and back(dY) is None
    for k, g in grads.items():
        np.testing.assert_array_equal(g, layer.grads[k])


def test_blas_thread_count_is_restored():
    from layerc.core import parallel

    blas = parallel._openblas()
    if not blas:
        pytest.skip("numpy's BLAS is not a recognised OpenBLAS")
    before = blas[0]()
    for type_ in ("LSTM", "GRU"):
        layer = make(type_, dtype="float32")
        for training in (True, False):
            _, back = layer.forward(data("float32"), training)
            back(np.ones((N, U), np.float32))
    assert blas[0]() == before


def test_outputs_are_not_overwritten_by_later_passes():
    layer = make("SimpleRNN")
    Y1, _ = layer.forward(data(seed=1), False)
    keep = Y1.copy()
    layer.forward(data(seed=2), False)
    np.testing.assert_array_equal(Y1, keep)


# -- 4. parity with Keras 3 -----------------------------------------------------------


def _keras_run(klayer, X, mask, dY):
    import torch

    xt = torch.tensor(X, requires_grad=True)
    y = klayer(xt, mask=None if mask is None else torch.tensor(mask))
    (y * torch.tensor(dY)).sum().backward()
    return y.detach().numpy(), xt.grad.numpy(), [w.value.grad.numpy() for w in klayer.weights]


def _compare(ours, klayer, mask, seed=0):
    X = data("float32", seed=seed, n=4, t=6, f=F)
    klayer.build((4, 6, F))
    klayer.set_weights([w for w in ours.weights.values()])
    Y, backprop = ours.forward(X, False, mask)
    dY = np.random.default_rng(seed + 1).standard_normal(Y.shape).astype("float32")
    dX = backprop(dY)
    kY, kdX, kgrads = _keras_run(klayer, X, mask, dY)
    np.testing.assert_allclose(Y, kY, atol=1e-5)
    np.testing.assert_allclose(dX, kdX, atol=1e-5)
    assert len(kgrads) == len(ours.grads)
    for (name, g), kg in zip(ours.grads.items(), kgrads):
        np.testing.assert_allclose(g, kg, atol=1e-5, err_msg=name)


def _keras_mask():
    mask = np.ones((4, 6), bool)
    mask[1, 4:] = False
    mask[2, 1:] = False
    return mask


KERAS_VARIANTS = [
    ("SimpleRNN", {}), ("LSTM", {}), ("GRU", {}), ("GRU", {"reset_after": False}),
    ("LSTM", {"return_sequences": True, "go_backwards": True}),
    ("GRU", {"return_sequences": True}), ("GRU", {"go_backwards": True}),
    ("SimpleRNN", {"return_sequences": True, "activation": "relu"}),
    ("LSTM", {"activation": "softsign", "recurrent_activation": "hard_sigmoid"}),
    ("GRU", {"reset_after": False, "return_sequences": True, "use_bias": False}),
]


@pytest.mark.parametrize("type_,args", KERAS_VARIANTS, ids=[_id(v) for v in KERAS_VARIANTS])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_keras_parity(keras, type_, args, masked):
    ours = make(type_, dtype="float32", T_=6, **args)
    klayer = getattr(keras.layers, type_)(U, **args)
    _compare(ours, klayer, _keras_mask() if masked else None)


@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("seqs", [False, True])
@pytest.mark.parametrize("inner", ["LSTM", "GRU"])
def test_keras_parity_bidirectional(keras, mode, seqs, inner):
    ours = make("Bidirectional", dtype="float32", T_=6, merge_mode=mode,
                layer={"type": inner, "units": U, "return_sequences": seqs})
    klayer = keras.layers.Bidirectional(
        getattr(keras.layers, inner)(U, return_sequences=seqs), merge_mode=mode)
    _compare(ours, klayer, _keras_mask())

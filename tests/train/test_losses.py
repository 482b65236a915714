
import numpy as np
import pytest

from layerc.train.losses import (BinaryCrossentropy, CategoricalCrossentropy, Huber,
                                 MeanAbsoluteError, MeanSquaredError,
                                 SparseCategoricalCrossentropy, get_loss)
from tests.core.gradcheck import _numeric, _picks

N, C = 6, 4


def _data(kind, dtype=np.float64, seed=0, shape=(N, C)):
    rng = np.random.default_rng(seed)
    if kind == "probs":
        Z = rng.standard_normal(shape)
        P = np.exp(Z) / np.exp(Z).sum(-1, keepdims=True)
        return P.astype(dtype)
    if kind == "unit":
        return rng.uniform(0.05, 0.95, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype) * 2


def _onehot(seed=1, shape=(N, C)):
    labels = np.random.default_rng(seed).integers(0, shape[-1], shape[:-1])
    return labels, np.eye(shape[-1])[labels]


def _binary(seed=2, shape=(N, C)):
    return np.random.default_rng(seed).integers(0, 2, shape).astype(np.float64)


# (name, loss, y_true, y_pred): every loss and option that changes the maths
CASES = [
    ("cce_probs", CategoricalCrossentropy(), _onehot()[1], _data("probs")),
    ("cce_unnormalised", CategoricalCrossentropy(), _onehot()[1], _data("unit")),
    ("cce_smooth", CategoricalCrossentropy(label_smoothing=0.2), _onehot()[1], _data("probs")),
    ("cce_logits", CategoricalCrossentropy(from_logits=True), _onehot()[1], _data("logits")),
    ("cce_logits_smooth", CategoricalCrossentropy(True, 0.1), _onehot()[1], _data("logits")),
    ("cce_soft_targets", CategoricalCrossentropy(True), _data("probs", seed=5), _data("logits")),
    ("scce_probs", SparseCategoricalCrossentropy(), _onehot()[0], _data("probs")),
    ("scce_probs_col", SparseCategoricalCrossentropy(), _onehot()[0][:, None], _data("unit")),
    ("scce_logits", SparseCategoricalCrossentropy(True), _onehot()[0], _data("logits")),
    ("scce_seq", SparseCategoricalCrossentropy(True), _onehot(shape=(3, 5, C))[0],
     _data("logits", shape=(3, 5, C))),
    ("bce_probs", BinaryCrossentropy(), _binary(), _data("unit")),
    ("bce_smooth", BinaryCrossentropy(label_smoothing=0.1), _binary(), _data("unit")),
    ("bce_logits", BinaryCrossentropy(from_logits=True), _binary(), _data("logits")),
    ("bce_logits_smooth", BinaryCrossentropy(True, 0.2), _binary(), _data("logits")),
    ("bce_col", BinaryCrossentropy(), _binary(shape=(N,)), _data("unit", shape=(N, 1))),
    ("mse", MeanSquaredError(), _data("logits", seed=3), _data("logits")),
    ("mse_col", MeanSquaredError(), _data("logits", seed=3, shape=(N,)),
     _data("logits", shape=(N, 1))),
    ("mae", MeanAbsoluteError(), _data("logits", seed=3), _data("logits")),
    ("huber", Huber(), _data("logits", seed=3), _data("logits")),
    ("huber_delta", Huber(delta=0.3), _data("logits", seed=3), _data("logits")),
]


@pytest.mark.parametrize("name,loss,y_true,y_pred", CASES, ids=[c[0] for c in CASES])
def test_gradient_matches_finite_differences(name, loss, y_true, y_pred):
    Y = y_pred.astype(np.float64).copy()
    value, dY = loss(y_true, Y)
    assert dY.shape == Y.shape and dY.dtype == np.float64
    assert np.isfinite(value)
    num = _numeric(lambda: loss(y_true, Y)[0], Y, 1e-6, _picks(Y, 40, np.random.default_rng(0)))
    for idx, g in num.items():
        np.testing.assert_allclose(dY[idx], g, rtol=1e-5, atol=1e-8, err_msg=f"{name} {idx}")


@pytest.mark.parametrize("name,loss,y_true,y_pred", CASES, ids=[c[0] for c in CASES])
def test_float32_stays_float32(name, loss, y_true, y_pred):
    value, dY = loss(y_true, y_pred.astype(np.float32))
    assert dY.dtype == np.float32 and isinstance(value, float)


def test_literal_values():
    # -log(0.7), averaged over two samples with -log(0.5)
    v, dY = CategoricalCrossentropy()([[0, 1, 0], [1, 0, 0]], np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]]))
    assert v == pytest.approx((-np.log(0.7) - np.log(0.5)) / 2)
    v, _ = SparseCategoricalCrossentropy()([1, 0], np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]]))
    assert v == pytest.approx((-np.log(0.7) - np.log(0.5)) / 2)
    v, dY = MeanSquaredError()([[1.0, 2.0]], np.array([[2.0, 4.0]]))
    assert v == pytest.approx(2.5) and np.allclose(dY, [[1.0, 2.0]])
    v, _ = Huber()([[0.0, 0.0]], np.array([[0.5, 3.0]]))
    assert v == pytest.approx((0.125 + 2.5) / 2)
    # clipping: a zero probability costs -log(1e-7), not inf
    v, _ = BinaryCrossentropy()([[1.0]], np.array([[0.0]]))
    assert v == pytest.approx(-np.log(1e-7), rel=1e-6)


def test_logits_are_stable():
    Z = np.array([[1000.0, -1000.0, 0.0]], np.float32)
    v, dY = CategoricalCrossentropy(from_logits=True)([[0, 1, 0]], Z)
    assert v == pytest.approx(2000.0) and np.all(np.isfinite(dY))
    v, dY = BinaryCrossentropy(from_logits=True)([[0.0, 1.0, 1.0]], Z)
    assert v == pytest.approx((2000 + np.log(2)) / 3) and np.all(np.isfinite(dY))


def test_fusing():
    cce = get_loss("categorical_crossentropy")
    assert cce.fuses("softmax") and not cce.fuses("sigmoid") and not cce.fuses("linear")
    assert get_loss("sparse_categorical_crossentropy").fuses("softmax")
    assert get_loss("binary_crossentropy").fuses("sigmoid")
    assert not get_loss("binary_crossentropy").fuses("softmax")
    assert not CategoricalCrossentropy(from_logits=True).fuses("softmax")
    assert not get_loss("mse").fuses("linear")
    smooth = CategoricalCrossentropy(label_smoothing=0.1).logits_version()
    assert smooth.from_logits and smooth.label_smoothing == 0.1
    # softmax + CE on probabilities == CE from logits, gradient softmax - target
    Z = _data("logits")
    P = np.exp(Z) / np.exp(Z).sum(-1, keepdims=True)
    labels, T = _onehot()
    v1, _ = cce(T, P)
    v2, dZ = cce.logits_version()(T, Z)
    assert v1 == pytest.approx(v2, rel=1e-9)
    np.testing.assert_allclose(dZ, (P - T) / N, atol=1e-12)


def test_get_loss_from_spec():
    from layerc.spec.train import TrainSpec
    spec = TrainSpec(loss={"type": "binary_crossentropy", "from_logits": True, "label_smoothing": 0.1})
    loss = get_loss(spec.loss)
    assert isinstance(loss, BinaryCrossentropy) and loss.from_logits and loss.label_smoothing == 0.1
    assert isinstance(get_loss(TrainSpec(loss="mae").loss), MeanAbsoluteError)
    assert isinstance(get_loss("mse"), MeanSquaredError)
    assert get_loss(TrainSpec(loss={"huber": {"delta": 2.0}}).loss).delta == 2.0


def test_bad_shapes_are_reported():
    with pytest.raises(ValueError, match="sparse_categorical"):
        CategoricalCrossentropy()(np.array([1, 2]), np.ones((2, 3)) / 3)
    with pytest.raises(ValueError, match="labels must lie"):
        SparseCategoricalCrossentropy()(np.array([1, 3]), np.ones((2, 3)) / 3)
    with pytest.raises(ValueError, match="do not match"):
        MeanSquaredError()(np.ones((2, 3)), np.ones((2, 4)))


# -- parity with Keras 3 (torch backend) --------------------------------------------------


def _keras_loss(keras, loss):
    L = keras.losses
    if isinstance(loss, CategoricalCrossentropy):
        return L.CategoricalCrossentropy(from_logits=loss.from_logits,
                                         label_smoothing=loss.label_smoothing)
    if isinstance(loss, SparseCategoricalCrossentropy):
        return L.SparseCategoricalCrossentropy(from_logits=loss.from_logits)
    if isinstance(loss, BinaryCrossentropy):
        return L.BinaryCrossentropy(from_logits=loss.from_logits,
                                    label_smoothing=loss.label_smoothing)
    if isinstance(loss, Huber):
        return L.Huber(delta=loss.delta)
    return {MeanSquaredError: L.MeanSquaredError, MeanAbsoluteError: L.MeanAbsoluteError}[type(loss)]()


@pytest.mark.parametrize("name,loss,y_true,y_pred", CASES, ids=[c[0] for c in CASES])
def test_matches_keras(keras, name, loss, y_true, y_pred):
    import torch
    Y = y_pred.astype(np.float32)
    value, dY = loss(y_true, Y)
    Yt = torch.tensor(Y, requires_grad=True)
    Tt = torch.tensor(np.asarray(y_true)) if np.asarray(y_true).dtype.kind == "i" \
        else torch.tensor(np.asarray(y_true, np.float32))
    ref = _keras_loss(keras, loss)(Tt, Yt)
    ref.backward()
    assert value == pytest.approx(float(ref.detach()), rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(dY, Yt.grad.numpy(), rtol=1e-4, atol=1e-6)


# -- regularizers ---------------------------------------------------------------------------

def test_penalty_value_and_gradient():
    from layerc.train.regularizers import penalty
    W = np.random.default_rng(0).standard_normal((4, 3))
    for l1, l2 in [(0.01, 0.0), (0.0, 0.01), (0.3, 0.2)]:
        value, dW = penalty(W, l1, l2)
        assert value == pytest.approx(l1 * np.abs(W).sum() + l2 * (W ** 2).sum())
        num = _numeric(lambda: penalty(W, l1, l2)[0], W, 1e-6, _picks(W, 12, np.random.default_rng(1)))
        for idx, g in num.items():
            np.testing.assert_allclose(dW[idx], g, rtol=1e-6, atol=1e-9)
    grad = np.ones_like(W)
    value, out = penalty(W, 0.0, 0.5, grad=grad)
    assert out is grad and np.allclose(grad, 1 + W)
    W32 = W.astype(np.float32)
    assert penalty(W32, 0.1, 0.1)[1].dtype == np.float32


def test_penalty_matches_keras(keras):
    import torch
    from layerc.train.regularizers import penalty
    W = np.random.default_rng(2).standard_normal((5, 2)).astype(np.float32)
    Wt = torch.tensor(W, requires_grad=True)
    ref = keras.regularizers.L1L2(l1=0.02, l2=0.03)(Wt)
    ref.backward()
    value, dW = penalty(W, 0.02, 0.03)
    assert value == pytest.approx(float(ref.detach()), rel=1e-5)
    np.testing.assert_allclose(dW, Wt.grad.numpy(), rtol=1e-5)


import numpy as np
import pytest

from layerc.spec.train import TrainSpec
from layerc.train.metrics import (AUC, Accuracy, BinaryAccuracy, CategoricalAccuracy,
                                  SparseCategoricalAccuracy, make_metrics)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
C = 5


def _batches(kind, seed=0, n_batches=3, n=17):
    """Random (y_true, y_pred) batches of the shapes each metric family reads."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        if kind in ("binary", "binary_flat"):
            shape = (n, 1) if kind == "binary" else (n, 3)
            out.append((rng.integers(0, 2, shape).astype(np.float32),
                        rng.uniform(0, 1, shape).astype(np.float32)))
            continue
        Z = rng.standard_normal((n, C))
        P = (np.exp(Z) / np.exp(Z).sum(-1, keepdims=True)).astype(np.float32)
        labels = rng.integers(0, C, n)
        if kind == "sparse":
            out.append((labels, P))
        elif kind == "sparse_col":
            out.append((labels[:, None], P))
        elif kind == "onehot":
            out.append((np.eye(C, dtype=np.float32)[labels], P))
        else:  # regression
            out.append((rng.standard_normal((n, 2)).astype(np.float32),
                        rng.standard_normal((n, 2)).astype(np.float32)))
    return out


def _ours(name, batches, loss=None, **args):
    spec = TrainSpec(loss=loss or "mse", metrics=[{"type": name, **args}])
    m, = make_metrics(spec.metrics, spec.loss)
    for t, p in batches:
        m.update(t, p)
    return m


def test_literal_values():
    m = _ours("accuracy", [(np.array([0, 1, 2]), np.eye(3)[[0, 1, 1]])],
              loss="sparse_categorical_crossentropy")
    assert m.name == "accuracy" and m.result() == pytest.approx(2 / 3)
    m.reset()
    assert m.result() == 0.0
    m = _ours("precision", [(np.array([[1.0], [0.0], [1.0]]), np.array([[0.9], [0.8], [0.1]]))])
    assert m.result() == pytest.approx(0.5)
    m = _ours("recall", [(np.array([[1.0], [0.0], [1.0]]), np.array([[0.9], [0.8], [0.1]]))])
    assert m.result() == pytest.approx(0.5)
    m = _ours("rmse", [(np.array([[0.0], [0.0]]), np.array([[3.0], [4.0]]))])
    assert m.result() == pytest.approx(np.sqrt(12.5))
    m = _ours("top_k_accuracy", [(np.array([2, 0]), np.array([[0.1, 0.5, 0.4], [0.1, 0.5, 0.4]]))], k=2)
    assert m.result() == pytest.approx(0.5)
    perfect = _ours("auc", [(np.array([[0.0], [1.0], [0.0], [1.0]]), np.array([[0.1], [0.9], [0.3], [0.6]]))])
    assert perfect.result() == pytest.approx(1.0)


def test_accuracy_follows_the_loss():
    def kind(loss):
        return type(make_metrics(["accuracy"], loss)[0])
    assert kind("binary_crossentropy") is BinaryAccuracy
    assert kind("categorical_crossentropy") is CategoricalAccuracy
    assert kind("sparse_categorical_crossentropy") is SparseCategoricalAccuracy
    assert kind("mse") is Accuracy
    spec = TrainSpec(loss={"type": "sparse_categorical_crossentropy", "from_logits": True},
                     metrics=["acc", "auc", {"top_k_accuracy": {"k": 3}}])
    ms = make_metrics(spec.metrics, spec.loss)
    assert [m.name for m in ms] == ["accuracy", "auc", "top_k_accuracy"]
    assert isinstance(ms[0], SparseCategoricalAccuracy) and ms[2].k == 3


def test_shape_rule_for_other_losses():
    m = make_metrics(["accuracy"], "mse")[0]
    m.update(np.array([[1.0], [0.0]]), np.array([[0.7], [0.7]]))
    assert m.result() == pytest.approx(0.5)  # binary: one output column


def test_auc_is_close_to_exact_roc_auc():
    rng = np.random.default_rng(5)
    t = rng.integers(0, 2, 400)
    p = np.clip(t * 0.3 + rng.uniform(0, 0.7, 400), 0, 1)
    m = AUC()
    m.update(t[:, None], p[:, None])
    pos, neg = p[t == 1], p[t == 0]
    exact = ((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())
    assert m.result() == pytest.approx(exact, abs=5e-3)


# (our name, our args, loss, data kind, keras metric factory)
PARITY = [
    ("accuracy", {}, "binary_crossentropy", "binary", lambda M: M.BinaryAccuracy()),
    ("binary_accuracy", {}, None, "binary_flat", lambda M: M.BinaryAccuracy()),
    ("accuracy", {}, "categorical_crossentropy", "onehot", lambda M: M.CategoricalAccuracy()),
    ("accuracy", {}, "sparse_categorical_crossentropy", "sparse",
     lambda M: M.SparseCategoricalAccuracy()),
    ("sparse_categorical_accuracy", {}, None, "sparse_col", lambda M: M.SparseCategoricalAccuracy()),
    ("top_k_accuracy", {}, None, "sparse", lambda M: M.SparseTopKCategoricalAccuracy()),
    ("top_k_accuracy", {"k": 2}, None, "onehot", lambda M: M.TopKCategoricalAccuracy(k=2)),
    ("precision", {}, None, "binary", lambda M: M.Precision()),
    ("precision", {"thresholds": 0.3}, None, "binary_flat", lambda M: M.Precision(thresholds=0.3)),
    ("recall", {}, None, "binary_flat", lambda M: M.Recall()),
    ("auc", {}, None, "binary", lambda M: M.AUC()),
    ("auc", {"num_thresholds": 20}, None, "binary_flat", lambda M: M.AUC(num_thresholds=20)),
    ("mae", {}, None, "regression", lambda M: M.MeanAbsoluteError()),
    ("mse", {}, None, "regression", lambda M: M.MeanSquaredError()),
    ("rmse", {}, None, "regression", lambda M: M.RootMeanSquaredError()),
]


@pytest.mark.parametrize("name,args,loss,kind,factory", PARITY,
                         ids=[f"{p[0]}-{p[3]}" for p in PARITY])
def test_matches_keras(keras, name, args, loss, kind, factory):
    batches = _batches(kind, seed=len(name) + len(kind))
    ours = _ours(name, batches, loss, **args)
    ref = factory(keras.metrics)
    for t, p in batches:
        ref.update_state(t, p)
    assert ours.result() == pytest.approx(float(keras.ops.convert_to_numpy(ref.result())),
                                          rel=1e-5, abs=1e-6)

"""Models with several inputs and outputs through the Python API: fit, evaluate, predict."""
import numpy as np
import pytest

import layerc
from layerc.model import InputError

SPEC = """\
name: two_heads
seed: 3
inputs:
  a: {shape: [4]}
  b: {shape: [3]}
layers:
  - Dense: {name: da, units: 8, activation: relu, inputs: a}
  - Dense: {name: db, units: 8, activation: relu, inputs: b}
  - Concatenate: {name: merged, inputs: [da, db]}
  - Dense: {name: kind, units: 3, activation: softmax, inputs: merged}
  - Dense: {name: size, units: 1, inputs: merged}
outputs: [kind, size]
train:
  optimizer: {adam: {learning_rate: 0.01}}
  loss: {kind: sparse_categorical_crossentropy, size: mse}
  loss_weights: {kind: 1.0, size: 0.5}
  metrics: {kind: [accuracy], size: [mae]}
  batch_size: 16
  epochs: 4
"""


def two_heads(text=SPEC, **replace):
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return layerc.build(layerc.parse_spec(text))


def data(n=120, seed=0):
    r = np.random.default_rng(seed)
    a = r.normal(size=(n, 4)).astype("float32")
    b = r.normal(size=(n, 3)).astype("float32")
    kind = (a[:, 0] + b[:, 0] > 0).astype(np.int64) + (a[:, 1] > 1)
    size = (a.sum(1) - b.sum(1))[:, None].astype("float32")
    return {"a": a, "b": b}, {"kind": kind, "size": size}


def direct(model, x, y, w_size=0.5):
    """Loss and metrics computed by hand from the model's predictions."""
    p_kind, p_size = model.predict(x)
    q = np.clip(p_kind / p_kind.sum(1, keepdims=True), 1e-7, 1 - 1e-7)
    ce = float(np.mean(-np.log(q[np.arange(len(q)), y["kind"]])))
    mse = float(np.mean((p_size - y["size"]) ** 2))
    return {"kind_loss": ce, "size_loss": w_size * mse, "loss": ce + w_size * mse,
            "kind_accuracy": float(np.mean(p_kind.argmax(1) == y["kind"])),
            "size_mae": float(np.mean(np.abs(p_size - y["size"])))}


def test_fit_with_dicts_logs_per_output_metrics():
    model = two_heads()
    x, y = data()
    history = model.fit(x, y, verbose=0, validation_split=0.25)
    assert {"loss", "kind_loss", "size_loss", "kind_accuracy", "size_mae", "val_loss", "val_kind_accuracy",
            "val_size_mae"} <= set(history)
    assert history["loss"][-1] < history["loss"][0]
    assert history["loss"][-1] == pytest.approx(history["kind_loss"][-1] + history["size_loss"][-1])
    # the validation figures equal what the final weights' predictions give on the last quarter
    val_x = {k: v[90:] for k, v in x.items()}
    val_y = {k: v[90:] for k, v in y.items()}
    want = direct(model, val_x, val_y)
    for key, value in want.items():
        assert history[f"val_{key}"][-1] == pytest.approx(value, rel=1e-5), key


def test_evaluate_and_predict_one_result_per_output():
    model = two_heads()
    x, y = data()
    model.fit(x, y, verbose=0)
    result = model.evaluate(x, y)
    want = direct(model, x, y)
    assert set(result) == set(want)
    for key, value in want.items():
        assert result[key] == pytest.approx(value, rel=1e-5), key
    out = model.predict(x)
    assert isinstance(out, list) and [o.shape for o in out] == [(120, 3), (120, 1)]


def test_lists_in_order_equal_dicts():
    x, y = data()
    by_name = two_heads()
    by_name.fit(x, y, verbose=0)
    in_order = two_heads()
    in_order.fit([x["a"], x["b"]], [y["kind"], y["size"]], verbose=0)
    for w1, w2 in zip(by_name.get_weights(), in_order.get_weights()):
        assert np.array_equal(w1, w2)
    assert by_name.evaluate(x, y) == in_order.evaluate([x["a"], x["b"]], [y["kind"], y["size"]])


def test_a_zero_loss_weight_stops_that_head_learning():
    model = two_heads(**{"size: 0.5": "size: 0.0"})
    before = {k: v.copy() for k, v in model.named_weights().items()}
    x, y = data()
    model.fit(x, y, verbose=0)
    after = model.named_weights()
    assert np.array_equal(after["size/kernel"], before["size/kernel"])
    assert not np.array_equal(after["kind/kernel"], before["kind/kernel"])


def test_one_loss_applies_to_every_output():
    model = two_heads(**{"  loss: {kind: sparse_categorical_crossentropy, size: mse}\n": "  loss: mse\n",
                         "units: 3, activation: softmax": "units: 1",
                         "  loss_weights: {kind: 1.0, size: 0.5}\n": "",
                         "{kind: [accuracy], size: [mae]}": "[mae]"})
    x, y = data()
    y["kind"] = y["kind"][:, None].astype("float32")
    result = model.evaluate(x, y)
    p_kind, p_size = model.predict(x)
    mse = [float(np.mean((p - t) ** 2)) for p, t in ((p_kind, y["kind"]), (p_size, y["size"]))]
    assert result["loss"] == pytest.approx(sum(mse), rel=1e-5)
    assert result["kind_mae"] == pytest.approx(float(np.mean(np.abs(p_kind - y["kind"]))), rel=1e-5)
    assert result["size_mae"] == pytest.approx(float(np.mean(np.abs(p_size - y["size"]))), rel=1e-5)


def test_a_missing_input_or_output_is_named():
    model = two_heads()
    x, y = data()
    with pytest.raises(InputError, match="input 'b' is missing"):
        model.fit({"a": x["a"]}, y, verbose=0)
    with pytest.raises(InputError, match="no input 'c'"):
        model.predict({**x, "c": x["a"]})
    with pytest.raises(InputError, match="output 'size' is missing"):
        model.evaluate(x, {"kind": y["kind"]})


def located(text):
    with pytest.raises(layerc.SpecError) as e:
        layerc.build(layerc.parse_spec(text, "two.yaml"))
    (d,) = e.value.diagnostics
    return f"{d.file}:{d.line}:{d.col}: {d.message}"


def test_an_output_without_a_loss_is_a_located_error():
    text = SPEC.replace("{kind: sparse_categorical_crossentropy, size: mse}", "{kind: sparse_categorical_crossentropy}")
    assert located(text) == "two.yaml:15:9: output 'size' has no loss"


def test_a_mapping_naming_no_output_is_a_located_error():
    text = SPEC.replace("size: 0.5}", "sise: 0.5}")
    assert located(text) == "two.yaml:16:29: `train.loss_weights` names 'sise', which is no model output"
    text = SPEC.replace("size: [mae]", "siz: [mae]")
    assert located(text) == "two.yaml:17:31: `train.metrics` names 'siz', which is no model output"


def test_a_bad_loss_in_a_mapping_is_located():
    text = SPEC.replace("size: mse}", "size: msq}")
    assert located(text).startswith("two.yaml:15:55: train.loss.size: unknown type 'msq'")

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


# -- from a data: section (an .npz with one array per input and output) ---------------------

import csv  # noqa: E402
import json  # noqa: E402

from layerc import jobs  # noqa: E402
from layerc.data import DataError  # noqa: E402
from layerc.runs import load_arrays  # noqa: E402
from layerc.train.callbacks import Callback  # noqa: E402

DATA = """\
data:
  format: npz
  train: two.npz
  validation_split: 0.2
  test_split: 0.1
"""


@pytest.fixture
def two_npz(tmp_path):
    """two.yaml with its data, two.npz (200 samples); returns a writer(text replacements, arrays)."""
    x, y = data(200)
    arrays = {**x, **y}

    def write(replace=None, **changed):
        np.savez(tmp_path / "two.npz", **{k: v for k, v in {**arrays, **changed}.items() if v is not None})
        text = SPEC + DATA
        for old, new in (replace or {}).items():
            assert old in text
            text = text.replace(old, new)
        (tmp_path / "two.yaml").write_text(text)
        return tmp_path / "two.yaml"

    return write


def test_train_from_the_data_section_logs_every_output(two_npz, tmp_path):
    result = jobs.train(two_npz(), run_dir=tmp_path / "run")
    rows = list(csv.DictReader(open(result.run_dir / "metrics.csv")))
    assert len(rows) == 4
    assert {"loss", "kind_loss", "size_loss", "kind_accuracy", "size_mae", "val_kind_accuracy",
            "val_size_mae"} <= set(rows[0])
    info = json.loads((result.run_dir / "run.json").read_text())
    assert set(info["test_metrics"]) == {"loss", "kind_loss", "size_loss", "kind_accuracy", "size_mae"}
    # the logged test figures are the trained model's predictions scored by hand
    spec, model, fitted = jobs.load_trained(result.run_dir, None)
    test = jobs.load_dataset(spec, model).test
    x, y = dict(zip(model.input_names, test[0])), dict(zip(model.output_names, test[1]))
    for key, value in direct(model, x, y).items():
        assert info["test_metrics"][key] == pytest.approx(value, rel=1e-5), key
    result = jobs.evaluate(result.run_dir)
    assert result["split"] == "test" and result["samples"] == 20
    assert result["kind_accuracy"] == pytest.approx(info["test_metrics"]["kind_accuracy"])


def test_splits_over_the_arrays_are_seeded_and_aligned(two_npz, tmp_path):
    spec = layerc.load_spec(two_npz())
    model = layerc.build(spec)
    first, again = jobs.load_dataset(spec, model), jobs.load_dataset(spec, model)
    assert [len(p[0][0]) for p in (first.train, first.validation, first.test)] == [144, 36, 20]
    for part, same in zip((first.train, first.validation, first.test), (again.train, again.validation, again.test)):
        for a, b in zip([*part[0], *part[1]], [*same[0], *same[1]]):
            assert np.array_equal(a, b)
    # each sample's arrays stay together: the targets are still the function of its inputs
    (a, b), (kind, size) = first.train
    assert np.allclose(size[:, 0], a.sum(1) - b.sum(1), atol=1e-5)
    assert np.array_equal(kind, (a[:, 0] + b[:, 0] > 0).astype(int) + (a[:, 1] > 1))


def test_x_keys_and_y_keys_name_the_files_arrays(two_npz, tmp_path):
    x, y = data(200)
    path = two_npz({"  train: two.npz\n": "  train: two.npz\n  x_keys: {a: left}\n  y_keys: {kind: cls}\n"},
                   a=None, kind=None, left=x["a"], cls=y["kind"])
    assert jobs.train(path, run_dir=tmp_path / "run").history


def data_error(path, tmp_path):
    with pytest.raises(DataError) as e:
        jobs.train(path, run_dir=tmp_path / "bad")
    return str(e.value)


def test_a_missing_input_array_is_named(two_npz, tmp_path):
    assert data_error(two_npz(b=None), tmp_path) == \
        f"{tmp_path}/two.npz: has no array 'b' for input 'b' (it has: a, kind, size)"


def test_an_output_without_data_is_named(two_npz, tmp_path):
    assert data_error(two_npz(size=None), tmp_path) == \
        f"{tmp_path}/two.npz: has no array 'size' for output 'size' (it has: a, b, kind)"


def test_wrong_shapes_are_named(two_npz, tmp_path):
    assert data_error(two_npz(b=np.zeros((200, 5), "float32")), tmp_path) == (
        f"train input 'b' ({tmp_path}/two.npz[b]): each sample has shape (5,) (5 values) but the "
        "model's input shape is (3,)")
    assert "train output 'size'" in data_error(two_npz(size=np.zeros((200, 2), "float32")), tmp_path)


def test_mismatched_sample_counts_are_named(two_npz, tmp_path):
    x, _ = data(200)
    assert data_error(two_npz(b=x["b"][:150]), tmp_path) == \
        f"{tmp_path}/two.npz: the arrays hold different numbers of samples (a 200, b 150, kind 200, size 200)"


def test_keys_naming_no_input_and_other_formats_are_located(two_npz, tmp_path):
    path = two_npz({"  train: two.npz\n": "  train: two.npz\n  x_keys: {c: left}\n"})
    with pytest.raises(layerc.SpecError) as e:
        layerc.build(layerc.load_spec(path))
    (d,) = e.value.diagnostics
    assert (d.line, d.col, d.message) == (23, 12, "`data.x_keys` names 'c', which is no model input")
    path = two_npz({"format: npz": "format: text"})  # (csv names columns by input: tests/data/test_csv_multi_io.py)
    with pytest.raises(layerc.SpecError) as e:
        jobs.train(path, run_dir=tmp_path / "text")
    (d,) = e.value.diagnostics
    assert (d.line, d.col) == (21, 11) and "several inputs or outputs reads `format: npz`" in d.message


class StopAfter(Callback):
    def __init__(self, batches):
        self.left = batches

    def on_batch_end(self, trainer, step, logs):
        self.left -= 1
        if self.left == 0:
            trainer.stop_requested = True


@pytest.mark.parametrize("stop_after", [5, 9, 21])
def test_interrupted_then_resumed_is_bit_exact(two_npz, tmp_path, stop_after):
    spec = two_npz()
    whole = jobs.train(spec, run_dir=tmp_path / "whole")
    part = jobs.train(spec, run_dir=tmp_path / "part", callbacks=[StopAfter(stop_after)])
    assert part.interrupted
    done = jobs.train(resume=part.run_dir)
    a, b = load_arrays(whole.run_dir / "weights.npz"), load_arrays(done.run_dir / "weights.npz")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert (whole.run_dir / "metrics.csv").read_text().splitlines()[0] == \
        (done.run_dir / "metrics.csv").read_text().splitlines()[0]
    rows_a = list(csv.DictReader(open(whole.run_dir / "metrics.csv")))
    rows_b = list(csv.DictReader(open(done.run_dir / "metrics.csv")))
    for ra, rb in zip(rows_a, rows_b):
        assert {k: v for k, v in ra.items() if k != "seconds"} == {k: v for k, v in rb.items() if k != "seconds"}


def test_a_single_output_may_name_its_loss_and_trains_as_before(tiny_spec, tmp_path):
    plain = tiny_spec(epochs=2)
    named = tmp_path / "named.yaml"
    named.write_text(plain.read_text().replace("loss: sparse_categorical_crossentropy",
                                               "loss: {dense_1: sparse_categorical_crossentropy}")
                     .replace("metrics: [accuracy]", "metrics: {dense_1: [accuracy]}"))
    a = jobs.train(plain, run_dir=tmp_path / "a")
    b = jobs.train(named, run_dir=tmp_path / "b")
    wa, wb = load_arrays(a.run_dir / "weights.npz"), load_arrays(b.run_dir / "weights.npz")
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert [r["accuracy"] for r in a.history] == [r["accuracy"] for r in b.history]
    assert jobs.evaluate(b.run_dir, report=True)["accuracy"] == jobs.evaluate(a.run_dir)["accuracy"]

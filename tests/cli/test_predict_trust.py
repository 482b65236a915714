"""`layerc predict` / `evaluate` never answer wrongly in silence (issue 18): inputs checked
against the training data's raw form, the fitted state required, run directories, and a
predictions CSV with a header on stdout with nothing else."""
import io
import json
import shutil

import numpy as np
import pytest
from layerc import jobs
from layerc.data import DataError, prepare_inputs

PIXELS = """\
name: pixels
seed: 1
input: {shape: [12]}
layers:
  - Dense: {units: 8, activation: relu}
  - Dense: {units: 3, activation: softmax}
data: {format: npz, train: pixels.npz, rescale: 0.00392156862745098, test_split: 0.2}
train: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy], epochs: 2, batch_size: 32}
"""

SMS = """\
name: sms
seed: 1
input: {shape: [8]}
layers:
  - Embedding: {input_dim: 50, output_dim: 4}
  - GlobalAveragePooling1D
  - Dense: {units: 1, activation: sigmoid}
data: {format: text, train: sms.txt, labels: [ham, spam], vocab_size: 50, max_length: 8, test_split: 0.25}
train: {optimizer: adam, loss: binary_crossentropy, metrics: [accuracy], epochs: 1}
"""


@pytest.fixture(scope="module")
def pixels(tmp_path_factory):
    """A run trained on uint8 'pixels' 0..255 rescaled by 1/255; returns (spec, run dir, raw x)."""
    tmp = tmp_path_factory.mktemp("pixels")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (200, 12), dtype=np.uint8)
    y = (x[:, 0] > 128).astype(np.int64) + (x[:, 1] > 200)
    np.savez(tmp / "pixels.npz", x=x, y=y)
    (tmp / "pixels.yaml").write_text(PIXELS)
    run_dir = jobs.train(tmp / "pixels.yaml", run_dir=tmp / "run").run_dir
    new = rng.integers(0, 256, (6, 12), dtype=np.uint8)
    np.save(tmp / "raw.npy", new)
    np.save(tmp / "prepared.npy", new.astype(np.float32) / 255)
    np.save(tmp / "whole_floats.npy", new.astype(np.float64))
    return tmp / "pixels.yaml", run_dir, new


@pytest.fixture(scope="module")
def sms(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sms")
    rng = np.random.default_rng(0)
    spam, ham = ["win", "free", "prize", "cash", "now"], ["see", "you", "soon", "at", "home"]
    lines = [f"{k}\t{' '.join(rng.choice(spam if k == 'spam' else ham, 5))}"
             for k in rng.choice(["ham", "spam"], 80)]
    (tmp / "sms.txt").write_text("\n".join(lines) + "\n")
    (tmp / "sms.yaml").write_text(SMS)
    return tmp / "sms.yaml", jobs.train(tmp / "sms.yaml", run_dir=tmp / "run").run_dir


def rows(csv_text):
    lines = csv_text.strip().splitlines()
    return lines[0].split(","), [l.split(",") for l in lines[1:]]


# -- point 1: inputs recognised against the raw form, or refused -------------------------------

def test_raw_form_is_recorded_in_the_fitted_state(run, pixels):
    _, run_dir, _ = pixels
    raw = json.loads((run_dir / "data.json").read_text())["raw_inputs"]
    assert raw["dtype"] == "uint8" and raw["min"] >= 0 and raw["max"] <= 255


def test_already_prepared_inputs_are_refused_naming_the_flag(run, pixels):
    spec, run_dir, _ = pixels
    code, out, err = run("predict", spec, "--weights", run_dir / "weights.npz", "--input",
                         spec.parent / "prepared.npy")
    assert code == 1 and out == "", out
    assert "look prepared already" in err and "uint8" in err and "--prepared" in err, err


def test_prepared_flag_and_whole_floats_give_the_raw_answer(run, pixels):
    spec, run_dir, _ = pixels
    w = run_dir / "weights.npz"
    answers = {}
    for name, extra in (("raw", ()), ("whole_floats", ()), ("prepared", ("--prepared",))):
        code, out, err = run("predict", spec, "--weights", w, "--input", spec.parent / f"{name}.npy", *extra)
        assert code == 0, err
        answers[name] = rows(out)
    assert answers["raw"] == answers["whole_floats"]
    for a, b in zip(answers["raw"][1], answers["prepared"][1]):
        assert a[0] == b[0] and np.allclose(np.float64(a[1:]), np.float64(b[1:]), atol=1e-6)


def test_older_runs_without_raw_inputs_still_work(run, pixels, tmp_path):
    spec, run_dir, _ = pixels
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    state = json.loads((old / "data.json").read_text())
    del state["raw_inputs"]
    (old / "data.json").write_text(json.dumps(state))
    code, out, err = run("predict", old, "--input", spec.parent / "raw.npy")
    assert code == 0 and len(rows(out)[1]) == 6, err
    code, out, err = run("evaluate", spec, "--weights", old / "weights.npz", "--format", "json")
    assert code == 0 and "accuracy" in out, err
    # an older MNIST run: the built-in's raw form (uint8 0..255) is known without the field
    mnist = {"format": "idx", "dataset": "mnist", "rescale": 1 / 255, "standardize": None,
             "x_dtype": "float32", "sample_shape": [28, 28]}
    with pytest.raises(DataError, match="--prepared"):
        prepare_inputs(np.full((2, 28, 28), 0.5, np.float32), None, mnist, (28, 28, 1))
    assert prepare_inputs(np.full((2, 28, 28), 255, np.uint8), None, mnist, (28, 28, 1)).max() == 1


# -- point 2: the fitted state is required ------------------------------------------------------

def test_weights_without_data_json_are_refused_then_take_data_state(run, pixels, tmp_path):
    spec, run_dir, _ = pixels
    shutil.copy(run_dir / "weights.npz", tmp_path / "weights.npz")
    for cmd in (("predict", "--input", spec.parent / "raw.npy"), ("evaluate",)):
        code, out, err = run(cmd[0], spec, "--weights", tmp_path / "weights.npz", *cmd[1:])
        assert code == 1 and str(tmp_path / "data.json") in err and "--data-state" in err, err
        code, out, err = run(cmd[0], spec, "--weights", tmp_path / "weights.npz", *cmd[1:],
                             "--data-state", run_dir / "data.json")
        assert code == 0, err
    code, out, err = run("evaluate", spec, "--weights", tmp_path / "weights.npz", "--data-state", tmp_path / "no.json")
    assert code == 1 and "no.json" in err and "not found" in err


# -- point 8: a run directory in place of SPEC + --weights --------------------------------------

def test_run_directory_in_place_of_spec_and_weights(run, pixels):
    spec, run_dir, _ = pixels
    code, out, err = run("evaluate", run_dir, "--format", "json")
    assert code == 0 and json.loads(out)["samples"] == 40, err
    code, out, err = run("predict", run_dir, "--input", spec.parent / "raw.npy")
    assert code == 0 and len(rows(out)[1]) == 6, err
    assert jobs.resolve_run(run_dir) == (run_dir / "spec.yaml", run_dir / "weights.npz", run_dir / "data.json")


def test_spec_without_weights_and_keras_files_get_clear_errors(run, pixels, tmp_path):
    spec, run_dir, _ = pixels
    code, out, err = run("evaluate", spec)
    assert code == 1 and "--weights" in err and "run directory" in err and "Traceback" not in err, err
    (tmp_path / "model.keras").write_bytes(b"PK\x03\x04")
    code, out, err = run("predict", spec, "--weights", tmp_path / "model.keras", "--input", spec.parent / "raw.npy")
    assert code == 1 and "Keras file" in err and "import" in err, err
    code, out, err = run("evaluate", tmp_path)
    assert code == 1 and "not a layerc run directory" in err, err


# -- point 9: the predictions table, stdin and stdout -------------------------------------------

def test_predictions_csv_names_classes_and_stdout_holds_only_results(run, sms, tmp_path):
    spec, run_dir = sms
    (tmp_path / "new.txt").write_text("message\nwin free cash now\nsee you at home\n")
    code, out, err = run("predict", run_dir, "--input", tmp_path / "new.txt")
    assert code == 0, err
    header, body = rows(out)
    assert header == ["predicted", "p_ham", "p_spam"]
    assert len(body) == 2  # the header line `message` is no sample
    for r in body:
        assert r[0] in ("ham", "spam") and abs(float(r[1]) + float(r[2]) - 1) < 1e-6
    code, out2, err = run("predict", run_dir, "--input", "-", "--output", "-",
                          input="win free cash now\nsee you at home\n")
    assert code == 0 and out2 == out, err
    code, out3, err = run("predict", run_dir, "--input", tmp_path / "new.txt", "--output", tmp_path / "p.csv")
    assert code == 0 and out3 == "" and "wrote 2 predictions" in err
    assert (tmp_path / "p.csv").read_text() == out


def test_npy_on_stdin_and_digit_names(run, pixels):
    spec, run_dir, new = pixels
    buf = io.BytesIO()
    np.save(buf, new)
    code, out, err = run("predict", run_dir, "--input", "-", input=buf.getvalue())
    assert code == 0, err
    header, body = rows(out)
    assert header == ["predicted", "p_0", "p_1", "p_2"] and len(body) == 6
    assert all(r[0] in ("0", "1", "2") for r in body)


def test_regression_columns_are_named_after_the_output(run, tmp_path):
    (tmp_path / "ts.yaml").write_text("""\
name: ts
input: {shape: [12]}
layers: [{Dense: {units: 1}}]
data: {dataset: airline_passengers}
train: {optimizer: adam, loss: mse, epochs: 1}
""")
    run_dir = jobs.train(tmp_path / "ts.yaml", run_dir=tmp_path / "run").run_dir
    (tmp_path / "in.txt").write_text("\n".join(str(v) for v in range(100, 112)) + "\n")
    code, out, err = run("predict", run_dir, "--input", tmp_path / "in.txt")
    assert code == 0, err
    header, body = rows(out)
    assert header == ["Passengers"] and len(body) == 1


def test_csv_inputs_with_an_unknown_header_line_are_not_a_sample(run):
    fitted = {"format": "csv", "rescale": None, "standardize": None, "x_dtype": "float32",
              "csv": {"columns": None, "width": 3, "features": [0, 1], "delimiter": ",", "header": False,
                      "missing": "error", "fill_value": 0.0}}
    x = prepare_inputs(["a,b", "1,2", "3,4"], None, fitted, (2,))
    np.testing.assert_array_equal(x, [[1, 2], [3, 4]])


# -- point 15 (our side): the weights are checked before any data is read ------------------------

def test_weights_are_checked_before_the_data_is_loaded(run, pixels, tmp_path, monkeypatch):
    spec, run_dir, _ = pixels
    w = dict(np.load(run_dir / "weights.npz"))
    w[next(iter(w))] = np.zeros((1, 1), np.float32)
    np.savez(tmp_path / "bad.npz", **w)
    shutil.copy(run_dir / "data.json", tmp_path / "data.json")

    def no_data(*a, **k):
        raise AssertionError("data loaded before the weights were checked")

    monkeypatch.setattr(jobs, "load_dataset", no_data)
    code, out, err = run("evaluate", spec, "--weights", tmp_path / "bad.npz")
    assert code == 1 and "bad.npz" in err and "(1, 1)" in err, err


def test_empty_stdin_and_a_bad_output_name_are_one_clear_line(run, pixels, tmp_path):
    spec, run_dir, _ = pixels
    code, out, err = run("predict", run_dir, "--input", "-", input=b"")
    assert code == 1 and "holds no inputs" in err and out == "", err
    code, out, err = run("predict", run_dir, "--input", spec.parent / "raw.npy", "--output", tmp_path / "p.txt")
    assert code == 1 and ".npy or .csv" in err and not (tmp_path / "p.txt").exists(), err

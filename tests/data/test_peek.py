"""Dataset-aware checks in `validate` (issue 16, point 2): the model against the data's shapes,
classes and vocabulary, from headers and settings alone, as located errors."""
from __future__ import annotations

import gzip
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from layerc import jobs
from layerc.check import check_file
from layerc.cli import app
from layerc.data import arrays, csv as csv_mod, idx, sources, text
from layerc.spec.diagnostics import SpecError

from .helpers import idx_bytes

MODEL = {  # input line 2, the output Dense's `units` on line 5, col 20
    "images": "input: {shape: %s}\nlayers:\n  - Flatten\n  - Dense: {units: %d, activation: softmax}\n",
}


def _spec(tmp_path, body: str, name="spec.yaml"):
    path = tmp_path / name
    path.write_text("layerc: 1\n" + textwrap.dedent(body))
    return path


def _errors(tmp_path, body: str) -> list[str]:
    r = check_file(_spec(tmp_path, body))
    return [d.format() for d in r.diagnostics]


def _images(shape="[28, 28, 1]", units=10, data="{dataset: mnist}", loss="sparse_categorical_crossentropy"):
    return (MODEL["images"] % (shape, units)
            + f"data: {data}\ntrain: {{optimizer: adam, loss: {loss}}}\n")


TEXT_MODEL = """\
input: {{shape: [{length}], dtype: int32}}
layers:
  - Embedding: {{input_dim: {dim}, output_dim: 8}}
  - LSTM: {{units: 4}}
  - Dense: {{units: {units}, activation: {act}}}
data: {data}
train: {{optimizer: adam, loss: {loss}}}
"""


def _text(length=80, dim=10000, units=1, act="sigmoid", data="{dataset: sms_spam}", loss="binary_crossentropy"):
    return TEXT_MODEL.format(length=length, dim=dim, units=units, act=act, data=data, loss=loss)


SERIES_MODEL = """\
input: {{shape: {shape}}}
layers:
  - LSTM: {{units: 4}}
  - Dense: {{units: {units}}}
data: {{dataset: {name}}}
train: {{optimizer: adam, loss: {loss}}}
"""


def _series(shape="[30, 1]", units=1, name="melbourne_temperatures", loss="mean_squared_error"):
    return SERIES_MODEL.format(shape=shape, units=units, name=name, loss=loss)


# ---- built-in datasets -----------------------------------------------------------------------

def test_mnist_fits_the_seed_cnn_and_any_shape_of_784_values(tmp_path):
    assert _errors(tmp_path, _images()) == []
    assert _errors(tmp_path, _images("[784]")) == []
    assert _errors(tmp_path, _images("[28, 28]")) == []


def test_mnist_input_shape_is_located_at_the_input(tmp_path):
    errs = _errors(tmp_path, _images("[28, 28, 3]"))
    assert errs == [f"{tmp_path}/spec.yaml:2:16: error: dataset mnist: each sample has shape (28, 28) (784 values) "
                    "but the model's input shape is (28, 28, 3) (give input shape [28, 28], or another of 784 values)"]


def test_first_layer_input_shape_is_where_the_error_points(tmp_path):
    body = ("layers:\n  - Flatten: {input_shape: [32, 32]}\n  - Dense: {units: 10, activation: softmax}\n"
            "data: {dataset: mnist}\ntrain: {optimizer: adam, loss: sparse_categorical_crossentropy}\n")
    errs = _errors(tmp_path, body)
    assert len(errs) == 1 and errs[0].startswith(f"{tmp_path}/spec.yaml:3:28: error: dataset mnist: each sample has "
                                                 "shape (28, 28)")


@pytest.mark.parametrize("units", [9, 12])
def test_mnist_classes_against_the_output_units(tmp_path, units):
    errs = _errors(tmp_path, _images(units=units))
    assert errs == [f"{tmp_path}/spec.yaml:5:20: error: the output layer 'dense' has {units} units but the data "
                    "has 10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9) for sparse_categorical_crossentropy "
                    "(set units: 10)"]
    assert len(_errors(tmp_path, _images(units=units, loss="categorical_crossentropy"))) == 1


def test_units_behind_an_activation_layer_are_located_at_the_dense(tmp_path):
    body = ("input: {shape: [28, 28]}\nlayers:\n  - Flatten\n  - Dense: {units: 8}\n  - Activation: {activation: softmax}\n"
            "data: {dataset: mnist}\ntrain: {optimizer: adam, loss: sparse_categorical_crossentropy}\n")
    errs = _errors(tmp_path, body)
    assert len(errs) == 1 and ":5:20: error: the output layer 'dense' has 8 units" in errs[0]


def test_mnist_binary_loss_has_ten_classes(tmp_path):
    errs = _errors(tmp_path, _images(units=1, loss="binary_crossentropy"))
    assert errs == [f"{tmp_path}/spec.yaml:7:32: error: binary_crossentropy takes two classes; the data has 10 "
                    "(0, 1, 2, 3, 4, 5, 6, 7, 8, 9) (use sparse_categorical_crossentropy with a softmax output "
                    "of 10 units)"]


def test_sms_spam_fits_the_reference_spec_settings(tmp_path):
    assert _errors(tmp_path, _text()) == []
    assert _errors(tmp_path, _text(units=2, act="softmax", loss="sparse_categorical_crossentropy")) == []


def test_sms_spam_embedding_input_dim_against_the_vocabulary(tmp_path):
    errs = _errors(tmp_path, _text(dim=5000))
    assert errs == [f"{tmp_path}/spec.yaml:4:28: error: Embedding 'embedding' has input_dim 5000 but the data's "
                    "vocab_size is 10000: token ids reach 9999 (set input_dim: 10000, or vocab_size: 5000 in `data:`)"]
    assert _errors(tmp_path, _text(dim=5000, data="{dataset: sms_spam, vocab_size: 5000}")) == []


def test_sms_spam_binary_needs_one_unit(tmp_path):
    errs = _errors(tmp_path, _text(units=2))
    assert errs == [f"{tmp_path}/spec.yaml:6:20: error: binary_crossentropy on one label per sample needs one "
                    "output unit (sigmoid); the output layer 'dense' has 2 (set units: 1, or use "
                    "sparse_categorical_crossentropy with a softmax output)"]


def test_sms_spam_classes_and_regression(tmp_path):
    errs = _errors(tmp_path, _text(units=3, act="softmax", loss="sparse_categorical_crossentropy"))
    assert len(errs) == 1 and "has 3 units but the data has 2 classes (ham, spam)" in errs[0]
    errs = _errors(tmp_path, _text(loss="mean_squared_error"))
    assert len(errs) == 1 and ":8:32: error: the labels are class names (ham, spam) but the loss " \
        "mean_squared_error takes numbers" in errs[0]


def test_sms_spam_max_length_against_the_input(tmp_path):
    errs = _errors(tmp_path, _text(data="{dataset: sms_spam, max_length: 50}"))
    assert len(errs) == 1 and ":2:16: error: dataset sms_spam: each sample has shape (50,)" in errs[0]


def test_embedding_fed_images_is_refused(tmp_path):
    body = ("input: {shape: [784]}\nlayers:\n  - Embedding: {input_dim: 256, output_dim: 4}\n  - Flatten\n"
            "  - Dense: {units: 10, activation: softmax}\n"
            "data: {dataset: mnist}\ntrain: {optimizer: adam, loss: sparse_categorical_crossentropy}\n")
    errs = _errors(tmp_path, body)
    assert len(errs) == 1 and ":4:5: error: Embedding 'embedding' takes integer token ids but dataset mnist " \
        "gives float values" in errs[0]


@pytest.mark.parametrize("name,window", [("melbourne_temperatures", 30), ("airline_passengers", 12),
                                         ("sunspots", 60)])
def test_series_windows_against_the_input(tmp_path, name, window):
    assert _errors(tmp_path, _series(f"[{window}, 1]", name=name)) == []
    errs = _errors(tmp_path, _series(f"[{window + 1}, 1]", name=name))
    assert len(errs) == 1 and f":2:16: error: dataset {name}: each sample has shape ({window},)" in errs[0]


def test_series_loss_and_output_size(tmp_path):
    errs = _errors(tmp_path, _series(loss="sparse_categorical_crossentropy"))
    assert len(errs) == 1 and ":7:32: error: a time series' targets are numbers" in errs[0]
    errs = _errors(tmp_path, _series(units=2))
    assert errs == [f"{tmp_path}/spec.yaml:5:20: error: each sample has 1 target value(s) but the output layer "
                    "'dense' (2,) gives 2 for mean_squared_error"]


def test_a_spec_without_train_checks_the_input_only(tmp_path):
    body = MODEL["images"] % ("[28, 28, 1]", 3) + "data: {dataset: mnist}\n"
    assert _errors(tmp_path, body) == []
    body = MODEL["images"] % ("[27, 28, 1]", 3) + "data: {dataset: mnist}\n"
    assert len(_errors(tmp_path, body)) == 1


# ---- files: headers only ---------------------------------------------------------------------

def _write_truncated_idx(path, shape, dtype=np.uint8):
    """An IDX header announcing `shape` followed by only a few bytes of its data."""
    head = idx_bytes(np.zeros((1,) + shape[1:], dtype))[:4 + 4 * len(shape)]
    head = head[:4] + np.array(shape, ">i4").tobytes()
    path.write_bytes(gzip.compress(head + b"\0" * 10))


def test_idx_files_are_checked_from_their_headers(tmp_path):
    _write_truncated_idx(tmp_path / "x.gz", (10**8, 32, 32))  # 100 GB announced, 10 bytes there
    _write_truncated_idx(tmp_path / "y.gz", (10**8,))
    data = "{format: idx, train: {x: x.gz, y: y.gz}}"
    errs = _errors(tmp_path, _images("[28, 28, 1]", data=data))
    assert len(errs) == 1 and f":2:16: error: {tmp_path}/x.gz: each sample has shape (32, 32) (1024 values)" in errs[0]
    assert _errors(tmp_path, _images("[32, 32, 1]", data=data)) == []
    # the labels' shape counts: one value per sample for a sparse loss
    _write_truncated_idx(tmp_path / "y.gz", (10**8, 3))
    errs = _errors(tmp_path, _images("[32, 32, 1]", data=data))
    assert len(errs) == 1 and "each sample has 3 target value(s) but the output layer 'dense' (10,) gives 1" in errs[0]


def test_a_corrupt_header_is_a_located_error(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"not idx at all")
    _write_truncated_idx(tmp_path / "y.gz", (10,))
    errs = _errors(tmp_path, _images(data="{format: idx, train: {x: x.gz, y: y.gz}}"))
    assert len(errs) == 1 and ":6:28: error:" in errs[0] and "not an IDX file" in errs[0]


def _truncated_npy(path, shape, dtype="<f4"):
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 16)  # the body the header announces is not there


def test_npy_headers_give_shapes_without_the_body(tmp_path):
    _truncated_npy(tmp_path / "x.npy", (10**9, 5, 5))
    _truncated_npy(tmp_path / "y.npy", (10**9,), "<i8")
    data = "{format: npy, train: {x: x.npy, y: y.npy}}"
    errs = _errors(tmp_path, _images("[28, 28, 1]", data=data))
    assert len(errs) == 1 and "x.npy: each sample has shape (5, 5) (25 values)" in errs[0]
    assert _errors(tmp_path, _images("[25]", data=data)) == []


def test_embedding_wants_int32_arrays(tmp_path):
    _truncated_npy(tmp_path / "x.npy", (100, 80), "<i4")
    _truncated_npy(tmp_path / "y.npy", (100,), "<i4")
    body = _text(data="{format: npy, train: {x: x.npy, y: y.npy}}")
    errs = _errors(tmp_path, body)
    assert len(errs) == 1 and "takes integer token ids but" in errs[0] and "(set `x_dtype: int32` in `data:`)" in errs[0]
    assert _errors(tmp_path, _text(data="{format: npy, train: {x: x.npy, y: y.npy}, x_dtype: int32}")) == []


def test_npz_member_headers_and_missing_members(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "d.npz", "w") as z:
        for name, shape in (("x", (10**9, 6)), ("y", (10**9,))):
            with z.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
    errs = _errors(tmp_path, _images("[7]", data="{format: npz, train: d.npz}"))
    assert len(errs) == 1 and "d.npz[x]: each sample has shape (6,)" in errs[0]
    assert _errors(tmp_path, _images("[6]", data="{format: npz, train: d.npz}")) == []
    errs = _errors(tmp_path, _images("[6]", data="{format: npz, train: {path: d.npz, x_key: images}}"))
    assert len(errs) == 1 and "has no array 'images'" in errs[0]


CSV = "a,b,c,kind\n1,2,3,cat\n4,5,6,dog\n"


def test_csv_columns_and_labels(tmp_path):
    (tmp_path / "t.csv").write_text(CSV + "7,8,9,bird\n" * 10)
    data = "{format: csv, train: t.csv, target: kind, labels: [cat, dog, bird]}"
    assert _errors(tmp_path, _images("[3]", units=3, data=data)) == []
    errs = _errors(tmp_path, _images("[4]", units=3, data=data))
    assert len(errs) == 1 and "t.csv: each sample has shape (3,) (3 values)" in errs[0]
    errs = _errors(tmp_path, _images("[3]", units=2, data=data))
    assert len(errs) == 1 and "has 2 units but the data has 3 classes (cat, dog, bird)" in errs[0]
    errs = _errors(tmp_path, _images("[2]", units=3, data=data.replace("}", ", features: [a, c]}")))
    assert errs == []
    errs = _errors(tmp_path, _images("[3]", units=3, data=data.replace("kind", "knd", 1)))
    assert len(errs) == 1 and ":6:43: error:" in errs[0] and "target column 'knd' is not in the header" in errs[0]


def test_text_files_use_their_settings(tmp_path):
    (tmp_path / "t.txt").write_text("a\tfirst text\nb\tsecond\n")
    data = "{format: text, train: t.txt, vocab_size: 300, labels: [a, b]}"
    errs = _errors(tmp_path, _text(dim=100, units=1, data=data))
    assert len(errs) == 1 and "input_dim 100 but the data's vocab_size is 300" in errs[0]


def test_series_file_column_is_checked(tmp_path):
    (tmp_path / "s.csv").write_text("day,value\n" + "".join(f"{i},{i * 0.5}\n" for i in range(50)))
    body = SERIES_MODEL.format(shape="[10, 1]", units=1, name="x", loss="mse").replace(
        "data: {dataset: x}", "data: {format: timeseries, train: s.csv, column: valu, window: 10}")
    errs = _errors(tmp_path, body)
    assert len(errs) == 1 and "series column 'valu' is not in the header" in errs[0]
    assert _errors(tmp_path, body.replace("valu", "value")) == []


def test_a_missing_data_file_is_not_a_validate_error(tmp_path):
    """validate runs where the data may not be (CI); training reports the missing file."""
    data = "{format: idx, train: {x: absent-x.gz, y: absent-y.gz}}"
    path = _spec(tmp_path, _images("[5, 5]", data=data))
    assert check_file(path).status == 0
    r = CliRunner().invoke(app, ["validate", str(path)])
    assert r.exit_code == 0 and "ok" in r.output
    with pytest.raises(Exception, match="data file 'absent-x.gz' not found"):
        jobs.train(path, run_dir=tmp_path / "run")


def test_no_data_body_is_read(tmp_path, monkeypatch):
    """Every loader fails if called: the checks run on headers and settings alone."""
    def refuse(*a, **k):
        raise AssertionError("a data body was read")

    for mod, name in ((sources, "read"), (idx, "read_idx"), (arrays, "read_npy"), (arrays, "read_npz"),
                      (text, "read_labelled"), (csv_mod, "numbers"), (np, "load"), (np, "fromfile")):
        monkeypatch.setattr(mod, name, refuse)
    _write_truncated_idx(tmp_path / "x.gz", (60, 4, 4))
    _write_truncated_idx(tmp_path / "y.gz", (60,))
    (tmp_path / "t.csv").write_text(CSV)
    _truncated_npy(tmp_path / "x.npy", (9, 5))
    _truncated_npy(tmp_path / "y.npy", (9,))
    cases = [
        (_images("[4, 5]", data="{format: idx, train: {x: x.gz, y: y.gz}}"), "each sample has shape (4, 4)"),
        (_images("[4]", units=2, data="{format: csv, train: t.csv, target: kind, labels: [cat, dog]}"),
         "each sample has shape (3,)"),
        (_images("[4]", data="{format: npy, train: {x: x.npy, y: y.npy}}"), "each sample has shape (5,)"),
        (_text(dim=10), "input_dim 10"),
        (_images("[28, 27]"), "each sample has shape (28, 28)"),
    ]
    for body, expected in cases:
        errs = _errors(tmp_path, body)
        assert len(errs) == 1 and expected in errs[0], errs


# ---- through the commands ----------------------------------------------------------------------

def test_validate_summary_and_train_report_the_located_error(tmp_path, monkeypatch):
    path = _spec(tmp_path, _images(units=12))
    runner = CliRunner()
    for args in (["validate", str(path)], ["summary", str(path)]):
        r = runner.invoke(app, args)
        assert r.exit_code == 1 and ":5:20: error: the output layer 'dense' has 12 units" in r.output
    monkeypatch.setattr(sources, "read", lambda *a, **k: pytest.fail("training read the data"))
    with pytest.raises(SpecError, match="has 12 units but the data has 10 classes"):
        jobs.train(path, run_dir=tmp_path / "run")
    r = runner.invoke(app, ["validate", "--format", "json", str(path)])
    assert r.exit_code == 1 and '"line": 5' in r.output


def test_set_override_errors_name_the_override(tmp_path):
    path = _spec(tmp_path, _images())
    with pytest.raises(SpecError) as e:
        jobs.train(path, overrides=["layers.1.Dense.units=4"], run_dir=tmp_path / "run")
    assert "--set layers.1.Dense.units=4" in str(e.value) and "has 4 units" in str(e.value)


def test_summary_of_a_builtin_dataset_spec_imports_no_numpy():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = ("import sys\nfrom layerc.check import check_file\nr = check_file('specs/sms_spam_lstm.yaml')\n"
            "assert r.status == 0, r.diagnostics\nprint('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(root), "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("data", [{"dataset": "sms_spam", "vocab_size": 500, "max_length": 20},
                                  {"dataset": "sms_spam"}, {"dataset": "sunspots", "window": 7},
                                  {"dataset": "airline_passengers"}, {"dataset": "mnist", "limit": 5}])
def test_builtin_settings_agree_with_the_expanded_spec(data):
    """The built-ins are peeked from their settings without `builtin.expand` (start-up time):
    the same values as the loader's expanded spec."""
    from layerc.data import builtin, peek
    from layerc.spec.data import parse_data_spec

    given = parse_data_spec(data)
    full = builtin.expand(given)
    got = peek.peek(given, None, (None,))
    if full.format == "text":
        assert (got.vocab_size, got.classes, got.sample) == (full.vocab_size, full.labels,
                                                             (full.max_length,) if full.max_length else None)
    elif full.format == "timeseries":
        assert got.sample == (full.window,) and got.series
    else:
        assert got.sample == (28, 28) and got.classes == [str(d) for d in range(10)]


TABLE_MODEL = """\
input: {{shape: [{n}]}}
layers:
  - Dense: {{units: 8, activation: relu}}
  - Dense: {{units: {units}{act}}}
data: {{dataset: {name}}}
train: {{optimizer: adam, loss: {loss}}}
"""


def test_the_shipped_tables_are_checked_from_their_header(tmp_path):
    iris = dict(name="iris", loss="sparse_categorical_crossentropy", act=", activation: softmax")
    assert _errors(tmp_path, TABLE_MODEL.format(n=4, units=3, **iris)) == []
    errs = _errors(tmp_path, TABLE_MODEL.format(n=5, units=4, **iris))
    assert errs == [f"{tmp_path}/spec.yaml:2:16: error: dataset iris: each sample has shape (4,) (4 values) but the "
                    "model's input shape is (5,) (give input shape [4], or another of 4 values)",
                    f"{tmp_path}/spec.yaml:5:20: error: the output layer 'dense_1' has 4 units but the data has 3 "
                    "classes (setosa, versicolor, virginica) for sparse_categorical_crossentropy (set units: 3)"]
    diabetes = dict(name="diabetes", loss="mean_squared_error", act="")
    assert _errors(tmp_path, TABLE_MODEL.format(n=10, units=1, **diabetes)) == []
    assert len(_errors(tmp_path, TABLE_MODEL.format(n=9, units=1, **diabetes))) == 1

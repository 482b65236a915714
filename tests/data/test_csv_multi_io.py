"""A model with two inputs and two outputs trained from a CSV whose columns are named by model
input (`features: {a: [...], b: [...]}`) and output (`target: {kind: ..., size: ...}`)."""
import numpy as np
import pytest
from typer.testing import CliRunner

from layerc import jobs
from layerc.cli import app
from layerc.runs import load_arrays
from tests.cli.test_errors import cli, one_line_error
from tests.train.test_multi_io import SPEC, data

ORDER = ["b1", "a0", "species", "a2", "b0", "length", "a1", "b2", "a3"]  # not the inputs' order
NPZ = "data:\n  format: npz\n  train: two.npz\n  validation_split: 0.2\n  test_split: 0.1\n"
CSV = """\
data:
  format: csv
  train: two.csv
  features: {a: [a0, a1, a2, a3], b: [b0, b1, b2]}
  target: {kind: species, size: length}
  validation_split: 0.2
  test_split: 0.1
"""


def columns(n=200):
    """The two-input/two-output test data by CSV column; the classes as words in id order."""
    x, y = data(n)
    cols = {f"a{i}": x["a"][:, i] for i in range(4)}
    cols.update({f"b{i}": x["b"][:, i] for i in range(3)})
    cols["species"] = np.array(["k0", "k1", "k2"])[y["kind"]]
    cols["length"] = y["size"][:, 0]
    return x, y, cols


@pytest.fixture
def both(tmp_path):
    """two.csv and two.npz holding the same samples, with a spec for each; returns the folder."""
    x, y, cols = columns()
    rows = [",".join(ORDER)]
    for r in range(len(x["a"])):
        rows.append(",".join(str(cols[c][r]) if c == "species" else repr(float(cols[c][r])) for c in ORDER))
    (tmp_path / "two.csv").write_text("\n".join(rows) + "\n")
    np.savez(tmp_path / "two.npz", **x, **y)
    (tmp_path / "csv.yaml").write_text(SPEC + CSV)
    (tmp_path / "npz.yaml").write_text(SPEC + NPZ)
    return tmp_path


def weights(run_dir):
    return load_arrays(run_dir / "weights.npz")


def same_weights(one, two):
    assert list(one) == list(two)
    for key in one:
        assert np.array_equal(one[key], two[key]), key


def test_csv_trains_as_the_same_npz_bit_for_bit(both):
    jobs.train(both / "npz.yaml", run_dir=both / "npz_run")
    result = jobs.train(both / "csv.yaml", run_dir=both / "csv_run")
    assert result.run_dir == both / "csv_run"
    same_weights(weights(both / "npz_run"), weights(both / "csv_run"))


def test_csv_through_the_cli_and_fit(both):
    out = CliRunner().invoke(app, ["train", str(both / "csv.yaml"), "--run-dir", str(both / "cli_run")])
    assert out.exit_code == 0, out.output
    assert " kind_accuracy " in out.output and " size_mae " in out.output
    jobs.train(both / "npz.yaml", run_dir=both / "npz_run")
    same_weights(weights(both / "npz_run"), weights(both / "cli_run"))
    out = CliRunner().invoke(app, ["validate", str(both / "csv.yaml")])
    assert out.exit_code == 0, out.output
    # the Python API: the loaded arrays, by input and output, into fit
    import layerc

    spec = layerc.load_spec(both / "csv.yaml")
    model = layerc.build(spec)
    ds = jobs.load_dataset(spec, model)
    x, y, _ = columns()
    assert [a.shape for a in ds.train[0]] == [(144, 4), (144, 3)]
    assert ds.info["label_names"] is None and ds.fitted["outputs"]["kind"]["label_names"] == ["k0", "k1", "k2"]
    # every training row is a row of the file, its columns at the right inputs and outputs
    rows = {tuple(np.float32(v) for v in (*a, *b)): (k, s) for a, b, k, s in zip(x["a"], x["b"], y["kind"], y["size"])}
    for a, b, k, s in zip(*ds.train[0], *ds.train[1]):
        assert rows[tuple((*a, *b))] == (k, s[0])
    history = model.fit(ds.train[0], ds.train[1], epochs=2, verbose=0)
    assert {"kind_accuracy", "size_mae"} <= set(history)


def test_a_one_key_mapping_works_for_a_single_input_model(tmp_path):
    x, y, cols = columns(60)
    order = ["a0", "length", "a1", "a2", "a3"]
    rows = [",".join(order)] + [",".join(repr(float(cols[c][r])) for c in order) for r in range(60)]
    (tmp_path / "one.csv").write_text("\n".join(rows) + "\n")
    spec = """\
name: one
seed: 1
inputs: {a: {shape: [4]}}
layers:
  - Dense: {name: out, units: 1, inputs: a}
train: {optimizer: adam, loss: mse, epochs: 2, batch_size: 16}
data: {format: csv, train: one.csv, FEATURES, target: TARGET}
"""
    runs = []
    for i, (features, target) in enumerate((("features: [a0, a1, a2, a3]", "length"),
                                            ("features: {a: [a0, a1, a2, a3]}", "{out: length}"))):
        (tmp_path / f"s{i}.yaml").write_text(spec.replace("FEATURES", features).replace("TARGET", target))
        assert cli("validate", str(tmp_path / f"s{i}.yaml"))[0] == 0
        runs.append(weights(jobs.train(tmp_path / f"s{i}.yaml", run_dir=tmp_path / f"r{i}").run_dir))
    same_weights(*runs)


def located(both, old, new, *words):
    text = (both / "csv.yaml").read_text()
    assert old in text
    text = text.replace(old, new)
    (both / "bad.yaml").write_text(text)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if new in l)
    code, out = cli("train", str(both / "bad.yaml"))
    one_line_error(code, out, f"bad.yaml:{line}:", *words)
    code, checked = cli("validate", str(both / "bad.yaml"))
    if code != 0:  # the file's columns are checked as train loads them; the names by validate too
        one_line_error(code, checked, f"bad.yaml:{line}:", *words)
    return line, out


def test_a_key_that_names_no_input_or_output(both):
    located(both, "b: [b0, b1, b2]", "c: [b0, b1, b2]", "'c'", "no model input")
    located(both, "size: length", "sise: length", "'sise'", "no model output", "did you mean 'size'?")


def test_an_input_or_output_without_columns(both):
    located(both, "b: [b0, b1, b2]", "b: []", "input 'b' has no columns")
    located(both, "a: [a0, a1, a2, a3], b: [b0, b1, b2]", "a: [a0, a1, a2, a3]", "no columns for input 'b'")
    located(both, "kind: species, size: length", "kind: species", "no columns for output 'size'")
    located(both, "features: {a: [a0, a1, a2, a3], b: [b0, b1, b2]}", "features: [a0, a1]",
            "several inputs names the columns of each")


def test_a_column_not_in_the_file(both):
    line, out = located(both, "a: [a0, a1, a2, a3]", "a: [a0, a1, a2, a33]", "'a33'", "did you mean 'a3'?")
    text = (both / "bad.yaml").read_text().splitlines()[line - 1]
    assert f"bad.yaml:{line}:{text.index('a33') + 1}:" in out and "two.csv" in out
    located(both, "size: length", "size: lenght", "'lenght'", "did you mean 'length'?")


def test_a_column_count_that_does_not_fit_the_input(both):
    located(both, "b: [b0, b1, b2]", "b: [b0, b1]", "input 'b'", "shape (2,)", "(3,)")


def test_labels_with_several_outputs(both):
    located(both, "  validation_split: 0.2", "  labels: [k0, k1, k2]",
            "`labels` names the classes of a model with one output")

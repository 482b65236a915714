"""A CSV's columns for each input and output of a two-input, two-output model: `validate` checks
them from the file's header (located, without training), `train` resumes bit for bit, and the
fitted state keeps each input's columns for `predict`."""
import json

import numpy as np
import pytest

from layerc import jobs
from layerc.runs import load_arrays
from tests.cli.test_errors import cli, one_line_error
from tests.data.test_csv_multi_io import CSV, NPZ, ORDER, SPEC, columns
from tests.train.test_multi_io import StopAfter


def write_files(folder, n=200, order=ORDER):
    """two.csv and two.npz holding the same samples (the CSV's columns in `order`), csv.yaml and
    npz.yaml training on them; returns (x, y) as in the npz."""
    x, y, cols = columns(n)
    rows = [",".join(order)]
    for r in range(n):
        rows.append(",".join(str(cols[c][r]) if c == "species" else repr(float(cols[c][r])) for c in order))
    (folder / "two.csv").write_text("\n".join(rows) + "\n")
    np.savez(folder / "two.npz", **x, **y)
    (folder / "csv.yaml").write_text(SPEC + CSV)
    (folder / "npz.yaml").write_text(SPEC + NPZ)
    return x, y


@pytest.fixture
def folder(tmp_path):
    write_files(tmp_path)
    return tmp_path


def edit(folder, old, new, name="bad.yaml"):
    """csv.yaml with `old` replaced by `new`, as `name`; returns (path, the 1-based line of `new`'s last line, its text)."""
    text = (folder / "csv.yaml").read_text()
    assert old in text
    text = text.replace(old, new)
    (folder / name).write_text(text)
    first = new.strip().splitlines()[-1]
    line = next(i for i, l in enumerate(text.splitlines(), 1) if first in l)
    return folder / name, line, text.splitlines()[line - 1]


def validate_and_train_say(folder, old, new, at, *words):
    """`validate` (reading the file's header only) and `train` give the same one-line error at
    the column `at` of the edited line."""
    path, line, text = edit(folder, old, new)
    where = f"bad.yaml:{line}:{text.index(at) + 1}:"
    one_line_error(*cli("validate", str(path)), where, *words)
    one_line_error(*cli("train", str(path), "--run-dir", str(folder / "run")), where, *words)
    assert not (folder / "run").exists()


def test_validate_finds_a_column_not_in_the_header(folder):
    validate_and_train_say(folder, "a: [a0, a1, a2, a3]", "a: [a0, a1, a2, a33]", "a33",
                           "two.csv", "input 'a' feature column 'a33' is not in the header", "did you mean 'a3'?")
    validate_and_train_say(folder, "size: length", "size: lenght", "lenght",
                           "output 'size' target column 'lenght'", "did you mean 'length'?")
    validate_and_train_say(folder, "b: [b0, b1, b2]", "b: [b0, 11, b2]", "11",
                           "input 'b' feature column 11 does not exist (the file has 9 columns)")


def test_validate_finds_a_column_used_twice(folder):
    validate_and_train_say(folder, "b: [b0, b1, b2]", "b: [b0, a1, b2]", "a1, b2",
                           "column 'a1' is used twice by input 'a' and by input 'b'")
    validate_and_train_say(folder, "kind: species", "kind: a2", "a2",
                           "column 'a2' is used twice by input 'a' and by output 'kind'")
    # the same column by name and by its index (b1 is the file's first column)
    validate_and_train_say(folder, "b: [b0, b1, b2]", "b: [b0, b1, 0]", "0]",
                           "column 'b1' is used twice by input 'b' (")


def test_validate_finds_columns_that_do_not_fit_the_input(folder):
    validate_and_train_say(folder, "b: [b0, b1, b2]", "b: [b0, b1]", "[b0, b1]",
                           "two.csv: the columns of input 'b'", "shape (2,)", "input shape is (3,)")
    validate_and_train_say(folder, "a: [a0, a1, a2, a3]", "a: [a0, a1, a2]", "[a0",
                           "the columns of input 'a'", "shape (3,)", "(4,)")


def test_validate_checks_each_files_header(folder):
    """A validation file lacking a column the train file has: its name in the located error."""
    x, y, cols = columns(40)
    order = [c for c in ORDER if c != "b2"]
    rows = [",".join(order)] + [",".join(str(cols[c][r]) if c == "species" else repr(float(cols[c][r]))
                                         for c in order) for r in range(40)]
    (folder / "val.csv").write_text("\n".join(rows) + "\n")
    path, _, _ = edit(folder, "validation_split: 0.2", "validation: val.csv")
    line, text = next((i, l) for i, l in enumerate(path.read_text().splitlines(), 1) if "b2]" in l)
    one_line_error(*cli("validate", str(path)), f"bad.yaml:{line}:{text.index('b2]') + 1}:", "val.csv",
                   "input 'b' feature column 'b2' is not in the header")


def test_validate_reads_the_header_not_the_whole_file(folder):
    """validate checks the columns from the first rows: a bad cell further down is train's to find."""
    lines = (folder / "two.csv").read_text().splitlines()
    cells = lines[150].split(",")
    cells[ORDER.index("a1")] = "oops"
    lines[150] = ",".join(cells)
    (folder / "two.csv").write_text("\n".join(lines) + "\n")
    code, out = cli("validate", str(folder / "csv.yaml"))
    assert code == 0, out
    one_line_error(*cli("train", str(folder / "csv.yaml"), "--run-dir", str(folder / "run")),
                   "two.csv: line 151, column 'a1': 'oops' is not a number")


def test_without_the_file_validate_checks_the_names(folder):
    path, _, _ = edit(folder, "train: two.csv", "train: elsewhere.csv")
    code, out = cli("validate", str(path))
    assert code == 0, out
    path, line, text = edit(folder, "train: two.csv\n  features: {a: [a0, a1, a2, a3], b: [b0, b1, b2]}",
                            "train: elsewhere.csv\n  features: {a: [a0, a1, a2, a3], c: [b0, b1, b2]}")
    one_line_error(*cli("validate", str(path)), f"bad.yaml:{line}:", "'c'", "no model input")


def test_a_single_input_models_columns_by_name_are_validated(tmp_path):
    write_files(tmp_path)
    (tmp_path / "one.yaml").write_text("""\
name: one
seed: 1
inputs: {a: {shape: [4]}}
layers:
  - Dense: {name: out, units: 1, inputs: a}
train: {optimizer: adam, loss: mse, epochs: 1}
data: {format: csv, train: two.csv, features: {a: [a0, a1, a2, a33]}, target: {out: length}}
""")
    one_line_error(*cli("validate", str(tmp_path / "one.yaml")), "one.yaml:7:", "features column 'a33'",
                   "not in the header")


def test_the_fitted_state_keeps_each_inputs_columns(folder):
    run = jobs.train(folder / "csv.yaml", run_dir=folder / "run").run_dir
    fitted = json.loads((run / "data.json").read_text())
    assert fitted["inputs"]["a"]["columns"] == ["a0", "a1", "a2", "a3"]
    assert fitted["inputs"]["b"]["columns"] == ["b0", "b1", "b2"]
    assert fitted["csv"] == {"header": True, "delimiter": ",", "missing": "error", "fill_value": 0.0}
    assert "csv" not in json.loads((jobs.train(folder / "npz.yaml", run_dir=folder / "npz").run_dir
                                    / "data.json").read_text())
    code, out = cli("evaluate", str(run))  # the state refitted on evaluate is the one saved
    assert code == 0, out


@pytest.mark.parametrize("stop_after", [4, 13])
def test_interrupted_then_resumed_from_a_csv_is_bit_exact(folder, stop_after):
    whole = jobs.train(folder / "csv.yaml", run_dir=folder / "whole")
    part = jobs.train(folder / "csv.yaml", run_dir=folder / "part", callbacks=[StopAfter(stop_after)])
    assert part.interrupted
    done = jobs.train(resume=part.run_dir)
    a, b = load_arrays(whole.run_dir / "weights.npz"), load_arrays(done.run_dir / "weights.npz")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    strip = [line.rsplit(",", 1)[0] for line in (whole.run_dir / "metrics.csv").read_text().splitlines()]
    assert "seconds" in (whole.run_dir / "metrics.csv").read_text().splitlines()[0].rsplit(",", 1)[1]
    assert strip == [line.rsplit(",", 1)[0] for line in (done.run_dir / "metrics.csv").read_text().splitlines()]


def test_standardised_csv_trains_and_evaluates_as_the_same_npz(folder):
    """Each input standardised with its own training statistics, from a CSV as from an .npz:
    the same weights bit for bit, and the same per-output test metrics."""
    for name in ("csv", "npz"):
        text = (folder / f"{name}.yaml").read_text()
        (folder / f"{name}.yaml").write_text(text.replace("  validation_split: 0.2\n",
                                                          "  validation_split: 0.2\n  standardize: true\n"))
    runs = {name: jobs.train(folder / f"{name}.yaml", run_dir=folder / name) for name in ("csv", "npz")}
    a, b = (load_arrays(runs[k].run_dir / "weights.npz") for k in ("csv", "npz"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert runs["csv"].test == runs["npz"].test and {"kind_accuracy", "size_mae"} <= set(runs["csv"].test)
    fitted = {k: json.loads((runs[k].run_dir / "data.json").read_text()) for k in runs}
    assert fitted["csv"]["inputs"]["b"]["standardize"] == fitted["npz"]["inputs"]["b"]["standardize"]

"""`layerc predict` of a two-input, two-output model trained from a CSV, from a CSV (a file or
standard input) whose columns are picked by the names the data section gives each input."""

import numpy as np
import pytest

from layerc import jobs
from tests.data.test_csv_multi_input import write_files

# the training file's columns, another order, with a column the model does not read
NEW_ORDER = ["a3", "note", "b2", "a2", "b1", "a1", "b0", "a0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run trained from two.csv; new.csv and new.npz hold the same 12 new samples."""
    tmp = tmp_path_factory.mktemp("csvin")
    write_files(tmp)
    run = jobs.train(tmp / "csv.yaml", run_dir=tmp / "run").run_dir
    r = np.random.default_rng(7)
    a, b = r.normal(size=(12, 4)), r.normal(size=(12, 3))
    np.savez(tmp / "new.npz", a=a, b=b)
    cells = {**{f"a{i}": a[:, i] for i in range(4)}, **{f"b{i}": b[:, i] for i in range(3)}}
    cells["note"] = [f"row {i}" for i in range(12)]
    lines = [",".join(NEW_ORDER)] + [",".join(str(cells[c][i]) if c == "note" else repr(float(cells[c][i]))
                                              for c in NEW_ORDER) for i in range(12)]
    (tmp / "new.csv").write_text("\n".join(lines) + "\n")
    return tmp, run


def one_error(result, *words):
    code, out, err = result
    assert code == 1, (out, err)
    assert "Traceback" not in out + err
    lines = [l for l in err.splitlines() if l.strip() and "--debug" not in l]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for w in words:
        assert w in lines[0], err


def test_predict_from_a_csv_equals_predict_from_the_npz(trained, run):
    tmp, run_dir = trained
    for src in ("csv", "npz"):
        code, out, err = run("predict", run_dir, "--input", tmp / f"new.{src}", "--output", tmp / f"from_{src}.npz")
        assert code == 0, err
        code, out, err = run("predict", run_dir, "--input", tmp / f"new.{src}", "--output", tmp / f"from_{src}.csv")
        assert code == 0, err
    got, want = np.load(tmp / "from_csv.npz"), np.load(tmp / "from_npz.npz")
    assert sorted(got.files) == ["kind", "size"]
    for name in got.files:
        assert got[name].shape == want[name].shape and np.array_equal(got[name], want[name]), name
    table = (tmp / "from_csv.csv").read_text()
    assert table == (tmp / "from_npz.csv").read_text()
    lines = table.splitlines()
    assert lines[0] == "kind_predicted,kind_p_k0,kind_p_k1,kind_p_k2,size"  # the classes by name, as trained
    assert len(lines) == 13 and {l.split(",")[0] for l in lines[1:]} <= {"k0", "k1", "k2"}
    # the prediction is the model's on the columns by name, whatever their order in the file
    _, model, _ = jobs.load_trained(run_dir, None)
    new = np.load(tmp / "new.npz")
    kind, size = model.predict({"a": new["a"].astype("float32"), "b": new["b"].astype("float32")})
    assert np.allclose(got["kind"], kind, rtol=1e-6) and np.allclose(got["size"], size, rtol=1e-6)


def test_predict_reads_a_csv_from_standard_input(trained, run):
    tmp, run_dir = trained
    code, out, err = run("predict", run_dir, "--input", "-", "--output", "-",
                         input=(tmp / "new.csv").read_bytes())
    assert code == 0, err
    code, want, err = run("predict", run_dir, "--input", tmp / "new.npz", "--output", "-")
    assert code == 0, err
    assert out == want and len(out.splitlines()) == 13


def test_predict_from_the_training_file_itself(trained, run):
    """The training CSV (its target columns beside the features) predicts as its arrays do."""
    tmp, run_dir = trained
    assert run("predict", run_dir, "--input", tmp / "two.csv", "--output", tmp / "t_csv.npz")[0] == 0
    assert run("predict", run_dir, "--input", tmp / "two.npz", "--output", tmp / "t_npz.npz")[0] == 0
    got, want = np.load(tmp / "t_csv.npz"), np.load(tmp / "t_npz.npz")
    assert all(np.array_equal(got[k], want[k]) for k in ("kind", "size")) and len(got["kind"]) == 200


def edited(tmp, name, change):
    lines = (tmp / "new.csv").read_text().splitlines()
    (tmp / name).write_text("\n".join(change(lines)) + "\n")
    return tmp / name


def test_a_missing_column_is_one_error_naming_it(trained, run):
    tmp, run_dir = trained
    no_a2 = edited(tmp, "no_a2.csv", lambda ls: [",".join(c for j, c in enumerate(l.split(",")) if j != 3) for l in ls])
    one_error(run("predict", run_dir, "--input", no_a2), "no_a2.csv: has no column 'a2' (input 'a')",
              "its columns: a3, note, b2, b1, a1, b0, a0")
    typo = edited(tmp, "typo.csv", lambda ls: [ls[0].replace("b1", "b_1"), *ls[1:]])
    one_error(run("predict", run_dir, "--input", typo), "has no column 'b1' (input 'b')", "did you mean 'b_1'?")
    one_error(run("predict", run_dir, "--input", "-", input=no_a2.read_bytes()),
              "standard input: has no column 'a2' (input 'a')")


def test_a_csv_without_its_header_is_one_error(trained, run):
    tmp, run_dir = trained
    bare = edited(tmp, "bare.csv", lambda ls: ls[1:])
    one_error(run("predict", run_dir, "--input", bare), "bare.csv: its first line is data, not a header",
              "by name (a0, a1, a2, a3, b0, b1, b2)")


def test_bad_cells_are_one_located_error(trained, run):
    tmp, run_dir = trained

    def cell(value):
        def change(lines):
            cells = lines[4].split(",")
            cells[NEW_ORDER.index("b1")] = value
            return [*lines[:4], ",".join(cells), *lines[5:]]
        return change

    one_error(run("predict", run_dir, "--input", edited(tmp, "word.csv", cell("many"))),
              "word.csv: line 5, column 'b1': 'many' is not a number")
    one_error(run("predict", run_dir, "--input", edited(tmp, "gap.csv", cell(""))),
              "gap.csv: line 5, column 'b1': missing value")
    one_error(run("predict", run_dir, "--input", edited(tmp, "short.csv", lambda ls: [*ls[:3], ls[3] + ",1"])),
              "short.csv: line 4 has 9 cells, expected 8 (as in the header)")
    one_error(run("predict", run_dir, "--input", edited(tmp, "head.csv", lambda ls: ls[:1])),
              "head.csv: has no data rows")
    one_error(run("predict", run_dir, "--input", "-", input=b""), "standard input")
    one_error(run("predict", run_dir, "--input", "-", input=b"\xff\xfe,\x00"), "standard input: is not UTF-8 text")


def test_a_model_trained_from_an_npz_still_reads_an_npz(trained, run):
    tmp, _ = trained
    npz_run = jobs.train(tmp / "npz.yaml", run_dir=tmp / "npz_run").run_dir
    one_error(run("predict", npz_run, "--input", tmp / "new.csv"), "new.csv: not a NumPy .npy/.npz file")
    one_error(run("predict", npz_run, "--input", "-", input=(tmp / "new.csv").read_bytes()),
              "standard input: a model with several inputs reads an .npz with one array per input")


def test_a_csv_without_a_header_predicts_by_position(tmp_path, run):
    """Trained with `header: false` and columns by index: predict reads rows of the same width."""
    write_files(tmp_path)
    lines = (tmp_path / "two.csv").read_text().splitlines()
    (tmp_path / "bare.csv").write_text("\n".join(lines[1:]) + "\n")
    order = lines[0].split(",")
    spec = (tmp_path / "csv.yaml").read_text().replace("train: two.csv", "train: bare.csv\n  header: false")
    for name in order:
        spec = spec.replace(f"{name},", f"{order.index(name)},").replace(f"{name}]", f"{order.index(name)}]") \
            .replace(f": {name}", f": {order.index(name)}")
    assert "header: false" in spec and "a0" not in spec and "species" not in spec
    (tmp_path / "bare.yaml").write_text(spec)
    run_dir = jobs.train(tmp_path / "bare.yaml", run_dir=tmp_path / "run").run_dir
    assert run("predict", run_dir, "--input", tmp_path / "bare.csv", "--output", tmp_path / "p.npz")[0] == 0
    assert run("predict", run_dir, "--input", tmp_path / "two.npz", "--output", tmp_path / "q.npz")[0] == 0
    got, want = np.load(tmp_path / "p.npz"), np.load(tmp_path / "q.npz")
    assert all(np.array_equal(got[k], want[k]) for k in ("kind", "size"))
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("\n".join(",".join(l.split(",")[:5]) for l in lines[1:]) + "\n")
    one_error(run("predict", run_dir, "--input", narrow), "narrow.csv: rows have 5 cells",
              "the training file's had column 8")


def test_predict_prepares_csv_columns_as_training_did(tmp_path, run):
    """Standardised inputs and `missing: fill`: a CSV's gap is the fill value, then standardised
    with the training statistics, as the same values from an .npz."""
    write_files(tmp_path)
    spec = (tmp_path / "csv.yaml").read_text().replace("  validation_split: 0.2\n",
                                                       "  validation_split: 0.2\n  standardize: true\n"
                                                       "  missing: fill\n  fill_value: 0.5\n")
    (tmp_path / "std.yaml").write_text(spec)
    run_dir = jobs.train(tmp_path / "std.yaml", run_dir=tmp_path / "run").run_dir
    lines = (tmp_path / "two.csv").read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[3].split(",")
    cells[header.index("b2")] = ""
    (tmp_path / "gap.csv").write_text("\n".join([*lines[:3], ",".join(cells), *lines[4:]]) + "\n")
    with np.load(tmp_path / "two.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["b"][2, 2] = 0.5
    np.savez(tmp_path / "gap.npz", **arrays)
    assert run("predict", run_dir, "--input", tmp_path / "gap.csv", "--output", tmp_path / "p.npz")[0] == 0
    assert run("predict", run_dir, "--input", tmp_path / "gap.npz", "--output", tmp_path / "q.npz")[0] == 0
    got, want = np.load(tmp_path / "p.npz"), np.load(tmp_path / "q.npz")
    assert all(np.array_equal(got[k], want[k]) for k in ("kind", "size"))
    with np.load(tmp_path / "two.npz") as z:
        np.savez(tmp_path / "plain.npz", **{k: z[k] for k in z.files})
    assert run("predict", run_dir, "--input", tmp_path / "plain.npz", "--output", tmp_path / "r.npz")[0] == 0
    assert not np.array_equal(np.load(tmp_path / "r.npz")["size"][2], got["size"][2])  # the gap mattered

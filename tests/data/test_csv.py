"""CSV: columns by name or index, header, delimiter, missing values, located errors, raw rows at predict."""
import json

import numpy as np
import pytest

from layerc.data import DataError, load_data, prepare_inputs

ROWS = "a,b,label,c\n1,2,x,3\n4,5,y,6\n7,8,x,9\n10,11,y,12\n13,14,x,15\n16,17,y,18\n"


def write(tmp_path, text, name="t.csv"):
    (tmp_path / name).write_text(text)
    return name


def load(spec, tmp_path, input_shape=(3,), output_shape=(2,), loss="sparse_categorical_crossentropy"):
    return load_data({"format": "csv", "shuffle": False, **spec}, spec_dir=tmp_path, input_shape=input_shape,
                     output_shape=output_shape, loss_name=loss, seed=0)


def test_named_target_and_class_names(tmp_path):
    ds = load({"train": write(tmp_path, ROWS), "target": "label"}, tmp_path)
    x, y = ds.train
    np.testing.assert_array_equal(x[:2], [[1, 2, 3], [4, 5, 6]])
    assert y.tolist() == [0, 1, 0, 1, 0, 1] and ds.fitted["label_names"] == ["x", "y"]


def test_explicit_labels_order_and_unknown_label(tmp_path):
    ds = load({"train": write(tmp_path, ROWS), "target": 2, "labels": ["y", "x"]}, tmp_path)
    assert ds.train[1].tolist() == [1, 0, 1, 0, 1, 0]
    with pytest.raises(DataError, match="label 'x' is not one of y, z"):
        load({"train": write(tmp_path, ROWS), "target": 2, "labels": ["y", "z"]}, tmp_path, output_shape=(3,))


def test_feature_selection_and_regression(tmp_path):
    ds = load({"train": write(tmp_path, ROWS), "target": ["c", "a"], "features": [1]}, tmp_path,
              input_shape=(1,), output_shape=(2,), loss="mse")
    np.testing.assert_array_equal(ds.train[0][:, 0], [2, 5, 8, 11, 14, 17])
    np.testing.assert_array_equal(ds.train[1][0], [3, 1])


def test_no_header_semicolon(tmp_path):
    name = write(tmp_path, "1;2;0\n3;4;1\n\n5;6;1\n")
    ds = load({"train": name, "target": 2, "header": False, "delimiter": ";"}, tmp_path, input_shape=(2,))
    assert ds.train[0].tolist() == [[1, 2], [3, 4], [5, 6]] and ds.train[1].tolist() == [0, 1, 1]
    with pytest.raises(DataError, match="named but the file has no header"):
        load({"train": name, "target": "label", "header": False, "delimiter": ";"}, tmp_path)


def test_bad_cell_names_line_and_column(tmp_path):
    name = write(tmp_path, "a,b,label\n1,2,0\n3,oops,1\n")
    with pytest.raises(DataError, match=r"t.csv: line 3, column 'b': 'oops' is not a number"):
        load({"train": name, "target": "label"}, tmp_path, input_shape=(2,))


def test_unknown_column(tmp_path):
    with pytest.raises(DataError, match=r"target column 'price' is not in the header \(columns: a, b, label, c\)"):
        load({"train": write(tmp_path, ROWS), "target": "price"}, tmp_path)
    with pytest.raises(DataError, match="target column 9 does not exist"):
        load({"train": write(tmp_path, ROWS), "target": 9}, tmp_path)


def test_ragged_row(tmp_path):
    with pytest.raises(DataError, match="line 3 has 2 cells, expected 3"):
        load({"train": write(tmp_path, "a,b,y\n1,2,0\n3,4\n"), "target": "y"}, tmp_path)


@pytest.mark.parametrize("missing, rows, first", [("drop", 2, [7, 8]), ("fill", 3, [-1, 5])])
def test_missing_values(tmp_path, missing, rows, first):
    name = write(tmp_path, "a,b,y\n1,2,0\n,5,1\n7,8,1\n9,NA,0\n")
    ds = load({"train": name, "target": "y", "missing": missing, "fill_value": -1.0}, tmp_path, input_shape=(2,))
    if missing == "drop":
        assert ds.train[0].tolist() == [[1, 2], [7, 8]]
    else:
        assert ds.train[0].tolist() == [[1, 2], [-1, 5], [7, 8], [9, -1]]


def test_missing_value_is_an_error_by_default(tmp_path):
    with pytest.raises(DataError, match=r"line 3, column 'a': missing value"):
        load({"train": write(tmp_path, "a,b,y\n1,2,0\nnan,5,1\n"), "target": "y"}, tmp_path, input_shape=(2,))


def test_infinite_value(tmp_path):
    with pytest.raises(DataError, match=r"line 2, column 'b': 'inf' is not a finite number"):
        load({"train": write(tmp_path, "a,b,y\n1,inf,0\n"), "target": "y"}, tmp_path, input_shape=(2,))


def test_target_names_with_regression_loss(tmp_path):
    with pytest.raises(DataError, match="class names"):
        load({"train": write(tmp_path, ROWS), "target": "label"}, tmp_path, output_shape=(1,), loss="mse")


def test_quoted_crlf_and_bom(tmp_path):
    (tmp_path / "q.csv").write_bytes('\ufeff"a","b","y"\r\n"1.5","2",0\r\n"3","4",1'.encode("utf-8"))
    ds = load({"train": "q.csv", "target": "y"}, tmp_path, input_shape=(2,))
    assert ds.train[0].tolist() == [[1.5, 2], [3, 4]]


def test_prepare_raw_rows(tmp_path):
    ds = load({"train": write(tmp_path, ROWS), "target": "label", "standardize": True, "test_split": 2}, tmp_path)
    fitted = json.loads(json.dumps(ds.fitted))
    full = prepare_inputs(["a,b,label,c", "4,5,y,6", "7,8,?,9"], None, fitted, (3,))
    feats = prepare_inputs([[4, 5, 6], ["7", "8", "9"]], None, fitted, (3,))
    np.testing.assert_allclose(full, feats)
    mean, std = np.array(fitted["standardize"]["mean"]), np.array(fitted["standardize"]["std"])
    np.testing.assert_allclose(feats[0], (np.array([4, 5, 6]) - mean) / std, rtol=1e-6)
    with pytest.raises(DataError, match="input row 1 has 2 cells"):
        prepare_inputs(["1,2"], None, fitted, (3,))
    with pytest.raises(DataError, match="'x' is not a number"):
        prepare_inputs(["1,x,3"], None, fitted, (3,))

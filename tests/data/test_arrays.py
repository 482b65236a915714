"""NPY and NPZ: loading, keys, and pickled or non-numeric arrays refused."""
import pickle

import numpy as np
import pytest

from layerc.data import DataError, estimate_bytes, load_data, prepare_inputs


def load(spec, tmp_path, input_shape=(3,), output_shape=(3,), loss="sparse_categorical_crossentropy"):
    return load_data({"shuffle": False, **spec}, spec_dir=tmp_path, input_shape=input_shape,
                     output_shape=output_shape, loss_name=loss, seed=0)


NPY = {"format": "npy", "train": {"x": "x.npy", "y": "y.npy"}}


@pytest.fixture
def arrays(tmp_path):
    x = np.arange(30, dtype=np.float64).reshape(10, 3)
    y = np.arange(10) % 3
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    return x, y


def test_npy(tmp_path, arrays):
    x, y = arrays
    ds = load({**NPY, "limit": 6}, tmp_path)
    np.testing.assert_array_equal(ds.train[0], x[:6])
    assert ds.train[0].dtype == np.float32 and ds.train[1].tolist() == y[:6].tolist()
    assert estimate_bytes(NPY, spec_dir=tmp_path) == 10 * (3 * 4 + 4)


def test_npz_keys(tmp_path, arrays):
    ds = load({"format": "npz", "train": {"path": "d.npz", "x_key": "x_train", "y_key": "y_train"},
               "test": {"path": "d.npz", "x_key": "x_test", "y_key": "y_test"}, "one_hot": True}, tmp_path,
              loss="categorical_crossentropy")
    assert ds.train[0].shape == (10, 3) and ds.test[1].shape == (4, 3) and ds.test[1].sum() == 4
    with pytest.raises(DataError, match=r"d.npz: has no array 'x' \(it has: x_train, y_train, x_test, y_test\)"):
        load({"format": "npz", "train": "d.npz"}, tmp_path)


def test_int_inputs(tmp_path, arrays):
    ds = load({**NPY, "x_dtype": "int32"}, tmp_path)
    assert ds.train[0].dtype == np.int32
    assert prepare_inputs(np.array([1, 2, 3]), None, ds.fitted, (3,)).dtype == np.int32


def test_pickled_object_array_refused(tmp_path, arrays):
    np.save(tmp_path / "x.npy", np.array([[1, "a", None]] * 10, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickled Python objects, which layerc never loads"):
        load(NPY, tmp_path)


def test_pickle_file_refused(tmp_path, arrays):
    (tmp_path / "x.npy").write_bytes(pickle.dumps(np.zeros((10, 3))))
    with pytest.raises(DataError, match="pickled"):
        load(NPY, tmp_path)


def test_pickled_npz_member_refused(tmp_path, arrays):
    np.savez(tmp_path / "o.npz", x=np.array([None] * 10, dtype=object), y=np.zeros(10))
    with pytest.raises(DataError, match=r"o.npz\[x\]: holds pickled"):
        load({"format": "npz", "train": "o.npz"}, tmp_path)


def test_nan_reported_with_location(tmp_path, arrays):
    x = arrays[0].copy()
    x[4, 2] = np.nan
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(DataError, match=r"train x \(.*x.npy\): NaN in sample 4 at position \(2,\)"):
        load(NPY, tmp_path)
    x[4, 2] = -np.inf
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(DataError, match="an infinite value in sample 4"):
        load(NPY, tmp_path)


def test_count_mismatch(tmp_path, arrays):
    np.save(tmp_path / "y.npy", np.zeros(9, np.int64))
    with pytest.raises(DataError, match="x.npy has 10 samples but .*y.npy has 9 labels"):
        load(NPY, tmp_path)


def test_strings_and_wrong_kind_refused(tmp_path, arrays):
    np.save(tmp_path / "x.npy", np.array([["a"] * 3] * 10))
    with pytest.raises(DataError, match="holds <U1 values"):
        load(NPY, tmp_path)
    with pytest.raises(DataError, match="is a single .npy array; use `format: npy`"):
        load({"format": "npz", "train": "y.npy"}, tmp_path)
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="bad.npz"):
        load({"format": "npz", "train": "bad.npz"}, tmp_path)


def test_regression_targets(tmp_path, arrays):
    np.save(tmp_path / "y.npy", np.linspace(0, 1, 20).reshape(10, 2))
    ds = load(NPY, tmp_path, output_shape=(2,), loss="mse")
    assert ds.train[1].shape == (10, 2) and ds.train[1].dtype == np.float32
    with pytest.raises(DataError, match="each sample has 2 target value.s. but the model's output needs 3"):
        load(NPY, tmp_path, output_shape=(3,), loss="mse")


def test_scalar_npy_refused(tmp_path, arrays):
    np.save(tmp_path / "x.npy", np.float64(3.0))
    with pytest.raises(DataError, match="holds a single value"):
        load(NPY, tmp_path)

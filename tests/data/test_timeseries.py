"""Time series: windows, horizon, stride, split by time, train-only statistics, raw series at predict."""
import json

import numpy as np
import pytest

from layerc.data import DataError, inverse_targets, load_data, prepare_inputs
from layerc.data.timeseries import time_splits, windows
from layerc.spec.data import parse_data_spec


def series_file(tmp_path, n=20):
    lines = ["day,value"] + [f"d{i},{i * i}" for i in range(n)]
    (tmp_path / "s.csv").write_text("\r\n".join(lines))
    return np.arange(n, dtype=np.float64) ** 2


def spec(**kw):
    return {"format": "timeseries", "train": "s.csv", "column": "value", "window": 3, "shuffle": False, **kw}


def load(s, tmp_path, input_shape=(3,), output_shape=(1,), loss="mse", seed=0):
    return load_data(s, spec_dir=tmp_path, input_shape=input_shape, output_shape=output_shape, loss_name=loss,
                     seed=seed)


def test_windows_horizon_stride():
    s = parse_data_spec(spec(horizon=2, stride=3))
    x, y = windows(np.arange(12.0), s, 0, 12)
    assert x.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and y.tolist() == [4, 7, 10]


def test_time_splits():
    s = parse_data_spec(spec(test_split=5, validation_split=0.25))
    assert time_splits(s, 20) == {"test": (15, 20), "validation": (12, 15), "train": (3, 12)}


def test_split_by_time_and_stats(tmp_path):
    values = series_file(tmp_path)
    ds = load(spec(test_split=5, validation_split=0.25, standardize=True), tmp_path)
    mean, std = values[:12].mean(), values[:12].std()  # train targets end at step 11
    assert ds.fitted["standardize"]["mean"] == [pytest.approx(mean)]
    (x, y), (xv, yv), (xt, yt) = ds.train, ds.validation, ds.test
    np.testing.assert_allclose(y[:, 0] * std + mean, values[3:12], rtol=1e-5)
    np.testing.assert_allclose(yv[:, 0] * std + mean, values[12:15], rtol=1e-5)
    np.testing.assert_allclose(yt[:, 0] * std + mean, values[15:], rtol=1e-5)
    np.testing.assert_allclose(xt[0] * std + mean, values[12:15], rtol=1e-5)
    np.testing.assert_allclose(inverse_targets(yt, ds.fitted)[:, 0], values[15:], rtol=1e-5)


def test_shuffle_stays_within_train(tmp_path):
    values = series_file(tmp_path)
    a = load(spec(test_split=5, shuffle=True), tmp_path, seed=1)
    b = load(spec(test_split=5, shuffle=True), tmp_path, seed=1)
    np.testing.assert_array_equal(a.train[0], b.train[0])
    assert sorted(a.train[1][:, 0].tolist()) == values[3:15].tolist()
    assert a.test[1][:, 0].tolist() == values[15:].tolist()
    assert a.train[1][:, 0].tolist() != values[3:15].tolist()


def test_reshape_for_recurrent_input(tmp_path):
    series_file(tmp_path)
    assert load(spec(), tmp_path, input_shape=(3, 1)).train[0].shape == (17, 3, 1)
    assert load(spec(), tmp_path, input_shape=(None, 1)).train[0].shape == (17, 3, 1)
    with pytest.raises(DataError, match=r"\(3,\) \(3 values\) but the model's input shape is \(4,\)"):
        load(spec(), tmp_path, input_shape=(4,))


def test_separate_test_file_and_limit(tmp_path):
    series_file(tmp_path)
    (tmp_path / "t.csv").write_text("day,value\n" + "\n".join(f"x,{v}" for v in range(100, 106)))
    ds = load(spec(test="t.csv", limit=4), tmp_path)
    assert len(ds.train[0]) == 4 and ds.test[1][:, 0].tolist() == [103, 104, 105]


def test_errors(tmp_path):
    series_file(tmp_path, n=3)
    with pytest.raises(DataError, match="the series has 3 steps; a window of 3 with horizon 1 needs at least 4"):
        load(spec(), tmp_path)
    (tmp_path / "s.csv").write_text("day,value\na,1\nb,two\n")
    with pytest.raises(DataError, match="line 3, column 'value': 'two' is not a number"):
        load(spec(), tmp_path)
    series_file(tmp_path)
    with pytest.raises(DataError, match="class labels"):
        load(spec(), tmp_path, loss="sparse_categorical_crossentropy")
    with pytest.raises(DataError, match="series column 'temp' is not in the header"):
        load(spec(column="temp"), tmp_path)


def test_prepare_raw_series(tmp_path):
    values = series_file(tmp_path)
    ds = load(spec(test_split=5, standardize=True), tmp_path, input_shape=(3, 1))
    fitted = json.loads(json.dumps(ds.fitted))
    out = prepare_inputs(values[15:].tolist(), None, fitted, (3, 1))
    assert out.shape == (3, 3, 1)
    np.testing.assert_allclose(out[0], ds.test[0][3], rtol=1e-6)
    assert prepare_inputs(np.array([[1, 2, 3], [4, 5, 6]]), None, fitted, (3,)).shape == (2, 3)
    with pytest.raises(DataError, match="needs at least 3 values; got 2"):
        prepare_inputs([1, 2], None, fitted, (3,))

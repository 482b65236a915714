"""load_data end to end: built-in datasets, paths, splits, shuffling, reshaping, targets."""
import json

import numpy as np
import pytest

from layerc.data import DataError, estimate_bytes, load_data, prepare_inputs
from layerc.data.prepare import split_indices

from .helpers import idx_spec, image_set, write_idx


def load(spec, spec_dir=None, input_shape=(4, 4), output_shape=(4,), loss="sparse_categorical_crossentropy",
         seed=0, **kw):
    return load_data(spec, spec_dir=spec_dir, input_shape=input_shape, output_shape=output_shape,
                     loss_name=loss, seed=seed, **kw)


# ---- built-in datasets ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist():
    return load({"dataset": "mnist", "validation_split": 0.1}, input_shape=(28, 28, 1), output_shape=(10,),
                download=False)


def test_mnist(mnist):
    (x, y), (xv, yv), (xt, yt) = mnist.train, mnist.validation, mnist.test
    assert x.shape == (54000, 28, 28, 1) and xv.shape == (6000, 28, 28, 1) and xt.shape == (10000, 28, 28, 1)
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    assert y.dtype == np.int32 and set(np.unique(y)) == set(range(10))
    assert yt[:5].tolist() == [7, 2, 1, 0, 4]  # the canonical test set, in file order
    counts = np.bincount(yv) / len(yv)
    np.testing.assert_allclose(counts, np.bincount(np.concatenate([y, yv])) / 60000, atol=2e-4)  # stratified
    assert mnist.info["sizes"] == {"train": 54000, "validation": 6000, "test": 10000}
    json.dumps(mnist.fitted)


def test_mnist_one_hot_for_categorical_loss():
    ds = load({"dataset": "mnist", "limit": 100}, input_shape=(784,), output_shape=(10,),
              loss="categorical_crossentropy", download=False)
    assert ds.train[0].shape == (100, 784) and ds.train[1].shape == (100, 10)
    assert ds.train[1].dtype == np.float32 and np.all(ds.train[1].sum(axis=1) == 1)
    assert ds.test[1].shape == (10000, 10)


def test_mnist_shape_mismatch_names_both_shapes():
    with pytest.raises(DataError, match=r"shape \(28, 28\) \(784 values\) but the model's input shape is "
                                        r"\(32, 32, 3\)"):
        load({"dataset": "mnist", "limit": 10}, input_shape=(32, 32, 3), output_shape=(10,), download=False)


def test_sms_spam():
    ds = load({"dataset": "sms_spam"}, input_shape=(None,), output_shape=(1,), loss="binary_crossentropy")
    (x, y), (xt, yt) = ds.train, ds.test
    assert len(x) + len(xt) == 5574 and len(xt) == round(0.2 * 5574)
    assert x.dtype == np.int32 and y.shape == (len(x), 1) and y.dtype == np.float32
    assert int(y.sum() + yt.sum()) == 747  # spam = 1
    assert abs(yt.mean() - 747 / 5574) < 1e-3  # stratified
    assert ds.fitted["label_names"] == ["ham", "spam"] and ds.info["label_names"] == ["ham", "spam"]
    assert x.max() < ds.info["vocab_size"] <= 10000
    raw = prepare_inputs(["WINNER!! Claim your FREE prize now", "zzzqqq"], None,
                         json.loads(json.dumps(ds.fitted)), (None,))
    assert raw.shape == (2, x.shape[1]) and raw[1, 0] == 1 and raw[1, 1] == 0


def test_sms_spam_test_split_is_seeded():
    a = load({"dataset": "sms_spam", "max_length": 20}, input_shape=(20,), output_shape=(2,), seed=1)
    b = load({"dataset": "sms_spam", "max_length": 20}, input_shape=(20,), output_shape=(2,), seed=1)
    c = load({"dataset": "sms_spam", "max_length": 20}, input_shape=(20,), output_shape=(2,), seed=2)
    np.testing.assert_array_equal(a.test[0], b.test[0])
    assert not np.array_equal(a.test[0], c.test[0])
    assert a.train[1].dtype == np.int32 and a.train[0].shape[1] == 20


@pytest.mark.parametrize("name, window, steps, test", [
    ("melbourne_temperatures", 30, 3650, 730), ("airline_passengers", 12, 144, 24), ("sunspots", 60, 2820, 264),
])
def test_series_builtins(name, window, steps, test):
    ds = load({"dataset": name, "shuffle": False}, input_shape=(window, 1), output_shape=(1,), loss="mse")
    (x, y), (xt, yt) = ds.train, ds.test
    assert x.shape == (steps - test - window, window, 1) and xt.shape == (test, window, 1)
    assert yt.shape == (test, 1) and y.dtype == np.float32
    assert abs(float(y.mean())) < 0.2 and 0.8 < float(y.std()) < 1.2  # standardised on train statistics
    np.testing.assert_array_equal(x[1:, -1, 0], y[:-1, 0])  # stride 1: each target is the next window's end


def test_melbourne_split_by_time():
    ds = load({"dataset": "melbourne_temperatures", "shuffle": False}, input_shape=(30,), output_shape=(1,),
              loss="mse")
    stats = ds.fitted["standardize"]
    raw = np.loadtxt("datasets/daily-min-temperatures/daily-min-temperatures.csv", delimiter=",", skiprows=1,
                     usecols=1, converters={1: lambda s: float(s.strip('"'))})
    assert np.isclose(stats["mean"][0], raw[:2920].mean()) and np.isclose(stats["std"][0], raw[:2920].std())
    np.testing.assert_allclose(ds.test[1][:, 0] * stats["std"][0] + stats["mean"][0], raw[-730:], atol=1e-4)


# ---- paths ---------------------------------------------------------------------------------

def test_missing_file_lists_paths_tried(tmp_path, monkeypatch):
    extra = tmp_path / "extra"
    monkeypatch.setenv("LAYERC_DATA", str(extra))
    with pytest.raises(DataError) as e:
        load(idx_spec(), spec_dir=tmp_path)
    msg = str(e.value)
    assert "'train-x.gz' not found (tried: " in msg and "\n" not in msg
    assert str(tmp_path / "train-x.gz") in msg and str(extra / "train-x.gz") in msg and "datasets" in msg


def test_search_order(tmp_path, monkeypatch):
    spec_dir, env = tmp_path / "spec", tmp_path / "env"
    spec_dir.mkdir(), env.mkdir()
    image_set(env, n=8)
    monkeypatch.setenv("LAYERC_DATA", str(env))
    assert len(load(idx_spec(), spec_dir=spec_dir).train[0]) == 8  # found in $LAYERC_DATA
    image_set(spec_dir, n=6)
    assert len(load(idx_spec(), spec_dir=spec_dir).train[0]) == 6  # the spec's folder comes first


# ---- splits and shuffling ------------------------------------------------------------------

def test_shuffle_is_seeded(tmp_path):
    image_set(tmp_path, n=40)
    a, b = load(idx_spec(), tmp_path, seed=3), load(idx_spec(), tmp_path, seed=3)
    c = load(idx_spec(), tmp_path, seed=4)
    np.testing.assert_array_equal(a.train[0], b.train[0])
    assert not np.array_equal(a.train[0], c.train[0])
    assert sorted(a.train[0].reshape(40, -1).sum(1)) == sorted(c.train[0].reshape(40, -1).sum(1))


def test_no_shuffle_takes_validation_from_the_end(tmp_path):
    x, y = image_set(tmp_path, n=20)
    ds = load(idx_spec(shuffle=False, validation_split=0.25), tmp_path)
    np.testing.assert_array_equal(ds.train[0], x[:15])
    np.testing.assert_array_equal(ds.validation[0], x[15:])


def test_stratified_split_indices():
    strata = np.array([0] * 90 + [1] * 10)
    kept, held = split_indices(100, 20, np.random.default_rng(0), strata)
    assert len(held) == 20 and np.bincount(strata[held]).tolist() == [18, 2]
    assert np.all(np.diff(kept) > 0) and not set(kept) & set(held)
    kept, held = split_indices(7, 3, np.random.default_rng(0), np.array([0, 0, 0, 1, 1, 2, 2]))
    assert len(held) == 3 and len(kept) == 4


def test_split_leaving_nothing(tmp_path):
    image_set(tmp_path, n=3)
    with pytest.raises(DataError, match="test_split 3 of 3 samples leaves no samples"):
        load(idx_spec(test_split=3), tmp_path)


def test_validation_and_test_sources(tmp_path):
    image_set(tmp_path, n=20)
    image_set(tmp_path, n=6, prefix="val", seed=1)
    image_set(tmp_path, n=5, prefix="test", seed=2)
    ds = load(idx_spec(validation={"x": "val-x.gz", "y": "val-y.gz"}, test={"x": "test-x.gz", "y": "test-y.gz"}),
              tmp_path)
    assert [len(p[0]) for p in (ds.train, ds.validation, ds.test)] == [20, 6, 5]


# ---- preprocessing -------------------------------------------------------------------------

def test_standardize_fitted_on_train_only(tmp_path):
    x = np.concatenate([np.full((10, 2, 2), 10, np.uint8), np.full((10, 2, 2), 200, np.uint8)])
    x[:10, 0, 0] = np.arange(10)
    write_idx(tmp_path / "train-x.gz", x)
    write_idx(tmp_path / "train-y.gz", np.zeros(20, np.uint8))
    ds = load(idx_spec(shuffle=False, validation_split=0.5, standardize=True), tmp_path, input_shape=(4,),
              output_shape=(2,))
    train = x[:10].reshape(10, 4).astype(np.float64)
    assert np.allclose(ds.fitted["standardize"]["mean"], train.mean(0))
    assert ds.fitted["standardize"]["std"][1:] == [1.0, 1.0, 1.0]  # constant features keep std 1
    np.testing.assert_allclose(ds.train[0].mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(ds.validation[0][:, 1:], 190)  # validation uses train statistics
    g = load(idx_spec(shuffle=False, standardize="global", rescale=0.1), tmp_path, input_shape=(4,), output_shape=(2,))
    assert np.isclose(g.fitted["standardize"]["mean"][0], x.mean() * 0.1)
    np.testing.assert_allclose(prepare_inputs(x[:3], None, g.fitted, (4,)), g.train[0][:3], rtol=1e-6)


@pytest.mark.parametrize("input_shape, ok", [
    ((4, 4), True), ((16,), True), ((4, 4, 1), True), ((2, 8), True), ((None, 4), True), ((None, 2), True),
    ((None, 3), False), ((15,), False), ((4, 4, 3), False),
])
def test_reshape_rule(tmp_path, input_shape, ok):
    image_set(tmp_path, n=5)
    if ok:
        x = load(idx_spec(), tmp_path, input_shape=input_shape).train[0]
        assert x.shape[0] == 5 and x.size == 5 * 16
    else:
        with pytest.raises(DataError, match=r"\(4, 4\) \(16 values\) but the model's input shape"):
            load(idx_spec(), tmp_path, input_shape=input_shape)


def test_binary_labels_must_be_zero_or_one(tmp_path):
    image_set(tmp_path, classes=3)
    with pytest.raises(DataError, match="train-y.gz.: label 2 .sample 2. is outside 0..1"):
        load(idx_spec(), tmp_path, output_shape=(1,), loss="binary_crossentropy")


def test_one_hot_conflicts_with_sparse_loss(tmp_path):
    image_set(tmp_path)
    with pytest.raises(DataError, match="one_hot"):
        load(idx_spec(one_hot=True), tmp_path)
    ds = load(idx_spec(one_hot=True), tmp_path, loss=None)
    assert ds.train[1].shape == (20, 4) and ds.fitted["task"] == "categorical"


def test_task_inferred_without_loss(tmp_path):
    image_set(tmp_path, classes=2)
    assert load(idx_spec(), tmp_path, output_shape=(1,), loss=None).train[1].shape == (20, 1)
    assert load(idx_spec(), tmp_path, output_shape=(5,), loss=None).train[1].dtype == np.int32


def test_bad_spec_is_a_data_error():
    with pytest.raises(DataError, match="data spec: .*validation_split"):
        load({"dataset": "mnist", "validation_split": 2})


def test_estimate_bytes(tmp_path):
    assert estimate_bytes({"dataset": "mnist"}, spec_dir=None) == 70000 * (784 * 4 + 4)
    image_set(tmp_path, n=20)
    assert estimate_bytes(idx_spec(limit=5), spec_dir=tmp_path) == 5 * (16 * 4 + 4)
    assert estimate_bytes({"dataset": "melbourne_temperatures"}, spec_dir=None) > 3650 * 30 * 4

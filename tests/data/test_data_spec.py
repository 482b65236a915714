"""The `data:` spec models: every format, the built-ins, and the errors a user can make."""
import pytest
from pydantic import ValidationError

from layerc.spec.data import (
    BuiltinData, CsvData, IdxData, NpyData, NpzData, Source, TextData, TimeseriesData, parse_data_spec,
)

IDX = {"format": "idx", "train": {"x": "a.gz", "y": "b.gz"}}


def errors(value):
    with pytest.raises(ValidationError) as e:
        parse_data_spec(value)
    return e.value.errors(include_url=False)


def test_spec_package_does_not_import_numpy():
    import subprocess
    import sys
    code = "import sys, layerc.spec.data; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("value, model", [
    ({"dataset": "mnist"}, BuiltinData),
    ({"dataset": "sms_spam", "max_length": 50, "vocab_size": 2000}, BuiltinData),
    ({"dataset": "sunspots", "window": 24, "validation_split": 0.1}, BuiltinData),
    ({**IDX, "test": {"x": "c", "y": "d"}, "rescale": 0.00392156862745098, "validation_split": 0.1,
      "limit": 10000}, IdxData),
    ({"format": "csv", "train": "h.csv", "target": "price", "features": ["a", 2], "missing": "fill",
      "fill_value": -1.0, "standardize": True, "test_split": 0.2}, CsvData),
    ({"format": "csv", "train": "h.csv", "target": [0, 1], "header": False, "delimiter": ";"}, CsvData),
    ({"format": "npy", "train": {"x": "x.npy", "y": "y.npy"}, "one_hot": True}, NpyData),
    ({"format": "npz", "train": {"path": "m.npz", "x_key": "x_train", "y_key": "y_train"},
      "test": {"path": "m.npz", "x_key": "x_test", "y_key": "y_test"}}, NpzData),
    ({"format": "text", "train": "t.tsv", "labels": ["ham", "spam"], "padding": "pre",
      "truncating": "pre", "max_length": 40, "vocab_size": 3}, TextData),
    ({"format": "timeseries", "train": "s.csv", "column": "Temp", "window": 30, "horizon": 2,
      "stride": 3, "test_split": 730, "standardize": "global"}, TimeseriesData),
])
def test_valid_specs(value, model):
    spec = parse_data_spec(value)
    assert type(spec) is model
    assert parse_data_spec(spec) is spec


def test_source_shorthand_and_defaults():
    spec = parse_data_spec({"format": "text", "train": "t.tsv"})
    assert spec.train == Source(path="t.tsv")
    assert (spec.shuffle, spec.validation_split, spec.limit, spec.vocab_size) == (True, 0.0, None, 10000)
    assert (spec.padding, spec.truncating, spec.lowercase, spec.separator) == ("post", "post", True, "\t")


def test_absolute_paths_allowed():
    assert parse_data_spec({**IDX, "train": {"x": "/data/a.gz", "y": "/data/b.gz"}}).train.x == "/data/a.gz"


def test_neither_dataset_nor_format():
    (err,) = errors({"validation_split": 0.1})
    assert "dataset" in err["msg"] and "format" in err["msg"]


def test_unknown_format():
    (err,) = errors({"format": "parquet", "train": "a"})
    assert "idx, csv" in err["msg"]


def test_dataset_and_format_together():
    (err,) = errors({"dataset": "mnist", "format": "idx"})
    assert "not both" in err["msg"]


def test_unknown_dataset():
    (err,) = errors({"dataset": "cifar"})
    assert err["type"] == "literal_error" and err["loc"][-1] == "dataset"


@pytest.mark.parametrize("key, value", [
    ("validation_split", 1.0), ("validation_split", -0.1), ("validation_split", "0.1"),
    ("limit", 0), ("limit", -5), ("limit", 1.5), ("test_split", 0), ("test_split", 1.0),
    ("shuffle", "yes"), ("rescale", float("nan")), ("rescale", "1/255"), ("standardize", "zscore"),
])
def test_ranges(key, value):
    errs = errors({**IDX, key: value})
    assert all(key in err["loc"] for err in errs)


def test_format_specific_key_is_unknown_elsewhere():
    (err,) = errors({**IDX, "vocab_size": 100})
    assert err["type"] == "extra_forbidden" and err["loc"][-1] == "vocab_size"


def test_builtin_overrides_must_apply():
    assert "`window` does not apply to dataset mnist" in errors({"dataset": "mnist", "window": 5})[0]["msg"]
    assert "do not apply" in errors({"dataset": "sms_spam", "window": 5, "stride": 2})[0]["msg"]
    assert "test_split" in errors({"dataset": "mnist", "test_split": 0.1})[0]["msg"]
    assert "one_hot" in errors({"dataset": "sunspots", "one_hot": True})[0]["msg"]


@pytest.mark.parametrize("value, words", [
    ({**IDX, "validation": {"x": "a", "y": "b"}, "validation_split": 0.2}, "not both"),
    ({**IDX, "test": {"x": "a", "y": "b"}, "test_split": 0.2}, "not both"),
    ({"format": "idx", "train": "a.gz"}, "needs `x:` and `y:`"),
    ({"format": "csv", "train": {"x": "a", "y": "b"}, "target": 0}, "is one file"),
    ({"format": "idx", "train": {"x": "a"}}, "labels file `y`"),
    ({"format": "idx", "train": {"path": "a", "x": "b", "y": "c"}}, "one file"),
    ({"format": "csv", "train": {"path": "a", "x_key": "k"}, "target": 0}, "npz"),
    ({"format": "csv", "train": "a", "target": []}, "at least one"),
])
def test_inconsistent_keys(value, words):
    assert words in errors(value)[0]["msg"]


@pytest.mark.parametrize("value", [
    {"format": "csv", "train": "a.csv"},  # target missing
    {"format": "timeseries", "train": "a.csv", "column": "x"},  # window missing
    {"format": "csv", "train": "a", "target": 0, "delimiter": ";;"},
    {"format": "csv", "train": "a", "target": 0, "missing": "zero"},
    {"format": "text", "train": "a", "vocab_size": 2},
    {"format": "text", "train": "a", "padding": "left"},
    {"format": "timeseries", "train": "a", "column": -1, "window": 3},
    {"format": "timeseries", "train": "a", "column": 0, "window": 3, "horizon": 0},
    {"format": "npy", "train": {"x": "a", "y": "b"}, "x_dtype": "int8"},
    {"format": "idx", "train": {"x": "", "y": "b"}},
])
def test_invalid_values(value):
    assert errors(value)

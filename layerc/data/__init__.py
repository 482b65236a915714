"""Data loading: built-in datasets and files in IDX, CSV, NPY/NPZ, text and time-series formats.

    ds = load_data(spec.data, spec_dir=..., input_shape=(28, 28, 1), output_shape=(10,),
                   loss_name="sparse_categorical_crossentropy", seed=0)
    x, y = ds.train
    x_new = prepare_inputs(["free prize, call now"], spec.data, ds.fitted, input_shape)

The names below are imported on first use, so `validate` and `summary` can peek at a
spec's data (data/peek.py) without importing NumPy.
"""
from .errors import DataError

_FROM = {"estimate_bytes": "estimate", "inverse_targets": "inputs", "prepare_inputs": "inputs",
         "read_input_file": "inputs", "Dataset": "loader", "load_data": "loader", "resolve_spec": "loader",
         "load_named_data": "loader"}


def __getattr__(name):
    if name in _FROM:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_FROM[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DataError", "Dataset", "estimate_bytes", "inverse_targets", "load_data", "prepare_inputs",
           "read_input_file", "resolve_spec"]

"""Data loading: built-in datasets and files in IDX, CSV, NPY/NPZ, text and time-series formats.

    ds = load_data(spec.data, spec_dir=..., input_shape=(28, 28, 1), output_shape=(10,),
                   loss_name="sparse_categorical_crossentropy", seed=0)
    x, y = ds.train
    x_new = prepare_inputs(["free prize, call now"], spec.data, ds.fitted, input_shape)
"""
from .errors import DataError
from .estimate import estimate_bytes
from .inputs import inverse_targets, prepare_inputs, read_input_file
from .loader import Dataset, load_data, resolve_spec

__all__ = ["DataError", "Dataset", "estimate_bytes", "inverse_targets", "load_data", "prepare_inputs",
           "read_input_file", "resolve_spec"]

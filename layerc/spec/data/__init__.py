"""The `data:` section: a built-in dataset by name, or files in a given format.

    data: {dataset: mnist, validation_split: 0.1}
    data: {format: idx, train: {x: a-images.gz, y: a-labels.gz}, test: {...}, rescale: 0.0039}
    data: {format: csv, train: houses.csv, target: price, standardize: true, test_split: 0.2}
    data: {format: images, train: photos/, image_size: [64, 64], validation_split: 0.2}

A file source is a path (`train: file.csv`) or a mapping (`{path: ...}` for one file,
`{x: ..., y: ...}` for separate feature and label files, `x_key`/`y_key` for the array
names inside an .npz). Relative paths are looked up beside the spec file, then in
./datasets, then in each folder of $LAYERC_DATA.

The format-specific keys live on one model per format; `_data_kind` picks the model
from `dataset` or `format`, so a key that does not belong to the chosen format is
reported as unknown.

One module per format (`builtin.py`, `csv.py`, ...), as the layer families are, imported when a
spec first names its format: `DATA_MODELS["csv"]` imports `csv.py` (and the bases it stands on)
only, so a spec pays for the one model its section uses (`DataSpec`, the whole union, imports
them all: for the located errors of a section that does not validate so, and the schema).
`from layerc.spec.data import CsvData` works as for a plain module.
"""
from __future__ import annotations

import functools

from ..lazy import LazyModels

BUILTIN_DATASETS = ("mnist", "sms_spam", "melbourne_temperatures", "airline_passengers", "sunspots",
                    "iris", "diabetes")
TEXT_DATASETS = ("sms_spam",)
SERIES_DATASETS = ("melbourne_temperatures", "airline_passengers", "sunspots")
IMAGE_DATASETS = ("mnist",)
STREAMED_FORMATS = ("images", "text_files")  # read one file a sample, so they can stream

# DataSpec's tags -> (module, model), in the union's order
DATA_MODELS = LazyModels(__name__, {
    "builtin": ("builtin", "BuiltinData"), "idx": ("pairs", "IdxData"), "csv": ("csv", "CsvData"),
    "npy": ("pairs", "NpyData"), "npz": ("npz", "NpzData"), "text": ("text", "TextData"),
    "timeseries": ("timeseries", "TimeseriesData"), "images": ("images", "ImagesData"),
    "text_files": ("text_files", "TextFilesData"),
})
# the other names of the modules, for `from layerc.spec.data import ...`
_MODULE_OF = {
    **{name: module for module, name in DATA_MODELS.places.values()},
    **dict.fromkeys(("Source", "_Common", "FilePath", "Column", "OpenFraction", "Split", "Number", "Side",
                     "Standardize", "Columns"), "base"),
    **dict.fromkeys(("_Numeric", "_Pairs", "_OneFile", "_Folders"), "files"),
    "VocabOptions": "text", "TextOptions": "text", "SeriesOptions": "timeseries",
}


def _data_kind(value) -> str | None:
    if isinstance(value, dict):
        return "builtin" if "dataset" in value else value.get("format")
    from .builtin import BuiltinData

    if isinstance(value, BuiltinData):
        return "builtin"
    return getattr(value, "format", None)


@functools.cache
def data_spec():
    """The discriminated union of every data model (imports every format)."""
    from typing import Annotated, Union

    from pydantic import Discriminator, Tag

    return Annotated[
        Union[tuple(Annotated[DATA_MODELS[kind], Tag(kind)] for kind in DATA_MODELS)],
        Discriminator(
            _data_kind,
            custom_error_type="data_kind",
            custom_error_message="needs `dataset: <name>` (mnist, sms_spam, melbourne_temperatures, "
                                 "airline_passengers, sunspots) or `format: <format>` (idx, csv, npy, npz, "
                                 "text, timeseries, images, text_files)",
        ),
    ]


@functools.cache
def _adapter():
    from pydantic import TypeAdapter

    return TypeAdapter(data_spec())  # built on first use: schema building costs import time


def _validated(value) -> bool:
    """Whether `value` is already a data model (of the union: a section, not a base)."""
    if isinstance(value, dict):
        return False
    from .base import _Common

    return isinstance(value, _Common) and _data_kind(value) in DATA_MODELS


def parse_data_spec(value):
    """Validate a `data:` mapping (or pass a validated one through); raises pydantic's ValidationError."""
    if _validated(value):
        return value
    return _adapter().validate_python(value)


def data_by_kind(value):
    """A `data:` mapping validated by the one model its `dataset`/`format` names, building only
    that one; None when it does not validate so (DataSpec then reports, with its messages)."""
    from pydantic import ValidationError

    kind = _data_kind(value) if isinstance(value, dict) else None
    if not isinstance(kind, str) or kind not in DATA_MODELS:
        return None
    try:
        return DATA_MODELS[kind].model_validate(value)
    except ValidationError:
        return None


def __getattr__(name: str):
    if name in _MODULE_OF:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    if name == "DataSpec":
        return data_spec()
    if name == "FileData":
        from typing import Union

        return Union[tuple(DATA_MODELS[kind] for kind in DATA_MODELS if kind != "builtin")]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

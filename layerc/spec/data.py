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
"""

import functools

from typing import Annotated, Literal, Optional, Union

from pydantic import (
    Discriminator, Field, StrictBool, StrictInt, StrictStr, Tag, TypeAdapter, ValidationError, model_validator,
)

from .layers import Fraction, Name, PosInt, Strict

BUILTIN_DATASETS = ("mnist", "sms_spam", "melbourne_temperatures", "airline_passengers", "sunspots",
                    "iris", "diabetes")
TEXT_DATASETS = ("sms_spam",)
SERIES_DATASETS = ("melbourne_temperatures", "airline_passengers", "sunspots")
IMAGE_DATASETS = ("mnist",)
STREAMED_FORMATS = ("images", "text_files")  # read one file a sample, so they can stream

FilePath = Annotated[StrictStr, Field(min_length=1)]
Column = Union[Annotated[StrictInt, Field(ge=0)], Annotated[StrictStr, Field(min_length=1)]]
OpenFraction = Annotated[float, Field(gt=0.0, lt=1.0, strict=True)]
Split = Union[PosInt, OpenFraction]  # a count of samples (time steps for series) or a fraction
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Side = Literal["pre", "post"]
Standardize = Union[StrictBool, Literal["feature", "global"]]


class Source(Strict):
    """Where one split's samples are: one file (`path`) or a features/labels pair (`x`, `y`)."""

    path: Optional[FilePath] = Field(default=None, description="one file (or folder) holding the samples")
    x: Optional[FilePath] = Field(default=None, description="the features file")
    y: Optional[FilePath] = Field(default=None, description="the labels file")
    x_key: Optional[StrictStr] = Field(default=None, description="the features array's name inside an .npz")
    y_key: Optional[StrictStr] = Field(default=None, description="the labels array's name inside an .npz")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value):
        return {"path": value} if isinstance(value, str) else value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        schema = handler.resolve_ref_schema(handler(core_schema))
        return {"anyOf": [{"type": "string", "minLength": 1, "description": "one file (or folder): `path`"},
                          dict(schema)]}

    @model_validator(mode="after")
    def _one_form(self):
        if (self.path is None) == (self.x is None):
            raise ValueError("a source is one file (`path`) or a pair of files (`x` and `y`)")
        if self.x is not None and self.y is None:
            raise ValueError("`x` needs its labels file `y`")
        if self.path is None and self.y is not None and self.x is None:
            raise ValueError("`y` needs its features file `x`")
        if (self.x_key or self.y_key) and self.path is None:
            raise ValueError("`x_key`/`y_key` name arrays inside one .npz file given as `path`")
        return self


class _Common(Strict):
    """Keys every data section takes."""

    validation_split: Fraction = 0.0
    validation: Optional[Source] = None
    test: Optional[Source] = None
    test_split: Optional[Split] = None
    shuffle: StrictBool = True  # seeded from the spec's seed
    limit: Optional[PosInt] = None  # the first N training samples
    stream: Optional[StrictBool] = None  # read from disk as training goes; default: when it does not fit memory

    @model_validator(mode="after")
    def _one_of_each(self):
        if self.validation is not None and self.validation_split > 0:
            raise ValueError("give `validation` or `validation_split`, not both")
        if self.stream and getattr(self, "format", None) not in STREAMED_FORMATS:
            raise ValueError(f"`stream` applies to {' and '.join(f'format: {f}' for f in STREAMED_FORMATS)}, "
                             "which reads one file a sample; this data is read whole")
        if self.test is not None and self.test_split is not None:
            raise ValueError("give `test` or `test_split`, not both")
        return self

    def sources(self) -> dict[str, Source]:
        """The file sources given, by split name."""
        out = {"train": getattr(self, "train", None), "validation": self.validation, "test": self.test}
        return {k: v for k, v in out.items() if v is not None}


class _Numeric(_Common):
    rescale: Optional[Number] = None  # x * rescale, before standardize
    standardize: Standardize = False  # statistics fitted on the training part only


class _Pairs(_Numeric):
    """Formats whose samples come as a features file and a labels file."""

    train: Source
    one_hot: StrictBool = False

    @model_validator(mode="after")
    def _pairs(self):
        for name, src in self.sources().items():
            if src.x is None:
                raise ValueError(f"`{name}` of format {self.format} needs `x:` and `y:` files")
        return self


class IdxData(_Pairs):
    format: Literal["idx"]


class NpyData(_Pairs):
    format: Literal["npy"]
    x_dtype: Literal["float32", "int32"] = "float32"


class _OneFile(_Common):
    train: Source

    @model_validator(mode="after")
    def _one_file(self):
        for name, src in self.sources().items():
            if src.path is None:
                raise ValueError(f"`{name}` of format {self.format} is one file: `{name}: file`")
            if (src.x_key or src.y_key) and self.format != "npz":
                raise ValueError("`x_key`/`y_key` apply to the npz format only")
        return self


class NpzData(_OneFile, _Numeric):
    """An .npz archive: arrays `x` and `y`; for a model with several inputs or outputs, one
    array per input and per output, named after them (`x_keys`/`y_keys` map a model input or
    output to the file's own array name)."""

    format: Literal["npz"]
    one_hot: StrictBool = False
    x_dtype: Literal["float32", "int32"] = "float32"
    x_keys: Optional[dict[Name, StrictStr]] = None
    y_keys: Optional[dict[Name, StrictStr]] = None

    def check_names(self, inputs: list[str], outputs: list[str]) -> list[tuple]:
        """(path, message, hint) for x_keys/y_keys that name no model input/output, or that a
        model with one input and one output does not take."""
        if (self.x_keys or self.y_keys) and len(inputs) == 1 and len(outputs) == 1:
            key = "x_keys" if self.x_keys else "y_keys"
            return [(("data", key), f"`{key}` names the arrays of a model with several inputs or outputs",
                     "name this model's arrays with `x_key`/`y_key` in the source")]
        problems = []
        for key, names, what in (("x_keys", inputs, "input"), ("y_keys", outputs, "output")):
            for name in getattr(self, key) or {}:
                if name not in names:
                    problems.append((("data", key, name), f"`data.{key}` names {name!r}, which is no model "
                                     f"{what}", f"{what}s: {', '.join(names)}"))
        return problems


Columns = Union[Column, list[Column]]


class CsvData(_OneFile, _Numeric):
    """A CSV table; for a model with several inputs or outputs, `features` and `target` map each
    model input/output to its columns (`features: {a: [c1, c2], b: [c3]}`, `target: {kind: species}`)."""

    format: Literal["csv"]
    target: Union[Columns, dict[Name, Columns]]
    features: Optional[Union[Annotated[list[Column], Field(min_length=1)], dict[Name, list[Column]]]] = None
    header: StrictBool = True
    delimiter: StrictStr = Field(default=",", min_length=1, max_length=1)
    missing: Literal["error", "drop", "fill"] = "error"
    fill_value: Number = 0.0
    labels: Optional[list[StrictStr]] = Field(default=None, min_length=1)  # class names, id order
    one_hot: StrictBool = False

    @model_validator(mode="after")
    def _targets(self):
        if isinstance(self.target, list) and not self.target:
            raise ValueError("`target` names at least one column")
        return self

    def single(self) -> "CsvData":
        """This section with a one-key `features`/`target` mapping (a single-input, single-output
        model's) in the list/column form."""
        update = {k: next(iter(v.values())) for k in ("features", "target")
                  if isinstance(v := getattr(self, k), dict) and len(v) == 1}
        return self.model_copy(update=update) if update else self

    def check_names(self, inputs: list[str], outputs: list[str]) -> list[tuple]:
        """(path, message, hint) where the `features`/`target` mappings do not name the model's
        inputs/outputs, each with at least one column (or a model with several needs them)."""
        from .diagnostics import did_you_mean

        problems = []
        for key, names, what, given in (("features", inputs, "input", self.features),
                                         ("target", outputs, "output", self.target)):
            if not isinstance(given, dict):
                if len(names) > 1:
                    problems.append((("data", key), f"a model with several {what}s names the columns of each: "
                                     f"`{key}: {{{names[0]}: [...], {names[1]}: [...]}}`",
                                     f"{what}s: {', '.join(names)}"))
                continue
            for name, cols in given.items():
                if name not in names:
                    problems.append((("data", key, name), f"`data.{key}` names {name!r}, which is no model {what}",
                                     did_you_mean(name, names) or f"{what}s: {', '.join(names)}"))
                elif cols == []:
                    problems.append((("data", key, name), f"{what} {name!r} has no columns", None))
            missing = [n for n in names if n not in given]
            if missing and not problems:
                problems.append((("data", key), f"`data.{key}` gives no columns for {what} {missing[0]!r}",
                                 f"add `{missing[0]}: [...]`"))
        return problems


class VocabOptions(Strict):
    """How texts become padded token ids (the text and text_files formats)."""

    lowercase: StrictBool = True
    vocab_size: Annotated[StrictInt, Field(ge=3)] = 10000  # ids 0 (pad) and 1 (out of vocabulary) included
    max_length: Optional[PosInt] = None  # default: the model's input length, else the longest text
    padding: Side = "post"
    truncating: Side = "post"


class TextOptions(VocabOptions):
    separator: StrictStr = Field(default="\t", min_length=1)  # between the label and the text
    labels: Optional[list[StrictStr]] = Field(default=None, min_length=1)  # class names, id order


class _Folders(_OneFile):
    """Files in one subfolder per class, as Keras's `image_dataset_from_directory` and
    `text_dataset_from_directory` read them: classes are the sorted subfolder names (or
    `class_names`, in that order), files sorted within each."""

    class_names: Optional[list[StrictStr]] = Field(default=None, min_length=1)
    label_mode: Optional[Literal["int", "categorical", "binary"]] = None  # default: the form the loss takes
    follow_links: StrictBool = False
    bad_files: Literal["error", "skip"] = "error"  # skip: train without the files that cannot be read


class ImagesData(_Folders, _Numeric):
    """Image files (JPEG, PNG, BMP, GIF's first frame): a folder with one subfolder per class, or
    a CSV file listing each image's path (relative to the CSV) and label."""

    format: Literal["images"]
    image_size: Annotated[list[PosInt], Field(min_length=2, max_length=2)] = [256, 256]  # height, width
    color_mode: Literal["grayscale", "rgb", "rgba"] = "rgb"
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    crop_to_aspect_ratio: StrictBool = False
    pad_to_aspect_ratio: StrictBool = False
    path_column: Column = "path"  # a CSV listing's columns
    label_column: Column = "label"

    @model_validator(mode="after")
    def _one_fit(self):
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError("give `crop_to_aspect_ratio` or `pad_to_aspect_ratio`, not both")
        return self

    def channels(self) -> int:
        return {"grayscale": 1, "rgb": 3, "rgba": 4}[self.color_mode]


class TextFilesData(_Folders, VocabOptions):
    """Text documents (.txt, UTF-8) in one subfolder per class."""

    format: Literal["text_files"]


class TextData(_OneFile, TextOptions):
    format: Literal["text"]
    one_hot: StrictBool = False


class SeriesOptions(Strict):
    window: PosInt  # past values per sample
    horizon: PosInt = 1  # the target is this many steps after the window's last value
    stride: PosInt = 1  # steps between consecutive windows


class TimeseriesData(_OneFile, _Numeric, SeriesOptions):
    format: Literal["timeseries"]
    column: Column
    header: StrictBool = True
    delimiter: StrictStr = Field(default=",", min_length=1, max_length=1)


class BuiltinData(_Common):
    """A shipped dataset with its standard preprocessing; keys given here override it."""

    dataset: Literal[BUILTIN_DATASETS]  # type: ignore[valid-type]
    one_hot: StrictBool = False
    rescale: Optional[Number] = None
    standardize: Optional[Standardize] = None
    vocab_size: Optional[Annotated[StrictInt, Field(ge=3)]] = None
    max_length: Optional[PosInt] = None
    lowercase: Optional[StrictBool] = None
    padding: Optional[Side] = None
    truncating: Optional[Side] = None
    window: Optional[PosInt] = None
    horizon: Optional[PosInt] = None
    stride: Optional[PosInt] = None

    @model_validator(mode="before")
    @classmethod
    def _not_both(cls, value):
        if isinstance(value, dict) and "format" in value:
            raise ValueError("give `dataset: <name>` or `format: <format>`, not both")
        return value

    @model_validator(mode="after")
    def _applies(self):
        given = self.model_fields_set
        wrong = []
        if self.dataset not in TEXT_DATASETS:
            wrong += [k for k in ("vocab_size", "max_length", "lowercase", "padding", "truncating") if k in given]
        if self.dataset not in SERIES_DATASETS:
            wrong += [k for k in ("window", "horizon", "stride") if k in given]
        if self.dataset in TEXT_DATASETS:
            wrong += [k for k in ("rescale", "standardize") if k in given]
        if self.dataset in SERIES_DATASETS and "one_hot" in given:
            wrong.append("one_hot")
        if self.dataset in IMAGE_DATASETS:
            wrong += [k for k in ("test", "test_split") if k in given]
        if wrong:
            keys = ", ".join(f"`{k}`" for k in wrong)
            raise ValueError(f"{keys} {'does' if len(wrong) == 1 else 'do'} not apply to dataset {self.dataset}")
        return self


def _data_kind(value) -> str | None:
    if isinstance(value, dict):
        return "builtin" if "dataset" in value else value.get("format")
    if isinstance(value, BuiltinData):
        return "builtin"
    return getattr(value, "format", None)


DataSpec = Annotated[
    Union[
        Annotated[BuiltinData, Tag("builtin")],
        Annotated[IdxData, Tag("idx")],
        Annotated[CsvData, Tag("csv")],
        Annotated[NpyData, Tag("npy")],
        Annotated[NpzData, Tag("npz")],
        Annotated[TextData, Tag("text")],
        Annotated[TimeseriesData, Tag("timeseries")],
        Annotated[ImagesData, Tag("images")],
        Annotated[TextFilesData, Tag("text_files")],
    ],
    Discriminator(
        _data_kind,
        custom_error_type="data_kind",
        custom_error_message="needs `dataset: <name>` (mnist, sms_spam, melbourne_temperatures, "
                             "airline_passengers, sunspots) or `format: <format>` (idx, csv, npy, npz, "
                             "text, timeseries, images, text_files)",
    ),
]

FileData = Union[IdxData, CsvData, NpyData, NpzData, TextData, TimeseriesData, ImagesData, TextFilesData]


@functools.cache
def _adapter() -> TypeAdapter:
    return TypeAdapter(DataSpec)  # built on first use: schema building costs import time


def parse_data_spec(value):
    """Validate a `data:` mapping (or pass a validated one through); raises pydantic's ValidationError."""
    if isinstance(value, (BuiltinData, IdxData, CsvData, NpyData, NpzData, TextData, TimeseriesData, ImagesData,
                          TextFilesData)):
        return value
    return _adapter().validate_python(value)


DATA_MODELS = {"builtin": BuiltinData, "idx": IdxData, "csv": CsvData, "npy": NpyData, "npz": NpzData,
               "text": TextData, "timeseries": TimeseriesData, "images": ImagesData,
               "text_files": TextFilesData}  # DataSpec's tags


def data_by_kind(value):
    """A `data:` mapping validated by the one model its `dataset`/`format` names, building only
    that one; None when it does not validate so (DataSpec then reports, with its messages)."""
    kind = _data_kind(value) if isinstance(value, dict) else None
    if not isinstance(kind, str) or kind not in DATA_MODELS:
        return None
    try:
        return DATA_MODELS[kind].model_validate(value)
    except ValidationError:
        return None

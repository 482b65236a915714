"""What a spec's data will give the model, from file headers and the data settings alone,
checked against the model's input, output and Embedding layers: located errors before any
data is loaded.

    diagnostics = data_diagnostics(spec, model)   # [] when everything fits, or nothing is known

Read: the IDX and .npy headers, the .npz members' .npy headers, a CSV file's header and first
rows, an image or text folder's listing (no file in it is opened); the built-ins are known
(MNIST's 28x28 images of the digits 0-9, the text and series settings). A data file found in
no data folder is not checked: a spec is validated where its data may not be (in CI, before a
download); training then reports the file. This module and the built-in path import no NumPy
(`layerc summary` stays fast); the file readers do.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError, Located

SPARSE, CATEGORICAL, BINARY, REGRESSION = "sparse", "categorical", "binary", "regression"
CSV_ROWS = 5  # rows read to find a CSV file's columns


def shape_text(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def check_fit(sample: tuple, shape: tuple, what: str) -> bool:
    """Whether samples of shape `sample` must be reshaped to the input `shape` (28x28 -> 28x28x1);
    raises DataError when their sizes disagree. `None` in `shape` takes any size."""
    if len(sample) == len(shape) and all(d is None or d == s for d, s in zip(shape, sample)):
        return False
    size = math.prod(sample)
    known = [d for d in shape if d is not None]
    unknown = len(shape) - len(known)
    step = math.prod(known)
    if (unknown == 0 and size == step) or (unknown == 1 and step and size % step == 0 and size):
        return True
    raise DataError(f"{what}: each sample has shape {shape_text(sample)} ({size} values) but the model's "
                    f"input shape is {shape_text(shape)}")


LABEL_MODES = {"int": SPARSE, "categorical": CATEGORICAL, "binary": BINARY}  # Keras's label_mode: the form it gives
FORMS = {SPARSE: "class ids", CATEGORICAL: "one-hot labels", BINARY: "0/1 labels", REGRESSION: "numbers"}


def label_mode_mismatch(mode: str, task: str, loss: str) -> str:
    return (f"label_mode {mode} gives {FORMS[LABEL_MODES[mode]]} but the loss {loss} takes {FORMS[task]} "
            "(leave label_mode out: the labels then take the loss's form)")


def loss_task(loss_name: str | None) -> str | None:
    """The label form a loss takes, or None when no loss is given."""
    if not loss_name:
        return None
    key = loss_name.lower().replace("_", "")
    if "sparsecategorical" in key:
        return SPARSE
    if "categorical" in key:
        return CATEGORICAL
    if "binary" in key:
        return BINARY
    return REGRESSION


@dataclass
class Peek:
    """What the data gives the model, as far as is known without loading it.

    Attributes:
        what: the data's name for messages (`dataset mnist`, a file's path).
        sample: each sample's shape before it is fitted to the model's input (None: unknown).
        integer: the inputs are integer ids (text, `x_dtype: int32`).
        target: each sample's target shape as stored (() for one label; None: unknown).
        classes: the class names in id order, where the data has them.
        named: the labels are class names (text, CSV `labels:`), which a regression loss cannot take.
        vocab_size: the largest token id + 1 of text data.
        series: a time series (regression targets).
    """

    what: str
    sample: tuple | None = None
    integer: bool = False
    target: tuple | None = ()
    classes: list | None = None
    named: bool = False
    vocab_size: int | None = None
    series: bool = False


class _Missing(Exception):
    """A data file in no data folder."""


_Located = Located  # a data error that belongs to one key of the `data:` section


def peek(data, spec_dir: Path | None, input_shape: tuple) -> Peek | None:
    """What `data` (a validated `data:` section) gives, or None when a file it needs is in no
    data folder. Raises DataError for a file whose header cannot be read."""
    from ..spec.data import BuiltinData
    from . import builtin

    if isinstance(data, BuiltinData):
        return _builtin(data, tuple(input_shape))
    try:
        return _READERS[data.format](data, data.train, spec_dir, tuple(input_shape))
    except _Missing:
        return None


def _builtin(data, input_shape) -> Peek:
    """From the built-in's settings and the keys given beside it (not validated again through
    `builtin.expand`, which would build a format's model: start-up time for `summary`)."""
    from . import builtin

    name, base = data.dataset, builtin.BUILTINS[data.dataset]
    what = f"dataset {name}"

    def setting(key):
        value = getattr(data, key, None)
        return base.get(key) if value is None else value

    if base["format"] == "idx":  # shipped, MD5-checked: its shapes are known
        return Peek(what, builtin.SAMPLE_SHAPES[name], classes=builtin.CLASS_NAMES[name])
    if base["format"] == "text":
        return _text_peek(setting("max_length"), base["labels"], setting("vocab_size"), what, input_shape)
    if base["format"] == "csv":  # a shipped table: its header and first rows, as a user's CSV
        csv_spec = builtin.expand(data)
        peek = _READERS["csv"](csv_spec, csv_spec.train, None, input_shape)
        peek.what = what
        return peek
    return Peek(what, (setting("window"),), series=True)


def _file(name: str, spec_dir) -> Path:
    from .paths import candidates

    for p in candidates(name, spec_dir):
        if p.is_file():
            return p
    raise _Missing(name)


def _idx(spec, src, spec_dir, input_shape) -> Peek:
    from .idx import idx_header

    xp, yp = _file(src.x, spec_dir), _file(src.y, spec_dir)
    return Peek(str(xp), tuple(idx_header(xp)[1][1:]), target=tuple(idx_header(yp)[1][1:]))


def _npy_header(path: Path) -> tuple:
    from ..npzfile import NpzError, read_header
    from .arrays import sniff

    sniff(path)
    with open(path, "rb") as f:
        try:
            shape = read_header(f)[0]
        except NpzError as e:
            raise DataError(f"{path}: {e}") from None
    if not shape:
        raise DataError(f"{path}: holds a single value; an array of samples is needed")
    return shape


def _npy(spec, src, spec_dir, input_shape) -> Peek:
    xp, yp = _file(src.x, spec_dir), _file(src.y, spec_dir)
    return Peek(str(xp), _npy_header(xp)[1:], spec.x_dtype == "int32", _npy_header(yp)[1:])


def _npz(spec, src, spec_dir, input_shape) -> Peek:
    from ..npzfile import NpzError, member_headers
    from .arrays import sniff

    path = _file(src.path, spec_dir)
    keys = (src.x_key or "x", src.y_key or "y")
    sniff(path)
    try:
        found = member_headers(path, keys)
    except NpzError as e:
        raise DataError(f"{path}: {e}") from None
    for key in keys:
        if key not in found:
            raise _Located(("data", "train"), f"{path}: has no array {key!r}")
        if not found[key][0]:
            raise DataError(f"{path}[{key}]: holds a single value; an array of samples is needed")
    (x, _), (y, _) = found[keys[0]], found[keys[1]]
    return Peek(f"{path}[{keys[0]}]", x[1:], spec.x_dtype == "int32", y[1:])


def _columns(spec, path: Path, cols, key: str) -> list[int]:
    from .csv import column_index, read_table

    table = read_table(path, spec.header, spec.delimiter, CSV_ROWS)
    out = []
    for c in cols:
        try:
            out.append(column_index(table, c, "series" if key == "column" else key))
        except DataError as e:
            raise _Located(("data", key), str(e)) from None
    return out, table.width


def _csv(spec, src, spec_dir, input_shape) -> Peek | None:
    spec = spec.single()  # a single-input model's columns by its input's name, as the loader reads them
    path = _file(src.path, spec_dir)
    targets = spec.target if isinstance(spec.target, list) else [spec.target]
    t_cols, width = _columns(spec, path, targets, "target")
    if spec.features is not None:
        f_cols = _columns(spec, path, spec.features, "features")[0]
    else:
        f_cols = [c for c in range(width) if c not in t_cols]
    if not f_cols:
        raise _Located(("data", "target"), f"{path}: no feature columns are left beside the target")
    return Peek(str(path), (len(f_cols),), target=() if len(t_cols) == 1 else (len(t_cols),),
                classes=spec.labels, named=spec.labels is not None)


def _text_peek(max_length, labels, vocab_size, what, input_shape) -> Peek:
    model_len = input_shape[0] if len(input_shape) == 1 else None
    length = max_length or model_len
    # without `labels:` the classes are the distinct labels of the file, unknown here
    return Peek(what, (length,) if length else None, True, classes=labels, named=True, vocab_size=vocab_size)


def _text(spec, src, spec_dir, input_shape) -> Peek:
    return _text_peek(spec.max_length, spec.labels, spec.vocab_size, str(src.path), input_shape)


def _series(spec, src, spec_dir, input_shape) -> Peek:
    path = _file(src.path, spec_dir)
    _columns(spec, path, [spec.column], "column")
    return Peek(str(path), (spec.window,), series=True)


def _folder_listing(spec, src, spec_dir):
    """The listing of an images or text_files source: folder entries (and a CSV listing), no file opened."""
    from . import folders

    if folders.locate(src.path, spec_dir) is None:
        raise _Missing(src.path)
    if spec.format == "images":
        return folders.list_images(spec, src, spec_dir)
    return folders.list_files(folders.find_source(src.path, spec_dir), folders.TEXT_FORMATS, spec.class_names,
                              spec.follow_links)


def _images(spec, src, spec_dir, input_shape) -> Peek:
    listing = _folder_listing(spec, src, spec_dir)
    height, width = spec.image_size
    return Peek(str(listing.root), (height, width, spec.channels()), classes=listing.class_names, named=True)


def _text_files(spec, src, spec_dir, input_shape) -> Peek:
    listing = _folder_listing(spec, src, spec_dir)
    return _text_peek(spec.max_length, listing.class_names, spec.vocab_size, str(listing.root), input_shape)


_READERS = {"idx": _idx, "npy": _npy, "npz": _npz, "csv": _csv, "text": _text, "timeseries": _series,
            "images": _images, "text_files": _text_files}


# ---- the checks ----------------------------------------------------------------------------

def data_diagnostics(spec, model) -> list:
    """Located errors where the spec's data does not fit its model (input shape, output units
    for the loss's classes, Embedding ids), from headers and settings alone."""
    if spec.data is None:
        return []
    spec_dir = Path(spec._path).parent if spec._path else Path.cwd()
    if len(model.input_names) != 1 or len(model.output_names) != 1:
        return _named(spec, model, spec_dir)
    try:
        got = peek(spec.data, spec_dir, model.input_shapes[0])
    except _Located as e:
        return [_at(spec, e.path, str(e))]
    except DataError as e:
        return [_at(spec, ("data", "train"), str(e))]
    except OSError as e:
        return [_at(spec, ("data", "train"), f"cannot read a data file: {e.strerror or e}")]
    except ValueError:  # settings the loader reports better (it raises them as DataError)
        return []
    if got is None:
        return []
    return [_at(spec, *d) for d in (*_input(spec, model, got), *_embedding(spec, model, got), *_output(spec, model, got))]


def _named(spec, model, spec_dir) -> list:
    """Located errors in a CSV's columns for each input and output, from each file's header and
    first rows (an .npz's arrays, data/named.py checks as it loads)."""
    if getattr(spec.data, "format", None) != "csv":
        return []
    from .csv import read_table
    from .named import csv_columns

    data = spec.data
    for key, src in data.sources().items():
        try:
            csv_columns(data, read_table(_file(src.path, spec_dir), data.header, data.delimiter, CSV_ROWS), model)
        except _Missing:
            continue
        except _Located as e:
            return [_at(spec, e.path, str(e))]
        except DataError as e:
            return [_at(spec, ("data", key), str(e))]
        except OSError as e:
            return [_at(spec, ("data", key), f"cannot read a data file: {e.strerror or e}")]
    return []


def _at(spec, path, message, hint=None, key=False):
    from ..spec.diagnostics import Diagnostic

    smap = spec._source
    return smap.diagnostic(path, message, hint, key=key) if smap is not None else Diagnostic(message, hint=hint)


def _input(spec, model, got):
    if got.sample is None:
        return
    name, shape = model.input_names[0], model.input_shapes[0]
    path = ("input", "shape") if spec.input is not None else ("inputs", name, "shape")
    try:
        check_fit(got.sample, shape, got.what)
    except DataError as e:
        size = math.prod(got.sample)
        yield path, str(e), f"give input shape {list(got.sample)}" + (f", or another of {size} values" if size > 1 else "")


def _embedding(spec, model, got):
    name = model.input_names[0]
    for node in model.nodes:
        s = node.layer.spec
        if s.type != "Embedding" or name not in node.inputs:
            continue
        if not got.integer:
            hint = "set `x_dtype: int32` in `data:`" if getattr(spec.data, "format", None) in ("npy", "npz") else \
                "an Embedding reads token ids: text data, or integer .npy/.npz arrays"
            yield (("layers", node.index, "type"), f"Embedding '{node.name}' takes integer token ids but "
                   f"{got.what} gives float values", hint, True)
        elif got.vocab_size is not None and s.input_dim < got.vocab_size:
            yield (("layers", node.index, "input_dim"),
                   f"Embedding '{node.name}' has input_dim {s.input_dim} but the data's vocab_size is "
                   f"{got.vocab_size}: token ids reach {got.vocab_size - 1}",
                   f"set input_dim: {got.vocab_size}, or vocab_size: {s.input_dim} in `data:`")


def _output_layer(model) -> tuple:
    """(path of the output's units, or of its type, the layer's name, whether the path is a key)."""
    by_name = {n.name: n for n in model.nodes}
    node = by_name[model.output_names[0]]
    while not hasattr(node.layer.spec, "units") and node.layer.spec.type in ("Activation", "Dropout") \
            and node.inputs[0] in by_name:
        node = by_name[node.inputs[0]]
    if hasattr(node.layer.spec, "units"):
        return ("layers", node.index, "units"), node.name, False
    return ("layers", node.index, "type"), node.name, True


def _output(spec, model, got):
    if spec.train is None:
        return
    loss = spec.train.one_loss().type
    task = loss_task(loss)
    out = tuple(model.output_shapes[0])
    units = out[-1] if out else 1
    where, layer, key = _output_layer(model)
    classes = got.classes
    shown = f" ({', '.join(classes[:10])}{', ...' if len(classes) > 10 else ''})" if classes else ""
    mode = getattr(spec.data, "label_mode", None)
    if mode is not None and task is not None and LABEL_MODES[mode] != task:
        yield (("data", "label_mode"), label_mode_mismatch(mode, task, loss), None)
        return
    if got.series and task != REGRESSION:
        yield (("train", "loss"), f"a time series' targets are numbers; the loss {loss} takes class labels",
               "use a regression loss such as mean_squared_error")
        return
    if got.named and task == REGRESSION:
        yield (("train", "loss"), f"the labels are class names{shown} but the loss {loss} takes numbers",
               "use sparse_categorical_crossentropy, or binary_crossentropy for two classes")
        return
    if classes is not None and task == BINARY and len(classes) > 2:
        yield (("train", "loss"), f"{loss} takes two classes; the data has {len(classes)}{shown}",
               f"use sparse_categorical_crossentropy with a softmax output of {len(classes)} units")
        return
    if classes is not None and task in (SPARSE, CATEGORICAL) and units != len(classes):
        yield (where, f"the output layer '{layer}' has {units} units but the data has {len(classes)} "
               f"classes{shown} for {loss}", f"set units: {len(classes)}", key)
        return
    if got.target is None or task is None:
        return
    have = math.prod(got.target)
    if task == CATEGORICAL and got.target == out:
        return
    need = math.prod(out[:-1]) if task in (SPARSE, CATEGORICAL) else math.prod(out)
    if have == need:
        return
    if task == BINARY and have == 1:
        yield (where, f"{loss} on one label per sample needs one output unit (sigmoid); the output "
               f"layer '{layer}' has {units}", "set units: 1, or use sparse_categorical_crossentropy "
               "with a softmax output", key)
    else:
        yield (where, f"each sample has {have} target value(s) but the output layer '{layer}' "
               f"{shape_text(out)} gives {need} for {loss}", None, key)

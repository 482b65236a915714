"""`load_data`: a `data:` spec in, train/validation/test arrays and the fitted state out."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from ..spec.data import BuiltinData, parse_data_spec
from . import builtin, sources, text, timeseries
from .errors import DataError
from .stream import Streamed
from .peek import LABEL_MODES, label_mode_mismatch
from .prepare import (
    BINARY, CATEGORICAL, REGRESSION, SPARSE, apply_scaling, check_labels, choose_task, fit_standardize,
    fit_to_input, loss_task, make_targets, shape_text, split_count, split_indices,
)

FITTED_VERSION = 1
Pair = tuple  # (x, y)


@dataclass
class Dataset:
    """Arrays ready for the model, and what was learnt from the training data.

    Attributes:
        train, validation, test: (x, y) pairs of arrays; validation and test may be None.
        fitted: the JSON-serialisable state `prepare_inputs` needs for raw inputs later.
        info: names, sizes, files and label names, for display.
    """

    train: Pair
    validation: Pair | None
    test: Pair | None
    fitted: dict
    info: dict = field(default_factory=dict)


def resolve_spec(data_spec, *, builtin_name: bool = False):
    """A validated file-format spec from a dict or model; built-ins expanded. Raises DataError.

    With builtin_name, returns (spec, the built-in dataset's name or None).
    """
    try:
        given = parse_data_spec(data_spec)
        spec = builtin.expand(given) if isinstance(given, BuiltinData) else given
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"][1:])
        msg = err["msg"].removeprefix("Value error, ")
        raise DataError(f"data spec: {where + ': ' if where else ''}{msg}") from None
    if builtin_name:
        return spec, (given.dataset if isinstance(given, BuiltinData) else None)
    return spec


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def load_data(data_spec, *, spec_dir: Path | None, input_shape: tuple, output_shape: tuple,
              loss_name: str | None, seed: int, dtype: str = "float32", download: bool = True) -> Dataset:
    """Load, split and preprocess the data a spec's `data:` section describes.

    Args:
        data_spec: the `data:` section (validated model or plain dict).
        spec_dir: the spec file's folder, first place relative paths are looked up.
        input_shape, output_shape: the model's, without the batch axis.
        loss_name: the training loss (decides the label form), or None to infer it.
        seed: the spec's seed; splits and shuffling follow it.
        dtype: float dtype of float inputs and targets.
        download: fetch a built-in dataset missing from every data folder (MNIST only).

    Shapes: x (N, *input_shape); y (N,) int32 class ids for sparse losses, else (N, *output_shape).
    """
    spec, name = resolve_spec(data_spec, builtin_name=True)
    if name == "mnist" and download:
        builtin.ensure_mnist(spec_dir)
    input_shape, output_shape = tuple(input_shape), tuple(output_shape)
    if spec.format == "timeseries":
        ds = _load_series(spec, spec_dir, input_shape, output_shape, loss_name, seed, dtype)
    else:
        ds = _load_samples(spec, spec_dir, input_shape, output_shape, loss_name, seed, dtype)
    ds.fitted.update({"version": FITTED_VERSION, "dataset": name})
    ds.info.update({"name": name or spec.format, "format": spec.format,
                    "sizes": {k: (0 if v is None else len(v[0])) for k, v in
                              (("train", ds.train), ("validation", ds.validation), ("test", ds.test))}})
    return ds


def load_named_data(data_spec, *, spec_dir: Path | None, model, losses: dict, seed: int,
                    dtype: str = "float32") -> Dataset:
    """`load_data` for a model with several inputs or outputs: an .npz with one array per
    input and output, by name (see data/named.py). x and y are lists in input/output order."""
    from . import named

    spec = resolve_spec(data_spec)
    parts, fitted, info = named.load(spec, spec_dir, model, losses, seed, dtype, _split)
    ds = Dataset(*(named.pair(parts.get(k)) for k in ("train", "validation", "test")), fitted, info)
    ds.fitted.update({"version": FITTED_VERSION, "dataset": None})
    ds.info.update({"name": spec.format, "format": spec.format,
                    "sizes": {k: len(parts[k]) if k in parts else 0 for k in ("train", "validation", "test")}})
    return ds


# ---- samples (idx, npy, npz, csv, text) ----------------------------------------------------

def _load_samples(spec, spec_dir, input_shape, output_shape, loss_name, seed, dtype) -> Dataset:
    parts = {"train": sources.read(spec, spec.train, spec_dir,
                                   None if spec.test_split is not None else spec.limit, "train")}
    folder_classes = parts["train"].meta.get("class_names")  # images, text_files: from the folders
    for key in ("validation", "test"):
        if getattr(spec, key) is not None:
            parts[key] = sources.read(spec, getattr(spec, key), spec_dir, None, key, folder_classes)
    files = {k: p.files for k, p in parts.items()}
    skipped = [bad for p in parts.values() for bad in p.meta.get("skipped", ())]  # bad_files: skip, before any split
    label_names = folder_classes or _label_names(spec, parts)
    labelled = label_names is not None or spec.format in ("idx", "text")
    _check_label_mode(spec, label_names, loss_name)
    one_hot = getattr(spec, "one_hot", False) or getattr(spec, "label_mode", None) == "categorical"
    task = choose_task(loss_name, output_shape, parts["train"].y, labelled=labelled, one_hot=one_hot)
    if label_names is not None and task == REGRESSION:
        raise DataError(f"the labels are class names ({', '.join(label_names[:3])}...) but the loss "
                        f"{loss_name} takes numbers")
    _check_class_count(label_names, task, output_shape)
    for key, part in parts.items():
        check_labels(np.asarray(part.y), task, output_shape, f"{key} labels ({', '.join(part.files)})")
    parts = _split(spec, parts, task, seed)

    fitted: dict = {"format": spec.format, "task": task, "label_names": label_names}
    if spec.format in ("text", "text_files"):
        xs = _text_inputs(spec, parts, input_shape, fitted)
    else:
        xs = _numeric_inputs(spec, parts, dtype, fitted)
    out = {}
    for key, part in parts.items():
        x = _fit_streamed(xs[key], input_shape, f"{key} x") if isinstance(xs[key], Streamed) else \
            fit_to_input(xs[key], input_shape, f"{key} x")
        y = make_targets(np.asarray(part.y), task, output_shape, f"{key} labels", dtype)
        out[key] = (x, y)
    fitted["input_shape"] = [None if d is None else int(d) for d in input_shape]
    if spec.format == "csv":
        meta = parts["train"].meta
        fitted["csv"] = {"columns": meta["names"], "width": meta["width"], "features": meta["features"],
                         "delimiter": spec.delimiter, "header": spec.header,
                         "missing": spec.missing, "fill_value": spec.fill_value}
    if spec.format == "images":
        fitted["images"] = {k: getattr(spec, k) for k in ("image_size", "color_mode", "interpolation",
                                                           "crop_to_aspect_ratio", "pad_to_aspect_ratio")}
    info = {"task": task, "label_names": label_names, "files": files,
            "num_classes": output_shape[-1] if task in (SPARSE, CATEGORICAL) else None}
    if skipped:
        (path, reason), n = skipped[0], len(skipped)
        info["notes"] = [f"skipped {n} file{'s' if n > 1 else ''} that cannot be used (bad_files: skip), "
                         f"{'e.g. ' if n > 1 else ''}{path}: {reason}"]
    if spec.format in ("text", "text_files"):
        info.update(vocab_size=len(fitted["text"]["vocabulary"]) + 2, max_length=fitted["text"]["max_length"])
    return Dataset(out["train"], out.get("validation"), out.get("test"), fitted, info)


def _label_names(spec, parts) -> list[str] | None:
    """Class names, and every part's labels turned into class ids, when labels are words."""
    given = getattr(spec, "labels", None)
    train_y = parts["train"].y
    if not isinstance(train_y, list):
        return None
    if given is None:
        try:
            for part in parts.values():
                part.y = np.array([int(v) for v in part.y], dtype=np.int64)
            return None
        except ValueError:
            pass
        names = sorted(set(train_y))
    else:
        names = list(given)
    index = {n: i for i, n in enumerate(names)}
    for key, part in parts.items():
        if isinstance(part.y, np.ndarray):
            continue
        unknown = next((v for v in part.y if v not in index), None)
        if unknown is not None:
            raise DataError(f"{key} data ({', '.join(part.files)}): label {unknown!r} is not one of "
                            f"{', '.join(names)}")
        part.y = np.array([index[v] for v in part.y], dtype=np.int64)
    return names


def _check_label_mode(spec, names, loss_name):
    """A folder format's `label_mode` (Keras's) against the form the loss takes."""
    mode, task = getattr(spec, "label_mode", None), loss_task(loss_name)
    if mode is None:
        return
    if task is not None and LABEL_MODES[mode] != task:
        raise DataError(label_mode_mismatch(mode, task, loss_name))
    if mode == "binary" and len(names) != 2:
        raise DataError(f"label_mode binary takes two classes; the data has {len(names)}: {', '.join(names)}")


def _check_class_count(names, task, output_shape):
    if names is None:
        return
    units = output_shape[-1] if output_shape else 1
    if task == BINARY and len(names) > 2:
        raise DataError(f"a binary loss takes two classes; the labels have {len(names)}: {', '.join(names)}")
    if task in (SPARSE, CATEGORICAL) and len(names) > units:
        raise DataError(f"the labels have {len(names)} classes ({', '.join(names)}) but the output layer "
                        f"has {units} units")


def _split(spec, parts, task, seed):
    """Test split, limit, validation split, then shuffle of the training part."""
    train = parts["train"]
    y = np.asarray(train.y)
    strata = task in (SPARSE, CATEGORICAL, BINARY) and y.ndim == 1
    if spec.test_split is not None:
        count = split_count(spec.test_split, len(train), "test_split")
        kept, held = split_indices(len(train), count, _rng(seed, 1) if spec.shuffle else None,
                                   y if strata else None)
        parts["test"], train = train.take(held), train.take(kept)
        if spec.limit is not None:
            train = train.take(np.arange(min(spec.limit, len(train))))
    if spec.validation_split > 0:
        count = split_count(spec.validation_split, len(train), "validation_split")
        y = np.asarray(train.y)
        kept, held = split_indices(len(train), count, _rng(seed, 2) if spec.shuffle else None,
                                   y if strata else None)
        parts["validation"], train = train.take(held), train.take(kept)
    if spec.shuffle:
        train = train.take(_rng(seed, 3).permutation(len(train)))
    parts["train"] = train
    return parts


def _numeric_inputs(spec, parts, dtype, fitted) -> dict:
    x_dtype = getattr(spec, "x_dtype", "float32")
    if isinstance(parts["train"].x, Streamed):
        return _streamed_inputs(spec, parts, dtype, fitted)
    fitted["raw_inputs"] = parts["train"].meta.get("raw_inputs") or raw_description(parts["train"].x)
    if x_dtype == "int32":
        if spec.rescale is not None or spec.standardize:
            raise DataError("x_dtype: int32 inputs take no rescale or standardize")
        xs = {k: _as_ints(p.x, k) for k, p in parts.items()}
        fitted.update(rescale=None, standardize=None, x_dtype="int32",
                      sample_shape=list(parts["train"].x.shape[1:]))
        return xs
    xs = {k: apply_scaling(p.x, spec.rescale, None, dtype) for k, p in parts.items()}
    stats = fit_standardize(xs["train"], spec.standardize)
    if stats is not None:
        xs = {k: apply_scaling(x, None, stats, dtype) for k, x in xs.items()}
    fitted.update(rescale=spec.rescale, standardize=stats, x_dtype=dtype,
                  sample_shape=list(parts["train"].x.shape[1:]))
    return xs


def _streamed_inputs(spec, parts, dtype, fitted) -> dict:
    """Rescaling as for arrays, applied to each batch as it is read (data/stream.py)."""
    if spec.standardize:
        raise DataError("standardize fits its statistics on the whole training set in memory; streamed data "
                        "(`stream: true`, or data larger than the memory budget) takes `rescale` only")
    train = parts["train"]  # the raw range a source states (images: 0..255), as no pass reads it here
    fitted.update(raw_inputs=train.meta.get("raw_inputs") or {"dtype": str(train.x.dtype), "min": None, "max": None},
                  rescale=spec.rescale, standardize=None, x_dtype=dtype, sample_shape=list(train.x.sample_shape))
    return {k: p.x.map(lambda raw: apply_scaling(raw, spec.rescale, None, dtype), dtype=dtype)
            for k, p in parts.items()}


def _fit_streamed(x, input_shape, what):
    """`fit_to_input` for streamed samples: the reshape applied to each batch."""
    shape = fit_to_input(np.empty((1, *x.sample_shape), x.dtype), input_shape, what).shape[1:]
    return x if shape == x.sample_shape else x.map(lambda b: fit_to_input(b, input_shape, what), shape)


def raw_description(x: np.ndarray) -> dict:
    """What the training inputs look like before preparation, for checking inputs at predict time."""
    x = np.asarray(x)
    finite = x.size > 0 and (x.dtype.kind != "f" or bool(np.isfinite(x).all()))
    return {"dtype": str(x.dtype), "min": float(x.min()) if finite else None,
            "max": float(x.max()) if finite else None}


def _as_ints(x: np.ndarray, key: str) -> np.ndarray:
    if x.dtype.kind == "f" and not np.all(np.mod(x, 1) == 0):
        raise DataError(f"{key} x: x_dtype int32 needs whole numbers")
    return x.astype(np.int32)


def _text_inputs(spec, parts, input_shape, fitted) -> dict:
    streamed = isinstance(parts["train"].x, Streamed)  # documents left in their files (data/text_files.py)
    if streamed:
        from .text_files import streamed_ids, tokens as read_tokens

        tokens = {"train": read_tokens(parts["train"].x, spec.lowercase)}  # one pass, one document at a time
    else:
        tokens = {k: [text.tokenize(t, spec.lowercase) for t in p.x] for k, p in parts.items()}
    longest = [1]

    def counted(token_lists):
        for words in token_lists:
            longest[0] = max(longest[0], len(words))
            yield words

    vocabulary = text.build_vocabulary(counted(tokens["train"]), spec.vocab_size)
    model_len = input_shape[0] if len(input_shape) == 1 else None
    max_length = spec.max_length or model_len or longest[0]
    if model_len is not None and max_length != model_len:
        raise DataError(f"max_length {max_length} gives samples of shape ({max_length},) but the model's "
                        f"input shape is {shape_text(input_shape)}")
    fitted["text"] = {"vocabulary": vocabulary, "lowercase": spec.lowercase, "max_length": max_length,
                      "padding": spec.padding, "truncating": spec.truncating,
                      "separator": getattr(spec, "separator", None)}
    fitted["x_dtype"] = "int32"
    if streamed:
        return {k: streamed_ids(p.x, vocabulary, fitted["text"]) for k, p in parts.items()}
    return {k: text.encode(t, vocabulary, max_length, spec.padding, spec.truncating) for k, t in tokens.items()}


# ---- time series ---------------------------------------------------------------------------

def _load_series(spec, spec_dir, input_shape, output_shape, loss_name, seed, dtype) -> Dataset:
    if loss_task(loss_name) not in (None, REGRESSION):
        raise DataError(f"time series targets are numbers; the loss {loss_name} takes class labels")
    series, path, column = timeseries.read_series(spec, spec.train, spec_dir)
    ranges = timeseries.time_splits(spec, len(series))
    raw = {"train": timeseries.windows(series, spec, *ranges["train"])}
    if spec.limit is not None:
        raw["train"] = tuple(a[:spec.limit] for a in raw["train"])
    files = {"train": [path]}
    for key in ("validation", "test"):
        src = getattr(spec, key)
        if src is not None:
            other, files[key], _ = timeseries.read_series(spec, src, spec_dir)
            raw[key] = timeseries.windows(other, spec, 0, len(other))
            files[key] = [files[key]]
        elif key in ranges:
            raw[key] = timeseries.windows(series, spec, *ranges[key])
            files[key] = [path]
    if len(raw["train"][0]) == 0:
        raise DataError(f"{path}: no training windows remain after the splits")
    for key, (x, _) in raw.items():
        if len(x) == 0:
            raise DataError(f"{files[key][0]}: the {key} part holds no complete window of {spec.window} steps")
    train_stop = int(ranges["train"][0] + (len(raw["train"][1]) - 1) * spec.stride + 1)
    scale = spec.rescale if spec.rescale is not None else None
    base = apply_scaling(series[:train_stop, None], scale, None, "float64")
    stats = fit_standardize(base, "global" if spec.standardize else False)  # one series: one mean
    out = {}
    for key, (x, y) in raw.items():
        xs = apply_scaling(x, scale, stats, dtype)
        ys = apply_scaling(y[:, None], scale, stats, dtype)[:, 0]
        if key == "train" and spec.shuffle:
            order = _rng(seed, 3).permutation(len(xs))
            xs, ys = xs[order], ys[order]
        out[key] = (fit_to_input(xs, input_shape, f"{key} x"),
                    make_targets(ys, REGRESSION, output_shape, f"{key} targets", dtype))
    fitted = {"format": "timeseries", "task": REGRESSION, "label_names": None, "rescale": scale,
              "standardize": stats, "x_dtype": dtype, "sample_shape": [spec.window],
              "input_shape": [None if d is None else int(d) for d in input_shape],
              "timeseries": {"window": spec.window, "horizon": spec.horizon, "stride": spec.stride,
                             "column": spec.column, "column_index": column, "delimiter": spec.delimiter}}
    info = {"task": REGRESSION, "label_names": None, "files": files, "num_classes": None,
            "train_steps": [int(ranges["train"][0]), train_stop]}
    return Dataset(out["train"], out.get("validation"), out.get("test"), fitted, info)

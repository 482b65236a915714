"""Raw inputs at prediction time (text lines, CSV rows, arrays) through the fitted preprocessing."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import arrays, text
from .csv import Table, numbers, parse_rows
from .errors import DataError
from .prepare import apply_scaling, check_finite, fit_to_input


def prepare_inputs(raw, data_spec, fitted: dict, input_shape: tuple) -> np.ndarray:
    """Model inputs from raw samples, preprocessed exactly as the training data was.

    Args:
        raw: text lines (text format); CSV lines or rows of cells, with or without the
            target columns and the header (csv); a series of numbers, or rows of `window`
            numbers (timeseries); an array of samples, or one sample (idx, npy, npz).
        data_spec: the `data:` section (kept for the signature; the fitted state suffices).
        fitted: `Dataset.fitted` from training, as saved in the run directory.
        input_shape: the model's input shape without the batch axis.

    Shapes: -> (N, *input_shape).
    """
    kind = fitted.get("format")
    if kind == "text":
        x = _text(raw, fitted)
    elif kind == "csv":
        x = _csv(raw, fitted)
    elif kind == "timeseries":
        x = _series(raw, fitted)
    else:
        x = _array(raw, fitted)
    return fit_to_input(x, tuple(input_shape), "input")


def read_input_file(path: Path):
    """Raw inputs from a file for `prepare_inputs`: an .npy array, the `x` (or only) array of an
    .npz, or else the file's non-blank lines (CSV rows, text, a series' values)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input file {path} not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return arrays.read_npy(path)
    if suffix == ".npz":
        arrays.sniff(path)
        with np.load(path, allow_pickle=False) as z:
            names = z.files
        key = "x" if "x" in names else (names[0] if len(names) == 1 else None)
        if key is None:
            raise DataError(f"{path}: holds {', '.join(names) or 'no arrays'}; name the input array `x`")
        return arrays.read_npz(path, (key, key))[0]
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: is not UTF-8 text") from None
    return [line for line in lines if line.strip()]


def inverse_targets(y, fitted: dict) -> np.ndarray:
    """Regression outputs back in the data's own units (undoing a time series' scaling)."""
    y = np.asarray(y, dtype=np.float64)
    if fitted.get("format") == "timeseries":
        stats = fitted.get("standardize")
        if stats:
            y = y * stats["std"][0] + stats["mean"][0]
        if fitted.get("rescale"):
            y = y / fitted["rescale"]
    return y


def _text(raw, fitted):
    lines = [raw] if isinstance(raw, str) else list(raw)
    if not all(isinstance(s, str) for s in lines):
        raise DataError("text inputs are lines of text")
    cfg = fitted["text"]
    names, sep = fitted.get("label_names"), cfg.get("separator")
    if names and sep and lines and all(s.partition(sep)[0].strip() in names and sep in s for s in lines):
        lines = [s.partition(sep)[2] for s in lines]  # labelled lines, as in the training file
    tokens = [text.tokenize(s, cfg["lowercase"]) for s in lines]
    return text.encode(tokens, cfg["vocabulary"], cfg["max_length"], cfg["padding"], cfg["truncating"])


def _csv(raw, fitted):
    cfg = fitted["csv"]
    rows = parse_rows([raw] if isinstance(raw, str) else raw, cfg["delimiter"])
    names = cfg["columns"]
    feats = cfg["features"]
    header = [c.strip() for c in rows[0]] if rows else []
    if names and header and all(h in names for h in header):
        # a header row: take the feature columns by name, whatever their order
        missing_cols = [names[c] for c in feats if names[c] not in header]
        if missing_cols:
            raise DataError(f"input header lacks the feature column(s) {', '.join(missing_cols)}")
        order = [header.index(names[c]) for c in feats]
        rows = [[row[j] for j in order] if len(row) == len(header) else row for row in rows[1:]]
    picked = []
    for i, row in enumerate(rows, 1):
        if len(row) == cfg["width"]:
            picked.append([row[c] for c in feats])
        elif len(row) == len(feats):
            picked.append(row)
        else:
            raise DataError(f"input row {i} has {len(row)} cells; expected {len(feats)} feature values "
                            f"or a full row of {cfg['width']}")
    if not picked:
        raise DataError("no input rows")
    feature_names = [names[c] for c in feats] if names else None
    table = Table("input", feature_names, picked, list(range(1, len(picked) + 1)))
    missing = "error" if cfg["missing"] == "drop" else cfg["missing"]
    x, _ = numbers(table, list(range(len(feats))), missing, cfg["fill_value"])
    return apply_scaling(x, fitted.get("rescale"), fitted.get("standardize"), fitted.get("x_dtype", "float32"))


def _series(raw, fitted):
    cfg = fitted["timeseries"]
    window = cfg["window"]
    values = _series_values(raw, cfg)
    if values.ndim == 1:
        if len(values) < window:
            raise DataError(f"a time series input needs at least {window} values; got {len(values)}")
        values = np.lib.stride_tricks.sliding_window_view(values, window)
    if values.ndim != 2 or values.shape[1] != window:
        raise DataError(f"time series inputs are rows of {window} values; got shape {values.shape}")
    check_finite(values, "input")
    return apply_scaling(values, fitted.get("rescale"), fitted.get("standardize"), fitted.get("x_dtype", "float32"))


def _series_values(raw, cfg) -> np.ndarray:
    """Numbers from an array, a list of numbers, or CSV lines holding the series' column."""
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, np.ndarray) or not any(isinstance(v, str) for v in raw):
        try:
            return np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("time series inputs are numbers") from None
    rows = parse_rows(raw, cfg.get("delimiter", ","))
    col = cfg.get("column_index", 0) if len(rows[0]) > 1 else 0
    header = [c.strip() for c in rows[0]]
    if isinstance(cfg["column"], str) and cfg["column"] in header:
        col, rows = header.index(cfg["column"]), rows[1:]
    elif col >= len(rows[0]) or not _number(rows[0][col]):
        rows = rows[1:]  # a header row
    if any(len(r) <= col for r in rows):
        raise DataError(f"every input row needs column {col} of the series")
    table = Table("input", None, [[r[col]] for r in rows], list(range(1, len(rows) + 1)))
    return numbers(table, [0])[0][:, 0]


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _array(raw, fitted):
    x = np.asarray(raw)
    if x.dtype.kind not in "biuf":
        raise DataError(f"inputs must be numbers; got {x.dtype}")
    sample = tuple(fitted.get("sample_shape") or ())
    if sample and x.shape == sample:
        x = x[None]
    check_finite(x, "input")
    if fitted.get("x_dtype") == "int32":
        return x.astype(np.int32)
    return apply_scaling(x, fitted.get("rescale"), fitted.get("standardize"), fitted.get("x_dtype", "float32"))

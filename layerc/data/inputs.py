"""Raw inputs at prediction time (text lines, CSV rows, arrays) through the fitted preprocessing."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from . import arrays, text
from .csv import Table, numbers, parse_rows
from .errors import DataError
from .prepare import apply_scaling, check_finite, fit_to_input


# Older runs' data.json lacks `raw_inputs`; the built-ins' raw form is known.
RAW_INPUTS = {"mnist": {"dtype": "uint8", "min": 0.0, "max": 255.0}}
# A first input line made only of these words is a header, not a sample (`text`, `label<TAB>message`).
HEADER_WORDS = {"text", "texts", "message", "messages", "sms", "sentence", "review", "document",
                "input", "label", "labels", "class", "target", "category"}
NPY_MAGIC, NPZ_MAGIC = b"\x93NUMPY", b"PK\x03\x04"


def prepare_inputs(raw, data_spec, fitted: dict, input_shape: tuple, prepared: bool = False) -> np.ndarray:
    """Model inputs from raw samples, preprocessed exactly as the training data was.

    Args:
        raw: text lines (text format); CSV lines or rows of cells, with or without the
            target columns and the header (csv); a series of numbers, or rows of `window`
            numbers (timeseries); an array of samples, or one sample (idx, npy, npz).
        data_spec: the `data:` section (kept for the signature; the fitted state suffices).
        fitted: `Dataset.fitted` from training, as saved in the run directory.
        input_shape: the model's input shape without the batch axis.
        prepared: the inputs are already prepared (an array): skip the data's preparation.

    Shapes: -> (N, *input_shape).
    """
    kind = fitted.get("format")
    if prepared:
        x = _prepared(raw, fitted)
    elif kind in ("text", "text_files"):
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
    return _lines(path.read_bytes(), path)


def read_input_bytes(data: bytes, name: str = "stdin"):
    """Raw inputs from bytes (standard input): a binary .npy or .npz when they start with its magic
    number, else UTF-8 lines as `read_input_file` reads a text file."""
    if data.startswith(NPY_MAGIC) or data.startswith(NPZ_MAGIC):
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise arrays._refuse(Path(name), e) from None
        if not isinstance(arr, np.ndarray):
            names = arr.files
            key = "x" if "x" in names else (names[0] if len(names) == 1 else None)
            if key is None:
                raise DataError(f"{name}: holds {', '.join(names) or 'no arrays'}; name the input array `x`")
            try:
                arr = arr[key]
            except ValueError as e:
                raise arrays._refuse(Path(name), e) from None
        return arrays._numeric(arr, Path(name), "")
    return _lines(data, name)


def _lines(data: bytes, name) -> list[str]:
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{name}: is not UTF-8 text") from None
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
    if lines and _is_text_header(lines[0], sep):
        lines = lines[1:]
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
    elif header and len(rows) > 1 and not any(_number(c) for c in header if c):
        rows = rows[1:]  # a header row whose names the training file did not have
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


def _numbers(raw, fitted) -> np.ndarray:
    """A numeric, finite array with a batch axis (a single sample gets one)."""
    x = np.asarray(raw)
    if x.dtype.kind not in "biuf":
        raise DataError(f"inputs must be numbers; got {x.dtype}")
    sample = tuple(fitted.get("sample_shape") or ())
    if sample and x.shape == sample:
        x = x[None]
    check_finite(x, "input")
    return x


def _array(raw, fitted):
    x = _numbers(raw, fitted)
    if fitted.get("x_dtype") == "int32":
        return x.astype(np.int32)
    check_raw(x, fitted)
    return apply_scaling(x, fitted.get("rescale"), fitted.get("standardize"), fitted.get("x_dtype", "float32"))


def check_raw(x: np.ndarray, fitted: dict) -> None:
    """Refuse inputs that look prepared already when the data's preparation would change them.

    The training inputs were integers (uint8 pixels 0..255): inputs with fractions were rescaled
    or standardised already, and preparing them again gives wrong answers. Whole-valued floats
    are raw. Float training data (CSV) has no telling form, so it is not checked."""
    if fitted.get("rescale") is None and not fitted.get("standardize"):
        return
    raw = fitted.get("raw_inputs") or RAW_INPUTS.get(fitted.get("dataset"))
    if not raw or np.dtype(raw["dtype"]).kind not in "biu" or x.dtype.kind != "f" or not x.size:
        return
    if np.all(np.mod(x, 1) == 0):
        return
    span = f" {raw['min']:g}..{raw['max']:g}" if raw.get("min") is not None else ""
    steps = " and ".join(s for s, on in (("rescale", fitted.get("rescale") is not None),
                                         ("standardize", bool(fitted.get("standardize")))) if on)
    raise DataError(f"the inputs look prepared already ({x.dtype} values {float(x.min()):.4g}..{float(x.max()):.4g} "
                    f"with fractions) but the training data's raw inputs are {raw['dtype']}{span}, "
                    f"which predict prepares itself ({steps}); give raw inputs, or pass --prepared "
                    "if these are already prepared")


def _prepared(raw, fitted):
    """Inputs given already prepared: an array in the model's input dtype, nothing else done."""
    if not isinstance(raw, np.ndarray):
        raise DataError("--prepared takes prepared arrays (.npy or .npz), not text or CSV lines")
    return _numbers(raw, fitted).astype(fitted.get("x_dtype") or "float32")


def _is_text_header(line: str, separator) -> bool:
    fields = line.split(separator) if separator and separator in line else [line]
    return all(f.strip().lower() in HEADER_WORDS for f in fields)

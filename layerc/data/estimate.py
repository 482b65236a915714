"""The memory a dataset will take once loaded, from file headers and sizes where cheap."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import arrays, idx
from .errors import DataError
from .paths import find


# Peak bytes while a CSV file is parsed (csv.reader's rows of str, the cell lists, the float64
# array), measured with tracemalloc on generated files of 10-100 numeric columns (84-108 bytes
# a cell, tests/data/test_estimate_csv.py): a str object and two list slots a cell, the
# cell's text, and each row's lists.
CSV_CELL_BYTES = 80
CSV_ROW_BYTES = 200


def estimate_bytes(data_spec, *, spec_dir: Path | None, input_shape: tuple | None = None,
                   dtype: str = "float32", names: tuple | None = None) -> int:
    """Peak bytes of loading a dataset: its arrays (inputs and targets of every split), plus the
    parsed cells of the largest CSV file while it is read, without loading anything.

    IDX and .npy headers give exact counts; CSV, text and series files are sized by their
    row count (only up to `limit` rows where the loader stops there). `names`, (model input
    names, output names) of a model with several, makes an .npz's arrays by name count (see
    data/named.py). Raises DataError for a missing or unreadable file.
    """
    from . import builtin
    from .loader import resolve_spec

    spec, name = resolve_spec(data_spec, builtin_name=True)
    if name == "mnist":  # as loading would: fetched when in no data folder
        builtin.ensure_mnist(spec_dir)
    item = np.dtype(dtype).itemsize
    total = parsing = 0
    for src in spec.sources().values():
        limit = spec.limit if src is spec.train and spec.test_split is None else None
        try:
            n, per, parse, targets = _counts(spec, src, spec_dir, input_shape, limit, names)
        except DataError as e:
            if name is None:
                raise
            raise builtin.not_found(name, e) from None
        if limit is not None:
            n = min(n, limit)
        total += n * (per * (4 if spec.format in ("text", "text_files") else item) + targets * item)
        parsing = max(parsing, parse)
    return int(total + parsing)


def _counts(spec, src, spec_dir, input_shape, limit, names) -> tuple[int, int, int, int]:
    """(samples, input values per sample, peak parsing bytes, target values per sample) of one source."""
    if spec.format == "idx":
        _, shape = idx.idx_header(find(src.x, spec_dir))
        return shape[0], int(np.prod(shape[1:], dtype=np.int64)), 0, 1
    if spec.format == "npy":
        shape, _ = arrays.npy_shape(find(src.x, spec_dir))
        return shape[0], int(np.prod(shape[1:], dtype=np.int64)), 0, 1
    if spec.format in ("images", "text_files"):
        return (*_folder_counts(spec, src, spec_dir, input_shape), 1)
    path = find(src.path, spec_dir)
    if spec.format == "npz" and names is not None:
        return _named_npz(spec, path, *names)
    if spec.format == "npz":
        return (*_npz_shape(path, src.x_key or "x"), 0, 1)
    if spec.format == "text":
        length = spec.max_length or (input_shape[0] if input_shape and input_shape[0] else 256)
        return _line_count(path)[0], length, 0, 1
    # the CSV loader stops after `limit` rows; a series is cut into windows after it is read whole
    stop = limit + bool(spec.header) if limit is not None and spec.format == "csv" else None
    rows, size = _line_count(path, stop)
    width = _width(path, spec.delimiter)
    parse = rows * (width * CSV_CELL_BYTES + CSV_ROW_BYTES) + size
    return rows, (spec.window if spec.format == "timeseries" else width), parse, 1


def _named_npz(spec, path, inputs, outputs) -> tuple[int, int, int, int]:
    """The counts of an .npz read by name: every input's and output's array, from its header."""
    from .named import keys

    x_keys, y_keys = keys(spec, inputs, outputs)
    sizes = [[_npz_shape(path, k) for k in group.values()] for group in (x_keys, y_keys)]
    n = max((rows for group in sizes for rows, _ in group), default=0)
    return n, sum(per for _, per in sizes[0]), 0, sum(per for _, per in sizes[1])


def _folder_counts(spec, src, spec_dir, input_shape):
    """Files listed (nothing opened); an image's values at image_size; a document's tokens, and
    the documents' text while it is read."""
    from .peek import _folder_listing, _Missing

    try:
        listing = _folder_listing(spec, src, spec_dir)
    except _Missing:
        from .folders import find_source

        find_source(src.path, spec_dir)  # raises DataError, naming the places tried
        raise
    n = len(listing.paths)
    if spec.format == "images":
        return n, spec.image_size[0] * spec.image_size[1] * spec.channels(), 0
    length = spec.max_length or (input_shape[0] if input_shape and input_shape[0] else 256)
    return n, length, 4 * sum(map(_size, listing.paths))


def _size(path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _npz_shape(path, key):
    from ..npzfile import NpzError, member_headers

    try:
        shape = member_headers(path, [key])[key][0]
    except (KeyError, NpzError):
        return 0, 0
    return shape[0] if shape else 0, int(np.prod(shape[1:], dtype=np.int64))


def _line_count(path: Path, stop: int | None = None) -> tuple[int, int]:
    """(lines, bytes) of a text file, or of its first `stop` lines."""
    n = size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            count = block.count(b"\n")
            if stop is not None and n + count >= stop:
                end = -1
                for _ in range(stop - n):
                    end = block.index(b"\n", end + 1)
                return stop, size + end + 1
            n, size = n + count, size + len(block)
    return n + 1, size


def _width(path: Path, delimiter: str) -> int:
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        return max(1, f.readline().count(delimiter) + 1)

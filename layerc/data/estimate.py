"""The memory a dataset will take once loaded, from file headers and sizes where cheap."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import arrays, idx
from .errors import DataError
from .paths import find


def estimate_bytes(data_spec, *, spec_dir: Path | None, input_shape: tuple | None = None,
                   dtype: str = "float32") -> int:
    """Bytes of the loaded arrays (inputs and targets of every split), without loading them.

    IDX and .npy headers give exact counts; CSV, text and series files are sized by their
    row count. Raises DataError for a missing or unreadable file.
    """
    from . import builtin
    from .loader import resolve_spec

    spec, name = resolve_spec(data_spec, builtin_name=True)
    if name == "mnist":  # as loading would: fetched when in no data folder
        builtin.ensure_mnist(spec_dir)
    item = np.dtype(dtype).itemsize
    total = 0
    for src in spec.sources().values():
        try:
            n, per = _counts(spec, src, spec_dir, input_shape)
        except DataError as e:
            if name is None:
                raise
            raise builtin.not_found(name, e) from None
        if src is spec.train and spec.limit is not None and spec.test_split is None:
            n = min(n, spec.limit)
        total += n * (per * (4 if spec.format == "text" else item) + item)
    return int(total)


def _counts(spec, src, spec_dir, input_shape) -> tuple[int, int]:
    """(samples, values per sample) of one source."""
    if spec.format == "idx":
        _, shape = idx.idx_header(find(src.x, spec_dir))
        return shape[0], int(np.prod(shape[1:], dtype=np.int64))
    if spec.format == "npy":
        shape, _ = arrays.npy_shape(find(src.x, spec_dir))
        return shape[0], int(np.prod(shape[1:], dtype=np.int64))
    path = find(src.path, spec_dir)
    if spec.format == "npz":
        with np.load(path, allow_pickle=False, mmap_mode="r") as z:
            return _npz_shape(z, src.x_key or "x")
    rows = _line_count(path)
    if spec.format == "text":
        length = spec.max_length or (input_shape[0] if input_shape and input_shape[0] else 256)
        return rows, length
    if spec.format == "timeseries":
        return rows, spec.window
    return rows, _width(path, spec.delimiter)


def _npz_shape(z, key):
    import zipfile
    try:
        with z.zip.open(key + ".npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape = read(f)[0]
    except (KeyError, ValueError, zipfile.BadZipFile):
        return 0, 0
    return shape[0] if shape else 0, int(np.prod(shape[1:], dtype=np.int64))


def _line_count(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += block.count(b"\n")
    return n + 1


def _width(path: Path, delimiter: str) -> int:
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        return max(1, f.readline().count(delimiter) + 1)

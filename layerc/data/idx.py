"""IDX files (the MNIST format), gzipped or not.

Big-endian: two zero bytes, a type byte, the number of dimensions, one int32 per
dimension (the first is the sample count), then the payload.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError

TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"


def _open(path: Path):
    with open(path, "rb") as f:
        gz = f.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _read(f, n: int, path: Path) -> bytes:
    try:
        return f.read(n)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: truncated or corrupt gzip file ({e})") from None


def _header(f, path: Path) -> tuple[np.dtype, tuple, str]:
    magic = _read(f, 4, path)
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in TYPES or magic[3] == 0:
        raise DataError(f"{path}: not an IDX file (magic number 0x{magic.hex():0>8}; "
                        "expected 0x00000801 for labels, 0x00000803 for images)")
    raw = _read(f, 4 * magic[3], path)
    if len(raw) < 4 * magic[3]:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">i4"))
    for i, d in enumerate(shape):
        if d < 0:
            raise DataError(f"{path}: corrupt IDX header: dimension {i} is {d} (dimensions cannot be negative)")
    return np.dtype(TYPES[magic[2]]), shape, magic.hex()


def idx_header(path: Path) -> tuple[np.dtype, tuple]:
    """(dtype, shape) from the header alone, the first dimension being the sample count."""
    with _open(path) as f:
        return _header(f, path)[:2]


def read_idx(path: Path, limit: int | None = None, ndim: int | None = None) -> np.ndarray:
    """The array in an IDX file (native byte order), optionally only its first `limit` samples.

    Args:
        path: the file, gzipped or not.
        limit: read at most this many samples.
        ndim: the number of dimensions the caller expects (1 for labels), checked.
    """
    with _open(path) as f:
        dtype, shape, magic = _header(f, path)
        if ndim is not None and len(shape) != ndim:
            what = "labels (magic 0x00000801)" if ndim == 1 else f"{ndim - 1}-D samples"
            raise DataError(f"{path}: wrong IDX magic number 0x{magic}: it holds {len(shape) - 1}-D "
                            f"samples but {what} were expected")
        total = shape[0]
        count = total if limit is None else min(limit, total)
        per = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        payload = _read(f, count * per, path)
        if len(payload) < count * per:
            dims = "x".join(map(str, shape[1:])) or "scalar"
            raise DataError(f"{path}: truncated: the header announces {total} samples of {dims} "
                            f"({total * per} bytes) but only {len(payload)} bytes follow")
        if count == total and _read(f, 1, path):
            raise DataError(f"{path}: more bytes than its header's {total} samples announce")
    return np.frombuffer(payload, dtype).reshape((count,) + shape[1:]).astype(dtype.newbyteorder("="), copy=False)

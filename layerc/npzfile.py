"""Reading .npz archives that come from other people: only the members asked for, each
checked from its .npy header (dtype, shape, declared size) before a byte of data is read,
with the member count and the compression ratio capped, so a zip bomb costs nothing."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

MAX_MEMBERS = 4096
MAX_RATIO = 1000  # deflate cannot beat ~1032:1; a bigger ratio is a bomb

NOT_NUMPY = "not a NumPy .npy/.npz file"
PICKLED = "holds pickled Python objects; refused (layerc never unpickles)"


class NpzError(ValueError):
    """An archive or member that cannot be read safely."""


def read_header(f) -> tuple[tuple, np.dtype]:
    """(shape, dtype) from an open .npy stream, refusing Fortran order and object dtypes."""
    try:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise NpzError(NOT_NUMPY if "pickle" not in str(e).lower() else PICKLED) from None
    if dtype.hasobject:
        raise NpzError(PICKLED)
    return tuple(shape), dtype, fortran


def _open(path: Path) -> zipfile.ZipFile:
    """The archive, refused if it is no zip or has more than MAX_MEMBERS members."""
    try:
        z = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise NpzError(NOT_NUMPY) from None
    if len(z.infolist()) > MAX_MEMBERS:
        z.close()
        raise NpzError(f"has {len(z.infolist())} members (at most {MAX_MEMBERS}); refused")
    return z


def member_headers(path: Path, names) -> dict:
    """{name: (shape, dtype)} of the named members found, from their .npy headers alone."""
    out = {}
    with _open(path) as z:
        members = set(z.namelist())
        for name in names:
            if name + ".npy" in members:
                try:
                    with z.open(name + ".npy") as f:
                        out[name] = read_header(f)[:2]
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
                    raise NpzError(f"array {name!r} is corrupt ({e.__class__.__name__})") from None
    return out


def read_npz(path: Path, keep=None, expected: dict | None = None, max_bytes: int | None = None) -> dict:
    """{name: array} for the members whose name `keep(name)` accepts (all if None).

    Args:
        expected: {name: shape}; a member with another shape is refused before reading.
        max_bytes: the most the kept members may declare in all (None: no cap).
    """
    expected = expected or {}
    out = {}
    with _open(path) as z:
        infos = z.infolist()
        kept = [i for i in infos if keep is None or keep(i.filename.removesuffix(".npy"))]
        declared = sum(i.file_size for i in kept)
        if max_bytes is not None and declared > max_bytes:
            raise NpzError(f"its arrays declare {declared >> 20} MB; only {max_bytes >> 20} MB are available")
        for info in kept:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise NpzError(f"array {name!r} is compressed {info.file_size // max(info.compress_size, 1)}:1; "
                               "refused as a zip bomb")
            try:
                with z.open(info) as f:
                    shape, dtype, fortran = read_header(f)
                    if name in expected and shape != tuple(expected[name]):
                        raise NpzError(f"array {name!r} has shape {shape}; this spec needs {tuple(expected[name])}")
                    size = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    if info.file_size != f.tell() + size:
                        raise NpzError(f"array {name!r} declares {size} bytes of data but its member holds "
                                       f"{info.file_size - f.tell()}; refused")
                    a = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
                    got = f.readinto(memoryview(a.reshape(-1).view(np.uint8))) if size else 0
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
                raise NpzError(f"array {name!r} is corrupt ({e.__class__.__name__})") from None
            if got != size:
                raise NpzError(f"array {name!r} is truncated")
            out[name] = a.T if fortran else a
    return out


def refuse_nonfinite(arrays: dict) -> str | None:
    """A message naming the first floating array that holds NaN or infinite values."""
    for k, a in arrays.items():
        if a.dtype.kind in "fc":
            nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
            if nan or inf:
                what = " and ".join(x for x in (f"{nan} NaN" if nan else "", f"{inf} infinite" if inf else "") if x)
                return f"array {k!r} holds {what} values; refused"
    return None

"""NumPy .npy and .npz files, loaded without pickle."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import DataError

_PICKLE = "holds pickled Python objects, which layerc never loads; save a numeric array instead"


def _refuse(path: Path, e: Exception, what: str = "") -> DataError:
    text = str(e)
    if any(w in text.lower() for w in ("pickle", "object arrays", "python objects")):
        return DataError(f"{path}{what}: {_PICKLE}")
    return DataError(f"{path}{what}: not a readable NumPy file ({text})")


def sniff(path: Path) -> None:
    """Refuse a file that is neither an .npy nor a zip archive before numpy guesses
    (numpy reports any unknown bytes as pickled data)."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError:
        return  # np.load reports it
    if head.startswith((b"\x93NUMPY", b"PK\x03\x04", b"PK\x05\x06")):
        return
    if head[:1] == b"\x80":  # a pickle stream (protocol 2 and later)
        raise DataError(f"{path}: {_PICKLE}")
    raise DataError(f"{path}: not a NumPy .npy/.npz file")


def read_npy(path: Path, limit: int | None = None) -> np.ndarray:
    """The array in an .npy file (memory-mapped, so `limit` reads only the first samples)."""
    sniff(path)
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as e:
        raise _refuse(path, e) from None
    if not isinstance(arr, np.ndarray):  # np.load also opens .npz archives
        raise DataError(f"{path}: is an .npz archive; use `format: npz`")
    return _numeric(np.array(arr[:limit] if arr.ndim else arr), path, "")


def read_npz(path: Path, keys: tuple[str, str], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two named arrays from an .npz archive."""
    out = read_npz_arrays(path, keys, limit)
    return out[0], out[1]


def read_npz_arrays(path: Path, keys, limit: int | None = None, labels: dict | None = None) -> list[np.ndarray]:
    """Named arrays from an .npz archive, in `keys` order; `labels` says what a key is for
    (`input 'a'`), for the message when it is missing."""
    sniff(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise _refuse(path, e) from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: is a single .npy array; use `format: npy`")
    try:
        with z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                what = f" for {labels[missing[0]]}" if labels and missing[0] in labels else ""
                raise DataError(f"{path}: has no array {missing[0]!r}{what} "
                                f"(it has: {', '.join(z.files) or 'none'})")
            out = []
            for k in keys:
                try:
                    a = z[k]
                except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
                    raise _refuse(path, e, f"[{k}]") from None
                out.append(_numeric(a[:limit] if a.ndim else a, path, f"[{k}]"))
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise _refuse(path, e) from None
    return out


def npy_shape(path: Path) -> tuple[tuple, np.dtype]:
    """(shape, dtype) of an .npy file from its header."""
    sniff(path)
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as e:
        raise _refuse(path, e) from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path}: is an .npz archive; use `format: npz`")
    if arr.ndim == 0:
        raise DataError(f"{path}: holds a single value; an array of samples is needed")
    return arr.shape, arr.dtype


def _numeric(a: np.ndarray, path: Path, what: str) -> np.ndarray:
    if a.dtype.kind not in "biuf":
        raise DataError(f"{path}{what}: holds {a.dtype} values; numbers (bool, int, float) are needed")
    if a.ndim == 0:
        raise DataError(f"{path}{what}: holds a single value; an array of samples is needed")
    return a

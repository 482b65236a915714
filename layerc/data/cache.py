"""Decoded file datasets, decoded once (in worker processes or threads), then kept as `.npy`
for the next run.

A folder of images that fits the memory budget is decoded into one array; the array is also
written to the cache folder, so the next run with the same files and settings loads it at once
instead of decoding every file again.

- Where: `$LAYERC_CACHE_DIR`, else `$XDG_CACHE_HOME/layerc/decoded`, else
  `~/.cache/layerc/decoded`. `LAYERC_CACHE_DIR=off` turns the cache off.
- Key: the file list (absolute paths, in order) with the decoding settings names the entry;
  each file's size and modification time (ns) are its version, so a changed, added or removed
  file decodes afresh, and the new entry replaces the old one.
- Files are written atomically (`runs.atomic_write`) and read with `allow_pickle=False`; an
  entry that does not read back as the expected array is decoded again and rewritten.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path

import numpy as np

from . import workers
from .errors import DataError
from .stream import THREADS

VERSION = 1
CHUNK = 256  # files a thread decodes at a time


def cache_root() -> Path | None:
    """The cache folder, or None when `LAYERC_CACHE_DIR=off`."""
    given = os.environ.get("LAYERC_CACHE_DIR")
    if given is not None:
        return None if given.strip().lower() in ("off", "0", "none", "") else Path(given).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "layerc" / "decoded"


def decode_all(paths, decode, skip: tuple = (), threads: int = THREADS):
    """Every file decoded into one array, in file order, by `threads` threads (each handing its
    files to a worker process where the decoder allows, data/workers.py); a file whose
    decoder raises one of `skip` is left out and listed.

    Returns (x, kept, bad): the samples of the files at `kept`, and (path, reason) of the others.
    Shapes: x (len(kept), *the samples' shape).
    """
    paths = list(paths)
    if not paths:
        raise DataError("there are no files to decode")
    starts = range(0, len(paths), CHUNK)
    chunks = [paths[s:s + CHUNK] for s in starts]
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="layerc-decode")
    results = pool.map(workers.decode_chunk, repeat(decode), chunks, repeat(skip), repeat(len(paths)))
    out, kept, bad = None, [], []
    try:
        for start, chunk, (x, left_out) in zip(starts, chunks, results):  # re-raises a chunk's error
            bad += [(path, reason) for _, path, reason in left_out]
            if x is None:
                continue
            skipped = {i for i, _, _ in left_out}
            decoded = [start + i for i in range(len(chunk)) if i not in skipped]
            if out is None:
                out = np.empty((len(paths), *x.shape[1:]), x.dtype)
            if x.shape[1:] != out.shape[1:]:
                raise DataError(f"{paths[decoded[0]]}: decoded to shape {x.shape[1:]}, "
                                f"but {paths[kept[0]]} to {out.shape[1:]}")
            out[len(kept):len(kept) + len(x)] = x
            kept += decoded
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if out is None:
        return np.empty((0,)), kept, bad
    return (out[:len(kept)] if bad else out), kept, bad


def entry(paths, settings: dict) -> tuple[str, str]:
    """(name, version) of the cache entry of these files decoded with these settings."""
    files = [os.path.abspath(p) for p in paths]  # resolve() would cost a syscall a path component
    name = hashlib.sha256(json.dumps([VERSION, settings, files], sort_keys=True).encode()).hexdigest()
    try:
        stats = [(st.st_size, st.st_mtime_ns) for st in map(os.stat, files)]
    except OSError as e:
        raise DataError(f"{e.filename}: {e.strerror}") from None
    version = hashlib.sha256(json.dumps(stats).encode()).hexdigest()
    return name[:32], version[:16]


def decoded(paths, decode, settings: dict, info: dict | None = None, skip: tuple = ()):
    """The files' samples decoded into one array (`decode_all`): from the cache when the same
    files with the same sizes and times were decoded with the same settings before, else
    decoded and cached (when no file was left out).

    Args:
        settings: everything the decoded values depend on besides the files (size, colour
            mode, interpolation, the decoder's version), JSON-serialisable.
        info: gets `cache` ("hit", "written", "off" or "not written: <why>") and `cache_file`.

    Returns (x, kept, bad) as `decode_all`.
    """
    info = {} if info is None else info
    paths = list(paths)
    root = cache_root()
    if root is None:
        info["cache"] = "off"
        return decode_all(paths, decode, skip)
    name, version = entry(paths, settings)
    path = root / f"{name}-{version}.npy"
    info["cache_file"] = str(path)
    x = _read(path, len(paths))
    if x is not None:
        info["cache"] = "hit"
        return x, list(range(len(paths))), []
    x, kept, bad = decode_all(paths, decode, skip)
    info["cache"] = _write(root, name, path, x) if not bad else "not written: files were left out"
    return x, kept, bad


def _read(path: Path, n: int) -> np.ndarray | None:
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return x if isinstance(x, np.ndarray) and x.ndim >= 1 and len(x) == n and x.dtype.kind in "fiu" else None


def _write(root: Path, name: str, path: Path, x: np.ndarray) -> str:
    from ..runs import atomic_write

    try:
        root.mkdir(parents=True, exist_ok=True)
        if shutil.disk_usage(root).free < 2 * x.nbytes:
            return "not written: too little free disk"
        atomic_write(path, lambda f: np.lib.format.write_array(f, x, allow_pickle=False))
    except OSError as e:
        return f"not written: {e.strerror or e}"
    for old in root.glob(f"{name}-*.npy"):  # the same files' earlier versions
        if old != path:
            old.unlink(missing_ok=True)
    return "written"

"""Reading `.keras` archives and weights `.h5` files as untrusted input.

Nothing is extracted to disk and nothing in the file can run: the zip's member names,
count, sizes and compression ratios are checked before a byte is inflated, each member
is read with a bound, and the HDF5 file is opened from memory with only plain, local
datasets (no external or virtual storage, no links) read, each after its shape is checked.
"""
from __future__ import annotations

import io
import json
import zipfile
import zlib
from pathlib import Path

from .keras_config import KerasError

MAX_MEMBERS = 64  # Keras writes 3 (config.json, metadata.json, model.weights.h5), plus assets
MAX_JSON = 64 << 20
MAX_RATIO = 1000  # a member inflating more than this (past 1 MB) is a zip bomb
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError,
                ValueError, zipfile.LargeZipFile)


def max_weights_bytes() -> int:
    from ..jobs import available_memory

    avail = available_memory()
    return min(8 << 30, avail // 2) if avail else 8 << 30


def read_keras(path) -> tuple[dict, dict, bytes | None]:
    """(config, metadata, weights .h5 bytes) of a `.keras` file, or of a config `.json`
    (then metadata is empty and the weights None)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise KerasError(f"{path}: cannot read ({e.strerror})") from None
    if path.suffix == ".json":
        return _json(path, _bounded_file(path, MAX_JSON, "config")), {}, None
    if not head.startswith(b"PK"):
        raise KerasError(f"{path}: not a .keras file (a .keras file is a zip archive)")
    try:
        with zipfile.ZipFile(path) as z:
            members = _checked_members(path, z)
            config = _json(path, _member(path, z, members, "config.json", MAX_JSON))
            meta = _json(path, _member(path, z, members, "metadata.json", MAX_JSON)) if "metadata.json" in members else {}
            weights = (_member(path, z, members, "model.weights.h5", max_weights_bytes())
                       if "model.weights.h5" in members else None)
    except KerasError:
        raise
    except _READ_ERRORS as e:
        raise KerasError(f"{path}: not a readable .keras archive ({e})") from None
    if not isinstance(meta, dict):
        meta = {}
    return config, meta, weights


def read_weights_file(path) -> bytes:
    """A `.weights.h5` file's bytes, up to the memory bound."""
    return _bounded_file(Path(path), max_weights_bytes(), "weights")


def _bounded_file(path: Path, limit: int, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise KerasError(f"{path}: cannot read ({e.strerror})") from None
    if len(data) > limit:
        raise KerasError(f"{path}: the {what} file is larger than {limit >> 20} MB")
    return data


def _checked_members(path, z: zipfile.ZipFile) -> dict:
    infos = z.infolist()
    if len(infos) > MAX_MEMBERS:
        raise KerasError(f"{path}: {len(infos)} members in the archive (a .keras file has a few; "
                         f"at most {MAX_MEMBERS} are read)")
    members = {}
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
            raise KerasError(f"{path}: unsafe member name {name!r} in the archive (absolute or with ..)")
        if name in members:
            raise KerasError(f"{path}: the member {name!r} appears twice in the archive")
        if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise KerasError(f"{path}: member {name!r} inflates {info.file_size // max(info.compress_size, 1):,}:1 "
                             f"(over {MAX_RATIO}:1, a zip bomb)")
        members[name] = info
    if "config.json" not in members:
        raise KerasError(f"{path}: no config.json in the archive (not a Keras 3 .keras file)")
    return members


def _member(path, z, members, name, limit) -> bytes:
    info = members[name]
    if info.file_size > limit:
        raise KerasError(f"{path}: member {name!r} declares {info.file_size:,} bytes, over the "
                         f"{limit >> 20} MB read limit")
    with z.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit or len(data) != info.file_size:
        raise KerasError(f"{path}: member {name!r} is not the size its header declares")
    return data


def _json(path, data: bytes):
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:
        raise KerasError(f"{path}: its config is not valid JSON ({str(e)[:80]})") from None


class H5Weights:
    """A weights .h5 opened from memory; `array(path, shape)` reads one checked dataset."""

    def __init__(self, data: bytes, source):
        import h5py

        self.source = source
        try:
            self.file = h5py.File(io.BytesIO(data), "r")
        except (OSError, ValueError) as e:
            raise KerasError(f"{source}: the weights are not a readable HDF5 file ({e})") from None

    def attr_name(self, path: str):
        g = self._get(path)
        if g is None:
            return None
        value = g.attrs.get("name")
        return value.decode() if isinstance(value, bytes) else value

    def count(self, path: str) -> int:
        """How many members (datasets, groups or links) a group has; 0 if it is none."""
        import h5py

        g = self._get(path)
        return len(g) if isinstance(g, h5py.Group) else 0

    def has(self, path: str) -> bool:
        return self._get(path) is not None

    def _get(self, path: str):
        import h5py

        node, parts = self.file, path.split("/")
        for part in parts:
            if not isinstance(node, h5py.Group) or part not in node:
                return None
            if not isinstance(node.get(part, getlink=True), h5py.HardLink):
                raise KerasError(f"{self.source}: {path} is a link in the weights file; only plain "
                                 "datasets are read")
            node = node[part]
        return node

    def array(self, path: str, shape: tuple, what: str, kinds: str = "f"):
        import h5py
        import numpy as np

        ds = self._get(path)
        if not isinstance(ds, h5py.Dataset):
            raise KerasError(f"{self.source}: no weight {path} for {what}")
        if ds.is_virtual or ds.id.get_create_plist().get_external_count():
            raise KerasError(f"{self.source}: {path} is stored outside the file; refused")
        if ds.dtype.kind not in kinds:
            raise KerasError(f"{self.source}: {path} ({what}) is {ds.dtype}, not "
                             + ("floating point" if kinds == "f" else "a number"))
        if tuple(ds.shape) != tuple(shape):
            raise KerasError(f"{self.source}: {path} ({what}) has shape {tuple(ds.shape)}, the config "
                             f"needs {tuple(shape)}")
        try:
            a = np.asarray(ds[()])
        except (OSError, ValueError) as e:
            raise KerasError(f"{self.source}: {path} cannot be read ({e})") from None
        if not np.all(np.isfinite(a)):
            raise KerasError(f"{self.source}: {path} ({what}) holds NaN or infinite values")
        return a

    def close(self):
        self.file.close()

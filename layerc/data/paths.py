"""Finding data files: beside the spec, in ./datasets, in each folder of $LAYERC_DATA."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError

_PACKAGE = Path(__file__).resolve().parents[1]
# the built-in datasets: the installed package's copy (a wheel carries one, see setup.py),
# else the repository's datasets/ folder (a clone, or an editable install)
SHIPPED = next((d for d in (_PACKAGE / "_datasets", _PACKAGE.parent / "datasets") if d.is_dir()),
               _PACKAGE.parent / "datasets")


def data_path_env() -> list[Path]:
    return [Path(p).expanduser() for p in os.environ.get("LAYERC_DATA", "").split(os.pathsep) if p]


def cache_dir() -> Path:
    """Where a downloaded dataset goes: the first folder of $LAYERC_DATA, else ~/.cache/layerc/datasets."""
    env = data_path_env()
    if env:
        return env[0]
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "layerc" / "datasets"


def search_dirs(spec_dir: Path | None) -> list[Path]:
    """Folders a relative data path is looked up in, in order: beside the spec, ./datasets,
    $LAYERC_DATA, the shipped datasets (SHIPPED) and the download cache."""
    dirs = [Path(spec_dir)] if spec_dir is not None else []
    dirs.append(Path.cwd() / "datasets")
    dirs += data_path_env()
    dirs += [SHIPPED, cache_dir()]
    out = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def candidates(name: str, spec_dir: Path | None) -> list[Path]:
    """Every place `name` is looked for (just `name` itself when it is absolute)."""
    path = Path(name).expanduser()
    if path.is_absolute():
        return [path]
    return [d / path for d in search_dirs(spec_dir)]


def find(name: str, spec_dir: Path | None) -> Path:
    """The first existing file for `name`; raises DataError listing every path tried."""
    tried = candidates(name, spec_dir)
    for p in tried:
        if p.is_file():
            return p
    raise DataError(f"data file {name!r} not found (tried: {', '.join(map(str, tried))})")

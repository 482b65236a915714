"""Reading one split's raw samples from its files, per format."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import arrays, idx, text
from .csv import column_index, numbers, read_table
from .errors import DataError
from .paths import find
from .prepare import check_finite


@dataclass
class Part:
    """One split's samples before preprocessing.

    x: an array with samples on axis 0, or a list of texts; y: an array, or a list of label names.
    """

    x: object
    y: object
    files: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # format details (CSV columns) for the fitted state

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index) -> "Part":
        from .stream import Streamed

        pick = (lambda v: [v[i] for i in index]) if isinstance(self.x, list) else (lambda v: v[index])
        x = self.x.take(index) if isinstance(self.x, Streamed) else pick(self.x)  # still in its files
        return Part(x, pick(self.y) if isinstance(self.y, list) else self.y[index], self.files, self.meta)


def read(spec, src, spec_dir: Path | None, limit: int | None, name: str, class_names=None) -> Part:
    """The raw samples of one source of `spec` (a validated file-format data spec); class folders
    of a validation or test source are labelled by the training data's `class_names`."""
    if spec.format in ("images", "text_files"):
        from . import images, text_files

        reader = images.read_part if spec.format == "images" else text_files.read_part
        part = reader(spec, src, spec_dir, limit, name, class_names)
    else:
        reader = {"idx": _idx, "npy": _npy, "npz": _npz, "csv": _csv, "text": _text}[spec.format]
        part = reader(spec, src, spec_dir, limit, name)
    if len(part) == 0:
        raise DataError(f"{name} data ({', '.join(part.files)}) holds no samples")
    return part


def _same_count(x, y, xpath, ypath):
    if len(x) != len(y):
        raise DataError(f"{xpath} has {len(x)} samples but {ypath} has {len(y)} labels")


def _idx(spec, src, spec_dir, limit, name):
    xp, yp = find(src.x, spec_dir), find(src.y, spec_dir)
    x_count, y_count = idx.idx_header(xp)[1][0], idx.idx_header(yp)[1][0]
    if x_count != y_count:
        raise DataError(f"{xp} has {x_count} samples but {yp} has {y_count} labels")
    x, y = idx.read_idx(xp, limit), idx.read_idx(yp, limit, ndim=1)
    check_finite(x, f"{name} x ({xp})")
    return Part(x, y, [str(xp), str(yp)])


def _npy(spec, src, spec_dir, limit, name):
    xp, yp = find(src.x, spec_dir), find(src.y, spec_dir)
    (x_count, *_), _ = arrays.npy_shape(xp)
    (y_count, *_), _ = arrays.npy_shape(yp)
    if x_count != y_count:
        raise DataError(f"{xp} has {x_count} samples but {yp} has {y_count} labels")
    x, y = arrays.read_npy(xp, limit), arrays.read_npy(yp, limit)
    check_finite(x, f"{name} x ({xp})")
    check_finite(y, f"{name} y ({yp})")
    return Part(x, y, [str(xp), str(yp)])


def _npz(spec, src, spec_dir, limit, name):
    path = find(src.path, spec_dir)
    keys = (src.x_key or "x", src.y_key or "y")
    x, y = arrays.read_npz(path, keys, limit)
    _same_count(x, y, f"{path}[{keys[0]}]", f"{path}[{keys[1]}]")
    check_finite(x, f"{name} x ({path}[{keys[0]}])")
    check_finite(y, f"{name} y ({path}[{keys[1]}])")
    return Part(x, y, [str(path)])


def _text(spec, src, spec_dir, limit, name):
    path = find(src.path, spec_dir)
    labels, texts = text.read_labelled(path, spec.separator)
    return Part(texts[:limit], labels[:limit], [str(path)])


def _csv(spec, src, spec_dir, limit, name):
    path = find(src.path, spec_dir)
    table = read_table(path, spec.header, spec.delimiter, limit)
    targets = spec.target if isinstance(spec.target, list) else [spec.target]
    t_cols = [column_index(table, c, "target") for c in targets]
    if spec.features is not None:
        f_cols = [column_index(table, c, "feature") for c in spec.features]
    else:
        f_cols = [c for c in range(table.width) if c not in t_cols]
    if not f_cols:
        raise DataError(f"{path}: no feature columns are left beside the target")
    if set(f_cols) & set(t_cols):
        raise DataError(f"{path}: column {table.name(sorted(set(f_cols) & set(t_cols))[0])} is both a feature and a target")
    x, complete = numbers(table, f_cols, spec.missing, spec.fill_value)
    y = _csv_targets(spec, table, t_cols)
    if isinstance(y, np.ndarray):
        complete &= ~np.isnan(y).any(axis=1)
        y = y[:, 0] if len(t_cols) == 1 else y
    else:
        complete &= np.array([v != "" for v in y])
    if spec.missing == "drop":
        keep = np.flatnonzero(complete)
        x = x[keep]
        y = y[keep] if isinstance(y, np.ndarray) else [y[i] for i in keep]
    elif not complete.all():
        r = int(np.flatnonzero(~complete)[0])
        raise DataError(f"{path}: line {table.lines[r]}: missing target value (set `missing: drop` to skip such rows)")
    meta = {"names": table.names, "width": table.width, "features": f_cols, "targets": t_cols}
    return Part(x, y, [str(path)], meta)


def _csv_targets(spec, table, t_cols):
    """Numeric targets as (rows, k) float64 with NaN for missing, or class names as strings."""
    cells = [row[t_cols[0]].strip() for row in table.rows]
    if spec.labels is None and len(t_cols) == 1:
        try:
            values = np.array([float(c) if c.lower() not in ("", "na", "n/a", "nan", "null", "none", "?")
                               else np.nan for c in cells])
        except ValueError:
            return cells
        if np.isinf(values).any():
            r = int(np.flatnonzero(np.isinf(values))[0])
            raise DataError(f"{table.path}: line {table.lines[r]}, column {table.name(t_cols[0])}: "
                            "an infinite target value")
        return values[:, None]
    if spec.labels is not None:
        if len(t_cols) > 1:
            raise DataError("`labels` names the classes of a single target column")
        return cells
    values, _ = numbers(table, t_cols, "drop")
    return values

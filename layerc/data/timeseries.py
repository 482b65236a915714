"""Time series: one CSV column cut into (past window -> future value) samples, split by time.

A window starting at step i holds series[i : i + window]; its target is
series[i + window - 1 + horizon]. Every split is a range of target steps in time
order (train, then validation, then test), so no sample crosses into a later split.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .csv import column_index, numbers, read_table
from .errors import DataError
from .paths import find
from .prepare import split_count


def read_series(spec, src, spec_dir: Path | None) -> tuple[np.ndarray, str, int]:
    """The column's values in file order (float64), the file's path and the column's index."""
    path = find(src.path, spec_dir)
    table = read_table(path, spec.header, spec.delimiter)
    col = column_index(table, spec.column, "series")
    values, _ = numbers(table, [col], "error")
    return values[:, 0], str(path), col


def first_target(spec) -> int:
    return spec.window - 1 + spec.horizon


def windows(series: np.ndarray, spec, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples whose targets are steps start, start + stride, ... < stop.

    Shapes: -> x (N, window), y (N,).
    """
    t = np.arange(max(start, first_target(spec)), stop, spec.stride)
    starts = t - first_target(spec)
    if len(series) < spec.window:
        return np.empty((0, spec.window)), np.empty(0)
    return sliding_window_view(series, spec.window)[starts], series[t]


def time_splits(spec, length: int) -> dict[str, tuple[int, int]]:
    """Target step ranges of the splits cut from one series: train, validation, test."""
    begin = first_target(spec)
    if length <= begin:
        raise DataError(f"the series has {length} steps; a window of {spec.window} with horizon "
                        f"{spec.horizon} needs at least {begin + 1}")
    end = length
    out = {}
    if spec.test_split is not None and spec.test is None:
        n_test = split_count(spec.test_split, length - begin, "test_split")
        out["test"] = (end - n_test, end)
        end -= n_test
    if spec.validation_split > 0:
        n_train = len(range(begin, end, spec.stride))
        n_val = split_count(spec.validation_split, n_train, "validation_split")
        cut = begin + (n_train - n_val) * spec.stride
        out["validation"] = (cut, end)
        end = cut
    out["train"] = (begin, end)
    return out


def target_scale(fitted: dict) -> float:
    """The data's units per unit of the scaled targets (std / rescale), 1.0 when unscaled."""
    if fitted.get("format") != "timeseries":
        return 1.0
    stats = fitted.get("standardize")
    scale = stats["std"][0] if stats else 1.0
    return scale / abs(fitted["rescale"]) if fitted.get("rescale") else scale

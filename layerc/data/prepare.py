"""Steps shared by the formats: checks, splits, standardisation, reshaping, targets."""
from __future__ import annotations

import numpy as np

from .errors import DataError
from .peek import BINARY, CATEGORICAL, REGRESSION, SPARSE, check_fit, loss_task, shape_text  # noqa: F401 (numpy-free)


# ---- checks --------------------------------------------------------------------------------

def check_finite(x: np.ndarray, what: str) -> None:
    """Raise DataError at the first NaN or infinite value of `x` (samples on axis 0)."""
    if x.dtype.kind != "f":
        return
    bad = ~np.isfinite(x)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        value = x[where]
        kind = "NaN" if np.isnan(value) else "an infinite value"
        pos = f" at position {where[1:]}" if len(where) > 1 else ""
        raise DataError(f"{what}: {kind} in sample {where[0]}{pos}")


def fit_to_input(x: np.ndarray, input_shape: tuple, what: str) -> np.ndarray:
    """Reshape samples to the model's input shape when their sizes agree (28x28 -> 28x28x1).

    Shapes: x (N, *sample) -> (N, *input_shape), `None` in input_shape taking any size.
    """
    sample, shape = tuple(x.shape[1:]), tuple(input_shape)
    if check_fit(sample, shape, what):
        return x.reshape((x.shape[0],) + tuple(-1 if d is None else d for d in shape))
    return x


# ---- splits --------------------------------------------------------------------------------

def split_count(split, n: int, what: str) -> int:
    """Samples that a split (a count, or a fraction of n) takes, leaving at least one."""
    count = split if isinstance(split, int) else int(round(split * n))
    if isinstance(split, float):
        count = max(count, 1)
    if count >= n:
        raise DataError(f"{what} {split} of {n} samples leaves no samples for training")
    return count


def split_indices(n: int, count: int, rng: np.random.Generator | None, strata: np.ndarray | None = None):
    """(kept, held) index arrays, both in file order; `count` held out.

    Without `rng` the last `count` samples are held out (Keras's validation_split); with it
    they are drawn at random, in proportion within each class of `strata` (stratified).
    """
    if count == 0:
        return np.arange(n), np.arange(0)
    if rng is None:
        return np.arange(n - count), np.arange(n - count, n)
    if strata is None:
        held = rng.permutation(n)[:count]
    else:
        classes, inverse = np.unique(strata, return_inverse=True)
        sizes = np.bincount(inverse)
        quota = count * sizes / n
        take = np.floor(quota).astype(int)
        extra = np.argsort(-(quota - take), kind="stable")[: count - take.sum()]
        take[extra] += 1  # largest remainders, so exactly `count` are held out
        held_parts = [rng.permutation(np.flatnonzero(inverse == c))[: take[c]] for c in range(len(classes))]
        held = np.concatenate(held_parts)
    mask = np.zeros(n, bool)
    mask[held] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


# ---- standardisation -----------------------------------------------------------------------

def fit_standardize(x: np.ndarray, mode) -> dict | None:
    """Mean and std of the training samples: per feature (each value of a sample) or global."""
    if not mode:
        return None
    mode = "feature" if mode is True else mode
    flat = x.reshape(len(x), -1)
    if mode == "global":
        mean, std = np.mean(flat, dtype=np.float64), np.std(flat, dtype=np.float64)
        mean, std = [float(mean)], [float(std) if std > 0 else 1.0]
    else:
        mean = np.mean(flat, axis=0, dtype=np.float64)
        std = np.std(flat, axis=0, dtype=np.float64)
        std[std == 0] = 1.0  # a constant feature stays constant instead of dividing by zero
        mean, std = mean.tolist(), std.tolist()
    return {"mode": mode, "mean": mean, "std": std}


def apply_scaling(x: np.ndarray, rescale: float | None, stats: dict | None, dtype) -> np.ndarray:
    """x * rescale, then (x - mean) / std, in `dtype`."""
    out = np.array(x, dtype=dtype)
    if rescale is not None:
        out *= out.dtype.type(rescale)
    if stats is not None:
        flat = out.reshape(len(out), -1)
        if flat.shape[1] != len(stats["mean"]) and stats["mode"] == "feature":
            raise DataError(f"standardisation was fitted on {len(stats['mean'])} values per sample; "
                            f"these samples have {flat.shape[1]}")
        flat -= np.asarray(stats["mean"], dtype=out.dtype)
        flat /= np.asarray(stats["std"], dtype=out.dtype)
    return out


# ---- targets -------------------------------------------------------------------------------

def choose_task(loss_name, output_shape, y: np.ndarray, *, labelled: bool, one_hot: bool) -> str:
    """The target form: from the loss when given, else guessed from the labels and the output size.

    Args:
        labelled: the targets are class labels by nature (names, IDX labels).
    """
    task = loss_task(loss_name)
    units = output_shape[-1] if output_shape else 1
    if one_hot and task in (SPARSE, BINARY, REGRESSION):
        raise DataError(f"one_hot: true does not fit the loss {loss_name} (it takes "
                        f"{'class ids' if task == SPARSE else 'other targets'})")
    if task is not None:
        return task
    integral = y.dtype.kind in "biu" or (y.size > 0 and bool(np.all(np.mod(y, 1) == 0)))
    if not (labelled or y.dtype.kind in "biu" or integral):
        return REGRESSION
    if units == 1:
        return BINARY if np.isin(y, (0, 1)).all() else REGRESSION
    if y.ndim == 2 and y.shape[1] == units and not labelled:
        return CATEGORICAL
    return CATEGORICAL if one_hot else SPARSE


def check_labels(y: np.ndarray, task: str, output_shape: tuple, what: str) -> None:
    """Raise DataError at the first label the output layer cannot take (sample = position in `y`)."""
    out = tuple(output_shape)
    n = len(y)
    if task in (SPARSE, CATEGORICAL):
        if task == CATEGORICAL and y.shape[1:] == out:
            return
        classes = out[-1] if out else 1
        flat = y.reshape(n, -1)
        if flat.dtype.kind == "f" and not np.all(np.mod(flat, 1) == 0):
            i, j = np.argwhere(np.mod(flat, 1) != 0)[0]
            raise DataError(f"{what}: label {flat[i, j]:g} (sample {i}) is not a whole class number")
        bad = (flat < 0) | (flat >= classes)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise DataError(f"{what}: label {flat[i, j]:g} (sample {i}) is outside 0..{classes - 1}, "
                            f"the output layer's {classes} classes")
    elif task == BINARY:
        flat = y.reshape(n, -1)
        bad = (flat < 0) | (flat > 1)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise DataError(f"{what}: label {flat[i, j]:g} (sample {i}) is outside 0..1, which a binary loss needs")


def make_targets(y: np.ndarray, task: str, output_shape: tuple, what: str, dtype) -> np.ndarray:
    """Targets in the form the loss takes, checked against the output layer.

    Shapes: sparse (N, *out[:-1]) int32; categorical (N, *out) float; binary and regression (N, *out).
    """
    out = tuple(output_shape)
    check_labels(y, task, out, what)
    if task in (SPARSE, CATEGORICAL):
        if task == CATEGORICAL and y.shape[1:] == out:
            return y.astype(dtype)
        ids = _fit_labels(y.reshape(len(y), -1).astype(np.int64), out[:-1], what)
        if task == SPARSE:
            return ids.astype(np.int32)
        return np.eye(out[-1], dtype=dtype)[ids]
    return _fit_labels(y.astype(dtype), out, what)


def _fit_labels(y: np.ndarray, shape: tuple, what: str) -> np.ndarray:
    size = int(np.prod(y.shape[1:], dtype=np.int64))
    need = int(np.prod(shape, dtype=np.int64))
    if size != need:
        raise DataError(f"{what}: each sample has {size} target value(s) but the model's output "
                        f"needs {need} (output shape {shape_text(shape)})")
    return y.reshape((len(y),) + tuple(shape))

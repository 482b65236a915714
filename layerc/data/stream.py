"""Streaming: samples read, decoded and batched from their files as training goes.

A `Streamed` array stands in for an in-memory x when the decoded data does not fit the memory
budget (or with `data.stream: true`). It holds the file list, not the samples: the trainer
draws each epoch's seeded order as it does in memory, and `batches` has background threads
read and decode the batches of that order ahead of the training step (a bounded queue of
`depth` batches), so memory holds a few batches whatever the number of files. A streamed
batch holds exactly the values the in-memory array would (the same decoder, then the same
`prepare` steps on the batch), so a streamed run and an in-memory one end with the same
weights, bit for bit, and resuming mid-epoch continues the same order from the same step.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import DataError

# Reading threads, a core each: they decode themselves (a few files: Pillow and zlib release
# the GIL while decoding), or hand the decoding to worker processes (data/workers.py) and wait.
THREADS = max(1, min(4, os.cpu_count() or 1))


def _identity(x):
    return x


class Streamed:
    """Samples decoded from one file each, on demand; array-like where the trainer needs it.

    Args:
        paths: one file per sample.
        decode: a path to that sample's raw array (every sample the same shape and dtype).
        prepare: a batch of raw samples (n, *raw) to what the model takes (rescaling,
            reshaping): the in-memory path's own steps, applied per batch.
        shape: the prepared samples' shape, without the batch axis.
        dtype: the prepared samples' dtype.

    Shapes: `x[index]` (len(index), *shape); `len(x)` the number of files.
    """

    def __init__(self, paths, decode, shape, dtype, prepare=_identity):
        self.paths = list(paths)
        self.decode, self.prepare = decode, prepare
        self.sample_shape, self.dtype = tuple(shape), np.dtype(dtype)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple:
        return (len(self.paths), *self.sample_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.sample_shape)

    def take(self, index) -> "Streamed":
        """The samples at `index` (a split), still on disk."""
        return Streamed([self.paths[i] for i in np.asarray(index).ravel()], self.decode, self.sample_shape,
                        self.dtype, self.prepare)

    def map(self, step, shape=None, dtype=None) -> "Streamed":
        """These samples with `step` applied to each prepared batch (giving `shape`, `dtype`)."""
        prepare = self.prepare
        return Streamed(self.paths, self.decode, self.sample_shape if shape is None else shape,
                        self.dtype if dtype is None else dtype, lambda raw: step(prepare(raw)))

    def load(self, index) -> np.ndarray:
        """Read, decode and prepare the samples at `index`: decoded by a worker process where
        the decoder allows (this thread waits without the GIL) or in this thread, prepared here."""
        from . import workers

        raw = workers.decode_chunk(self.decode, [self.paths[i] for i in index], files=len(self.paths),
                                   name_errors=True)[0]
        out = self.prepare(raw)
        if out.shape[1:] != self.sample_shape:
            raise DataError(f"{self.paths[index[0]]}: a decoded sample has shape {out.shape[1:]}, "
                            f"the others {self.sample_shape}")
        return out

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            return self.load(range(*key.indices(len(self.paths))))
        if np.isscalar(key):
            return self.load([int(key)])[0]
        return self.load(np.asarray(key).ravel())

    def __array__(self, dtype=None, copy=None):  # the whole set, decoded (predict, reports)
        x = self.load(range(len(self.paths)))
        return x if dtype is None else x.astype(dtype)


def decode_chunk(decode, paths, skip: tuple = (), name_errors: bool = False):
    """The files' decoded samples stacked in one array, in file order, leaving out the files
    whose decoder raises one of `skip`; another error of the decoder stands, or with
    `name_errors` is a DataError naming the file.

    Returns (x, bad): x (decoded, *sample shape), None if no file was decoded; bad the
    (position in paths, path, reason) of the files left out.
    """
    out, bad, n = None, [], 0
    for i, path in enumerate(paths):
        try:
            sample = decode(path)
        except skip as e:
            bad.append((i, str(path), getattr(e, "reason", None) or str(e)))
            continue
        except Exception as e:  # the decoder's own error for a file that cannot be read
            if not name_errors or isinstance(e, DataError):
                raise
            text = str(e) or type(e).__name__
            raise DataError(text if str(path) in text else f"{path}: {text}") from None
        if out is None:
            first = path
            out = np.empty((len(paths), *sample.shape), sample.dtype)
        if sample.shape != out.shape[1:]:
            raise DataError(f"{path}: decoded to shape {sample.shape}, but {first} to {out.shape[1:]}")
        out[n] = sample
        n += 1
    return (out if out is None or n == len(out) else out[:n]), bad


def is_streamed(arrays) -> bool:
    return any(isinstance(a, Streamed) for a in arrays)


@contextlib.contextmanager
def batches(xs: list, ys: list, index_batches, depth: int | None = None):
    """The (index, x batches, y batches) of `index_batches`, in order.

    In-memory arrays are gathered here, when asked for; with a `Streamed` array among `xs`,
    worker threads read up to `depth` batches ahead (default two a thread), and leaving the
    block (the epoch's end, an interrupt, an error) cancels what they have not started.
    """
    if not is_streamed(xs):
        yield ((idx, [a[idx] for a in xs], [a[idx] for a in ys]) for idx in index_batches)
        return
    depth = depth or 2 * THREADS
    pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="layerc-read")

    def read(idx):
        return [a[idx] for a in xs]

    def ahead():
        pending = []
        todo = iter(index_batches)
        for idx in todo:
            pending.append((idx, pool.submit(read, idx)))
            if len(pending) >= depth:
                break
        while pending:
            idx, future = pending.pop(0)
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(read, nxt)))
            yield idx, future.result(), [a[idx] for a in ys]

    try:
        yield ahead()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def memory_budget(available: int | None) -> int | None:
    """Bytes a job's decoded data may take in memory before it streams instead:
    `$LAYERC_MEMORY_BUDGET` (bytes, or a number with K, M, G or T), else `available`."""
    given = os.environ.get("LAYERC_MEMORY_BUDGET", "").strip().upper().removesuffix("B")
    if not given:
        return available
    number, unit = (given[:-1], given[-1]) if given[-1:] in _UNITS and given[-1:].isalpha() else (given, "")
    try:
        budget = int(float(number) * _UNITS[unit])
    except ValueError:
        raise DataError(f"LAYERC_MEMORY_BUDGET={os.environ['LAYERC_MEMORY_BUDGET']!r} is not a size "
                        "(give bytes, or a number with K, M or G: 512M)") from None
    return budget if available is None else min(budget, available)


# ---- the images format -------------------------------------------------------------------------
RAW_PIXELS = {"dtype": "float32", "min": 0.0, "max": 255.0}  # what the image decoder gives, streamed or not


def image_settings(spec) -> dict:
    """What decoded pixels depend on besides the files (the decoded-data cache's key)."""
    from .images import pillow as require_pillow

    require_pillow()  # DataError naming the extra when Pillow is missing
    from PIL import __version__ as pillow

    keys = ("image_size", "color_mode", "interpolation", "crop_to_aspect_ratio", "pad_to_aspect_ratio")
    return {**{k: getattr(spec, k) for k in keys}, "pillow": pillow}


def image_part(spec, listing, name: str):
    """One images source as a sources.Part: decoded into memory (from the decoded-data cache
    when it has these files), or with `spec.stream` left in the files as a `Streamed` array
    whose headers are checked now (a file that fails to decode later stops training, named)."""
    from . import cache, workers
    from .images import BadFile, ImageDecoder, bad_files_error
    from .sources import Part

    decode = ImageDecoder(image_settings(spec))
    if spec.stream:
        bad = workers.check_headers(decode, listing.paths, THREADS)  # no pixel decoded
        left_out = {p for p, _ in bad}
        kept = [i for i, p in enumerate(listing.paths) if str(p) not in left_out]
        h, w = spec.image_size
        x = Streamed([listing.paths[i] for i in kept], decode, (h, w, spec.channels()), np.float32)
        info = {"cache": "streamed"}
    else:
        info = {}
        x, kept, bad = cache.decoded(listing.paths, decode, decode.settings, info, skip=(BadFile,))
    bad = sorted(listing.bad + bad)  # in path order, wherever found
    if bad and spec.bad_files == "error":
        raise bad_files_error(f"{name} data ({listing.root})", bad)
    y = np.array([listing.labels[i] for i in kept], dtype=np.int64)
    return Part(x, y, [str(listing.root)], {"class_names": listing.class_names, "skipped": bad,
                                            "paths": [str(listing.paths[i]) for i in kept],
                                            "raw_inputs": RAW_PIXELS, **info})

"""Run directories: atomic files, checkpoints, weights, metrics.csv, run.json and the run lock.

The features that read finished runs (listing, compare, plots, TensorBoard) are modules
beside this one.

Every file is written to a temporary name in the same folder, flushed to disk and
renamed over the old one, so a crash at any moment leaves either the old file or the
new one, never a torn one. Every array file is read with allow_pickle=False.
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ..train.callbacks import Callback

CHECKPOINT, WEIGHTS, BEST = "checkpoint.npz", "weights.npz", "best.npz"
LOCK = "train.lock"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


class RunError(Exception):
    """A run directory, checkpoint or weights file that cannot be used."""


_writing = 0  # files the main thread is writing (nested calls count)
_deferred: list[BaseException] = []


def stop_now(error: BaseException) -> None:
    """Raise a signal handler's stop-at-once `error`, or, while the main thread writes a
    file, at that write's end: an exception raised inside a library's writing (zipfile's
    member close, say) can leave it unable to clean up, and its cleanup's error then takes
    the stop's place."""
    if not _writing:
        raise error
    _deferred[:] = [error]


@contextlib.contextmanager
def _whole_write():
    global _writing
    main = threading.current_thread() is threading.main_thread()
    _writing += main
    try:
        yield
    finally:
        _writing -= main
        if main and not _writing and _deferred:
            raise _deferred.pop()


def atomic_write(path: Path, data) -> None:
    with _whole_write():
        _atomic_write(path, data)


def _atomic_write(path: Path, data) -> None:
    """Write bytes to `path` so that readers see the old or the new file, never a mix.

    `data` is the bytes, or a function that writes them to the open file (a large array)."""
    path = Path(path)
    umask = os.umask(0o077)  # read it (no call just returns it); mkstemp makes 0600 whatever it is
    os.umask(umask)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~umask)
            data(f) if callable(data) else f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_arrays(path: Path, arrays: dict) -> None:
    with _whole_write():
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write(path, buf.getvalue())


def load_arrays(path: Path, keep=None, expected: dict | None = None, max_bytes: int | None = None) -> dict:
    """Arrays from an .npz file, read safely (see npzfile); never unpickles, and refuses
    NaN or infinite values naming the array."""
    from ..npzfile import NpzError, read_npz, refuse_nonfinite

    try:
        arrays = read_npz(path, keep, expected, max_bytes)
    except FileNotFoundError:
        raise RunError(f"{path}: no such file") from None
    except NpzError as e:
        raise RunError(f"{path}: {e}") from None
    bad = refuse_nonfinite(arrays)
    if bad:
        raise RunError(f"{path}: {bad}")
    return arrays


def save_weights(path: Path, model) -> None:
    save_arrays(path, model.named_weights())


def weight_shapes(model) -> dict:
    """{'layer/weight': shape} from the layers' specs, without allocating anything."""
    return {f"{n.name}/{w.name}": tuple(w.shape) for n in model.weight_nodes()
            for w in n.layer.weight_specs(n.input_shape)}


def read_weights(path: Path, shapes: dict, check_shapes: bool = True) -> dict:
    """The `layer/weight` arrays named in `shapes` from a weights file (or a checkpoint's
    `weights/` part), reading no other member; with `check_shapes`, each header's shape is
    checked against `shapes` before its data is read."""
    wanted = {**shapes, **{f"weights/{k}": v for k, v in shapes.items()}}
    arrays = load_arrays(Path(path), keep=wanted.__contains__, expected=wanted if check_shapes else None)
    arrays = {k.removeprefix("weights/"): v for k, v in arrays.items()}
    for k, a in arrays.items():
        if not np.issubdtype(a.dtype, np.floating):
            raise RunError(f"{path}: weight {k} is not floating point ({a.dtype})")
    return arrays


def load_weights(path: Path, model) -> None:
    """Load a weights .npz (our `layer/weight` names) into the model: the file's headers
    are checked against the spec, then the memory, before the model is allocated."""
    shapes = weight_shapes(model)
    arrays = read_weights(path, shapes)
    missing = [k for k in shapes if k not in arrays]
    if missing:
        raise RunError(f"{path}: does not fit this spec: no weight {missing[0]!r}"
                       f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}")
    from ..jobs import available_memory

    need = model.count_params() * (8 if model.spec.dtype == "float64" else 4) * 2  # weights + grads
    avail = available_memory()
    if avail is not None and need > avail:
        raise RunError(f"{path}: this spec's weights need about {need >> 20} MB; the machine has "
                       f"{avail >> 20} MB available")
    for k, store in model.named_weights().items():
        store[...] = arrays[k]


def new_run_dir(root: Path, spec_name: str) -> Path:
    """runs/<spec name>/<timestamp>/, created; the name is checked to stay inside root."""
    if not _SAFE_NAME.match(spec_name) or spec_name in (".", ".."):
        raise RunError(f"the spec name {spec_name!r} cannot name a run directory")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / spec_name
    base.mkdir(parents=True, exist_ok=True)
    for i in range(1000):
        path = base / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunError(f"cannot create a new run directory under {base}")


def check_writable(run_dir: Path) -> None:
    """Refuse a run directory where files cannot be created (read-only mount, permissions)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".write-test.", suffix=".tmp", dir=run_dir)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise RunError(f"{run_dir} is not writable ({e.strerror}); training needs to write its "
                       "checkpoints there") from None


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold an exclusive lock on a run directory (flock on `train.lock`, which names our pid).

    The kernel releases the lock when the process ends, however it ends, so a lock file left
    by a dead process never blocks."""
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise RunError(f"{path}: cannot open the run's lock file ({e.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            raise RunError(f"{run_dir} is in use by another layerc train (process {holder}); "
                           "wait for it to end or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _lock_holder(fd, wait: float = 2.0) -> str:
    """The pid in a held lock file. The holder writes it just after taking the lock, so
    until then the file is empty or names the process that held it before (and is dead):
    read again, for at most `wait` seconds, until it names a live process."""
    end = time.monotonic() + wait
    while True:
        text = os.pread(fd, 64, 0).decode(errors="replace").strip()
        if text.isdigit() and _alive(int(text)):
            return text
        if time.monotonic() > end:
            return "unknown"
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def save_checkpoint(run_dir: Path, trainer, finished: bool = False) -> None:
    """The trainer's whole state as checkpoint.npz; `finished` marks a run that completed."""
    arrays, meta = trainer.state()
    meta["finished"] = finished
    arrays["meta"] = np.array(json.dumps(meta))
    save_arrays(Path(run_dir) / CHECKPOINT, arrays)


_CHECKPOINT_PARTS = ("weights", "optimizer", "metric", "callback")


def load_checkpoint(run_dir: Path) -> tuple[dict, dict]:
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise RunError(f"{run_dir} has no {CHECKPOINT} to resume from")
    from ..jobs import available_memory

    arrays = load_arrays(path, keep=lambda k: k == "meta" or k.split("/", 1)[0].startswith(_CHECKPOINT_PARTS),
                         max_bytes=available_memory())
    if "meta" not in arrays:
        raise RunError(f"{path}: not a layerc checkpoint (no meta)")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError:
        raise RunError(f"{path}: its meta record is corrupt") from None
    return arrays, meta


def write_json(path: Path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, default=_jsonable) + "\n").encode())


def write_metrics_csv(path: Path, history: list[dict]) -> None:
    if not history:
        return
    columns = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for row in history:  # full precision (as Keras's CSVLogger): what training printed, read back
        w.writerow({k: (repr(float(v)) if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write(path, buf.getvalue().encode())


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


class RunRecorder(Callback):
    """Writes the run directory as training goes: checkpoint and metrics.csv after every
    epoch, best weights when a `checkpoint` callback asks, final weights at the end."""

    def __init__(self, run_dir: Path, run_info: dict):
        self.run_dir = Path(run_dir)
        self.info = run_info

    def on_epoch_end(self, trainer, epoch, logs):
        write_metrics_csv(self.run_dir / "metrics.csv", trainer.history)
        if trainer.save_best:
            save_weights(self.run_dir / BEST, trainer.model)
        save_checkpoint(self.run_dir, trainer)

    def on_train_end(self, trainer, logs):
        save_weights(self.run_dir / WEIGHTS, trainer.model)
        self.info.update(finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), final_metrics=logs,
                         epochs_done=trainer.epoch)
        write_json(self.run_dir / "run.json", self.info)

"""Finding and reading run directories for `layerc runs list`, `runs show` and `plot`.

Anything may sit under a runs folder: half-written runs (killed before run.json), corrupt
files, directories that are not runs at all. Each is read without raising: a run gets the
status `unknown` and a note, a folder that is no run is skipped with a note.
"""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import CHECKPOINT, LOCK, RunError

MARKERS = ("run.json", "metrics.csv", CHECKPOINT, "spec.yaml", LOCK)
STATUSES = ("running", "finished", "interrupted", "diverged", "failed", "unknown")
MAX_BYTES = 16 << 20  # run.json and metrics.csv larger than this are not ours
_MAX_DEPTH = 4  # runs/<name>/<time>/ is 2; --run-dir may put runs a little deeper


@dataclass
class Run:
    """What a run directory holds, read tolerantly.

    Args:
        path: the run directory.
        info: run.json ({} if missing or corrupt).
        history: metrics.csv's rows, numbers as floats (epoch as int).
        notes: what could not be read.
    """

    path: Path
    info: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    status: str = "unknown"

    @property
    def name(self) -> str:
        name = self.info.get("spec")
        return name if isinstance(name, str) else self.path.parent.name

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def started(self) -> str | None:
        value = self.info.get("started")
        return value if isinstance(value, str) else None

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    @property
    def epochs_planned(self) -> int | None:
        value = self.info.get("epochs")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def seconds(self) -> float | None:
        """Training time: the sum of the epochs' times (what `train` printed)."""
        times = [row["seconds"] for row in self.history if isinstance(row.get("seconds"), float)]
        return sum(times) if times else None

    @property
    def test(self) -> dict:
        return _numbers(self.info.get("test_metrics"))

    def metric_names(self) -> list[str]:
        """The logged metric names without the val_ prefix: loss, accuracy, ..."""
        names = dict.fromkeys(k.removeprefix("val_") for row in self.history for k in row)
        return [k for k in names if k not in ("epoch", "seconds", "learning_rate")]

    def best(self, key: str) -> tuple[float, int] | None:
        """(best value, its epoch) of a metrics.csv column, by Keras's mode for its name."""
        sign = direction(key)
        rows = [(row[key], row.get("epoch", i + 1)) for i, row in enumerate(self.history)
                if isinstance(row.get(key), float) and row[key] == row[key]]
        return min(rows, key=lambda r: sign * r[0]) if rows else None

    def headline(self) -> str | None:
        """The column `runs list` shows as best: val_<first metric>, else val_loss, else loss."""
        names = [*(n for n in self.metric_names() if n != "loss"), "loss"]
        logged = {k for row in self.history for k in row}
        return next((k for k in [*(f"val_{n}" for n in names), *names] if k in logged), None)

    def to_dict(self) -> dict:
        key = self.headline()
        best = self.best(key) if key else None
        return {"path": str(self.path), "name": self.name, "run_id": self.run_id, "status": self.status,
                "started": self.started, "epochs": self.epochs_done, "epochs_planned": self.epochs_planned,
                "best": None if best is None else {"metric": key, "value": best[0], "epoch": best[1]},
                "test": self.test, "seconds": self.seconds, "error": self.info.get("error"),
                "notes": self.notes}


def direction(key: str) -> float:
    """1.0 where lower is better (losses, errors), -1.0 where higher is (accuracy, auc...)."""
    from ..train.callbacks import _Monitor

    return _Monitor(key).sign


def is_run_dir(path: Path) -> bool:
    return any((path / m).exists() for m in MARKERS)


def is_running(path: Path) -> bool:
    """True while a `layerc train` holds the run's lock (probed with a shared, non-blocking flock)."""
    try:
        fd = os.open(Path(path) / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases a lock we took


def read_run(path: Path) -> Run:
    """A run directory read without raising: what is unreadable becomes a note."""
    path = Path(path)
    run = Run(path)
    text, note = _read_text(path / "run.json")
    if note:
        run.notes.append(note)
    elif text is not None:
        try:
            info = json.loads(text)
        except json.JSONDecodeError:
            info = None
        if isinstance(info, dict):
            run.info = info
        else:
            run.notes.append("run.json is corrupt")
    else:
        run.notes.append("no run.json (a run killed as it started?)")
    run.history, note = read_history(path / "metrics.csv")
    if note:
        run.notes.append(note)
    run.status = _status(run)
    return run


def _status(run: Run) -> str:
    if is_running(run.path):
        return "running"
    if not run.info:
        return "unknown"
    status = run.info.get("status")
    if status in STATUSES:
        return status
    if "finished" in run.info:  # runs from before run.json recorded a status
        return "finished"
    return "interrupted" if (run.path / CHECKPOINT).exists() else "failed"


def read_history(path: Path) -> tuple[list[dict], str | None]:
    """metrics.csv's rows with numbers parsed, and a note if it is unreadable or damaged."""
    text, note = _read_text(path)
    if text is None:
        return [], note
    rows, bad = [], 0
    try:
        for raw in csv.DictReader(io.StringIO(text)):
            row = {}
            for k, v in raw.items():
                if k is None or v is None:  # a torn or ragged line
                    continue
                try:
                    row[k] = int(v) if k == "epoch" else float(v)
                except ValueError:
                    pass
            if row.get("epoch") is None:
                bad += 1
            else:
                rows.append(row)
    except csv.Error:
        return rows, f"{path.name} is corrupt"
    return rows, f"{path.name}: {bad} unreadable row{'' if bad == 1 else 's'} skipped" if bad else None


def _read_text(path: Path) -> tuple[str | None, str | None]:
    """(text, None), (None, None) when absent, or (None, note) when unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f"{path.name}: {e.strerror or e}"
    if len(data) > MAX_BYTES:
        return None, f"{path.name} is over {MAX_BYTES >> 20} MB: not a layerc file"
    try:
        return data.decode(), None
    except UnicodeDecodeError:
        return None, f"{path.name} is corrupt (not text)"


def find_runs(root: Path) -> tuple[list[Run], list[str]]:
    """Every run directory under `root`, newest first, and notes on folders skipped."""
    root = Path(root)
    if not root.is_dir():
        raise RunError(f"{root}: no such directory of runs")
    if is_run_dir(root):
        return [read_run(root)], []
    runs, notes = [], []

    def walk(folder: Path, depth: int):
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            notes.append(f"skipped {folder}: {e.strerror or e}")
            return
        files = False
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if not is_dir:
                files = files or not entry.name.startswith(".")
            elif is_run_dir(Path(entry.path)):
                runs.append(read_run(Path(entry.path)))
            elif depth < _MAX_DEPTH:
                walk(Path(entry.path), depth + 1)
        if files and folder != root:
            notes.append(f"skipped {folder}: not a layerc run directory")

    walk(root, 1)
    runs.sort(key=lambda r: (r.started or "", r.run_id), reverse=True)
    return runs, notes


def sort_runs(runs: list[Run], metric: str) -> list[Run]:
    """Best first by a metric: a metrics.csv column (best epoch), `test_<name>`, `epochs` or
    `duration`; runs without it go last."""
    if metric in ("epochs", "duration"):
        value = (lambda r: r.epochs_done) if metric == "epochs" else (lambda r: r.seconds)
        sign = -1.0 if metric == "epochs" else 1.0
    elif metric.startswith("test_"):
        value, sign = (lambda r: r.test.get(metric[5:])), direction(metric[5:])
    else:
        value, sign = (lambda r: (r.best(metric) or (None,))[0]), direction(metric)
    known = [r for r in runs if value(r) is not None]
    if not known:
        names = sorted({k for r in runs for row in r.history for k in row if k != "epoch"}
                       | {f"test_{k}" for r in runs for k in r.test} | {"epochs", "duration"})
        raise RunError(f"no run has {metric!r} to sort by; try one of: {', '.join(names)}")
    return sorted(known, key=lambda r: sign * value(r)) + [r for r in runs if value(r) is None]


def _numbers(d) -> dict:
    if not isinstance(d, dict):
        return {}
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

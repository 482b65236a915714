"""Runs side by side: the spec values that differ, final, best and test metrics, epochs, time."""
from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path

from . import RunError

_NOT_METRICS = ("epoch", "seconds", "learning_rate")
_LOWER_IS_BETTER = ("loss", "mae", "mse", "rmse", "error")


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of this metric (val_loss, mae, ...) is the better one."""
    name = metric.removeprefix("val_")
    return any(name == w or name.endswith("_" + w) or name.startswith(w) for w in _LOWER_IS_BETTER)


def read_history(run_dir: Path) -> list[dict]:
    """metrics.csv as one dict of numbers per epoch ([] if the run has none yet)."""
    path = Path(run_dir) / "metrics.csv"
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise RunError(f"{path}: cannot read: {e}") from None
    out = []
    for i, row in enumerate(rows, 2):
        try:
            out.append({k: float(v) for k, v in row.items() if k is not None and v not in (None, "")})
        except ValueError:
            raise RunError(f"{path}:{i}: a value is not a number") from None
    return out


def _seconds(info: dict, history: list[dict]) -> float | None:
    """Training time: the epochs' own seconds, else the run's start to finish (to the second)."""
    times = [r["seconds"] for r in history if "seconds" in r]
    if times:
        return sum(times)
    try:
        start, end = (datetime.strptime(info[k], "%Y-%m-%dT%H:%M:%S%z") for k in ("started", "finished"))
        return (end - start).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def read_run(run_dir) -> dict:
    """What one run directory says: its spec, history, final, best and test metrics, time."""
    from ..jobs import _read_run_info, read_spec_source
    from ..spec import parse_spec

    run_dir = Path(run_dir)
    info = _read_run_info(run_dir)
    text, label = read_spec_source(str(run_dir / "spec.yaml"))
    spec = parse_spec(text, label)
    history = read_history(run_dir)
    metrics = [k for k in dict.fromkeys(k for r in history for k in r) if k not in _NOT_METRICS]
    best = {}
    for m in metrics:
        rows = [r for r in history if m in r and math.isfinite(r[m])]
        if rows:
            pick = min if lower_is_better(m) else max
            row = pick(rows, key=lambda r: r[m])
            best[m] = {"value": row[m], "epoch": int(row.get("epoch", history.index(row) + 1))}
    final = {m: history[-1][m] for m in metrics if m in history[-1]} if history else {}
    return {"run": str(run_dir), "spec_name": spec.name or info.get("spec"), "spec": spec,
            "status": "finished" if info.get("finished") else "unfinished",
            "epochs": len(history), "planned_epochs": info.get("epochs"), "seconds": _seconds(info, history),
            "started": info.get("started"), "final": final, "best": best,
            "test": info.get("test_metrics") or {}}


def compare_runs(run_dirs) -> dict:
    """Several runs side by side (JSON-serialisable): per run its facts, and per row one value a run.

    `spec` holds the settings whose values differ between the runs' spec.yaml, by path
    (`layers.dense.units`, `train.optimizer.learning_rate`; see spec.diff); `final`, `best`
    and `test` the metrics (best: the epoch's value that is best for the metric)."""
    from ..spec.diff import differing_settings

    runs = [read_run(d) for d in run_dirs]
    if len(runs) < 2:
        raise RunError("compare needs two runs or more")
    rows = {}
    for part in ("final", "best", "test"):
        names = list(dict.fromkeys(m for r in runs for m in r[part]))
        rows[part] = {m: [r[part].get(m) for r in runs] for m in names}
    return {
        "runs": [{k: r[k] for k in ("run", "spec_name", "status", "epochs", "planned_epochs", "seconds", "started")}
                 for r in runs],
        "spec": differing_settings([r["spec"] for r in runs]),
        **rows,
    }

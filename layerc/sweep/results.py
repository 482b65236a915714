"""What a sweep leaves in DIR: leaderboard.csv, best.yaml and sweep.json, from the trials'
own run directories (DIR/trials/<trial>/), so they are right whatever Ray remembers."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from ..runs import atomic_write, write_json
from .trial import TRIAL_INFO


def trial_rows(root: Path, metric: str, mode: str, planned_epochs: int, states: dict,
               interrupted: bool = False) -> list[dict]:
    """One row per trial folder: its values, best metric, epochs run and status, best first.

    Args:
        states: Tune's last state per trial id (TERMINATED, ERROR, RUNNING, ...).
        interrupted: the sweep was stopped (Ctrl-C): an unfinished run was cut, not stopped early.
    """
    rows = []
    trials = root / "trials"
    for folder in sorted(p for p in (trials.iterdir() if trials.is_dir() else ()) if p.is_dir()):
        try:
            info = json.loads((folder / TRIAL_INFO).read_text())
        except (OSError, ValueError):
            continue
        history = _metrics(folder / "metrics.csv")
        values = [h[metric] for h in history if isinstance(h.get(metric), float) and math.isfinite(h[metric])]
        best = (max if mode == "max" else min)(values) if values else None
        run = _json(folder / "run.json")
        rows.append({"trial": info["trial"], "values": info.get("values", {}), "seed": info.get("seed"),
                     "best": best, "epochs": len(history),
                     "status": _status(None if interrupted else states.get(info["trial"]), run.get("status"),
                                           len(history), planned_epochs),
                     "nodes": [a["node"] for a in info.get("attempts", [])], "dir": str(folder)})
    sign = -1 if mode == "max" else 1
    rows.sort(key=lambda r: (r["best"] is None, sign * r["best"] if r["best"] is not None else 0, r["trial"]))
    return rows


def _status(tune_state, run_status, epochs, planned) -> str:
    if tune_state == "ERROR":
        return "failed"
    if run_status in ("finished", "diverged", "failed"):
        return run_status
    if tune_state == "TERMINATED":
        return "stopped early" if epochs < planned else "finished"
    return "interrupted"


def write_results(root: Path, rows: list[dict], summary: dict, metric: str) -> dict | None:
    """leaderboard.csv, best.yaml (the best trial's resolved spec) and sweep.json; returns
    the best row (None when no trial logged the metric)."""
    keys = list(dict.fromkeys(k for r in rows for k in r["values"]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trial", *keys, f"best_{metric}", "epochs", "status", "seed"])
    for r in rows:
        writer.writerow([r["trial"], *(r["values"].get(k, "") for k in keys),
                         "" if r["best"] is None else repr(r["best"]), r["epochs"], r["status"], r["seed"]])
    atomic_write(root / "leaderboard.csv", out.getvalue().encode())
    best = next((r for r in rows if r["best"] is not None), None)
    if best is not None and (Path(best["dir"]) / "spec.yaml").is_file():
        text = (Path(best["dir"]) / "spec.yaml").read_text()
        header = (f"# the best trial of the sweep in {root} ({best['trial']}: {metric} {best['best']:.6g})\n")
        atomic_write(root / "best.yaml", (header + text).encode())
    write_json(root / "sweep.json", {**summary, "best": best and best["trial"], "trials": rows})
    return best


def _metrics(path: Path) -> list[dict]:
    try:
        text = path.read_text()
    except OSError:
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        rows.append({k: _float(v) for k, v in row.items()})
    return rows


def _float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

"""Train the six reference specs from scratch and rewrite the README's results table.

    python benchmarks/reproduce.py                 # all six (over an hour on 2 cores)
    python benchmarks/reproduce.py --only mnist_mlp temperature_forecast
    python benchmarks/reproduce.py --no-readme     # print the table only

Results are kept per spec in benchmarks/results/reference.json; the README table is
rewritten from it once all six have a result.

Each run goes through the same path as `layerc train` (a run directory under
benchmarks/runs/), then reports the test figures the spec's header promises.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path

import numpy as np

from layerc import jobs

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# the persistence baseline is computed by this script, so that spec's figure comes from here
COMMANDS = {"temperature_forecast": "python benchmarks/reproduce.py --only temperature_forecast"}
START, END = "<!-- reference-results:start -->", "<!-- reference-results:end -->"

TARGETS = {
    "mnist_cnn": ("test accuracy", ">= 99.0%"),
    "mnist_mlp": ("test accuracy", ">= 98.0%"),
    "sms_spam_lstm": ("test accuracy", ">= 98.0%"),
    "temperature_forecast": ("test MAE (°C)", "< persistence"),
    "mnist_resnet": ("test accuracy", ">= 99.2%"),
    "sms_spam_transformer": ("test accuracy", ">= 98.0%"),
}


def persistence_and_model_mae(run_dir: Path, spec_path: Path):
    """(model MAE, persistence MAE) on the test split in degrees: tomorrow = today."""
    from layerc.data.inputs import inverse_targets

    spec, model, fitted = jobs.load_trained(spec_path, run_dir / "weights.npz")
    data = jobs.load_dataset(spec, model)
    x, y = data.test
    truth = inverse_targets(y.reshape(len(y), -1), fitted)[:, 0]
    today = inverse_targets(x[:, -1, :].reshape(len(x), -1), fitted)[:, 0]
    pred = inverse_targets(model.predict(x).reshape(len(x), -1), fitted)[:, 0]
    return float(np.mean(np.abs(pred - truth))), float(np.mean(np.abs(today - truth)))


def run_one(name: str) -> dict:
    spec_path = ROOT / "specs" / f"{name}.yaml"
    started = time.perf_counter()
    result = jobs.train(spec_path, run_root=ROOT / "benchmarks" / "runs")
    seconds = time.perf_counter() - started
    test = result.test or {}
    row = {"spec": name, "seconds": seconds, "epochs": len(result.history), "test": test,
           "run_dir": str(result.run_dir)}
    metric, target = TARGETS[name]
    if name == "temperature_forecast":
        mae, base = persistence_and_model_mae(result.run_dir, spec_path)
        row.update(mae=mae, persistence_mae=base, reached=f"{mae:.3f} (persistence {base:.3f})",
                   met=mae < base)
    else:
        acc = test.get("accuracy", float("nan"))
        extra = ""
        if "precision" in test:
            extra = f"; spam precision {100 * test['precision']:.1f}%, recall {100 * test['recall']:.1f}%"
        row.update(reached=f"{100 * acc:.2f}%{extra}", met=acc >= float(target.strip(">=% ")) / 100)
    row.update(metric=metric, target=target, machine=_machine())
    print(json.dumps(row, default=str), flush=True)
    return row


def _machine() -> str:
    return f"{_cpu()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}"


def table(rows: list[dict]) -> str:
    # rows are rerun one spec at a time: say when and where each group was measured
    groups: dict = {}
    for r in rows:
        groups.setdefault((r.get("measured"), r.get("machine")), []).append(f"`{r['spec']}`")
    when = "; ".join(("" if len(groups) == 1 else ", ".join(specs) + " ") + f"on {day}" + (f" ({where})" if where else "")
                     for (day, where), specs in groups.items())
    lines = [f"Measured by `python benchmarks/reproduce.py`{':' if len(groups) > 1 else ''} {when}.", "",
             "| spec | metric | target | reached | met | epochs | wall time | command |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        command = COMMANDS.get(r["spec"]) or f"layerc train specs/{r['spec']}.yaml"
        lines.append(f"| `{r['spec']}` | {r['metric']} | {r['target']} | {r['reached']} | "
                     f"{'yes' if r['met'] else 'NO'} | {r['epochs']} | {r['seconds'] / 60:.1f} min | "
                     f"`{command}` |")
    return "\n".join(lines)


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=list(TARGETS), help="specs to run (default: all six)")
    ap.add_argument("--no-readme", action="store_true", help="do not rewrite the README table")
    args = ap.parse_args()
    out = ROOT / "benchmarks" / "results" / "reference.json"
    out.parent.mkdir(exist_ok=True)
    # rows of earlier runs are kept, so the specs can be rerun one at a time
    rows = {r["spec"]: r for r in (json.loads(out.read_text()) if out.exists() else [])}
    for name in args.only or list(TARGETS):
        rows[name] = {**run_one(name), "measured": time.strftime("%Y-%m-%d")}
    ordered = [rows[n] for n in TARGETS if n in rows]
    out.write_text(json.dumps(ordered, indent=2, default=str) + "\n")
    text = table(ordered)
    print(text)
    if not args.no_readme and len(ordered) == len(TARGETS):
        readme = README.read_text()
        if START in readme:
            new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda m: f"{START}\n{text}\n{END}", readme,
                         flags=re.S)
            README.write_text(new)
            print("README table rewritten")


if __name__ == "__main__":
    main()

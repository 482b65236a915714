"""Sweep overhead: N trials as a `layerc sweep` (embedded Ray) against the same trials run
one after another with `layerc train`, and the speed-up of 2 concurrent trials on 2 cores.

    python benchmarks/bench_sweep.py [--trials 4] [--epochs 3] [--repeats 3]

Each figure is the median wall time of `--repeats` runs (the machine may be shared: say so).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPEC = """\
name: bench-sweep
seed: 1
input: {{shape: [32]}}
layers:
  - Dense: {{units: 64, activation: relu}}
  - Dense: {{units: 3, activation: softmax}}
data: {{format: npz, train: data.npz, validation_split: 0.2}}
train:
  optimizer: adam
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  batch_size: 32
  epochs: {epochs}
  tensorboard: false
"""
SWEEP = """\
spec: spec.yaml
metric: val_accuracy
mode: max
search: grid
space:
  train.optimizer.learning_rate: {{choice: {rates}}}
resources: {{cpus_per_trial: 1}}
"""


def _run(args, env):
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "layerc", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.samples, 32)).astype(np.float32)
    np.savez(work / "data.npz", x=x, y=(x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0))
    (work / "spec.yaml").write_text(SPEC.format(epochs=a.epochs))
    rates = [round(1e-3 * (i + 1), 6) for i in range(a.trials)]
    (work / "sweep.yaml").write_text(SWEEP.format(rates=json.dumps(rates)))
    env = dict(os.environ, PYTHONPATH=str(ROOT), LAYERC_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0")
    times = {"train one after another": [], "sweep, 1 at a time": [], "sweep, 2 at a time": []}
    for r in range(a.repeats):
        times["train one after another"].append(sum(
            _run(["train", str(work / "spec.yaml"), "--quiet", "--set", f"train.optimizer.learning_rate={lr}",
                  "--run-dir", str(work / f"t{r}-{i}")], env) for i, lr in enumerate(rates)))
        times["sweep, 1 at a time"].append(_run(["sweep", str(work / "sweep.yaml"), "--output", str(work / f"s1-{r}"),
                                                 "--max-concurrent", "1"], env))
        times["sweep, 2 at a time"].append(_run(["sweep", str(work / "sweep.yaml"), "--output", str(work / f"s2-{r}"),
                                                 "--max-concurrent", "2"], env))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["train one after another"]
    print(f"{a.trials} trials x {a.epochs} epochs, {a.samples} samples, Dense 32-64-3; medians of {a.repeats}; "
          f"1-min load average at the end {os.getloadavg()[0]:.2f}")
    for k, v in med.items():
        print(f"  {k:<26} {v:7.1f} s   ({v / a.trials:.2f} s per trial)")
    print(f"  sweep overhead per trial (1 at a time vs train): {(med['sweep, 1 at a time'] - base) / a.trials:+.2f} s")
    print(f"  speed-up of 2 concurrent trials over 1: {med['sweep, 1 at a time'] / med['sweep, 2 at a time']:.2f}x")


if __name__ == "__main__":
    main()

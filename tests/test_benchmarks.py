"""The benchmark scripts still run (their figures are theirs to print, not the tests')."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_bench_quick_writes_its_table_and_json(tmp_path):
    out = tmp_path / "bench.json"
    r = _run("benchmarks/bench.py", "--quick", "--models", "mlp", "--samples", "512",
             "--no-memory", "--no-summary", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "MLP" in r.stdout and "train samples/s" in r.stdout
    rows = {row["metric"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows["train samples/s"]["layerc"] > 0 and rows["infer samples/s"]["layerc"] > 0


def test_lstm_floor_runs_one_round():
    r = _run("benchmarks/lstm_floor.py", "--rounds", "1", "--calls", "2")
    assert r.returncode == 0, r.stderr
    for row in ("layerc LSTM layer", "one batch half alone", "products alone (floor)"):
        assert row in r.stdout

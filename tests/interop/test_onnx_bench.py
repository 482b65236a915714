"""benchmarks/bench_onnx.py still runs (its figures are its own to print, not the tests')."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

ROOT = Path(__file__).resolve().parents[2]


def test_bench_onnx_quick_checks_outputs_and_writes_its_table(tmp_path):
    out = tmp_path / "onnx.json"
    r = subprocess.run([sys.executable, "benchmarks/bench_onnx.py", "--quick", "--models", "cnn,lstm",
                        "--samples", "64", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "| seed CNN | 128 |" in r.stdout and "| SMS LSTM, padded texts (5-80 tokens) | 64 |" in r.stdout and "outputs agree" in r.stderr
    results = json.loads(out.read_text())["results"]
    assert results["lstm"]["max_abs_output_diff"] <= 1e-5 and results["cnn"]["onnxruntime_median"] > 0

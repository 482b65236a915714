"""What ONNX export buys: inference of the seed CNN and the SMS LSTM in ONNX Runtime against
layerc's own `predict` (issue 13).

    python benchmarks/bench_onnx.py                 # cnn, lstm (padded texts), lstm-full; 5 repeats
    python benchmarks/bench_onnx.py --quick         # fewer samples, 1 repeat: checks the harness
    python benchmarks/bench_onnx.py --models cnn --repeats 9 --json out.json

Method as in bench.py: one process, the same numpy inputs and weights for both (the model is
exported with `layerc.interop.onnx.to_onnx` and checked to give layerc's outputs before any
timing), the same batch sizes as bench.py (128 for the CNN, 64 for the LSTM), one warm-up
pass, then per repeat one timed pass of each, back to back, 0.3 s idle before each. Figures
are medians over repeats; the ratio is the median of each repeat's own ratio (ONNX Runtime /
layerc), so machine load hits both sides of a ratio alike. ONNX Runtime runs with its default
threads (one per core), layerc with its own (LAYERC_NUM_THREADS).

The LSTM is specs/sms_spam_lstm.yaml (Embedding with mask_zero, LSTM 64, Dense): `lstm` feeds
right-padded texts of 5-80 tokens (the mask becomes ONNX's sequence lengths), `lstm-full`
texts of all 80 tokens.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bench import SEED, log, machine, timed  # noqa: E402

SPECS = {"cnn": ROOT / "specs" / "mnist_cnn.yaml", "lstm": ROOT / "specs" / "sms_spam_lstm.yaml",
         "lstm-full": ROOT / "specs" / "sms_spam_lstm.yaml"}
TITLES = {"cnn": "seed CNN", "lstm": "SMS LSTM, padded texts (5-80 tokens)", "lstm-full": "SMS LSTM, 80 tokens"}
BATCH = {"cnn": 128, "lstm": 64, "lstm-full": 64}
SAMPLES = {"cnn": 6400, "lstm": 3200, "lstm-full": 3200}
QUICK_SAMPLES = {"cnn": 512, "lstm": 256, "lstm-full": 256}


def make_inputs(model: str, n: int) -> np.ndarray:
    rng = np.random.default_rng([SEED, list(SPECS).index(model)])
    if model == "cnn":
        return rng.random((n, 28, 28, 1), dtype=np.float32)
    ids = rng.integers(1, 10000, (n, 80), dtype=np.int32)
    if model == "lstm":
        for row, k in zip(ids, rng.integers(5, 81, n)):
            row[k:] = 0
    return ids


def ort_session(proto):
    import onnxruntime as ort

    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def ort_pass(sess, name, x, bs):
    return np.concatenate([sess.run(None, {name: x[s:s + bs]})[0] for s in range(0, len(x), bs)])


def bench_model(model: str, n: int, repeats: int) -> dict:
    import layerc
    from layerc.interop.onnx import to_onnx

    bs = BATCH[model]
    lm = layerc.build(layerc.load_spec(SPECS[model]))
    x = make_inputs(model, n)
    t0 = time.perf_counter()
    proto = to_onnx(lm)
    export_s = time.perf_counter() - t0
    sess = ort_session(proto)
    name = lm.input_names[0]
    k = min(n, 256)
    diff = float(np.max(np.abs(ort_pass(sess, name, x[:k], bs) - lm.predict(x[:k], batch_size=bs))))
    if diff > 1e-5:
        raise SystemExit(f"[{model}] ONNX Runtime and layerc disagree by {diff:.3g}: not timing")
    log(f"[{model}] outputs agree (max abs difference {diff:.2g}); warm-up")
    lm.predict(x, batch_size=bs)
    ort_pass(sess, name, x, bs)
    res = {"samples": n, "batch_size": bs, "repeats": repeats, "max_abs_output_diff": diff,
           "export_seconds": export_s, "onnx_bytes": len(proto.SerializeToString()),
           "layerc": [], "onnxruntime": []}
    for r in range(repeats):
        res["layerc"].append(n / timed(lambda: lm.predict(x, batch_size=bs)))
        res["onnxruntime"].append(n / timed(lambda: ort_pass(sess, name, x, bs)))
        log(f"[{model}] repeat {r + 1}/{repeats}: layerc {res['layerc'][-1]:,.0f}/s, "
            f"onnxruntime {res['onnxruntime'][-1]:,.0f}/s")
    res["layerc_median"] = statistics.median(res["layerc"])
    res["onnxruntime_median"] = statistics.median(res["onnxruntime"])
    res["ratio_median"] = statistics.median(o / l for o, l in zip(res["onnxruntime"], res["layerc"]))
    return res


def markdown(results: dict, info: dict) -> str:
    lines = ["| model | batch | layerc infer samples/s | ONNX Runtime infer samples/s | ratio |",
             "|---|---:|---:|---:|---:|"]
    for model, r in results.items():
        lines.append(f"| {TITLES[model]} | {r['batch_size']} | {r['layerc_median']:,.0f} | "
                     f"{r['onnxruntime_median']:,.0f} | {r['ratio_median']:.2f}x |")
    load = ", ".join(f"{v:.2f}" for v in info["loadavg_start"])
    blas = info.get("numpy_blas") or {}
    blas = f" ({blas.get('name')} {blas.get('version')})" if blas else ""
    repeats = next(iter(results.values()))["repeats"]
    lines.append("")
    lines.append(f"- machine: {info['cpu']}, {info['usable_cpus']} cores, {info['memory_gb']} GB; Python "
                 f"{info['python']}, numpy {info['numpy']}{blas}, onnxruntime {info['onnxruntime']}; "
                 f"1/5/15-min load average at start {load}; {time.strftime('%Y-%m-%d %H:%M %Z')}; "
                 f"medians of {repeats} repeats")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(SPECS), help=f"comma-separated, from {', '.join(SPECS)}")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--samples", type=int, default=None, help="samples per timed pass (default per model)")
    p.add_argument("--quick", action="store_true", help="few samples, 1 repeat")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    try:
        import onnxruntime
    except ImportError:
        raise SystemExit('bench_onnx needs onnx and onnxruntime: pip install "layerc[onnx]"')
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in SPECS]
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(SPECS)}")
    info = machine(None)
    info["onnxruntime"] = onnxruntime.__version__
    info["layerc_num_threads"] = os.environ.get("LAYERC_NUM_THREADS")
    repeats = 1 if args.quick else args.repeats
    results = {}
    for m in models:
        n = args.samples or (QUICK_SAMPLES if args.quick else SAMPLES)[m]
        results[m] = bench_model(m, n, repeats)
    info["loadavg_end"] = os.getloadavg()
    table = markdown(results, info)
    print(table)
    if args.json:
        from bench import write_json

        write_json(args.json, {"machine": info, "results": results, "markdown": table})


if __name__ == "__main__":
    main()

"""Every `keras.applications` architecture through `layerc import` and back (issue 20).

    python benchmarks/bench_applications.py                      # every architecture, its README table
    python benchmarks/bench_applications.py --archs ResNet50 MobileNetV2 --no-readme
    python benchmarks/bench_applications.py --archs ResNet101 --replace-rows   # those rows of the README table
    python benchmarks/bench_applications.py --quick              # the smallest of each family only

Each architecture is built by Keras (KERAS_BACKEND=torch; NASNetMobile and NASNetLarge, which
Keras refuses to build on torch, by Keras on JAX in a subprocess, which also loads and runs
the exported file: tests/interop/keras_jax.py) with weights=None at the smallest
input it accepts (32x32, 75x75 for the Inceptions, 71x71 for Xception), with include_top
(10 classes, softmax) and without it (pooling avg, then max, alternating), its weights
re-drawn so each layer roughly keeps its input's variance (tests/interop/keras_apps.py:
Keras's initial weights make a deep random net give nearly the same output for every
input), saved as .keras, imported (`layerc.interop.keras.import_to_dir`, what `layerc
import` runs), run in layerc on a batch of 4 inputs, exported with `save_keras` and loaded
in Keras again. The error is the largest absolute difference relative to the largest
output, for the import (layerc against Keras) and the export (Keras on the exported file
against Keras on the original); `ok` means both are within 1e-4. Import and export are
wall times of one run each (the machine is shared: treat them as rough).
The table goes into README.md between the `bench-applications` markers; a failure is a row
with its reason.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FAMILIES = [
    ["VGG16", "VGG19"], ["ResNet50", "ResNet101", "ResNet152"], ["ResNet50V2", "ResNet101V2", "ResNet152V2"],
    ["DenseNet121", "DenseNet169", "DenseNet201"], ["InceptionV3"], ["InceptionResNetV2"], ["Xception"],
    ["MobileNet"], ["MobileNetV2"], ["MobileNetV3Small", "MobileNetV3Large"],
    [f"EfficientNetB{i}" for i in range(8)],
    ["EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3", "EfficientNetV2S",
     "EfficientNetV2M", "EfficientNetV2L"],
    ["ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge"],
    ["NASNetMobile", "NASNetLarge"],
]
START, END = "<!-- bench-applications:start -->", "<!-- bench-applications:end -->"


def run(keras, arch, include_top, pooling) -> dict:
    from tests.interop import keras_jax
    from tests.interop.keras_apps import build, round_trip

    keras.backend.clear_session()
    row = {"arch": arch, "top": include_top, "pooling": pooling}
    kw = {"include_preprocessing": True} if arch.startswith("MobileNetV3") else {}
    if arch in keras_jax.JAX_ONLY:
        if not keras_jax.available():
            return {**row, "failed": "Keras builds it on JAX only, and jax is not installed"}
        model = None
    else:
        try:
            model = build(keras, arch, include_top=include_top, pooling=pooling, **kw)
        except Exception as e:  # Keras itself refuses
            return {**row, "failed": f"Keras cannot build it here: {str(e).splitlines()[0]}"}
    with tempfile.TemporaryDirectory() as d:
        try:
            row.update(round_trip(keras, model, d) if model is not None else
                       keras_jax.round_trip(arch, d, include_top=include_top, pooling=pooling, **kw))
        except Exception as e:
            row["failed"] = f"{type(e).__name__}: " + "; ".join(sorted(set(
                line.strip() for line in str(e).splitlines()[1:] or str(e).splitlines())))
    return row


def table(rows) -> str:
    lines = ["| architecture | head | parameters | max error (import / export) | import s | export s | |",
             "|---|---|---:|---|---:|---:|---|"]
    for r in rows:
        head = "top, 10 classes" if r["top"] else f"no top, pooling {r['pooling']}"
        if "failed" in r:
            lines.append(f"| {r['arch']} | {head} | | | | | {r['failed']} |")
            continue
        ok = max(r["import_error"], r["export_error"]) <= 1e-4
        lines.append(f"| {r['arch']} | {head} | {r['params']:,} | {r['import_error']:.1e} / {r['export_error']:.1e} "
                     f"| {r['import_s']:.1f} | {r['export_s']:.1f} | {'ok' if ok else 'OVER 1e-4'} |")
    return "\n".join(lines)


def write_readme(text: str) -> None:
    from layerc.runs import atomic_write

    path = ROOT / "README.md"
    readme = path.read_text()
    a, b = readme.index(START) + len(START), readme.index(END)
    atomic_write(path, (readme[:a] + "\n" + text + "\n" + readme[b:]).encode())


def replace_rows(rows) -> None:
    """The README table's rows of these architectures and heads measured again; the rest of
    the table and the text after it are kept. A row the table lacks goes after the rows of
    the architectures before it (in FAMILIES' order)."""
    from layerc.runs import atomic_write

    path = ROOT / "README.md"
    readme = path.read_text()
    a, b = readme.index(START) + len(START), readme.index(END)
    lines = readme[a:b].split("\n")
    for line in table(rows).splitlines()[2:]:
        key = "|".join(line.split("|")[:3]) + "|"
        at = [i for i, old in enumerate(lines) if old.startswith(key)]
        if at:
            lines[at[0]] = line
            continue
        every = [a for f in FAMILIES for a in f]
        arch = line.split("|")[1].strip()
        if arch not in every:
            raise SystemExit(f"no README row starts with {key!r}: run without --replace-rows")
        before = set(every[:every.index(arch) + 1])
        rows_at = [i for i, old in enumerate(lines) if old.startswith("| ") and old.split("|")[1].strip() in before]
        if not rows_at:
            raise SystemExit(f"no README row to put {key!r} after: run without --replace-rows")
        lines.insert(rows_at[-1] + 1, line)
    atomic_write(path, (readme[:a] + "\n".join(lines) + readme[b:]).encode())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", nargs="*", help="these architectures only (default: every one)")
    p.add_argument("--quick", action="store_true", help="the smallest member of each family only")
    p.add_argument("--no-readme", action="store_true", help="print the table, leave README.md alone")
    p.add_argument("--rows", type=Path, help="append each row to this JSON-lines file as it is measured")
    p.add_argument("--table-from", type=Path, help="write the table of the rows in this file (measure nothing)")
    p.add_argument("--replace-rows", action="store_true",
                   help="with --archs: replace only these rows of the README table, keep the rest and its notes")
    args = p.parse_args(argv)
    if args.table_from:
        rows = [json.loads(line) for line in args.table_from.read_text().splitlines() if line.strip()]
        order = {a: i for i, a in enumerate(a for f in FAMILIES for a in f)}
        rows.sort(key=lambda r: (order.get(r["arch"], 99), not r["top"]))
        text = table(rows) + "\n\nMeasured with `python benchmarks/bench_applications.py` (Keras on torch, a shared 2-core machine)."
        print(text)
        if not args.no_readme:
            write_readme(text)
        return 0
    import keras

    if args.archs:
        archs = args.archs
    else:
        archs = [f[0] for f in FAMILIES] if args.quick else [a for f in FAMILIES for a in f]
    rows, t0 = [], time.perf_counter()
    every = [a for f in FAMILIES for a in f]
    for arch in archs:  # pooling alternates along the whole list, so a row keeps its head run alone
        i = every.index(arch) if arch in every else 0
        for top, pooling in ((True, None), (False, "avg" if i % 2 == 0 else "max")):
            rows.append(run(keras, arch, top, pooling))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
            if args.rows:
                with open(args.rows, "a") as f:
                    f.write(json.dumps(rows[-1]) + "\n")
    text = table(rows) + (f"\n\nMeasured with `python benchmarks/bench_applications.py` "
                          f"({time.perf_counter() - t0:.0f} s, Keras {keras.__version__} on torch, "
                          f"a shared 2-core machine).")
    print(text)
    if args.replace_rows:
        replace_rows(rows)
    elif not args.no_readme:
        write_readme(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

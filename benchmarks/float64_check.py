"""float32 rounding or a wrong layer? Keras and layerc, each in float32 and float64, on the same weights (issue 20).

    python benchmarks/float64_check.py EfficientNetB6 ResNet152            # with the top (10 classes)
    python benchmarks/float64_check.py EfficientNetB6 --no-top --pooling avg
    python benchmarks/float64_check.py EfficientNetB6 --layers 10           # and the 10 layers where it grows most

Each architecture is built, re-drawn and fed as benchmarks/bench_applications.py does
(tests/interop/keras_apps.py: the same input size, weights, BatchNormalization calibration
and batch of 4 inputs); the same weights go into the architecture built again under Keras's
float64 policy (computing in float64: see keras_apps.float64); both .keras files are
imported as `layerc import` does (the float64 one gives a `dtype: float64` spec). Printed,
as the largest absolute difference over the largest output:

    (a) layerc float32 vs Keras float32   (the bench's figure)
    (b) Keras float32  vs Keras float64   (Keras's own float32 rounding)
    (c) layerc float64 vs Keras float64   (the layers' formulas; a wrong layer shows here)
    (d) layerc float32 vs Keras float64   (layerc's own float32 rounding)

for the outputs and, with a softmax top, for the logits (the top run without its softmax).
(a) of the size of (b) with (c) tiny means float32 rounding, not a wrong layer.
NASNetMobile and NASNetLarge, which Keras builds on JAX only, go through two JAX Keras
subprocesses (tests/interop/keras_jax.py): one builds, re-draws and runs the float32 model
as the bench does, the other (jax_enable_x64) its float64 twin; --layers is not for them.
--layers N adds, for the N layers where (a) grows most from their inputs', each layer's
(a)-(d) on its own output (relative to that output's largest value).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

PAIRS = (("a", "layerc32", "keras32"), ("b", "keras32", "keras64"), ("c", "layerc64", "keras64"),
         ("d", "layerc32", "keras64"))


def imported(kmodel, workdir):
    """kmodel saved, imported as `layerc import` does, built with its weights."""
    workdir.mkdir()
    kmodel.save(workdir / "source.keras")
    return imported_file(workdir / "source.keras", workdir)


def imported_file(source, workdir):
    """A .keras file imported as `layerc import` does, built with its weights."""
    import layerc
    from layerc.interop.keras import import_to_dir
    from layerc.runs import load_weights

    import_to_dir(source, workdir / "imported")
    model = layerc.build(layerc.load_spec(workdir / "imported" / "spec.yaml"))
    load_weights(workdir / "imported" / "weights.npz", model)
    return model


def layerc_outputs(model, x, logits: bool) -> dict:
    out = {"output": np.asarray(model.predict(x), np.float64)}
    if logits:
        out["logits"] = np.asarray(model.forward(x, logits=True)[0], np.float64)
    return out


def keras_layer_outputs(keras, kmodel, x, names, rename=None) -> dict:
    """{name: output} of kmodel's layers that have one of names (after rename)."""
    rename = rename or {}
    layers = [lay for lay in kmodel.layers if rename.get(lay.name, lay.name) in names]
    probe = keras.Model(kmodel.inputs, [lay.output for lay in layers])
    return {rename.get(lay.name, lay.name): np.asarray(y, np.float64)
            for lay, y in zip(layers, probe.predict(x, verbose=0))}


def layerc_layer_outputs(model, x) -> dict:
    """Each node's output in inference, for the nodes whose output is their own: a layer
    computing the BatchNormalization, pooling or rectifier after it is left out (its output
    is that layer's); a layer the one before it computed takes that one's output."""
    values, originals = {}, {}
    for node in model.nodes:
        layer = node.layer
        originals[node.name] = layer.forward

        def record(X, training, mask=None, _f=layer.forward, _name=node.name):
            Y, back = _f(X, training, mask)
            values[_name] = np.asarray(Y, np.float64)
            return Y, back
        layer.forward = record
    try:
        model.predict(x)
    finally:
        for node in model.nodes:
            node.layer.forward = originals[node.name]
    for node in model.nodes:
        if node.name in model._folded:
            values[node.name] = values[node.inputs[0]]
    return {n.name: values[n.name] for n in model.nodes if n.name in values and not _computes_next(n.layer)}


def _computes_next(layer) -> bool:
    return (getattr(layer, "bn", None) is not None or getattr(layer, "pool", None) is not None
            or getattr(layer, "rectifier", (False,))[0])


def check(keras, arch, include_top=True, pooling=None, layers=0, **kw) -> dict:
    from tests.interop import keras_jax
    from tests.interop.keras_apps import build, float64, keras_outputs, prepare, relative_error, rebuilt, softmax_top

    if arch in keras_jax.JAX_ONLY:
        if layers:
            raise SystemExit(f"--layers: not for {arch} (built by Keras on JAX in another process)")
        return check_jax(arch, include_top, pooling, **kw)

    keras.backend.clear_session()
    kw = {"include_top": include_top, "pooling": pooling, **kw}
    k32 = build(keras, arch, **kw)
    x = prepare(keras, k32, n=4)
    with float64(keras):
        k64 = rebuilt(keras, arch, k32, **kw)
        k64_out = keras_outputs(keras, k64, x.astype(np.float64))
    with tempfile.TemporaryDirectory() as d:
        l32, l64 = imported(k32, Path(d, "32")), imported(k64, Path(d, "64"))
    assert l64.spec.dtype == "float64"
    logits = softmax_top(k32) is not None
    runs = {"keras32": keras_outputs(keras, k32, x), "keras64": k64_out,
            "layerc32": layerc_outputs(l32, x, logits), "layerc64": layerc_outputs(l64, x, logits)}
    result = {"arch": arch, "head": "top, 10 classes" if include_top else f"no top, pooling {pooling}"}
    for what in runs["keras32"]:
        result[what] = {p: relative_error(runs[u][what], runs[v][what]) for p, u, v in PAIRS}
    if layers:
        # Keras numbers unnamed layers per session (rescaling, then rescaling_1): k32's names for both
        rename = {b.name: a.name for a, b in zip(k32.layers, k64.layers)}
        ours = {"layerc32": layerc_layer_outputs(l32, x),
                "layerc64": {rename.get(n, n): v for n, v in layerc_layer_outputs(l64, x).items()}}
        names = [n for n in ours["layerc32"] if n in ours["layerc64"]]
        theirs = {"keras32": keras_layer_outputs(keras, k32, x, set(names))}
        with float64(keras):
            theirs["keras64"] = keras_layer_outputs(keras, k64, x.astype(np.float64), set(names), rename)
        vals = {**ours, **theirs}
        names = [n for n in names if n in theirs["keras32"]]
        errors = {n: {p: relative_error(vals[u][n], vals[v][n]) for p, u, v in PAIRS} for n in names}
        inputs = {node.name: node.inputs for node in l32.nodes}

        def before(name):  # (a) of the layer's inputs (through the layers left out)
            return max((errors[s]["a"] if s in errors else before(s) for s in inputs.get(name, ())), default=0.0)
        growth = sorted(names, key=lambda n: errors[n]["a"] / max(before(n), 1e-30), reverse=True)[:layers]
        result["layers"] = [(n, before(n), errors[n]) for n in names if n in growth]
        result["last_layers"] = [(n, errors[n]) for n in names[-3:]]
    return result


def check_jax(arch, include_top=True, pooling=None, **kw) -> dict:
    """check for an architecture Keras builds on JAX only (tests/interop/keras_jax.py): the
    float32 model built, re-drawn and run by one JAX worker, its float64 twin built and run
    by another with jax_enable_x64 (kept apart so the float32 oracle runs as in the bench)."""
    from tests.interop.keras_jax import JaxKeras
    from tests.interop.keras_apps import relative_error

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        src, src64 = d / "source.keras", d / "source64.keras"
        head = {"arch": arch, "include_top": include_top, "pooling": pooling, "kw": kw}
        with JaxKeras(d / "jax.log") as jk:
            jk.call("build", **head, n=4, seed=0, source=str(src), arrays=str(d / "source.npz"))
            jk.call("outputs", source=str(src), arrays=str(d / "source.npz"), out=str(d / "keras32.npz"))
        with JaxKeras(d / "jax64.log", x64=True) as jk:
            jk.call("float64", **head, source=str(src), source64=str(src64), arrays=str(d / "source.npz"),
                    out=str(d / "keras64.npz"))
        with np.load(d / "source.npz") as f:
            x = f["x"]
        runs = {}
        for name in ("keras32", "keras64"):
            with np.load(d / f"{name}.npz") as f:
                runs[name] = {k: np.asarray(f[k], np.float64) for k in f.files}
        (d / "32").mkdir(), (d / "64").mkdir()
        l32, l64 = imported_file(src, d / "32"), imported_file(src64, d / "64")
    assert l64.spec.dtype == "float64"
    logits = "logits" in runs["keras32"]
    runs.update(layerc32=layerc_outputs(l32, x, logits), layerc64=layerc_outputs(l64, x.astype(np.float64), logits))
    result = {"arch": arch, "head": "top, 10 classes" if include_top else f"no top, pooling {pooling}"}
    for what in runs["keras32"]:
        result[what] = {p: relative_error(runs[u][what], runs[v][what]) for p, u, v in PAIRS}
    return result


def report(r) -> str:
    lines = [f"{r['arch']} ({r['head']})"]
    for what in ("logits", "output"):
        if what in r:
            e = r[what]
            lines.append(f"  {what:7s} (a) layerc32-keras32 {e['a']:.1e}  (b) keras32-keras64 {e['b']:.1e}  "
                         f"(c) layerc64-keras64 {e['c']:.1e}  (d) layerc32-keras64 {e['d']:.1e}")
    if "layers" in r:
        lines.append("  where (a) grows most (layer: (a) of its inputs -> (a) (b) (c) (d) of its output):")
        for name, before, e in r["layers"]:
            lines.append(f"    {name:32s} {before:.1e} -> {e['a']:.1e} {e['b']:.1e} {e['c']:.1e} {e['d']:.1e}")
        lines.append("  the last layers compared:")
        for name, e in r["last_layers"]:
            lines.append(f"    {name:32s} {e['a']:.1e} {e['b']:.1e} {e['c']:.1e} {e['d']:.1e}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("archs", nargs="+", help="keras.applications architectures (EfficientNetB6, ResNet152, ...)")
    p.add_argument("--no-top", action="store_true", help="without the top (default: with it, 10 classes)")
    p.add_argument("--pooling", choices=("avg", "max"), default="avg", help="the no-top pooling (default avg)")
    p.add_argument("--layers", type=int, default=0, metavar="N", help="also the N layers where (a) grows most")
    args = p.parse_args(argv)
    import keras

    for arch in args.archs:
        kw = {"include_preprocessing": True} if arch.startswith("MobileNetV3") else {}
        r = check(keras, arch, not args.no_top, None if not args.no_top else args.pooling, args.layers, **kw)
        print(report(r), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

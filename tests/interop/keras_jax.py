"""A Keras on the JAX backend in a subprocess, for the architectures Keras will not build on
torch (NASNetMobile, NASNetLarge: "not available with the torch backend at this time due
to an outstanding bug"). The .keras format does not depend on the backend, and Keras's
backend is fixed per process, so the JAX Keras builds, re-draws and saves the model and
gives its outputs (tests/interop/keras_apps.py, as on torch), layerc imports and exports
it in the calling process, and the JAX Keras loads the exported file and runs it again.

Requests and answers cross as JSON lines (the worker's stdin and the fd its stdout was),
arrays as .npz files in the work folder: no pickle. Run as a script, this file is the
worker; `JaxKeras` starts and talks to it; `round_trip` is keras_apps.round_trip through it.

Its time is JAX's: XLA compiles each program apart. Keras's initial weights (a sampler
for each of NASNetMobile's ~60 weight shapes, 7 of its 8 s of build CPU time) are drawn by
NumPy in the worker, as keras_apps.redraw draws every random weight again anyway; and the
worker runs XLA at --xla_backend_optimization_level=0 (the same float32 Keras model, XLA
fusing less), which compiles and runs its training pass and predict in less CPU time than
the default, with a compilation cache of its own so that the exported file's predict reuses
the original's compiled program.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

JAX_ONLY = ("NASNetMobile", "NASNetLarge")  # the applications Keras builds on JAX but not on torch


def available() -> bool:
    """Whether jax is installed (looked up, not imported: the caller's Keras is on torch)."""
    return importlib.util.find_spec("jax") is not None and importlib.util.find_spec("keras") is not None


class JaxKeras:
    """The worker process: `call(op, **args)` sends one request and returns its answer."""

    def __init__(self, log: Path, x64: bool = False):
        """x64: jax_enable_x64, for the float64 op (JAX computes float64 as float32 without it)."""
        self._cache = tempfile.TemporaryDirectory(prefix="layerc-jax-cache-")
        env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "JAX_ENABLE_X64": "1" if x64 else "0",
               "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip(),
               "LAYERC_JAX_CACHE": self._cache.name}
        self.log = Path(log)
        self._err = open(self.log, "w")
        self._proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._err, env=env, text=True)

    def call(self, op: str, **args) -> dict:
        self._proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the JAX Keras worker ended ({self._proc.wait()}):\n{self._tail()}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"JAX Keras, {op}: {answer['error']}")
        return answer

    def _tail(self) -> str:
        self._err.flush()
        return "\n".join(self.log.read_text().splitlines()[-30:])

    def close(self):
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._err.close()
        self._cache.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def round_trip(arch, workdir, include_top=True, pooling=None, n=4, seed=0, **kw) -> dict:
    """keras_apps.round_trip for an architecture Keras builds on JAX only: built, re-drawn,
    saved and run by the JAX worker, imported and exported here, the exported file run by
    the worker again. Adds the worker's build (and re-draw) and check times."""
    import time

    from .keras_apps import layerc_round_trip

    workdir = Path(workdir)
    with JaxKeras(workdir / "jax.log") as jk:
        t0 = time.perf_counter()
        built = jk.call("build", arch=arch, include_top=include_top, pooling=pooling, n=n, seed=seed, kw=kw,
                        source=str(workdir / "source.keras"), arrays=str(workdir / "source.npz"))
        t_build = time.perf_counter() - t0
        with np.load(workdir / "source.npz") as f:
            x, want = f["x"], f["y"]

        def keras_predict(path, x):
            np.savez(workdir / "x.npz", x=x)
            jk.call("predict", source=str(path), arrays=str(workdir / "x.npz"), out=str(workdir / "y.npz"))
            with np.load(workdir / "y.npz") as f:
                return f["y"]

        t0 = time.perf_counter()
        result = layerc_round_trip(workdir / "source.keras", x, want, workdir, keras_predict)
        t_check = time.perf_counter() - t0 - result["import_s"] - result["export_s"]
    return {"params": built["params"], **result, "keras_build_s": t_build, "rest_s": t_check}


# ---- the worker (KERAS_BACKEND=jax) ----

@contextmanager
def _numpy_initializers():
    """Keras's initial weights drawn by NumPy while a model is built or loaded. JAX compiles
    its sampler for each weight shape (NASNetMobile: ~60 XLA programs, most of its build
    time), and no initial value is ever used here: keras_apps.redraw draws every random one
    again (a loaded model takes the file's). Only Keras's uniform, normal and truncated
    normal sampling is replaced, and only inside the block (a model's build or load: no
    predict runs in it)."""
    from keras.src.backend.jax import random as jr

    saved = jr.uniform, jr.normal, jr.truncated_normal
    rng = np.random.default_rng(0)

    def array(values, dtype):
        import jax.numpy as jnp
        from keras.src.backend.config import floatx

        return jnp.asarray(values, dtype=dtype or floatx())

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        return array(rng.uniform(minval, maxval, tuple(shape)), dtype)

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        return array(rng.normal(mean, stddev, tuple(shape)), dtype)

    def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        z = rng.normal(0.0, 1.0, tuple(shape))
        while np.any(far := np.abs(z) > 2.0):  # within two standard deviations, as Keras's
            z[far] = rng.normal(0.0, 1.0, int(far.sum()))
        return array(mean + stddev * z, dtype)

    jr.uniform, jr.normal, jr.truncated_normal = uniform, normal, truncated_normal
    try:
        yield
    finally:
        jr.uniform, jr.normal, jr.truncated_normal = saved


def _build(keras, apps, arch, include_top, pooling, n, seed, kw, source, arrays):
    keras.backend.clear_session()
    with _numpy_initializers():
        model = apps.build(keras, arch, include_top=include_top, pooling=pooling, **kw)
    x = apps.prepare(keras, model, n, seed)
    model.save(source)
    np.savez(arrays, x=x, y=np.asarray(model.predict(x, verbose=0)))
    return {"params": int(model.count_params())}


def _predict(keras, apps, source, arrays, out):
    with np.load(arrays) as f:
        x = f["x"]
    with _numpy_initializers():
        model = keras.saving.load_model(source)
    np.savez(out, y=np.asarray(model.predict(x, verbose=0)))
    return {}


def _outputs(keras, apps, source, arrays, out):
    """A saved model's outputs on the x in arrays, and with a softmax top its logits."""
    with np.load(arrays) as f:
        x = f["x"]
    with _numpy_initializers():
        model = keras.saving.load_model(source)
    np.savez(out, **apps.keras_outputs(keras, model, x))
    return {}


def _float64(keras, apps, arch, include_top, pooling, kw, source, source64, arrays, out):
    """The architecture built again under Keras's float64 policy (keras_apps.float64) with the
    float32 model's weights, saved, and its float64 outputs (and logits) on x."""
    import jax

    assert jax.config.jax_enable_x64, "the float64 op needs a JaxKeras(x64=True)"
    keras.backend.clear_session()
    with _numpy_initializers():
        k32 = keras.saving.load_model(source)
    with np.load(arrays) as f:
        x = f["x"].astype(np.float64)
    with apps.float64(keras):
        with _numpy_initializers():
            k64 = apps.rebuilt(keras, arch, k32, include_top=include_top, pooling=pooling, **kw)
        k64.save(source64)
        np.savez(out, **apps.keras_outputs(keras, k64, x))
    return {}


def _serve():
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever Keras or JAX print goes to the log, not into the answers
    sys.path.insert(0, str(Path(__file__).parent))
    import jax

    if os.environ.get("LAYERC_JAX_CACHE"):
        jax.config.update("jax_compilation_cache_dir", os.environ["LAYERC_JAX_CACHE"])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    import keras
    import keras_apps as apps

    assert keras.backend.backend() == "jax", keras.backend.backend()
    ops = {"build": _build, "predict": _predict, "outputs": _outputs, "float64": _float64}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = ops[request.pop("op")](keras, apps, **request)
        except Exception as e:  # told to the caller, which raises it
            import traceback

            traceback.print_exc()
            answer = {"error": f"{type(e).__name__}: {e}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    _serve()

"""`keras.applications` models as an oracle: built with weights=None, re-drawn so outputs
differ from input to input, then Keras -> `layerc import` -> layerc == Keras -> export ->
Keras `load_model` == Keras. Shared by tests/interop/test_applications.py,
benchmarks/bench_applications.py and benchmarks/float64_check.py."""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

# architecture -> the smallest input side the application accepts (Keras's own minimum,
# or the size below which its stride-32 stages have nothing left)
MIN_SIZE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71, "NASNetMobile": 32, "NASNetLarge": 32}


def sublayers(model):
    """Every layer, nested models' layers included (the models themselves left out)."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from sublayers(layer)
        else:
            yield layer


def redraw(model, x, seed=0):
    """Weights that keep each layer's output variance near its input's, so a deep random
    network's outputs differ from input to input (Keras's initial weights make them nearly
    equal, which would hide a wrong layer): kernels N(0, 2/fan_in), small random biases,
    random BatchNormalization/LayerNormalization scales and shifts, LayerScale near 1, and
    BatchNormalization moving statistics set to the batch statistics of `x` (one pass in
    training mode with momentum 0 and no dropout), then perturbed."""
    rng = np.random.default_rng(seed)
    layers = list(sublayers(model))
    for layer in layers:
        kind = type(layer).__name__
        ws = layer.get_weights()
        if not ws:
            continue
        new = []
        for w, v in zip(ws, layer.weights):
            name = v.path.rsplit("/", 1)[-1]
            if not np.issubdtype(np.asarray(w).dtype, np.floating):
                new.append(w)
            elif w.ndim >= 2:
                fan_in = int(np.prod(w.shape[:-2])) if kind == "DepthwiseConv2D" or "depthwise" in name \
                    else int(np.prod(w.shape[:-1]))
                new.append(rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), w.shape))
            elif kind == "LayerScale" or name == "gamma" or name == "alpha":
                new.append(rng.uniform(0.6, 1.4, w.shape))
            elif name == "variance":
                new.append(rng.uniform(0.5, 2.0, w.shape))
            elif name in ("moving_mean", "moving_variance"):
                new.append(w)
            else:  # biases, beta, an adapted mean
                new.append(rng.uniform(-0.2, 0.2, w.shape))
        layer.set_weights(new)
    bns = [lay for lay in layers if type(lay).__name__ == "BatchNormalization"]
    if bns:
        saved = [b.momentum for b in bns]
        drops = [(lay, lay.rate) for lay in layers if hasattr(lay, "rate") and "Dropout" in type(lay).__name__]
        for b in bns:
            b.momentum = 0.0
        for lay, _ in drops:  # the statistics of the inference path (EfficientNet drops whole blocks)
            lay.rate = 0.0
        _training_pass(model, x)
        for lay, rate in drops:
            lay.rate = rate
        for b, m in zip(bns, saved):
            b.momentum = m
            mean, var = b.moving_mean.numpy(), b.moving_variance.numpy()
            b.moving_mean.assign(mean + rng.uniform(-0.1, 0.1, mean.shape) * np.sqrt(var))
            b.moving_variance.assign(var * rng.uniform(0.8, 1.25, var.shape))


def _training_pass(model, x):
    """model(x, training=True), its BatchNormalization statistics updated. On JAX one jitted
    stateless call: run eagerly, each of NASNet's ops compiles on its own (10 s against 3 s)."""
    import keras

    if keras.backend.backend() != "jax":
        model(x, training=True)
        return
    import jax

    step = jax.jit(lambda trainable, rest, x: model.stateless_call(trainable, rest, x, training=True)[1])
    rest = step([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables], x)
    for v, value in zip(model.non_trainable_variables, rest):
        v.assign(value)


def redraw_keras(keras, model, x, seed=0):
    """redraw, then the classifier scaled to unsaturated softmax outputs."""
    redraw(model, x, seed)
    _tame_logits(keras, model, x)


def _tame_logits(keras, model, x):
    """Scale the classifier so its softmax is not saturated (one-hot outputs hide errors)."""
    last = model.layers[-1]
    if getattr(getattr(last, "activation", None), "__name__", "") != "softmax":
        return
    z = np.asarray(keras.Model(model.inputs, last.input).predict(x, verbose=0), np.float64)
    owner = last
    if type(last).__name__ == "Dense":
        W, b = last.get_weights()
        z = z @ W + b
    else:  # Activation('softmax') after the last kernel's (linear) Conv2D, Reshape, Flatten
        owner = [lay for lay in sublayers(model) if lay.get_weights()][-1]
    s = 1.5 / max(float(np.std(z)), 1e-12)
    owner.set_weights([w * s for w in owner.get_weights()])


def softmax_top(kmodel):
    last = kmodel.layers[-1]
    return last if getattr(getattr(last, "activation", None), "__name__", "") == "softmax" else None


def keras_outputs(keras, kmodel, x) -> dict:
    """{"output": kmodel's outputs on x} in float64, and with a softmax top its "logits" (the
    top run without its softmax; on JAX, predict's compiled function is made again for it,
    as for the outputs after)."""
    out = {"output": np.asarray(kmodel.predict(x, verbose=0), np.float64)}
    top = softmax_top(kmodel)
    if top is not None:
        act, top.activation = top.activation, keras.activations.linear
        try:
            kmodel.predict_function = None
            out["logits"] = np.asarray(kmodel.predict(x, verbose=0), np.float64)
        finally:
            top.activation = act
            kmodel.predict_function = None
    return out


def relative_error(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-30))


def spread(y) -> float:
    """How much the outputs differ between the inputs of a batch, relative to their size."""
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    return float(np.max(np.abs(y - y[0])) / max(np.max(np.abs(y)), 1e-30))


def build(keras, arch, size=None, include_top=True, pooling=None, classes=10, **kw):
    size = size or MIN_SIZE.get(arch, 32)
    fn = getattr(keras.applications, arch)
    return fn(weights=None, input_shape=(size, size, 3), include_top=include_top, pooling=pooling,
              **({"classes": classes} if include_top else {}), **kw)


@contextmanager
def float64(keras):
    """Keras's float64 policy, computing in float64. On torch (and JAX: every backend but
    TensorFlow; JAX also needs jax_enable_x64), keras.backend.result_type maps float64 to float32 (keras-team/keras#23223, #23704), so a float64 BatchNormalization
    computes in float32 (its compute dtype is result_type(x, "float32")), as do Normalization's
    max(sqrt(variance), 1e-7) and the ops that take their dtype from it: float64 as Keras runs
    it is no float64 oracle. That mapping is lifted here, then restored."""
    from keras.src.backend.common import dtypes

    saved = keras.config.floatx(), keras.config.dtype_policy(), dtypes.BIT64_TO_BIT32_DTYPE["float64"]
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"
    try:
        yield
    finally:
        keras.config.set_floatx(saved[0])
        keras.config.set_dtype_policy(saved[1])
        dtypes.BIT64_TO_BIT32_DTYPE["float64"] = saved[2]


def rebuilt(keras, arch, kmodel, **kw):
    """The architecture built again (under the policy in force) with kmodel's weights."""
    model = build(keras, arch, **kw)
    model.set_weights(kmodel.get_weights())
    for layer in sublayers(model):  # Normalization's mean and variance tensors are made at build
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()
    return model


def prepare(keras, kmodel, n=4, seed=0):
    """Re-draw kmodel's weights (redraw_keras) and return the batch of n inputs it is checked on."""
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(0.0, 1.0, (n, *kmodel.input_shape[1:])).astype(np.float32) * 50 + 100
    # the BatchNormalization statistics come from 256 inputs: at the 1x1 positions of a small
    # input's last stages, 16 gave channels whose variance was far below that of other inputs,
    # each such layer a gain on float32 rounding (EfficientNetV2B0: Keras's own float32 outputs
    # were 2e-2 off its float64 ones, layerc's 4e-2 off Keras's; with 256, 6e-5)
    calibration = rng.normal(0.0, 1.0, (256, *kmodel.input_shape[1:])).astype(np.float32) * 50 + 100
    redraw_keras(keras, kmodel, calibration, seed)
    return x


def round_trip(keras, kmodel, workdir, n=4, seed=0) -> dict:
    """Keras -> import -> layerc -> export -> Keras on a batch of n inputs: the errors
    relative to the largest output, the times and the number of parameters."""
    workdir = Path(workdir)
    x = prepare(keras, kmodel, n, seed)
    src = workdir / "source.keras"
    kmodel.save(src)
    want = np.asarray(kmodel.predict(x, verbose=0))
    result = layerc_round_trip(src, x, want, workdir,
                               lambda path, x: np.asarray(keras.saving.load_model(path).predict(x, verbose=0)))
    return {"params": int(kmodel.count_params()), **result}


def layerc_round_trip(src, x, want, workdir, keras_predict) -> dict:
    """The layerc half of round_trip, for a .keras file `src` whose Keras outputs on x are
    `want` (made here or by a Keras in another process, tests/interop/keras_jax.py):
    import, layerc's outputs against want, export, and keras_predict(exported file, x)
    against want."""
    import layerc
    from layerc.interop.keras import import_to_dir, save_keras
    from layerc.runs import load_weights

    workdir = Path(workdir)
    t0 = time.perf_counter()
    import_to_dir(src, workdir / "imported")
    t_import = time.perf_counter() - t0
    model = layerc.build(layerc.load_spec(workdir / "imported" / "spec.yaml"))
    load_weights(workdir / "imported" / "weights.npz", model)
    ours = model.predict(x)
    t0 = time.perf_counter()
    save_keras(model, workdir / "back.keras")
    t_export = time.perf_counter() - t0
    again = keras_predict(workdir / "back.keras", x)
    return {"import_error": relative_error(ours, want), "export_error": relative_error(again, want),
            "spread": spread(want), "import_s": t_import, "export_s": t_export, "layers": len(model.nodes)}

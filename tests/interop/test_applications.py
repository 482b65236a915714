"""The smallest `keras.applications` model of each family, built with weights=None and
re-drawn so its outputs differ from input to input (tests/interop/keras_apps.py), imports
with `layerc import`, gives Keras's outputs within 1e-4 of the largest output on a batch of
inputs, and exports to a `.keras` file Keras loads with the same outputs.

benchmarks/bench_applications.py runs the same check over every architecture of each
family. Keras refuses to build NASNet on torch, so NASNetMobile is built, re-drawn, run and
its exported file checked by Keras on JAX in a subprocess (tests/interop/keras_jax.py), and
skipped where jax is not installed.
"""
import pytest

from . import keras_jax
from .keras_apps import build, round_trip
from .test_keras_import import fresh_keras_names  # noqa: F401  (autouse)

pytest.importorskip("h5py")

# (architecture, include_top, pooling, extra arguments): the smallest of each family, at
# the smallest input it accepts, the cheaper form (no top) where the top adds nothing new
CASES = [
    ("VGG16", False, "max", {}),
    ("ResNet50", True, None, {}),  # without the top: 1.07e-4 on an AMD EPYC, float32 rounding (see the note in README)
    ("ResNet50V2", True, None, {}),
    ("DenseNet121", False, "max", {}),
    ("InceptionV3", False, "avg", {}),
    ("InceptionResNetV2", False, "avg", {}),
    ("Xception", False, "max", {}),
    ("MobileNet", True, None, {"alpha": 0.25}),
    ("MobileNetV2", False, "avg", {"alpha": 0.35}),
    ("MobileNetV3Small", True, None, {"include_preprocessing": True, "alpha": 0.75}),
    ("EfficientNetB0", True, None, {}),
    ("EfficientNetV2B0", False, "avg", {}),
    ("ConvNeXtTiny", True, None, {}),
]


# all thirteen take about 90 s on a quiet 2-core machine (InceptionResNetV2 18 s, the
# MobileNets 3 s each): every one runs in the suite


@pytest.mark.parametrize("arch, top, pooling, kw", CASES, ids=[c[0] for c in CASES])
def test_application_round_trip(keras, tmp_path, arch, top, pooling, kw):
    result = round_trip(keras, build(keras, arch, include_top=top, pooling=pooling, **kw), tmp_path)
    assert result["spread"] > 0.05, result  # the outputs differ from input to input
    assert result["import_error"] <= 1e-4, result
    assert result["export_error"] <= 1e-4, result


@pytest.mark.skipif(not keras_jax.available(), reason="NASNet is built by Keras on JAX: jax is not installed")
def test_nasnet_mobile_round_trip_through_keras_on_jax(tmp_path):
    """NASNetMobile at 32x32, the smallest input it takes, without its top (the top adds only
    a Dense, checked above): its separable convolutions (stride 1 same, stride 2 valid after
    ZeroPadding2D), AveragePooling2D with padding same (Keras divides by the window's real
    inputs), the 1x1 stride-2 AveragePooling2D and Cropping2D of its adjusting paths,
    MaxPooling2D, Add and Concatenate. About 20 s on a quiet 2-core machine (22 s of CPU
    time, the JAX subprocess's included, most of it XLA compiling NASNet's training pass and
    predict; 2.5 s layerc's)."""
    result = keras_jax.round_trip("NASNetMobile", tmp_path, include_top=False, pooling="avg")
    assert result["spread"] > 0.05, result
    assert result["import_error"] <= 1e-4, result
    assert result["export_error"] <= 1e-4, result


def test_float64_import_gives_keras_float64_outputs_to_float64_rounding(keras, tmp_path):
    """An EfficientNet block (Rescaling, Normalization, convolutions, BatchNormalization,
    swish, squeeze-and-excitation, a softmax top) in float64, Keras computing in float64
    (keras_apps.float64: on torch its float64 BatchNormalization computes in float32): layerc's
    float64 outputs are Keras's to 1e-12, where float32 rounding anywhere would leave 1e-7.
    So a deep model's float32 error (EfficientNetB6: 1e-3) is rounding, not a formula
    (benchmarks/float64_check.py)."""
    import numpy as np

    import layerc
    from layerc.interop.keras import import_to_dir
    from layerc.runs import load_weights

    from .keras_apps import float64, redraw_keras, relative_error

    L = keras.layers
    rng = np.random.default_rng(0)
    x = rng.normal(100.0, 50.0, (4, 8, 8, 3))
    with float64(keras):
        inp = keras.Input((8, 8, 3))
        h = L.Normalization(axis=-1)(L.Rescaling(1 / 255)(inp))
        h = L.Activation("swish")(L.BatchNormalization()(L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(h)))
        h = L.Activation("swish")(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", use_bias=False)(h)))
        se = L.Conv2D(2, 1, activation="swish")(L.Reshape((1, 1, 8))(L.GlobalAveragePooling2D()(h)))
        h = L.Multiply()([h, L.Conv2D(8, 1, activation="sigmoid")(se)])
        h = L.BatchNormalization()(L.Conv2D(4, 1, use_bias=False)(h))
        out = L.Dense(10, activation="softmax")(L.Dropout(0.2)(L.GlobalAveragePooling2D()(h)))
        kmodel = keras.Model(inp, out)
        redraw_keras(keras, kmodel, rng.normal(100.0, 50.0, (64, 8, 8, 3)))
        want = np.asarray(kmodel.predict(x, verbose=0))
        kmodel.save(tmp_path / "source.keras")
    import_to_dir(tmp_path / "source.keras", tmp_path / "imported")
    model = layerc.build(layerc.load_spec(tmp_path / "imported" / "spec.yaml"))
    load_weights(tmp_path / "imported" / "weights.npz", model)
    assert model.spec.dtype == "float64" and want.dtype == np.float64
    assert relative_error(model.predict(x), want) <= 1e-12

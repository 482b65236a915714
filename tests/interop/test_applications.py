"""The smallest `keras.applications` model of each family, built with weights=None and
re-drawn so its outputs differ from input to input (tests/interop/keras_apps.py), imports
with `layerc import`, gives Keras's outputs within 1e-4 of the largest output on a batch of
inputs, and exports to a `.keras` file Keras loads with the same outputs.

benchmarks/bench_applications.py runs the same check over every architecture of each
family; NASNetMobile is left out here as there: Keras refuses to build it on torch.
"""
import pytest

from .keras_apps import build, round_trip
from .test_keras_import import fresh_keras_names  # noqa: F401  (autouse)

pytest.importorskip("h5py")

# (architecture, include_top, pooling, extra arguments): the smallest of each family, at
# the smallest input it accepts, the cheaper form (no top) where the top adds nothing new
CASES = [
    ("VGG16", False, "max", {}),
    ("ResNet50", False, "avg", {}),
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

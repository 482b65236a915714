"""Importer fixes found by the keras.applications round trips (tests/interop/test_applications.py)."""
import numpy as np
import pytest

from layerc.interop.keras_config import short_float

from .test_keras_import import fresh_keras_names, imported  # noqa: F401  (autouse)

pytest.importorskip("h5py")


def test_a_float64_option_is_imported_whole_and_a_float32_one_as_its_short_decimal():
    assert short_float(1 / 255) == 1 / 255  # was 0.003921569
    assert short_float(0.1) == 0.1
    assert short_float(float(np.float32(0.001))) == 0.001
    assert short_float(float(np.float32(0.9))) == 0.9
    assert short_float(float(np.float32(1 / 3))) == 0.33333334  # the same float32
    assert short_float(1e300) == 1e300 and short_float(float("inf")) == float("inf")


def test_rescaling_by_one_over_255_keeps_its_scale(keras, tmp_path):
    """EfficientNet(V2)'s include_preprocessing Rescaling(1/255) was written as 0.003921569 (a
    relative change of 1e-7, which a deep network amplifies: in float64, where only the
    constants differ, the imported model's outputs moved by ~1e-3 of their size)."""
    kmodel = keras.Sequential([keras.Input((3,)), keras.layers.Rescaling(1.0 / 255, offset=-1.0 / 3)])
    kmodel.save(tmp_path / "source.keras")
    model, spec_text, _ = imported(tmp_path, tmp_path / "source.keras")
    assert model.spec.layers[0].scale == 1.0 / 255 and model.spec.layers[0].offset == -1.0 / 3, spec_text

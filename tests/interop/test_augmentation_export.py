"""Export of the augmentation layers: ONNX as Keras at inference (the identity; RandomCrop its
centred window, resized), `.keras` with Keras's config both ways."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import layerc
from layerc.interop.keras import save_keras
from layerc.spec import parse_spec

BATCHES = (1, 5)
IMG = "input: {shape: [9, 8, 3]}"
CASES = [
    ("random_flip", IMG, "- RandomFlip: {mode: horizontal}"),
    ("random_rotation", IMG, "- RandomRotation: {factor: 0.2, fill_mode: constant}"),
    ("random_zoom", IMG, "- RandomZoom: {height_factor: 0.2, width_factor: [-0.1, 0.3]}"),
    ("random_translation", IMG, "- RandomTranslation: {height_factor: 0.1, width_factor: 0.2, interpolation: nearest}"),
    ("random_contrast", IMG, "- RandomContrast: {factor: 0.3}"),
    ("random_brightness", IMG, "- RandomBrightness: {factor: 0.2, value_range: [0, 1]}"),
    ("random_crop_window", IMG, "- RandomCrop: {height: 6, width: 8}"),
    ("random_crop_down", IMG, "- RandomCrop: {height: 5, width: 3}"),
    ("random_crop_up", IMG, "- RandomCrop: {height: 12, width: 14}"),
    ("augmented_cnn", IMG, "- RandomFlip\n  - RandomRotation: {factor: 0.1}\n  - RandomCrop: {height: 6, width: 6}\n"
     "  - Conv2D: {filters: 2, kernel_size: 3}\n  - RandomContrast: {factor: 0.2}\n  - Flatten\n  - Dense: {units: 2}"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_onnx_is_the_inference_computation(case):
    from .onnx_helpers import assert_matches, build, randomize

    _, input_line, layers = case  # (onnx_helpers skips the test without onnx and onnxruntime)
    model = randomize(build(f"seed: 3\n{input_line}\nlayers:\n  {layers}\n"), seed=2)
    rng = np.random.default_rng(1)
    proto = assert_matches(model, [rng.normal(0, 1, (n, 9, 8, 3)).astype(np.float32) for n in BATCHES])
    ops = {n.op_type for n in proto.graph.node}
    if "Crop" not in layers and "Conv2D" not in layers:
        assert ops == {"Identity"}, ops
    if "random_crop_down" in case[0] or "random_crop_up" in case[0]:
        assert "Resize" in ops


AUGMENTATION = """
seed: 4
input: {shape: [9, 8, 3]}
layers:
  - RandomFlip: {mode: vertical, seed: 3}
  - RandomRotation: {factor: [-0.1, 0.2], fill_mode: wrap, interpolation: nearest}
  - RandomZoom: {height_factor: 0.2, width_factor: [-0.1, 0.3], fill_mode: constant, fill_value: 0.5}
  - RandomTranslation: {height_factor: 0.1, width_factor: 0.2, fill_mode: nearest}
  - RandomContrast: {factor: 0.3, value_range: [-5, 5]}
  - RandomBrightness: {factor: [-0.1, 0.2]}
  - RandomCrop: {height: 9, width: 8, seed: 12}
  - Conv2D: {filters: 2, kernel_size: 3}
  - Flatten
  - Dense: {units: 2}
"""  # (the crop keeps the size: Keras 3.15's RandomCrop returns its input uncropped at inference)


def test_keras_loads_the_export_with_keras_config_and_outputs(keras, tmp_path):
    from ..test_keras_parity import randomise

    model = layerc.build(parse_spec(AUGMENTATION))
    randomise(model, 0)
    save_keras(model, tmp_path / "m.keras")
    twin = keras.saving.load_model(tmp_path / "m.keras")
    config = {layer.name: layer.get_config() for layer in twin.layers}
    assert config["random_flip"]["mode"] == "vertical" and config["random_flip"]["seed"] == 3
    assert tuple(config["random_rotation"]["factor"]) == (-0.1, 0.2)
    assert config["random_rotation"]["fill_mode"] == "wrap" and config["random_rotation"]["interpolation"] == "nearest"
    assert config["random_zoom"]["width_factor"] == [-0.1, 0.3] and config["random_zoom"]["fill_value"] == 0.5
    assert config["random_translation"]["fill_mode"] == "nearest"
    assert tuple(config["random_contrast"]["factor"]) == (0, 0.3) and list(config["random_contrast"]["value_range"]) \
        == [-5, 5]
    assert tuple(config["random_brightness"]["factor"]) == (-0.1, 0.2)
    assert (config["random_crop"]["height"], config["random_crop"]["width"], config["random_crop"]["seed"]) == \
        (9, 8, 12)
    x = np.random.default_rng(0).uniform(0, 1, (5, 9, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), twin.predict(x, verbose=0), atol=1e-5)


def test_the_export_imports_back_as_the_same_spec(tmp_path):
    model = layerc.build(parse_spec(AUGMENTATION))
    save_keras(model, tmp_path / "m.keras")
    spec, _ = layerc.import_keras(tmp_path / "m.keras")
    assert [layer.model_dump(exclude={"name"}) for layer in spec.layers] == \
        [layer.model_dump(exclude={"name"}) for layer in model.spec.layers]


def test_a_keras_model_with_augmentation_imports(keras, tmp_path):
    L = keras.layers
    kmodel = keras.Sequential([
        keras.Input((10, 8, 3)), L.RandomFlip("horizontal", seed=1), L.RandomRotation(0.1, fill_mode="constant"),
        L.RandomZoom(0.2, 0.1), L.RandomTranslation((-0.1, 0.2), 0.1, interpolation="nearest"),
        L.RandomCrop(6, 6), L.RandomContrast(0.3), L.RandomBrightness((-0.2, 0.1), value_range=(0, 1)),
        L.Flatten(), L.Dense(2)])
    kmodel.save(tmp_path / "k.keras")
    spec, weights = layerc.import_keras(tmp_path / "k.keras")
    args = [layer.model_dump(exclude_defaults=True, exclude={"name"}) for layer in spec.layers[:7]]
    seed = json.loads(zipfile.ZipFile(tmp_path / "k.keras").read("config.json"))["config"]["layers"][5]["config"]["seed"]
    assert args == [
        {"mode": "horizontal", "seed": 1},
        {"factor": 0.1, "fill_mode": "constant"},
        {"height_factor": 0.2, "width_factor": 0.1},
        {"height_factor": (-0.1, 0.2), "width_factor": 0.1, "interpolation": "nearest"},
        {"height": 6, "width": 6, "seed": seed},  # Keras gives RandomCrop a seed of its own
        {"factor": 0.3},
        {"factor": (-0.2, 0.1), "value_range": (0.0, 1.0)},
    ]
    model = layerc.build(spec)
    model.set_weights([weights[k] for k in model.named_weights()])
    x = np.random.default_rng(0).uniform(0, 1, (3, 10, 8, 3)).astype(np.float32)
    # Keras 3.15's RandomCrop passes its input through uncropped at inference (keras-team/keras#21868),
    # so its model cannot predict; the documented centred window, then Keras's own Flatten and Dense:
    cropped = keras.ops.image.resize(x, (6, 6), crop_to_aspect_ratio=True)
    theirs = keras.ops.convert_to_numpy(kmodel.layers[-1](kmodel.layers[-2](cropped)))
    np.testing.assert_allclose(model.predict(x), theirs, atol=1e-5)


def test_bad_augmentation_arguments_in_a_keras_file_are_listed(tmp_path):
    from layerc.interop.keras import KerasError

    model = layerc.build(parse_spec(AUGMENTATION))
    save_keras(model, tmp_path / "m.keras")
    src = zipfile.ZipFile(tmp_path / "m.keras")
    config = json.loads(src.read("config.json"))
    layers = {entry["config"]["name"]: entry["config"] for entry in config["config"]["layers"]}
    layers["random_rotation"]["factor"] = ["a", "b"]
    layers["random_contrast"]["value_range"] = [5, 1]
    layers["random_zoom"]["fill_mode"] = "mirror"
    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as z:
        for name in src.namelist():
            z.writestr(name, json.dumps(config) if name == "config.json" else src.read(name))
    with pytest.raises(KerasError) as e:
        layerc.import_keras(tmp_path / "bad.keras")
    text = str(e.value)
    assert "RandomRotation 'random_rotation': factor" in text and "RandomZoom 'random_zoom': fill_mode" in text
    assert "RandomContrast 'random_contrast': value_range: Value error, must be [low, high] with low < high" in text

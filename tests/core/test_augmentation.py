"""Keras 3's image augmentation layers: Keras's arguments and defaults, the identity at inference
(RandomCrop: its centred window), pixels moved as the arguments say, Keras's numbers at fixed
draws, float64 gradients at fixed draws, seeding and exact resume."""
from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import layerc
from layerc import jobs
from layerc.core.augmentation import affine_transform, rotation_matrix, translation_matrix, zoom_matrix
from layerc.core.registry import make_layer
from layerc.runs import load_arrays, load_checkpoint
from layerc.spec import SpecError, parse_spec
from layerc.spec.layers import LAYER_TYPES
from tests.core.gradcheck import check_layer_gradients
from tests.core.keras_twin import keras_layer
from tests.train.test_loop import StopAfter

TYPES = ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomCrop", "RandomContrast",
         "RandomBrightness"]
FILLS = ["reflect", "wrap", "constant", "nearest"]
INTERPOLATIONS = ["bilinear", "nearest"]
REQUIRED = {"RandomRotation": {"factor": 0.2}, "RandomZoom": {"height_factor": 0.2},
            "RandomTranslation": {"height_factor": 0.1, "width_factor": 0.2}, "RandomCrop": {"height": 5, "width": 4},
            "RandomContrast": {"factor": 0.3}, "RandomBrightness": {"factor": 0.2}}


def layer(type_name, shape=(8, 8, 2), dtype="float64", seed=5, **args):
    spec = LAYER_TYPES[type_name](**{**REQUIRED.get(type_name, {}), **args})
    lay = make_layer(spec, type_name.lower(), seed, dtype)
    lay.output_shape(shape)
    lay.build(shape)
    return lay


def images(n=3, shape=(8, 8, 2), seed=0, dtype=np.float64):
    return np.random.default_rng(seed).uniform(0, 1, (n, *shape)).astype(dtype)


def train(lay, X):
    return lay.forward(X, True)[0]


# -- the spec: Keras's names, defaults and ranges ----------------------------------------------------

@pytest.mark.parametrize("type_name", TYPES)
def test_arguments_and_defaults_are_keras(keras, type_name):
    params = inspect.signature(getattr(keras.layers, type_name).__init__).parameters
    fields = LAYER_TYPES[type_name].model_fields
    ours = {k for k in fields if k not in ("type", "name", "inputs", "trainable")}
    assert ours == {k for k in params if k not in ("self", "kwargs", "data_format", "name")}
    for key in ours:
        theirs = params[key].default
        if theirs is inspect.Parameter.empty:
            assert fields[key].is_required(), key
        else:
            default = fields[key].default
            assert (list(default) if isinstance(default, tuple) else default) == \
                (list(theirs) if isinstance(theirs, tuple) else theirs), key


@pytest.mark.parametrize("line, message", [
    ("RandomRotation: {factor: 1.5}", "3:30: error: factor: must be a number in [-1.0, 1.0] (as in Keras), got 1.5"),
    ("RandomRotation: {factor: [1.5, 2.0]}", "factor: must be a number in [-1.0, 1.0] or a pair [lower, upper] "
     "with lower <= 1.0 and upper >= -1.0 (as in Keras), got [1.5, 2.0]"),
    ("RandomZoom: {height_factor: -1.0}", "height_factor: must be a number in (-1.0, 1.0]"),
    ("RandomZoom: {height_factor: 0.1, width_factor: [0.1, 1.5]}",
     "width_factor: must be a pair of numbers each in (-1.0, 1.0] (as in Keras), got [0.1, 1.5]"),
    ("RandomTranslation: {height_factor: 0.1, width_factor: -1.5}", "width_factor: must be a number in [-1.0, 1.0]"),
    ("RandomContrast: {factor: -0.1}", "factor: must be a number in [0.0, 1.0]"),
    ("RandomBrightness: {factor: 0.1, value_range: [1, 0]}", "value_range: must be [low, high] with low < high"),
    ("RandomRotation: {factor: 0.1, fill_mode: mirror}", "fill_mode must be one of 'reflect', 'wrap', 'constant', "
     "'nearest'; got 'mirror'"),
    ("RandomFlip: {mode: diagonal}", "mode"),
    ("RandomCrop: {height: 0, width: 3}", "height"),
])
def test_bad_arguments_are_located_errors(line, message):
    with pytest.raises(SpecError) as e:
        parse_spec(f"input: {{shape: [8, 8, 1]}}\nlayers:\n  - {line}\n", "s.yaml")
    text = str(e.value)
    assert text.startswith("s.yaml:3:") and message in text, text


@pytest.mark.parametrize("shape", [[8, 8], [4, 8, 8, 1]])
def test_a_non_image_input_is_a_located_error(shape):
    with pytest.raises(SpecError, match=r"s\.yaml:3:\d+: .*RandomFlip expects images \(height, width, channels\)"):
        layerc.build(parse_spec(f"input: {{shape: {shape}}}\nlayers:\n  - RandomFlip\n", "s.yaml"))


def test_summary_shows_them_with_no_parameters(tmp_path):
    from typer.testing import CliRunner

    from layerc.cli import app

    spec = tmp_path / "s.yaml"
    spec.write_text("input: {shape: [10, 8, 3]}\nlayers:\n" + "".join(
        f"  - {t}: {{{', '.join(f'{k}: {v}' for k, v in REQUIRED.get(t, {}).items())}}}\n" for t in TYPES))
    result = CliRunner().invoke(app, ["summary", str(spec)], terminal_width=200)
    assert result.exit_code == 0, result.output
    for t, shape in zip(TYPES, ["(None, 10, 8, 3)"] * 4 + ["(None, 5, 4, 3)"] * 3):
        name = "random_" + t[6:].lower()
        assert re.search(rf"{name} \({t}\)\s*│ {re.escape(shape)}\s*│\s*0 │", result.output), result.output
    assert "Total params: 0" in result.output


# -- inference ------------------------------------------------------------------------------------

@pytest.mark.parametrize("type_name", [t for t in TYPES if t != "RandomCrop"])
def test_identity_at_inference(type_name):
    lay, X = layer(type_name, dtype="float32"), images(dtype=np.float32)
    Y, backprop = lay.forward(X, False)
    assert Y is X
    dY = images(seed=1, dtype=np.float32)
    assert backprop(dY) is dY


def test_random_crop_at_inference_takes_the_centred_window():
    X = images(2, (9, 7, 2))
    np.testing.assert_array_equal(layer("RandomCrop", (9, 7, 2), height=5, width=7).forward(X, False)[0], X[:, 2:7])
    np.testing.assert_array_equal(layer("RandomCrop", (9, 7, 2), height=9, width=3).forward(X, False)[0],
                                  X[:, :, 2:5])


@pytest.mark.parametrize("shape, size", [((9, 7, 2), (4, 4)), ((9, 7, 2), (12, 5)), ((6, 10, 1), (5, 3)),
                                         ((5, 5, 3), (8, 8))])
def test_random_crop_at_inference_resizes_as_keras(keras, shape, size):
    """Keras documents its inference (and too-small-image) path as the largest centred window
    of the target aspect ratio, bilinearly resized: `ops.image.resize(crop_to_aspect_ratio=True)`."""
    X = images(2, shape, dtype=np.float32)
    lay = layer("RandomCrop", shape, "float32", height=size[0], width=size[1])
    ours = lay.forward(X, False)[0]
    theirs = keras.ops.convert_to_numpy(keras.ops.image.resize(X, size, crop_to_aspect_ratio=True))
    assert ours.shape == (2, *size, shape[2])
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    if shape[0] < size[0]:  # training on a too-small image takes the same path, as in Keras
        np.testing.assert_array_equal(lay.forward(X, True)[0], ours)


# -- training: pixels move as the arguments say ---------------------------------------------------------

@pytest.mark.parametrize("mode, flipped", [("horizontal", lambda x: x[:, ::-1]), ("vertical", lambda x: x[::-1]),
                                           ("horizontal_and_vertical", lambda x: x[::-1, ::-1])])
def test_a_flip_flips(mode, flipped):
    X = np.repeat(images(1, (5, 6, 2)), 40, axis=0)
    Y = train(layer("RandomFlip", (5, 6, 2), mode=mode), X)
    same = [np.array_equal(y, X[0]) for y in Y]
    flips = [np.array_equal(y, flipped(X[0])) for y in Y]
    assert all(a != b for a, b in zip(same, flips)) and 10 < sum(flips) < 30


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", FILLS)
def test_a_quarter_turn_rotates_counter_clockwise_as_rot90(interpolation, fill_mode):
    X = images(2, (7, 7, 3))
    for factor, k in [((0.25, 0.25), 1), ((-0.25, -0.25), -1), ((0.5, 0.5), 2)]:
        lay = layer("RandomRotation", (7, 7, 3), factor=factor, fill_mode=fill_mode, interpolation=interpolation)
        np.testing.assert_allclose(train(lay, X), np.rot90(X, k, axes=(1, 2)), atol=1e-12)


def test_a_translation_shifts_by_the_fraction_of_the_size():
    X = images(2, (8, 10, 1))
    lay = layer("RandomTranslation", (8, 10, 1), height_factor=(0.25, 0.25), width_factor=(-0.3, -0.3),
                fill_mode="constant", fill_value=-1.0)
    Y = train(lay, X)  # 2 rows down, 3 columns left
    np.testing.assert_allclose(Y[:, 2:, :7], X[:, :6, 3:], atol=1e-12)
    assert np.all(Y[:, :2] == -1.0) and np.all(Y[:, :, 7:] == -1.0)
    wrapped = train(layer("RandomTranslation", (8, 10, 1), height_factor=(0.25, 0.25), width_factor=0.0,
                          fill_mode="wrap"), X)
    np.testing.assert_allclose(wrapped, np.roll(X, 2, axis=1), atol=1e-12)


def test_zoom_scales_about_the_centre():
    X = images(2, (9, 9, 1))
    out = train(layer("RandomZoom", (9, 9, 1), height_factor=(1.0, 1.0), fill_mode="constant", fill_value=7.0), X)
    np.testing.assert_allclose(out[:, 2:7, 2:7], X[:, ::2, ::2], atol=1e-12)  # zoomed out 2x
    assert np.all(out[:, :2] == 7.0) and np.all(out[:, 7:] == 7.0) and np.all(out[:, :, :2] == 7.0)
    i, j = np.meshgrid(np.arange(9.0), np.arange(9.0), indexing="ij")
    ramp = (i + 10 * j)[None, :, :, None]
    zin = train(layer("RandomZoom", (9, 9, 1), height_factor=(-0.5, -0.5), width_factor=(-0.25, -0.25)), ramp)
    np.testing.assert_allclose(zin[0, :, :, 0], (0.5 * i + 2.0) + 10 * (0.75 * j + 1.0), atol=1e-12)


def test_random_crop_while_training_takes_one_window_for_the_batch_and_covers_every_place():
    X = np.arange(3 * 6 * 5, dtype=np.float64).reshape(3, 6, 5, 1)
    lay = layer("RandomCrop", (6, 5, 1), height=4, width=3)
    seen = set()
    for _ in range(200):
        Y = train(lay, X)
        top, left = divmod(int(Y[0, 0, 0, 0]), 5)
        np.testing.assert_array_equal(Y, X[:, top:top + 4, left:left + 3])
        seen.add((top, left))
    assert seen == {(t, c) for t in range(3) for c in range(3)}


def test_contrast_and_brightness_formulas():
    X = images(4, (5, 6, 3)) * 255
    Y = train(layer("RandomContrast", (5, 6, 3), factor=(-0.5, 0.5)), X)  # c = 1.5
    mean = X.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(Y, np.clip((X - mean) * 1.5 + mean, 0, 255), rtol=1e-12)
    Y = train(layer("RandomBrightness", (5, 6, 3), factor=(0.1, 0.1), value_range=(-1.0, 3.0)), X / 255)
    np.testing.assert_allclose(Y, np.clip(X / 255 + 0.4, -1, 3), rtol=1e-12)


def test_contrast_factor_ranges_are_keras_3s():
    """A number f draws c in [1, 1 + f] (Keras 3's code; its docstring says [1 - f, 1 + f])."""
    X = images(2000, (2, 2, 1))
    for factor, low, high in [(0.5, 1.0, 1.5), ((0.2, 0.4), 0.8, 1.4)]:
        Y = train(layer("RandomContrast", (2, 2, 1), factor=factor, value_range=(-1e9, 1e9)), X)
        mean = X.mean(axis=(1, 2), keepdims=True)
        c = ((Y - mean) / (X - mean))[:, 0, 0, 0]
        assert low <= c.min() < low + 0.01 and high - 0.01 < c.max() <= high


# -- numerics against Keras ----------------------------------------------------------------------------

@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", FILLS)
def test_affine_transform_is_keras(keras, interpolation, fill_mode):
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (4, 7, 9, 2)).astype(np.float32)
    T = np.concatenate([rotation_matrix([33.0, -140.0], 7, 9), zoom_matrix([1.3], [0.6], 7, 9),
                        translation_matrix([2.3], [-3.7])]).astype(np.float32)
    theirs = keras.ops.convert_to_numpy(keras.ops.image.affine_transform(
        X, T, interpolation=interpolation, fill_mode=fill_mode, fill_value=0.25))
    np.testing.assert_allclose(affine_transform(X, T, interpolation, fill_mode, 0.25)[0], theirs, atol=1e-5)


FIXED = [  # layers whose random parameters are fixed by their ranges
    ("RandomRotation", {"factor": (0.1, 0.1)}),
    ("RandomRotation", {"factor": (-0.3, -0.3), "fill_mode": "constant", "fill_value": 0.5}),
    ("RandomZoom", {"height_factor": (0.3, 0.3), "width_factor": (-0.2, -0.2)}),
    ("RandomZoom", {"height_factor": (-0.4, -0.4), "fill_mode": "wrap", "interpolation": "nearest"}),
    ("RandomTranslation", {"height_factor": (0.2, 0.2), "width_factor": (-0.15, -0.15)}),
    ("RandomTranslation", {"height_factor": (-0.3, -0.3), "width_factor": (0.35, 0.35), "fill_mode": "nearest"}),
    ("RandomContrast", {"factor": (-0.5, 0.5), "value_range": (0.0, 1.0)}),
    ("RandomContrast", {"factor": (-0.2, 0.2)}),
    ("RandomBrightness", {"factor": (0.3, 0.3), "value_range": (0.0, 1.0)}),
    ("RandomBrightness", {"factor": (-0.2, -0.2)}),
]


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", FILLS)
def test_rotation_zoom_translation_at_a_fixed_draw_are_keras_in_every_mode(keras, interpolation, fill_mode):
    X = images(3, (8, 7, 2), dtype=np.float32)
    for type_name, args in FIXED[:6]:
        args = {**args, "fill_mode": fill_mode, "interpolation": interpolation}
        lay = layer(type_name, (8, 7, 2), "float32", **args)
        theirs = keras.ops.convert_to_numpy(keras_layer(keras, lay.spec)(X, training=True))
        np.testing.assert_allclose(train(lay, X), theirs, atol=1e-5, err_msg=f"{type_name} {args}")


@pytest.mark.parametrize("type_name, args", FIXED, ids=[f"{t}-{i}" for i, (t, _) in enumerate(FIXED)])
def test_layers_at_a_fixed_draw_are_keras(keras, type_name, args):
    X = images(3, (8, 7, 2), dtype=np.float32) * (255 if "value_range" not in args else 1)
    lay = layer(type_name, (8, 7, 2), "float32", **args)
    theirs = keras.ops.convert_to_numpy(keras_layer(keras, lay.spec)(X, training=True))
    np.testing.assert_allclose(train(lay, X), theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(keras_layer(keras, lay.spec)(X, training=False)), X)


# -- gradients at fixed draws ---------------------------------------------------------------------------------

GRADIENTS = [("RandomFlip", {"mode": m}) for m in ("horizontal", "vertical", "horizontal_and_vertical")]
GRADIENTS += [(t, {**a, "fill_mode": f, "interpolation": i}) for t, a in
              [("RandomRotation", {"factor": 0.3}), ("RandomZoom", {"height_factor": 0.4, "width_factor": (-0.3, 0.5)}),
               ("RandomTranslation", {"height_factor": 0.3, "width_factor": 0.4})]
              for f in FILLS for i in INTERPOLATIONS]
GRADIENTS += [("RandomCrop", {"height": 5, "width": 4}), ("RandomCrop", {"height": 10, "width": 6}),
              ("RandomContrast", {"factor": (0.5, 0.9), "value_range": (0.0, 1.0)}),
              ("RandomBrightness", {"factor": 0.4, "value_range": (0.0, 1.0)})]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("type_name, args", GRADIENTS, ids=[f"{t}-{i}" for i, (t, _) in enumerate(GRADIENTS)])
def test_float64_gradients_at_fixed_draws(type_name, args, training):
    lay = layer(type_name, (8, 7, 2), fill_value=0.3, **args) if "fill_mode" in args else \
        layer(type_name, (8, 7, 2), **args)
    assert check_layer_gradients(lay, images(3, (8, 7, 2)), training=training, n_checks=60) > 0


def test_the_clipped_values_get_no_gradient():
    X = images(2, (4, 4, 1)) * 2 - 0.5  # some values below 0 and above 1
    lay = layer("RandomBrightness", (4, 4, 1), factor=(0.0, 0.0), value_range=(0.0, 1.0))
    Y, backprop = lay.forward(X, True)
    dX = backprop(np.ones_like(Y))
    np.testing.assert_array_equal(dX, ((X >= 0) & (X <= 1)).astype(float))


# -- seeding --------------------------------------------------------------------------------------------

def _model(seed, layer_seed=None):
    extra = f", seed: {layer_seed}" if layer_seed is not None else ""
    return layerc.build(parse_spec(f"seed: {seed}\ninput: {{shape: [8, 8, 1]}}\nlayers:\n"
                                   f"  - RandomRotation: {{factor: 0.5{extra}}}\n  - RandomFlip\n")).build()


def test_seeded_from_the_spec_reproducibly_and_a_layer_seed_overrides():
    X = images(4, (8, 8, 1), dtype=np.float32)

    def two_batches(model):
        return [model.forward(X, training=True)[0] for _ in range(2)]

    a, b, c = two_batches(_model(1)), two_batches(_model(1)), two_batches(_model(2))
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[0], c[0])
    rot = [m.nodes[0].layer for m in (_model(1, 9), _model(2, 9))]
    np.testing.assert_array_equal(rot[0].forward(X, True)[0], rot[1].forward(X, True)[0])
    assert not np.array_equal(_model(1, 9).nodes[0].layer.forward(X, True)[0], a[0])


IMAGES = """
name: aug
seed: 11
input: {shape: [8, 8, 1]}
layers:
  - Conv2D: {filters: 3, kernel_size: 3, padding: same, activation: relu}
  - RandomFlip
  - RandomRotation: {factor: 0.1, fill_mode: nearest}
  - RandomZoom: {height_factor: 0.2}
  - RandomTranslation: {height_factor: 0.1, width_factor: 0.1}
  - RandomContrast: {factor: 0.2, value_range: [0, 10]}
  - RandomBrightness: {factor: 0.1, value_range: [0, 10]}
  - RandomCrop: {height: 6, width: 6}
  - Flatten
  - Dense: {units: 2, activation: softmax}
data: {format: npz, train: images.npz, validation_split: 0.25}
train: {optimizer: adam, loss: sparse_categorical_crossentropy, batch_size: 16, epochs: 3}
"""


@pytest.fixture
def image_spec(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (96, 8, 8, 1)).astype(np.float32)
    np.savez(tmp_path / "images.npz", x=x, y=(x[:, :4].mean(axis=(1, 2, 3)) > 0.5).astype(np.int64))
    path = tmp_path / "aug.yaml"
    path.write_text(IMAGES)
    return path


@pytest.mark.parametrize("stop_after", [3, 7])  # mid-epoch 1, mid-epoch 2 (5 steps an epoch)
def test_interrupted_then_resumed_is_bit_exact(image_spec, tmp_path, stop_after):
    whole = jobs.train(image_spec, run_dir=tmp_path / "whole")
    part = jobs.train(image_spec, run_dir=tmp_path / "part", callbacks=[StopAfter(stop_after)])
    assert part.interrupted
    _, meta = load_checkpoint(part.run_dir)
    for node in layerc.build(layerc.load_spec(image_spec)).nodes:  # each generator's state is in it, moved on
        if node.layer.spec.type.startswith("Random"):
            assert meta["rng"][node.name] != np.random.default_rng(node.layer.seed).bit_generator.state
    done = jobs.train(resume=part.run_dir)
    a, b = load_arrays(whole.run_dir / "weights.npz"), load_arrays(done.run_dir / "weights.npz")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    plain = image_spec.parent / "plain.yaml"  # the augmentation is really applied while training
    plain.write_text("\n".join(line for line in IMAGES.replace("RandomCrop: {height: 6, width: 6}", "Cropping2D: "
                                                            "{cropping: 1}").splitlines() if "Random" not in line))
    c = load_arrays(jobs.train(plain, run_dir=tmp_path / "plain").run_dir / "weights.npz")
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_the_batch_split_over_threads_changes_no_bit(monkeypatch):
    X = images(64, (32, 32, 2), dtype=np.float32)  # large enough to be split
    T = rotation_matrix(np.linspace(-40, 40, 64), 32, 32)
    results = []
    for threads in ("1", "2"):
        monkeypatch.setenv("LAYERC_NUM_THREADS", threads)
        Y, backprop = affine_transform(X, T, "bilinear", "reflect")
        results.append((Y, backprop(X)))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_the_first_layer_skips_the_input_gradient_while_training():
    model = layerc.build(parse_spec("input: {shape: [6, 6, 1]}\nlayers:\n  - RandomRotation: {factor: 0.2}\n"
                                    "  - Flatten\n  - Dense: {units: 2}\n")).build()
    Y, backprop = model.forward(images(4, (6, 6, 1), dtype=np.float32), training=True)
    assert backprop(np.ones_like(Y)) is None
    assert np.abs(model.nodes[-1].layer.grads["kernel"]).sum() > 0

"""The Keras layers keras.applications needs (ReLU, LeakyReLU, PReLU, ELU, Softmax, LayerScale,
Normalization, Dropout's noise_shape with a batch axis): a `.keras` file with them imports and
gives Keras's outputs, the export loads back in Keras with the same outputs, and ONNX Runtime
runs the ONNX export with layerc's outputs."""
import numpy as np
import pytest

from .keras_oracle import assert_same
from .test_keras_import import fresh_keras_names, imported  # noqa: F401  (the fixture)
from .test_keras_import_layers import round_trip
from layerc.interop.keras import save_keras

IMG, SEQ = "input: {shape: [9, 8, 3]}", "input: {shape: [10, 4]}"

# specs exported to .keras and loaded in Keras by tests/interop/test_keras_export.py (with its own)
SPECS = {"activation_layers": """
input: {shape: [5, 5, 3]}
layers:
  - Conv2D: {filters: 4, kernel_size: 2}
  - PReLU: {shared_axes: [1, 2], alpha_initializer: he_normal}
  - LayerScale: {init_values: 0.1, projection_dim: 4}
  - ReLU: {max_value: 1.5, negative_slope: 0.1, threshold: 0.05}
  - ELU: {alpha: 0.7}
  - LeakyReLU: {negative_slope: 0.2}
  - Softmax: {axis: [1, 2]}
  - Flatten
  - Dense: {units: 3}
  - Softmax
""", "normalization": """
input: {shape: [4, 3]}
layers:
  - Normalization
  - Normalization: {axis: [1, 2], invert: true}
  - Normalization: {axis: null, mean: 0.5, variance: 2.0}
  - Normalization: {mean: [1.0, 2.0, 3.0], variance: [1.0, 0.5, 2.0]}
  - Flatten
  - Dense: {units: 2}
"""}
# ONNX cases: (id, input line, layers, input maker), as tests/interop/test_onnx_layers.py's
ONNX_CASES = [
    ("relu", IMG, "- ReLU"),
    ("relu6", IMG, "- ReLU: {max_value: 6.0}"),
    ("relu_leaky", IMG, "- ReLU: {negative_slope: 0.3}"),
    ("relu_all", IMG, "- ReLU: {max_value: 0.5, negative_slope: 0.2, threshold: 0.1}"),
    ("relu_threshold", SEQ, "- ReLU: {threshold: 0.2}"),
    ("leaky_relu", IMG, "- LeakyReLU"),
    ("prelu", IMG, "- PReLU: {alpha_initializer: random_uniform}"),
    ("prelu_shared", IMG, "- PReLU: {alpha_initializer: random_uniform, shared_axes: [1, 2]}"),
    ("elu", SEQ, "- ELU: {alpha: 0.5}"),
    ("softmax", SEQ, "- Softmax"),
    ("softmax_axis", IMG, "- Softmax: {axis: 1}"),
    ("softmax_axes", IMG, "- Softmax: {axis: [1, 3]}"),
    ("layer_scale", IMG, "- LayerScale: {init_values: 0.3, projection_dim: 3}"),
    ("normalization", IMG, "- Normalization"),
    ("normalization_axes_invert", IMG, "- Normalization: {axis: [1, 3], invert: true}"),
    ("normalization_given", SEQ, "- Normalization: {axis: null, mean: 0.5, variance: 2.0}"),
    ("normalization_given_per_channel", SEQ, "- Normalization: {mean: [0.0, 1.0, 2.0, 3.0], "
     "variance: [1.0, 0.5, 2.0, 4.0]}"),
]


def test_activation_layers_round_trip(keras, tmp_path):
    from keras.src.applications.convnext import LayerScale

    L = keras.layers
    inp = keras.Input((6, 6, 3))
    x = L.Conv2D(4, 3)(inp)
    x = L.PReLU(shared_axes=[1, 2])(x)
    x = LayerScale(1e-6, 4, name="scale")(x)
    x = L.ReLU(max_value=6.0)(x)
    x = L.ReLU(negative_slope=0.1, threshold=0.05)(x)
    x = L.ELU(alpha=1.0)(x)
    x = L.LeakyReLU()(x)
    x = L.Softmax(axis=[1, 2])(x)
    x = L.Flatten()(x)
    x = L.Dense(5)(x)
    out = L.Softmax()(x)
    _, body = round_trip(keras, tmp_path, keras.Model(inp, out))
    assert "  - PReLU: {shared_axes: [1, 2]}" in body
    assert "  - LayerScale: {name: scale, init_values: 1.0e-06, projection_dim: 4}" in body
    assert "  - ReLU: {max_value: 6.0}" in body
    assert "  - LeakyReLU\n" in body and "  - Softmax: {axis: [1, 2]}" in body


def test_normalization_round_trip_with_keras_adapted_and_given_statistics(keras, tmp_path):
    L = keras.layers
    adapted = L.Normalization(axis=[1, 2], name="adapted")
    adapted.adapt(np.random.default_rng(0).normal(2, 3, (50, 4, 3)).astype(np.float32))
    k = keras.Sequential([keras.Input((4, 3)), adapted, L.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 0.5, 2.0]),
                          L.Normalization(axis=None, invert=True), L.Flatten(), L.Dense(2)])
    kept = adapted.get_weights()
    k.save(tmp_path / "source.keras")
    model, text, _ = imported(tmp_path, tmp_path / "source.keras")
    body = text[text.index("layerc: 1"):]
    assert "  - Normalization: {name: adapted, axis: [1, 2]}" in body
    assert "  - Normalization: {mean: [1.0, 2.0, 3.0], variance: [1.0, 0.5, 2.0]}" in body
    assert "  - Normalization: {axis: null, invert: true}" in body
    np.testing.assert_array_equal(model.nodes[0].layer.weights["mean"], kept[0])  # the file's, not adapted again
    assert model.count_params() == k.count_params() == 25 + 0 + 3 + 26
    save_keras(model, tmp_path / "back.keras")
    back = keras.saving.load_model(tmp_path / "back.keras")
    x = np.random.default_rng(1).normal(2, 3, (6, 4, 3)).astype(np.float32)
    want = k.predict(x, verbose=0)
    assert_same(model.predict(x), want)
    assert_same(back.predict(x, verbose=0), want)
    assert back.count_params() == k.count_params()


@pytest.mark.parametrize("case", ONNX_CASES, ids=[c[0] for c in ONNX_CASES])
def test_layer_matches_layerc_in_onnxruntime(case):
    from .onnx_helpers import assert_matches, build, randomize
    from .test_onnx_layers import BATCHES, _spec

    _, input_line, layers = case
    model = randomize(build(_spec(input_line, layers)), seed=len(layers))
    rng = np.random.default_rng(1)
    assert_matches(model, [rng.standard_normal((n, *model.input_shapes[0])).astype(np.float32) for n in BATCHES])


# -- Dropout's noise_shape with a batch axis ------------------------------------------------------

@pytest.mark.parametrize("noise", [(1, 1, 1, 3), (8, 1, 1, 3), (None, 1, 1, 3)])
def test_dropout_noise_shape_with_a_batch_axis_imports_and_exports(keras, tmp_path, noise):
    L = keras.layers
    k = keras.Sequential([keras.Input((4, 4, 3)), L.Conv2D(3, 1), L.Dropout(0.5, noise_shape=noise), L.Flatten()])
    model, body = round_trip(keras, tmp_path, k)
    want = list(noise[1:]) if noise[0] is None else list(noise)
    assert model.nodes[1].layer.spec.noise_shape == want
    assert keras.saving.load_model(tmp_path / "back.keras").layers[1].noise_shape == noise


def test_dropout_with_a_batch_entry_of_one_shares_the_mask_across_the_batch():
    from layerc.core.registry import make_layer
    from layerc.spec import layers as S

    def mask(noise, n=8):
        layer = make_layer(S.Dropout(rate=0.5, noise_shape=noise), "d", 0, "float32")
        layer.build((3, 40))
        return layer.forward(np.ones((n, 3, 40), np.float32), True)[0]

    shared = mask([1, 1, None])
    assert (shared == shared[:1]).all() and (shared == shared[:, :1]).all()
    assert 0 < (shared[0, 0] == 0).sum() < 40
    for noise in ([None, 1, None], [8, 1, None], [1, None]):  # one mask per sample
        per_sample = mask(noise)
        assert (per_sample == per_sample[:, :1]).all() and not (per_sample == per_sample[:1]).all()
    mask([8, 1, None], n=3)  # a last, smaller batch: one mask per sample (Keras would fail)


def test_dropout_noise_shape_of_the_wrong_length_is_located():
    import layerc
    from layerc.spec import SpecError, parse_spec

    with pytest.raises(SpecError) as e:
        layerc.build(parse_spec("input: {shape: [3, 4]}\nlayers:\n  - Dropout: {rate: 0.1, noise_shape: [1, 1, 1, 4]}\n"))
    assert "<spec>:3:" in str(e.value) and "or one more for the batch axis first" in str(e.value)

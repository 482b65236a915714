"""`.keras` round trips of the layers added after the first import/export: Keras model
(random weights) -> import -> layerc equals Keras -> export -> Keras load_model equals Keras,
within 1e-5 at two batch sizes (right-padded sequences where a mask flows)."""
import pytest

from .keras_oracle import assert_same, feed, inputs_for, randomise_keras
from .test_keras_import import fresh_keras_names, imported  # noqa: F401  (the fixture)
from layerc.interop.keras import save_keras

pytest.importorskip("h5py")


def round_trip(keras, tmp_path, kmodel, seed=0):
    randomise_keras(kmodel, seed)
    kmodel.save(tmp_path / "source.keras")
    model, text, _ = imported(tmp_path, tmp_path / "source.keras")
    save_keras(model, tmp_path / "back.keras")
    back = keras.saving.load_model(tmp_path / "back.keras")
    for n in (6, 1):
        xs = inputs_for(model, n=n, seed=seed + 1)
        want = kmodel.predict(feed(xs), verbose=0)
        assert_same(model.predict(feed(xs)), want)
        assert_same(back.predict(feed(xs), verbose=0), want)
    return model, text[text.index("layerc: 1"):]


def test_convolutions_resampling_and_noise_round_trip(keras, tmp_path):
    L = keras.layers
    k = keras.Sequential([
        keras.Input((7, 7, 3)), L.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1),
        L.DepthwiseConv2D(3, depth_multiplier=2, activation="relu"),
        L.SeparableConv2D(3, (2, 3), strides=2, padding="same"), L.UpSampling2D((2, 1), interpolation="bilinear"),
        L.ZeroPadding2D(((1, 0), (2, 1))), L.Cropping2D(((0, 1), (1, 2))), L.SpatialDropout2D(0.3),
        L.GaussianNoise(0.2), L.Rescaling([0.5, 2.0, -1.0], 0.1), L.Permute((2, 1, 3)), L.Flatten(), L.Dense(3)])
    _, body = round_trip(keras, tmp_path, k)
    assert "  - Conv2DTranspose: {filters: 4, kernel_size: 3, strides: 2, padding: same, output_padding: 1}" in body
    assert "  - DepthwiseConv2D: {kernel_size: 3, depth_multiplier: 2, activation: relu}" in body
    assert "  - UpSampling2D: {size: [2, 1], interpolation: bilinear}" in body
    for default in ("data_format", "initializer", "dilation_rate"):
        assert default not in body


def test_steps_layers_round_trip(keras, tmp_path):
    L = keras.layers
    k = keras.Sequential([
        keras.Input((9, 3)), L.Conv1DTranspose(4, 3, strides=2, output_padding=1, activation="elu"),
        L.UpSampling1D(2), L.ZeroPadding1D((2, 1)), L.Cropping1D((1, 3)), L.AveragePooling1D(3, 2, padding="same"),
        L.SpatialDropout1D(0.2), L.TimeDistributed(L.Dense(6, activation="relu")), L.Reshape((-1, 3, 2)),
        L.TimeDistributed(L.Conv1D(3, 2)), L.TimeDistributed(L.GlobalMaxPooling1D()), L.GlobalMaxPooling1D(),
        L.RepeatVector(3), L.Flatten()])
    _, body = round_trip(keras, tmp_path, k)
    assert "  - TimeDistributed: {layer: {Dense: {units: 6, activation: relu}}}" in body


def test_wrapped_recurrent_layers_round_trip(keras, tmp_path):
    L = keras.layers
    k = keras.Sequential([keras.Input((4, 6, 3)), L.TimeDistributed(L.LSTM(3, return_sequences=True)),
                          L.TimeDistributed(L.Bidirectional(L.GRU(2), merge_mode="sum"))])
    _, body = round_trip(keras, tmp_path, k)
    assert "  - TimeDistributed: {layer: {Bidirectional: {layer: {GRU: {units: 2}}, merge_mode: sum}}}" in body


def test_merges_round_trip(keras, tmp_path):
    L = keras.layers
    a, b, c = (keras.Input((4,), name=n) for n in "abc")
    m = L.Multiply()([a, b, c])
    s = L.Subtract()([a, b])
    mx = L.Maximum()([m, s])
    out = L.Dense(2)(L.Minimum()([L.Average()([a, b, c]), mx, c]))
    round_trip(keras, tmp_path, keras.Model([a, b, c], out))


def test_masked_attention_block_round_trip(keras, tmp_path):
    L = keras.layers
    ids = keras.Input((7,), dtype="int32", name="ids")
    emb = L.Embedding(20, 8, mask_zero=True)(ids)
    v, k = L.Dense(6)(emb), L.Dense(5)(emb)
    x = L.MultiHeadAttention(3, 2, value_dim=3, output_shape=5, use_bias=False)(emb, v, k)
    x = L.MultiHeadAttention(2, 3)(x, x, use_causal_mask=True)
    x = L.LayerNormalization()(L.Add()([x, L.TimeDistributed(L.Dense(5))(x)]))
    out = L.Dense(2)(L.GlobalAveragePooling1D()(x))
    model, body = round_trip(keras, tmp_path, keras.Model(ids, out))
    assert "  - MultiHeadAttention: {num_heads: 2, key_dim: 3, use_causal_mask: true}" in body
    assert "attention_axes" not in body and "value_dim: 3" in body


def test_a_mask_not_from_mask_zero_is_refused(keras, tmp_path):
    from ..cli.test_errors import cli

    L = keras.layers
    ids = keras.Input((7,), dtype="int32", name="ids")
    x = L.Embedding(20, 4)(ids)
    out = L.LSTM(3)(x, mask=keras.ops.not_equal(ids, 5))
    keras.Model(ids, out).save(tmp_path / "m.keras")
    code, text = cli("import", str(tmp_path / "m.keras"), "--output", str(tmp_path / "out"))
    assert code == 1 and "NotEqual 'not_equal': an op on tensors, not a layer" in text, text
    assert not (tmp_path / "out").exists()

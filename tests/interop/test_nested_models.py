"""Keras models nested as layers (a Sequential or Functional inside another, a frozen
backbone with a new head) and the tensor ops Keras records for `x + 3.0` or `x * y`
import as one flat spec with the layers' own names, give Keras's outputs, and export
back to a `.keras` file Keras loads with the same outputs (keras_flatten.py)."""
import numpy as np
import pytest

from .keras_oracle import randomise_keras
from .test_keras_import import fresh_keras_names, round_trip  # noqa: F401  (the fixture, autouse)

pytest.importorskip("h5py")


def _spec_layers(text):
    return [line.strip() for line in text.splitlines() if line.startswith("  - ")]


def test_sequential_inside_functional(keras, tmp_path):
    L = keras.layers
    stem = keras.Sequential([keras.Input((10, 10, 3)), L.Conv2D(4, 3, name="stem_conv"),
                             L.BatchNormalization(name="stem_bn")], name="stem")
    inp = keras.Input((10, 10, 3), name="image")
    x = stem(inp)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(3, activation="softmax", name="head")(x)
    _, text = round_trip(keras, tmp_path, keras.Model(inp, out))
    names = [line.split("name: ")[1].split(",")[0].rstrip("}") for line in _spec_layers(text) if "name: " in line]
    assert names == ["stem_conv", "stem_bn", "gap", "head"], text


def test_functional_inside_functional_with_branches(keras, tmp_path):
    L = keras.layers
    i = keras.Input((6,), name="block_in")
    a = L.Dense(5, activation="relu", name="a")(i)
    b = L.Dense(5, name="b")(i)
    block = keras.Model(i, L.Add(name="sum")([a, b]), name="block")
    inp = keras.Input((6,), name="x")
    y = L.Dense(6, name="pre")(inp)
    y = block(y)
    y = L.Concatenate(name="cat")([y, inp])
    out = L.Dense(2, name="out")(y)
    _, text = round_trip(keras, tmp_path, keras.Model(inp, out))
    assert "- Add: {name: sum, inputs: [a, b]}" in text, text


def test_frozen_backbone_with_new_head(keras, tmp_path):
    """A user's transfer-learning model: a frozen backbone (its BatchNormalization too)
    in a Sequential with a new head; the layer names clash with the head's and are kept
    as `model_name`."""
    L = keras.layers
    backbone = keras.Sequential([keras.Input((8, 8, 2)), L.Conv2D(4, 3, name="conv"), L.BatchNormalization(name="bn"),
                                 L.ReLU(name="relu")], name="backbone")
    backbone.trainable = False
    model = keras.Sequential([keras.Input((8, 8, 2)), backbone, L.Flatten(), L.Dense(3, name="conv")])
    _, text = round_trip(keras, tmp_path, model)
    lines = _spec_layers(text)
    assert "trainable: false" in lines[0], text
    assert "trainable: false" in lines[1] and "trainable: false" in lines[2]
    assert lines[0].startswith("- Conv2D: {name: backbone_conv,") and lines[-1].startswith("- Dense: {name: conv,"), text


def test_tensor_ops_become_layers(keras, tmp_path):
    """MobileNetV3's hard sigmoid `relu6(x + 3) * (1 / 6)`, a residual `x + y`, a gating
    `x * y`, InceptionResNetV2's CustomScaleLayer and ConvNeXt's depthwise Conv2D(groups)."""
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    L = keras.layers
    inp = keras.Input((6, 6, 4), name="x")
    h = L.Conv2D(4, 1, name="c")(inp)
    gate = L.ReLU(6.0, name="relu6")(h + 3.0) * (1.0 / 6.0)
    y = inp * gate
    y = y - 0.5
    y = L.Conv2D(4, 3, padding="same", groups=4, name="dw")(y)
    y = CustomScaleLayer(0.17, name="scale")([inp, y])
    out = (y + h) / 2.0
    model, text = round_trip(keras, tmp_path, keras.Model(inp, out))
    assert [n.layer.spec.type for n in model.nodes].count("Rescaling") == 5, text
    assert "- DepthwiseConv2D: {name: dw," in text and "- Multiply" in text, text


def test_grouped_conv_other_than_depthwise_is_refused(keras, tmp_path):
    from ..cli.test_errors import cli

    L = keras.layers
    inp = keras.Input((6, 6, 4))
    k = keras.Model(inp, L.Conv2D(8, 3, groups=2, name="g")(inp))
    randomise_keras(k)
    k.save(tmp_path / "g.keras")
    code, out = cli("import", str(tmp_path / "g.keras"), "--output", str(tmp_path / "out"))
    assert code == 1 and "Conv2D 'g': groups=2 (layerc has no such option)" in out, out
    assert not (tmp_path / "out").exists()


def test_flat_names_are_unique_and_weights_land_in_their_layers(keras, tmp_path):
    """Two nested models whose layers share names: each weight comes from its own h5 group."""
    L = keras.layers

    def block(name):
        return keras.Sequential([keras.Input((4,)), L.Dense(4, name="d")], name=name)

    inp = keras.Input((4,))
    out = block("second")(block("first")(inp))
    k = keras.Model(inp, out)
    randomise_keras(k)
    model, text = round_trip(keras, tmp_path, k)
    assert {n.name for n in model.nodes} == {"d", "second_d"}, text
    first, second = (lay for lay in k.layers if hasattr(lay, "layers"))
    np.testing.assert_array_equal(model.nodes[1].layer.weights["kernel"], second.layers[0].get_weights()[0])


def test_frozen_backbone_batchnorm_runs_in_inference_mode_and_only_the_head_trains(keras, tmp_path):
    """Transfer learning as Keras users do it: the imported frozen backbone's
    BatchNormalization uses its moving statistics in training mode too (Keras's outputs in
    training mode equal layerc's), and fitting changes the head's weights only."""
    L = keras.layers
    backbone = keras.Sequential([keras.Input((8, 8, 2)), L.Conv2D(4, 3, name="conv"), L.BatchNormalization(name="bn"),
                                 L.ReLU(name="relu"), L.GlobalAveragePooling2D(name="gap")], name="backbone")
    backbone.trainable = False
    k = keras.Sequential([keras.Input((8, 8, 2)), backbone, L.Dense(3, activation="softmax", name="head")])
    model, _ = round_trip(keras, tmp_path, k)
    x = np.random.default_rng(3).normal(2.0, 3.0, (16, 8, 8, 2)).astype(np.float32)  # far from the moving stats
    ours, _ = model.forward(x, training=True)
    np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(k(x, training=True)), atol=1e-5)
    before = {n.name: {w: a.copy() for w, a in n.layer.weights.items()} for n in model.nodes if n.layer.weights}
    from layerc.spec.train import TrainSpec

    model.trainer(TrainSpec.model_validate({"optimizer": {"type": "sgd", "learning_rate": 0.5},
                                            "loss": "sparse_categorical_crossentropy"}))
    model.fit(x, np.arange(16) % 3, epochs=2, batch_size=8, verbose=0)
    for name, ws in before.items():
        node = next(n for n in model.nodes if n.name == name)
        same = all(np.array_equal(node.layer.weights[w], a) for w, a in ws.items())
        assert same == (name != "head"), name

"""`layerc import` and `layerc.import_keras`: Keras 3 models (random, non-initial weights)
become a readable spec and weights.npz giving Keras's outputs, and export back to a
`.keras` file Keras loads with the same outputs; what layerc cannot express is listed at
once and nothing is written."""
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import layerc
from layerc.interop.keras import INSTALL, KerasError, save_keras
from layerc.runs import load_weights

from ..cli.test_errors import cli
from .keras_oracle import assert_same, feed, inputs_for, randomise_keras

pytest.importorskip("h5py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_keras_names():
    """Keras's default layer names count up across models; each test starts from `dense`."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


def imported(tmp_path, source, *extra):
    out = tmp_path / "imported"
    code, text = cli("import", str(source), "--output", str(out), *extra)
    assert code == 0, text
    model = layerc.build(layerc.load_spec(out / "spec.yaml"))
    if (out / "weights.npz").exists():
        load_weights(out / "weights.npz", model)
    return model, (out / "spec.yaml").read_text(), text


def round_trip(keras, tmp_path, kmodel, seed=0):
    """Keras -> import -> layerc == Keras -> export -> Keras load_model == Keras."""
    randomise_keras(kmodel, seed)
    src = tmp_path / "source.keras"
    kmodel.save(src)
    model, spec_text, _ = imported(tmp_path, src)
    xs = inputs_for(model, n=7, seed=seed + 1)
    want = kmodel.predict(feed(xs), verbose=0)
    assert_same(model.predict(feed(xs)), want)
    save_keras(model, tmp_path / "back.keras")
    back = keras.saving.load_model(tmp_path / "back.keras")
    assert_same(back.predict(feed(xs), verbose=0), want)
    return model, spec_text


def test_sequential_cnn_round_trip(keras, tmp_path):
    L = keras.layers
    k = keras.Sequential([keras.Input((12, 12, 1)), L.Conv2D(6, 3, activation="relu"), L.BatchNormalization(),
                          L.MaxPooling2D(), L.Conv2D(4, 3, padding="same", name="second"), L.Flatten(),
                          L.Dropout(0.2), L.Dense(5, activation="softmax")], name="digits")
    k.compile(optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model, text = round_trip(keras, tmp_path, k)
    assert text.startswith("# Imported from source.keras by `layerc import`")
    body = text[text.index("layerc: 1"):]
    assert "input: {shape: [12, 12, 1]}" in body
    assert "  - Conv2D: {filters: 6, kernel_size: 3, activation: relu}\n  - BatchNormalization\n" in body
    assert "  - Conv2D: {name: second, filters: 4, kernel_size: 3, padding: same}" in body
    for default in ("padding: valid", "initializer", "strides", "use_bias", "data_format", "momentum"):
        assert default not in body
    assert "optimizer: {adam: {learning_rate: 0.005}}\n  loss: sparse_categorical_crossentropy\n" in body
    assert "metrics: [accuracy]" in body
    assert model.spec.name == "digits"
    code, out = cli("validate", str(tmp_path / "imported" / "spec.yaml"))
    assert code == 0 and ": ok (" in out


def test_functional_graph_with_branches_round_trip(keras, tmp_path):
    L = keras.layers
    image, meta = keras.Input((9, 9, 2), name="image"), keras.Input((5,), name="meta")
    stem = L.Conv2D(4, 3, padding="same", name="stem")(image)
    branch = L.Conv2D(4, 3, padding="same", activation="relu")(L.Activation("tanh")(stem))
    joined = L.GlobalAveragePooling2D()(L.Add()([stem, branch]))
    side = L.Dense(3, activation="gelu", name="side")(meta)
    head = L.Dense(4, activation="softmax", name="head")(L.LayerNormalization()(L.Concatenate()([joined, side])))
    aux = L.Dense(2, name="aux")(side)
    k = keras.Model([image, meta], [head, aux])
    model, text = round_trip(keras, tmp_path, k)
    assert model.input_names == ["image", "meta"] and model.output_names == ["head", "aux"]
    assert "  - Add: {inputs: [stem, conv2d]}" in text and "outputs: [head, aux]" in text


def test_masked_embedding_lstm_gru_batchnorm_stack_round_trip(keras, tmp_path):
    L = keras.layers
    k = keras.Sequential([keras.Input((10,), dtype="int32"), L.Embedding(20, 8, mask_zero=True),
                          L.LSTM(6, return_sequences=True), L.BatchNormalization(), L.GRU(5),
                          L.Dense(3, activation="softmax")])
    model, text = round_trip(keras, tmp_path, k)
    assert "input: {shape: [10], dtype: int32}" in text and "mask_zero: true" in text


def test_bidirectional_in_every_merge_mode_round_trip(keras, tmp_path):
    L = keras.layers
    k = keras.Sequential([keras.Input((9,), dtype="int32"), L.Embedding(20, 6, mask_zero=True),
                          L.Bidirectional(L.LSTM(4, return_sequences=True)),
                          L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"),
                          L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode="mul"),
                          L.Bidirectional(L.LSTM(3), merge_mode="ave"), L.Dense(2)])
    _, text = round_trip(keras, tmp_path, k)
    assert "  - Bidirectional: {layer: {LSTM: {units: 4, return_sequences: true}}}" in text
    assert "merge_mode: sum" in text and "merge_mode: mul" in text and "merge_mode: ave" in text


@pytest.mark.parametrize("form", ["batch_input_shape", "batch_shape", "input_shape"])
def test_config_json_with_weights_and_old_sequential_input_forms(keras, tmp_path, form):
    L = keras.layers
    k = keras.Sequential([keras.Input((6,)), L.Dense(4, activation="relu"), L.Dense(2)])
    randomise_keras(k)
    config = json.loads(k.to_json())
    del config["config"]["layers"][0]  # no InputLayer: the shape on the first layer, as older files have it
    config["config"].pop("build_input_shape", None)
    config.pop("build_config", None)
    config["config"]["layers"][0]["config"][form] = [6] if form == "input_shape" else [None, 6]
    (tmp_path / "model.json").write_text(json.dumps(config))
    k.save_weights(tmp_path / "model.weights.h5")
    model, _, _ = imported(tmp_path, tmp_path / "model.json", "--weights", str(tmp_path / "model.weights.h5"))
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    assert_same(model.predict(x), k.predict(x, verbose=0))


def test_config_json_alone_gives_the_spec_and_says_there_are_no_weights(keras, tmp_path):
    k = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    (tmp_path / "model.json").write_text(k.to_json())
    _, _, out = imported(tmp_path, tmp_path / "model.json")
    assert "no weights given" in out and not (tmp_path / "imported" / "weights.npz").exists()


def test_python_api_returns_a_spec_and_weights(keras, tmp_path):
    k = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="out")])
    randomise_keras(k)
    k.save(tmp_path / "m.keras")
    spec, weights = layerc.import_keras(tmp_path / "m.keras")
    assert spec.layers[0].type == "Dense" and spec.layers[0].units == 2
    assert set(weights) == {"out/kernel", "out/bias"}
    np.testing.assert_array_equal(weights["out/kernel"], k.get_layer("out").kernel.numpy())


def test_every_unsupported_layer_is_listed_at_once_and_nothing_is_written(keras, tmp_path):
    L = keras.layers
    x = keras.Input((8, 8, 2))
    h = L.Conv2D(3, 3, kernel_constraint=keras.constraints.MaxNorm(2.0), name="constrained")(x)
    h = L.GaussianDropout(0.2, name="noisy")(h)
    h = L.Flatten()(h)
    h = L.Dense(4, activity_regularizer="l2", name="active")(h)
    h = L.Dense(4, kernel_regularizer=keras.regularizers.OrthogonalRegularizer(), name="ortho")(h)
    h = L.Dense(2, dtype="float16", name="half")(h)
    keras.Model(x, h).save(tmp_path / "m.keras")
    code, out = cli("import", str(tmp_path / "m.keras"), "--output", str(tmp_path / "out"))
    assert code == 1
    assert "5 layers layerc cannot express" in out
    for line in ("Conv2D 'constrained': kernel_constraint=MaxNorm(", "GaussianDropout 'noisy': layerc has no such layer",
                 "Dense 'active': activity_regularizer=L2(", "Dense 'ortho': kernel_regularizer OrthogonalRegularizer(",
                 "Dense 'half': dtype policy 'float16'"):
        assert line in out, out
    assert "Traceback" not in out and not (tmp_path / "out").exists()


def test_lambda_and_custom_layers_are_refused_with_the_reason(keras, tmp_path):
    L = keras.layers

    @keras.saving.register_keras_serializable(package="mine")
    class Scale(L.Layer):
        def call(self, x):
            return x * 2.0

    x = keras.Input((4,))
    h = L.Lambda(lambda t: t + 1.0, name="plus_one")(x)
    h = Scale(name="scale")(h)
    keras.Model(x, L.Dense(2)(h)).save(tmp_path / "m.keras", zipped=True)
    code, out = cli("import", str(tmp_path / "m.keras"), "--output", str(tmp_path / "out"))
    assert code == 1
    assert "Lambda 'plus_one': a Lambda layer runs Python code from the file; refused" in out
    assert "Scale 'scale': a custom object (module" in out and "'mine>Scale'" in out
    assert "layerc runs no code from a model file" in out and not (tmp_path / "out").exists()


def test_training_state_and_unmapped_compile_options_are_noted(keras, tmp_path):
    L = keras.layers
    k = keras.Sequential([keras.Input((4,)), L.Dense(3, activation="softmax")])
    k.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, use_ema=True), loss="categorical_crossentropy",
              metrics=["accuracy", keras.metrics.MeanIoU(num_classes=3)])
    rng = np.random.default_rng(0)
    k.fit(rng.standard_normal((8, 4)), np.eye(3)[rng.integers(0, 3, 8)], epochs=1, verbose=0)
    k.save(tmp_path / "m.keras")
    model, text, out = imported(tmp_path, tmp_path / "m.keras")
    assert "optimizer: {sgd: {learning_rate: 0.1, momentum: 0.9}}" in text
    assert "# Note: weights: the optimizer's state in the file is not imported" in text
    assert "note: training: optimizer option use_ema=True not imported" in out
    assert "note: training: metric MeanIoU(" in out
    assert [m.type for m in model.spec.train.metrics] == ["accuracy"]


def test_missing_h5py_names_the_extra(tmp_path, monkeypatch):
    model = layerc.build(layerc.parse_spec("input: {shape: [3]}\nlayers: [{Dense: {units: 2}}]"))
    save_keras(model, tmp_path / "m.keras")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(KerasError, match=r'pip install "layerc\[keras\]"'):
        layerc.import_keras(tmp_path / "m.keras")
    code, out = cli("import", str(tmp_path / "m.keras"), "--output", str(tmp_path / "out"))
    assert code == 1 and out.strip() == f"error: {INSTALL}"
    with pytest.raises(KerasError, match=r'pip install "layerc\[keras\]"'):
        save_keras(model, tmp_path / "n.keras")


def test_import_layerc_does_not_load_h5py():
    code = "import sys, layerc; f = layerc.import_keras; print(sorted(m for m in sys.modules if m.startswith('h5py')))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


def _dense(name, activation="linear", inbound=None):
    entry = {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
             "config": {"name": name, "units": 2, "activation": activation}}
    if inbound is not None:
        entry.update(name=name, inbound_nodes=[{"args": [{"class_name": "__keras_tensor__", "config": {
            "shape": [None, 3], "dtype": "float32", "keras_history": [inbound, 0, 0]}}], "kwargs": {}}])
    return entry


@pytest.mark.parametrize("config, message", [
    ({"module": "mine.models", "class_name": "MyModel", "config": {"layers": []}},
     "the model is a 'MyModel' from 'mine.models': layerc imports Keras's Sequential and Functional models"),
    ({"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 3], "name": "i"}},
        _dense("d", {"module": "mine", "class_name": "swish2", "config": "swish2", "registered_name": "swish2"}),
        {"module": "keras", "class_name": "Sequential", "config": {"name": "inner", "layers": []}}]}},
     "1 layer layerc cannot express:\n  Dense 'd': activation swish2(", ),  # the (empty) nested model imports
    ({"module": "keras.src.models.functional", "class_name": "Functional", "config": {
        "name": "f", "layers": [
            {"module": "keras.layers", "class_name": "InputLayer", "name": "i", "inbound_nodes": [],
             "config": {"batch_shape": [None, 3], "name": "i"}},
            {**_dense("d", inbound="i"), "inbound_nodes": [_dense("d", inbound="i")["inbound_nodes"][0]] * 2}],
        "input_layers": [["i", 0, 0]], "output_layers": [["d", 0, 0]]}},
     "Dense 'd': called 2 times (a shared layer); layerc calls each layer once"),
])
def test_code_and_shared_layers_are_refused(tmp_path, config, message):
    (tmp_path / "model.json").write_text(json.dumps(config))
    code, out = cli("import", str(tmp_path / "model.json"), "--output", str(tmp_path / "out"))
    assert code == 1 and message in out and "Traceback" not in out, out
    if "swish2" in message:
        assert "is a custom function; layerc runs no code from a model file" in out
    assert not (tmp_path / "out").exists()

"""Whole models against Keras 3: the same spec, the same weights, the same outputs.

A spec's layer arguments are Keras's, so each layer is rebuilt in Keras from its spec
fields one to one; our weights are loaded with Keras's `set_weights` unchanged.
"""
import os

import numpy as np
import pytest

import layerc
from layerc.spec import parse_spec

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def keras_layer(spec, name):
    args = spec.model_dump(exclude={"type", "name", "inputs"}, exclude_none=True)
    if spec.type == "Bidirectional":
        inner = spec.layer
        args["layer"] = keras_layer(inner, None)
    for key, value in list(args.items()):
        if key.endswith("_regularizer") and isinstance(value, dict):
            args[key] = keras.regularizers.L1L2(**value)
    if spec.type == "Reshape":
        args["target_shape"] = tuple(args["target_shape"])
    if name is not None:
        args["name"] = name
    return getattr(keras.layers, spec.type)(**args)


def keras_twin(model):
    """The same graph in Keras, carrying our weights."""
    tensors = {n: keras.Input(shape=tuple(i.shape), dtype=i.dtype, name=n) for n, i in model.graph.inputs.items()}
    inputs = [tensors[n] for n in model.input_names]
    layers = {}
    for node in model.nodes:
        layer = keras_layer(node.layer.spec, node.name)
        args = [tensors[s] for s in node.inputs]
        tensors[node.name] = layer(args if node.layer.multi_input else args[0])
        layers[node.name] = layer
    twin = keras.Model(inputs, [tensors[n] for n in model.output_names])
    for node in model.nodes:
        layers[node.name].set_weights(list(node.layer.weights.values()))
    return twin


def randomise(model, seed=0):
    """Non-trivial weights everywhere (biases and BN statistics too)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(-0.3, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()])
    for node in model.nodes:
        if "moving_variance" in node.layer.weights:
            node.layer.weights["moving_variance"][...] = rng.uniform(0.5, 1.5, node.layer.weights["moving_variance"].shape)
        if "variance" in node.layer.weights:  # Normalization's (adapted) statistics
            node.layer.weights["variance"][...] = rng.uniform(0.5, 1.5, node.layer.weights["variance"].shape)


def compare(model, x, atol=2e-5):
    twin = keras_twin(model)
    ours = model.predict(x)
    theirs = twin.predict(x, verbose=0)
    np.testing.assert_allclose(ours, theirs, atol=atol, rtol=1e-4)


def test_seed_cnn_matches_keras():
    model = layerc.build(layerc.load_spec(os.path.join(ROOT, "specs", "mnist_cnn.yaml")))
    randomise(model)
    x = np.random.default_rng(1).uniform(0, 1, (16, 28, 28, 1)).astype(np.float32)
    compare(model, x)


def test_masked_embedding_lstm_gru_stack_matches_keras():
    model = layerc.build(parse_spec("""
input: {shape: [12], dtype: int32}
layers:
  - Embedding: {input_dim: 50, output_dim: 8, mask_zero: true}
  - LSTM: {units: 6, return_sequences: true}
  - GRU: {units: 5}
  - Dense: {units: 2, activation: softmax}
"""))
    randomise(model)
    rng = np.random.default_rng(2)
    x = rng.integers(1, 50, (10, 12)).astype(np.int32)
    for i, n in enumerate([12, 9, 5, 1, 7, 12, 3, 10, 2, 11]):
        x[i, n:] = 0  # right padding
    compare(model, x)


def test_residual_graph_with_add_and_concatenate_matches_keras():
    model = layerc.build(parse_spec("""
inputs: {image: {shape: [10, 10, 3]}, meta: {shape: [4]}}
layers:
  - Conv2D: {filters: 6, kernel_size: 3, padding: same, inputs: image, name: stem}
  - BatchNormalization
  - Activation: {activation: relu}
  - Conv2D: {filters: 6, kernel_size: 3, padding: same}
  - Add: {inputs: [stem, conv2d]}
  - MaxPooling2D
  - Conv2D: {filters: 4, kernel_size: 1}
  - GlobalAveragePooling2D
  - Dense: {units: 5, activation: gelu, inputs: meta, name: side}
  - Concatenate: {inputs: [global_average_pooling2d, side]}
  - LayerNormalization
  - Dense: {units: 3, activation: softmax}
"""))
    randomise(model)
    rng = np.random.default_rng(3)
    x = [rng.standard_normal((8, 10, 10, 3)).astype(np.float32), rng.standard_normal((8, 4)).astype(np.float32)]
    compare(model, x)


def test_bidirectional_and_conv1d_sequence_model_matches_keras():
    model = layerc.build(parse_spec("""
input: {shape: [20, 3]}
layers:
  - Conv1D: {filters: 8, kernel_size: 3, padding: causal, activation: elu}
  - MaxPooling1D
  - Bidirectional: {layer: {LSTM: {units: 5, return_sequences: true}}}
  - Bidirectional: {layer: {SimpleRNN: {units: 4}}, merge_mode: sum}
  - Dense: {units: 1, activation: sigmoid}
"""))
    randomise(model)
    compare(model, np.random.default_rng(4).standard_normal((6, 20, 3)).astype(np.float32))


@pytest.mark.parametrize("optimizer", ["{type: adam, learning_rate: 0.01}", "{type: sgd, learning_rate: 0.1, momentum: 0.9}",
                                       "{type: rmsprop, learning_rate: 0.01}"])
def test_fit_steps_equal_keras_fit_steps(optimizer):
    """Three training steps from the same weights give Keras's weights (float32 rounding)."""
    from layerc.train.loop import Trainer

    model = layerc.build(parse_spec(f"""
input: {{shape: [6, 6, 2]}}
layers:
  - Conv2D: {{filters: 4, kernel_size: 3, activation: relu}}
  - BatchNormalization
  - Flatten
  - Dense: {{units: 8, activation: tanh, kernel_regularizer: {{l2: 0.01}}}}
  - Dense: {{units: 3, activation: softmax}}
train: {{optimizer: {optimizer}, loss: sparse_categorical_crossentropy, batch_size: 16}}
"""))
    randomise(model)
    twin = keras_twin(model)
    spec = model.spec.train.optimizer
    kopt = {"adam": lambda: keras.optimizers.Adam(spec.learning_rate),
            "sgd": lambda: keras.optimizers.SGD(spec.learning_rate, momentum=spec.momentum),
            "rmsprop": lambda: keras.optimizers.RMSprop(spec.learning_rate)}[spec.type]()
    twin.compile(optimizer=kopt, loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    trainer = Trainer(model, model.spec.train)
    for _ in range(3):
        ours = trainer.train_step(x, y)
        theirs = float(twin.train_on_batch(x, y))
        assert ours == pytest.approx(theirs, rel=1e-4)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4)

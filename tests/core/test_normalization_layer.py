"""Normalization (Keras's preprocessing layer): given or adapted mean and variance, float64
gradients, Keras 3 parity (forward, adapt, summary counts, three SGD steps), adapt from the
training data only (streamed, deterministic, each layer from its own input), weights.npz and
resume, and a located error where statistics are needed but there is no data."""
from __future__ import annotations

import numpy as np
import pytest

import layerc
from layerc import jobs
from layerc.core.normalization_pre import NotAdapted
from layerc.core.registry import make_layer
from layerc.runs import load_arrays
from layerc.spec import SpecError, parse_spec
from layerc.spec import layers as S
from layerc.train.adapt import adapt
from tests.core.gradcheck import check_layer_gradients
from tests.core.keras_twin import keras_layer, same_summary, sgd_steps_match, twin

CASES = [
    (S.Normalization(mean=0.5, variance=4.0), (4,)),
    (S.Normalization(mean=[0.5, -1.0, 2.0], variance=[1.0, 0.25, 9.0]), (2, 3)),
    (S.Normalization(axis=[1, 2], mean=[[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]], variance=[[1.0] * 3, [2.0] * 3]), (2, 3)),
    (S.Normalization(axis=None, mean=1.0, variance=2.0, invert=True), (2, 3)),
    (S.Normalization(), (2, 3)),
    (S.Normalization(axis=1, invert=True), (2, 3)),
    (S.Normalization(axis=None), (5,)),
]
IDS = [f"Normalization-{i}" for i in range(len(CASES))]


def build(spec, shape, dtype="float64", adapted=True):
    layer = make_layer(spec, "norm", 0, dtype)
    layer.build(tuple(shape))
    if adapted and layer.weights:
        rng = np.random.default_rng(1)
        layer.weights["mean"][...] = rng.uniform(-1, 1, layer.weights["mean"].shape)
        layer.weights["variance"][...] = rng.uniform(0.2, 3, layer.weights["variance"].shape)
        layer.weights["count"][...] = 10
    return layer


@pytest.mark.parametrize("spec, shape", CASES, ids=IDS)
def test_gradients(spec, shape):
    layer = build(spec, shape)
    X = np.random.default_rng(0).standard_normal((4, *shape))
    assert layer.forward(X, True)[0].shape == X.shape
    assert check_layer_gradients(layer, X) > 0


def test_literal_values_and_weights():
    x = np.array([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]])
    y = build(S.Normalization(mean=[0.5, -1.0, 2.0], variance=[1.0, 0.25, 0.0]), (2, 3)).forward(x, False)[0]
    np.testing.assert_allclose(y, (x - [0.5, -1.0, 2.0]) / [1.0, 0.5, 1e-7])  # sqrt(0) floored at 1e-7
    inv = build(S.Normalization(mean=2.0, variance=4.0, invert=True), (2, 3)).forward(x, False)[0]
    np.testing.assert_allclose(inv, x * 2 + 2)
    layer = build(S.Normalization(axis=[1, -1]), (2, 3), adapted=False)
    assert {k: w.shape for k, w in layer.weights.items()} == {"mean": (2, 3), "variance": (2, 3), "count": ()}
    assert not any(layer.trainable.values())
    assert build(S.Normalization(mean=1.0, variance=1.0), (3,)).weights == {}


@pytest.mark.parametrize("text, message", [
    ("input: {shape: [4]}\nlayers:\n  - Normalization: {mean: 1.0}\n", "give both mean and variance"),
    ("input: {shape: [4]}\nlayers:\n  - Normalization: {mean: [1.0], variance: [1.0, 2.0]}\n",
     "mean has shape [1] but variance [2]"),
    ("input: {shape: [4]}\nlayers:\n  - Normalization: {mean: 0.0, variance: -1.0}\n", "variance must be >= 0"),
    ("input: {shape: [4]}\nlayers:\n  - Normalization: {mean: [1.0, 2.0], variance: [1.0, 1.0]}\n",
     "Normalization mean has shape [2] but the input has sizes [4]"),
    ("input: {shape: [4]}\nlayers:\n  - Normalization: {axis: 0}\n", "cannot normalise over the batch axis"),
    ("input: {shape: [null, 4]}\nlayers:\n  - Normalization: {axis: 1}\n", "needs a known size along axis 1"),
    ("input: {shape: [3, 4]}\nlayers:\n  - Normalization: {axis: null, mean: [1.0], variance: [1.0]}\n",
     "more than the 0 axes"),
])
def test_located_spec_errors(text, message):
    with pytest.raises(SpecError) as e:
        layerc.build(parse_spec(text))
    assert message in str(e.value) and "<spec>:3:" in str(e.value), str(e.value)


# -- adapt -------------------------------------------------------------------------------------

NET = """
seed: 1
input: {{shape: [3, 4]}}
layers:
  - Rescaling: {{scale: 2.0, offset: 1.0}}
  - Normalization: {{axis: {axis}}}
  - Flatten
  - Dense: {{units: 2}}
  - Normalization
train: {{optimizer: {{type: sgd, learning_rate: 0.05}}, loss: mse, batch_size: {batch}, epochs: 1}}
"""


def data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(3, 2, (n, 3, 4)) * [1, 2, 0.5, 3]).astype(np.float32), rng.standard_normal((n, 2)).astype(np.float32)


@pytest.mark.parametrize("axis", ["-1", "[1, 2]", "null", "1"])
def test_fit_adapts_each_layer_from_its_own_input_over_the_training_part_only(axis):
    x, y = data()
    model = layerc.build(parse_spec(NET.format(axis=axis, batch=7)))
    model.fit(x, y, validation_split=0.2, verbose=0)
    norm, second = model.nodes[1].layer, model.nodes[4].layer
    seen = x[:40].astype(np.float64) * 2 + 1  # the Rescaling's output, training rows only
    keep = norm._keep((3, 4))
    reduce = tuple(a for a in range(3) if a - 1 not in keep)
    np.testing.assert_allclose(norm.weights["mean"], seen.mean(axis=reduce), rtol=1e-6)
    np.testing.assert_allclose(norm.weights["variance"], seen.var(axis=reduce), rtol=1e-5)
    assert float(norm.weights["count"]) == np.prod([seen.shape[a] for a in reduce])
    assert float(second.weights["count"]) == 40  # adapted after the first, from the Dense's outputs
    assert any("Normalization 'normalization': mean and variance adapted from 40 training samples" in m
               for m in model.trainer().messages)


def test_adapt_is_deterministic_and_streams_any_batch_size():
    x, _ = data(101)
    results = []
    for batch in (7, 7, 101, 1):
        model = layerc.build(parse_spec(NET.format(axis=-1, batch=batch)))
        adapt(model, [x], batch)
        results.append([w.copy() for w in model.get_weights()])
    for a, b in zip(results[0], results[1]):
        np.testing.assert_array_equal(a, b)
    for other in results[2:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_adapt_leaves_given_and_loaded_statistics_alone():
    x, y = data()
    model = layerc.build(parse_spec(NET.format(axis=-1, batch=8)))
    model.fit(x, y, verbose=0)
    before = model.get_weights()
    assert adapt(model, [x[:5] * 100], 8) == []  # adapted already: a second fit keeps them
    model.fit(x[:5] * 100, y[:5], verbose=0)
    for key in ("normalization/mean", "normalization/variance"):
        i = list(model.named_weights()).index(key)
        np.testing.assert_array_equal(model.get_weights()[i], before[i])


def test_predict_without_statistics_says_so():
    model = layerc.build(parse_spec(NET.format(axis=-1, batch=8)))
    with pytest.raises(NotAdapted, match="Normalization 'normalization' has no mean and variance: they are "
                                         "adapted from the training data when training starts"):
        model.predict(data()[0])


def test_keras_adapt_gives_the_same_statistics_outputs_and_summary(keras):
    x, _ = data(64)
    model = layerc.build(parse_spec("input: {shape: [3, 4]}\nlayers:\n  - Normalization: {axis: [1, 2]}\n"
                                    "  - Normalization: {axis: null}\n  - Normalization: {axis: -1, invert: true}\n"))
    adapt(model, [x], 10)
    km, layers = twin(keras, model)
    for node in model.nodes:  # Keras's adapt on the same inputs, all at once
        k = layers[node.name]
        k.adapt(_upto(model, x, node.index))
        for ours, theirs in zip(node.layer.weights.values(), k.get_weights()[:2]):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    same_summary(model, layers)  # mean, variance and count: 2 * C + 1 each, as Keras counts them
    assert [n.n_params for n in model.nodes] == [25, 3, 9]
    assert model.count_trainable() == 0


def _upto(model, x, index):
    """The input of node `index` (the outputs of the nodes before it, in a chain)."""
    for node in model.nodes[:index]:
        x = node.layer.forward(x, False)[0]
    return x


def test_given_statistics_match_keras_and_count_no_parameters(keras):
    for spec, shape in CASES[:4]:
        layer = build(spec, shape, "float32")
        k = keras_layer(keras, spec)
        x = np.random.default_rng(2).standard_normal((5, *shape)).astype(np.float32)
        np.testing.assert_allclose(layer.forward(x, False)[0], keras.ops.convert_to_numpy(k(x)), rtol=1e-6)
        assert k.count_params() == 0 and layer.weights == {}


SGD = """
input: {shape: [6]}
layers:
  - Normalization
  - Dense: {units: 4, activation: tanh}
  - Normalization: {mean: [0.1, 0.2, 0.3, 0.4], variance: [1.0, 2.0, 0.5, 0.25]}
  - Dense: {units: 1}
train: {optimizer: {type: sgd, learning_rate: 0.1}, loss: mse, batch_size: 8}
"""


def test_three_sgd_steps_equal_keras(keras):
    rng = np.random.default_rng(3)
    x, y = (rng.normal(2, 3, (8, 6))).astype(np.float32), rng.standard_normal((8, 1)).astype(np.float32)
    model = layerc.build(parse_spec(SGD))
    adapt(model, [x], 8)
    sgd_steps_match(keras, model, x, y, "mse")


# -- runs: weights.npz, resume, located errors -----------------------------------------------------

def _norm_spec(tiny_spec, epochs):
    spec = tiny_spec(epochs=epochs)
    spec.write_text(spec.read_text().replace("layers:\n", "layers:\n  - Normalization\n"))
    return spec


def test_adapted_statistics_are_saved_and_resume_keeps_them(tiny_spec, tmp_path):
    from tests.train.test_loop import StopAfter

    spec = _norm_spec(tiny_spec, 3)
    whole = jobs.train(spec, run_dir=tmp_path / "whole")
    saved = load_arrays(tmp_path / "whole" / "weights.npz")
    loaded = jobs.load_spec(spec)
    train_x = jobs.load_dataset(loaded, layerc.build(loaded)).train[0]
    np.testing.assert_allclose(saved["normalization/mean"], train_x.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(saved["normalization/variance"], train_x.var(axis=0), rtol=1e-5)
    assert saved["normalization/count"] == len(train_x) and len(train_x) < 400  # no validation/test rows
    assert any("adapted from" in m for m in whole.messages)
    part = jobs.train(spec, run_dir=tmp_path / "part", callbacks=[StopAfter(30)])
    assert part.interrupted
    done = jobs.train(resume=tmp_path / "part")
    assert not any("adapted from" in m for m in done.messages)  # restored, not adapted again
    resumed = load_arrays(tmp_path / "part" / "weights.npz")
    assert all(np.array_equal(saved[k], resumed[k]) for k in saved)


def test_export_without_trained_statistics_is_a_located_error(tiny_spec, tmp_path):
    spec = _norm_spec(tiny_spec, 1)
    with pytest.raises(SpecError) as e:
        jobs.export(spec, tmp_path / "m.keras")
    assert f"{spec}:5:" in str(e.value) and "Normalization 'normalization' has no mean and variance" in str(e.value)
    assert "train the model first" in str(e.value) and not (tmp_path / "m.keras").exists()
    run = jobs.train(spec, run_dir=tmp_path / "run").run_dir
    jobs.export(run, tmp_path / "m.keras")  # trained: its statistics go with it
    assert (tmp_path / "m.keras").exists()

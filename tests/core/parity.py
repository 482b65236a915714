"""Shared checks of a layer against Keras 3 in a small model: forward outputs, three SGD
steps, summary rows and parameter counts, and the training-memory estimate."""
from __future__ import annotations

import numpy as np
import pytest

import layerc
from layerc.spec import SpecError, parse_spec


def twin_of(model):
    """Keras's copy of `model` with its (randomised) weights; imported here so that the
    test modules using this one run their other tests without Keras."""
    from tests.test_keras_parity import keras_twin, randomise

    randomise(model)
    return keras_twin(model)


def forward_parity(body, x, atol=1e-5):
    """Our outputs and Keras's for the spec `body` with the same random weights agree."""
    model = layerc.build(parse_spec(body))
    twin = twin_of(model)
    np.testing.assert_allclose(model.predict(x), twin.predict(x, verbose=0), atol=atol, rtol=1e-5)
    return model, twin


def sgd_parity(keras, body, x, y, lr=0.1):
    """Three SGD steps on mean squared error give Keras's losses and weights; the spec's
    output must have y's shape."""
    from layerc.train.loop import Trainer

    model = layerc.build(parse_spec(body + f"train: {{optimizer: {{type: sgd, learning_rate: {lr}}}, "
                                           f"loss: mean_squared_error, batch_size: {len(y)}}}\n"))
    twin = twin_of(model)
    twin.compile(optimizer=keras.optimizers.SGD(lr), loss="mean_squared_error")
    trainer = Trainer(model, model.spec.train)
    start = model.get_weights()
    for _ in range(3):
        ours = trainer.train_step(x, y)
        theirs = float(twin.train_on_batch(x, y))
        assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-6)
    theirs = [w for node in model.weight_nodes() for w in twin.get_layer(node.name).get_weights()]
    for (name, a), b, a0 in zip(model.named_weights().items(), theirs, start):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4, err_msg=name)
        assert not np.array_equal(a, a0), f"{name} did not train"
    return model


def summary_matches(model, twin, batch_size=8):
    """Per layer, our summary row's output shape and parameters are Keras's; the training
    memory estimate counts every layer's output at Keras's shape."""
    from layerc.core.base import elements
    from layerc.jobs import training_memory
    from layerc.summary import summarize

    rows = {r["name"]: r for r in summarize(model, batch_size)["layers"]}
    keras_values = 0
    for node in model.nodes:
        klayer = twin.get_layer(node.name)
        shape = tuple(klayer.output.shape[1:])
        assert rows[node.name]["output_shape"] == [None, *shape], node.name
        assert rows[node.name]["params"] == klayer.count_params() == node.n_params, node.name
        keras_values += elements(shape)
    assert model.count_params() == twin.count_params()
    item = 8 if model.spec.dtype == "float64" else 4
    assert training_memory(model, batch_size)["parts"]["activations"] == 3 * keras_values * batch_size * item


def located_error(text, line, *words, col=5):
    """Building `text` fails with one diagnostic at `line` and `col` (default 5, a layer's
    type) whose message holds every word."""
    with pytest.raises(SpecError) as e:
        layerc.build(parse_spec(text, "s.yaml"))
    (d,) = e.value.diagnostics
    assert (d.line, d.col) == (line, col), d
    for w in words:
        assert w in d.message, d.message
    return d

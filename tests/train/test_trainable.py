"""Issue 18 point 11: `trainable: false` freezes a layer (Keras 3 semantics)."""
import numpy as np
import pytest

from layerc import build
from layerc.spec import SpecError, parse_spec
from layerc.summary import summarize
from layerc.train.loop import Trainer

SPEC = """\
seed: 3
input: {shape: [6]}
layers:
  - Dense: {units: 5, name: first, activation: tanh}
  - Dense: {units: 4, name: middle, activation: tanh, trainable: false}
  - BatchNormalization: {name: bn, trainable: %s}
  - Dense: {units: 3, name: last, activation: softmax}
train:
  optimizer: {type: adam, learning_rate: 0.05}
  loss: sparse_categorical_crossentropy
  batch_size: 8
  epochs: 1
"""


def data(n=64):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(n, 6)) * 3 + 2).astype(np.float32)  # far from BN's moving stats 0 / 1
    return x, rng.integers(0, 3, n)


def trained(bn_trainable="true"):
    spec = parse_spec(SPEC % bn_trainable)
    model = build(spec).build()
    before = model.named_weights()
    before = {k: v.copy() for k, v in before.items()}
    Trainer(model, spec.train).fit(*data(), shuffle=False)
    return before, model.named_weights()


def test_frozen_dense_is_bit_identical_and_still_passes_gradient_back():
    before, after = trained()
    for k in ("middle/kernel", "middle/bias"):
        assert np.array_equal(before[k], after[k]), k
    # `first` is trained only through the frozen `middle`: it moves, so the gradient flows
    for k in ("first/kernel", "first/bias", "last/kernel", "last/bias", "bn/gamma", "bn/beta"):
        assert not np.allclose(before[k], after[k]), k
    assert not np.allclose(before["bn/moving_mean"], after["bn/moving_mean"])  # a trained BN updates them


def test_frozen_batchnorm_keeps_and_uses_its_moving_statistics_in_training():
    before, after = trained("false")
    for k in ("bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance", "middle/kernel"):
        assert np.array_equal(before[k], after[k]), k
    assert not np.allclose(before["first/kernel"], after["first/kernel"])

    model = build(parse_spec(SPEC % "false")).build()
    bn = model.graph.nodes[2].layer
    X = np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32) * 5 + 3
    bn.weights["moving_mean"][...] = [1, 2, 3, 4]
    bn.weights["moving_variance"][...] = [4, 4, 1, 1]
    Y, _ = bn.forward(X, training=True)
    want = (X - [1, 2, 3, 4]) / np.sqrt(np.array([4, 4, 1, 1]) + bn.spec.epsilon)
    np.testing.assert_allclose(Y, want, rtol=1e-5)
    assert bn.weights["moving_mean"].tolist() == [1, 2, 3, 4]


def test_summary_counts_frozen_layers_as_non_trainable():
    info = summarize(build(parse_spec(SPEC % "false")))
    # first 6*5+5=35, middle 5*4+4=24 frozen, bn 4*4=16 all frozen, last 4*3+3=15
    assert info["total_params"] == 90
    assert info["trainable_params"] == 35 + 15
    assert info["non_trainable_params"] == 24 + 16
    info = summarize(build(parse_spec(SPEC % "true")))
    assert (info["trainable_params"], info["non_trainable_params"]) == (35 + 15 + 8, 24 + 8)


def test_weight_order_and_optimizer_state_cover_only_trainable_weights():
    spec = parse_spec(SPEC % "false")
    model = build(spec).build()
    names = list(model.named_weights())
    assert names[:4] == ["first/kernel", "first/bias", "middle/kernel", "middle/bias"]
    assert len(model.get_weights()) == len(names) == 10
    trainer = Trainer(model, spec.train)
    trainer.fit(*data(16), shuffle=False)
    assert [f"{layer.name}/{k}" for layer, k in trainer.slots] == \
        ["first/kernel", "first/bias", "last/kernel", "last/bias"]
    arrays, meta = trainer.state()
    assert sum(k.startswith("optimizer/momentum_") for k in arrays) == 4
    again = Trainer(build(spec).build(), spec.train)
    again.load_state(arrays, meta)
    again.fit(*data(16), epochs=2, shuffle=False)  # resumes with the same optimizer slots


def test_frozen_bidirectional_counts_as_non_trainable():
    text = ("input: {shape: [5, 3]}\nlayers:\n  - Bidirectional: {layer: {LSTM: {units: 2}}, trainable: false}\n"
            "  - Dense: {units: 1}\n")
    info = summarize(build(parse_spec(text)))
    assert info["trainable_params"] == 4 * 1 + 1
    inner = text.replace("{units: 2}}, trainable: false}", "{units: 2, trainable: false}}}")
    model = build(parse_spec(inner)).build()
    assert summarize(model)["trainable_params"] == 5
    assert [k for _, k in model.trainable_slots()] == ["kernel", "bias"]


def test_trainable_not_a_bool_is_a_located_error():
    with pytest.raises(SpecError) as e:
        parse_spec("input: {shape: [4]}\nlayers:\n  - Dense: {units: 3, trainable: \"no\"}\n", "s.yaml")
    d = e.value.diagnostics[0]
    assert len(e.value.diagnostics) == 1
    assert (d.file, d.line, d.col) == ("s.yaml", 3, 34) and "trainable must be a valid boolean" in d.message, \
        d.format()

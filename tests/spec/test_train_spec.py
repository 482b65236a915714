import json

import pytest
from pydantic import ValidationError

from layerc.spec import train as T
from layerc.spec.train import TrainSpec


def _errors(**kw):
    with pytest.raises(ValidationError) as e:
        TrainSpec(**kw)
    return e.value.errors()


def _locs(**kw):
    return [err["loc"] for err in _errors(**kw)]


def test_defaults_are_keras():
    s = TrainSpec(loss="mse")
    assert isinstance(s.optimizer, T.RMSprop)  # Keras compile's default
    assert (s.batch_size, s.epochs, s.shuffle, s.metrics, s.callbacks) == (32, 1, True, [], [])
    assert isinstance(s.loss, T.MeanSquaredError)


@pytest.mark.parametrize("name,cls,fields", [
    ("sgd", T.SGD, dict(learning_rate=0.01, momentum=0.0, nesterov=False)),
    ("adam", T.Adam, dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False)),
    ("adamw", T.AdamW, dict(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                            epsilon=1e-7)),
    ("rmsprop", T.RMSprop, dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                                centered=False)),
    ("adagrad", T.Adagrad, dict(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7)),
])
def test_optimizer_names_mean_keras_defaults(name, cls, fields):
    for form in (name, name.upper(), {"type": name}, {name: None}, {name: {}}):
        opt = TrainSpec(loss="mse", optimizer=form).optimizer
        assert isinstance(opt, cls)
        assert {k: getattr(opt, k) for k in fields} == fields
        assert opt.clipnorm is None and opt.clipvalue is None


def test_optimizer_mapping_and_schedules():
    opt = TrainSpec(loss="mse", optimizer={"type": "sgd", "learning_rate": 0.05, "momentum": 0.9,
                                           "nesterov": True, "clipnorm": 1}).optimizer
    assert (opt.learning_rate, opt.momentum, opt.nesterov, opt.clipnorm) == (0.05, 0.9, True, 1.0)
    lr = TrainSpec(loss="mse", optimizer={"adam": {"learning_rate": {
        "type": "exponential_decay", "initial_learning_rate": 0.1, "decay_steps": 100,
        "decay_rate": 0.96}}}).optimizer.learning_rate
    assert isinstance(lr, T.ExponentialDecay) and lr.staircase is False
    lr = TrainSpec(loss="mse", optimizer={"type": "adam", "learning_rate": {
        "step_decay": {"boundaries": [10, 20], "values": [0.1, 0.01, 0.001]}}}).optimizer.learning_rate
    assert isinstance(lr, T.StepDecay)
    lr = TrainSpec(loss="mse", optimizer={"type": "adam", "learning_rate": {
        "type": "cosine_decay", "initial_learning_rate": 0.0, "decay_steps": 1000,
        "warmup_target": 0.01, "warmup_steps": 100}}).optimizer.learning_rate
    assert (lr.alpha, lr.warmup_target, lr.warmup_steps) == (0.0, 0.01, 100)


@pytest.mark.parametrize("optimizer,loc_end", [
    ({"type": "sgd", "learning_rate": 0}, ("learning_rate", "constant")),
    ({"type": "sgd", "learning_rate": -0.1}, ("learning_rate", "constant")),
    ({"type": "sgd", "learning_rate": "fast"}, ("learning_rate", "constant")),
    ({"type": "sgd", "momentum": 1.0}, ("momentum",)),
    ({"type": "sgd", "momentum": -0.1}, ("momentum",)),
    ({"type": "sgd", "nesterov": "yes"}, ("nesterov",)),
    ({"type": "sgd", "moment": 0.9}, ("moment",)),
    ({"type": "adam", "beta_1": 1.0}, ("beta_1",)),
    ({"type": "adam", "beta_2": 1.5}, ("beta_2",)),
    ({"type": "adam", "epsilon": 0}, ("epsilon",)),
    ({"type": "adamw", "weight_decay": -1.0}, ("weight_decay",)),
    ({"type": "rmsprop", "rho": 1.0}, ("rho",)),
    ({"type": "adagrad", "initial_accumulator_value": -0.1}, ("initial_accumulator_value",)),
    ({"type": "adam", "clipnorm": 0}, ("clipnorm",)),
    ({"type": "adam", "clipvalue": -1.0}, ("clipvalue",)),
    ({"type": "adam", "learning_rate": {"type": "exponential_decay", "initial_learning_rate": 0.1,
                                        "decay_steps": 0, "decay_rate": 0.5}}, ("decay_steps",)),
    ({"type": "adam", "learning_rate": {"type": "exponential_decay", "initial_learning_rate": -1.0,
                                        "decay_steps": 10, "decay_rate": 0.5}},
     ("initial_learning_rate",)),
    ({"type": "adam", "learning_rate": {"type": "cosine_decay", "initial_learning_rate": 0.1,
                                        "decay_steps": 10, "alpha": 2.0}}, ("alpha",)),
])
def test_bad_optimizer_values_point_at_the_field(optimizer, loc_end):
    locs = _locs(loss="mse", optimizer=optimizer)
    assert len(locs) == 1
    assert locs[0][0] == "optimizer" and locs[0][-len(loc_end):] == loc_end


@pytest.mark.parametrize("optimizer,message", [
    ("adm", "does not match any of the expected tags"),
    ({"type": "adam", "clipnorm": 1.0, "clipvalue": 1.0}, "only one of clipnorm and clipvalue"),
    ({"type": "adam", "learning_rate": {"type": "step_decay", "boundaries": [5, 2],
                                        "values": [1.0, 0.5, 0.1]}}, "strictly increasing"),
    ({"type": "adam", "learning_rate": {"type": "step_decay", "boundaries": [5],
                                        "values": [1.0, 0.5, 0.1]}}, "one more entry"),
    ({"type": "adam", "learning_rate": {"type": "cosine_decay", "initial_learning_rate": 0.1,
                                        "decay_steps": 10, "warmup_steps": 5}}, "warmup_target"),
    ({"type": "adam", "learning_rate": {"type": "cosine_decay", "initial_learning_rate": 0.0,
                                        "decay_steps": 10}}, "must be > 0"),
    ({"type": "adam", "learning_rate": {"type": "linear"}}, "does not match any of the expected tags"),
])
def test_bad_optimizer_messages(optimizer, message):
    errs = _errors(loss="mse", optimizer=optimizer)
    assert any(message in e["msg"] for e in errs), errs
    assert all(e["loc"][0] == "optimizer" for e in errs)


def test_losses():
    assert isinstance(TrainSpec(loss="mae").loss, T.MeanAbsoluteError)
    assert isinstance(TrainSpec(loss="mean_squared_error").loss, T.MeanSquaredError)
    loss = TrainSpec(loss="categorical_crossentropy").loss
    assert (loss.from_logits, loss.label_smoothing) == (False, 0.0)
    loss = TrainSpec(loss={"type": "sparse_categorical_crossentropy", "from_logits": True}).loss
    assert loss.from_logits
    assert TrainSpec(loss={"huber": {"delta": 0.5}}).loss.delta == 0.5
    assert TrainSpec(loss="huber").loss.delta == 1.0
    assert _locs(loss={"type": "binary_crossentropy", "label_smoothing": 1.5}) == [
        ("loss", "binary_crossentropy", "label_smoothing")]
    assert _locs(loss={"type": "huber", "delta": 0}) == [("loss", "huber", "delta")]
    assert _locs(loss={"type": "sparse_categorical_crossentropy", "label_smoothing": 0.1}) == [
        ("loss", "sparse_categorical_crossentropy", "label_smoothing")]
    assert _locs(loss="hinge") == [("loss",)]
    assert _locs(optimizer="adam") == [("loss",)]  # the loss is required


def test_metrics():
    s = TrainSpec(loss="mse", metrics=["accuracy", "acc", "mae", "mean_squared_error", "rmse", "auc",
                                        {"type": "top_k_accuracy"}, {"precision": {"thresholds": 0.7}},
                                        "recall"])
    assert [m.type for m in s.metrics] == ["accuracy", "accuracy", "mae", "mse", "rmse", "auc",
                                           "top_k_accuracy", "precision", "recall"]
    assert s.metrics[6].k == 5 and s.metrics[7].thresholds == 0.7 and s.metrics[5].num_thresholds == 200
    assert _locs(loss="mse", metrics=["accuracy", {"type": "top_k_accuracy", "k": 0}]) == [
        ("metrics", 1, "top_k_accuracy", "k")]
    assert _locs(loss="mse", metrics=["f1"]) == [("metrics", 0)]
    assert _locs(loss="mse", metrics=[{"auc": {"num_thresholds": 1}}]) == [
        ("metrics", 0, "auc", "num_thresholds")]


def test_fit_arguments():
    s = TrainSpec(loss="mse", batch_size=128, epochs=10, shuffle=False)
    assert (s.batch_size, s.epochs, s.shuffle) == (128, 10, False)
    assert _locs(loss="mse", batch_size=0) == [("batch_size",)]
    assert _locs(loss="mse", epochs=2.5) == [("epochs",)]
    assert _locs(loss="mse", shuffle="no") == [("shuffle",)]
    assert _locs(loss="mse", validation=0.1) == [("validation",)]


def test_callbacks():
    s = TrainSpec(loss="mse", callbacks=[
        {"type": "early_stopping", "patience": 3, "restore_best_weights": True},
        {"checkpoint": {"save_best_only": True, "monitor": "val_accuracy", "mode": "max"}},
        {"type": "reduce_lr_on_plateau"}, "terminate_on_nan"])
    es, ck, rl, tn = s.callbacks
    assert (es.monitor, es.patience, es.min_delta, es.mode, es.restore_best_weights) == (
        "val_loss", 3, 0.0, "auto", True)
    assert (ck.monitor, ck.save_best_only, ck.mode) == ("val_accuracy", True, "max")
    assert (rl.monitor, rl.factor, rl.patience, rl.min_delta, rl.cooldown, rl.min_lr) == (
        "val_loss", 0.1, 10, 1e-4, 0, 0.0)
    assert isinstance(tn, T.TerminateOnNaN)
    assert _locs(loss="mse", callbacks=[{"type": "reduce_lr_on_plateau", "factor": 1.0}]) == [
        ("callbacks", 0, "reduce_lr_on_plateau", "factor")]
    assert _locs(loss="mse", callbacks=["early_stopping", {"type": "early_stopping", "patience": -1}]) == [
        ("callbacks", 1, "early_stopping", "patience")]
    assert _locs(loss="mse", callbacks=[{"type": "early_stopping", "mode": "lowest"}]) == [
        ("callbacks", 0, "early_stopping", "mode")]
    assert _locs(loss="mse", callbacks=["tensorboard"]) == [("callbacks", 0)]


def test_frozen_and_schema():
    s = TrainSpec(loss="mse")
    with pytest.raises(ValidationError):
        s.epochs = 3
    schema = json.dumps(TrainSpec.model_json_schema())
    for word in ("exponential_decay", "cosine_decay", "reduce_lr_on_plateau", "top_k_accuracy"):
        assert word in schema

"""Spec callbacks inside real training runs: early stopping, reduce_lr_on_plateau, checkpoint."""
import numpy as np
import pytest

from layerc import jobs
from layerc.runs import load_arrays
from layerc.train.callbacks import EarlyStopping, ReduceLROnPlateau
from layerc.spec.train import EarlyStopping as EarlyStoppingSpec, ReduceLROnPlateau as ReduceSpec


class FakeTrainer:
    def __init__(self):
        self.stop_training = False
        self.messages = []
        self.weights = [np.zeros(2)]
        self.optimizer = type("O", (), {"learning_rate": 0.1})()
        self.model = self

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, ws):
        self.weights = ws

    def note(self, text):
        self.messages.append(text)

    warn = note


def test_early_stopping_waits_patience_then_restores_the_best():
    cb, t = EarlyStopping(EarlyStoppingSpec(patience=2, restore_best_weights=True)), FakeTrainer()
    for epoch, loss in enumerate([1.0, 0.5, 0.6, 0.7, 0.4]):
        t.weights = [np.full(2, loss)]
        cb.on_epoch_end(t, epoch, {"val_loss": loss})
        if t.stop_training:
            break
    assert t.stop_training and epoch == 3
    assert t.weights[0][0] == 0.5  # the best epoch's weights
    assert "restored" in t.messages[-1]


def test_early_stopping_mode_auto_maximises_accuracy():
    cb, t = EarlyStopping(EarlyStoppingSpec(monitor="val_accuracy", patience=0)), FakeTrainer()
    cb.on_epoch_end(t, 0, {"val_accuracy": 0.5})
    cb.on_epoch_end(t, 1, {"val_accuracy": 0.6})
    assert not t.stop_training
    cb.on_epoch_end(t, 2, {"val_accuracy": 0.55})
    assert t.stop_training


def test_reduce_lr_on_plateau_with_cooldown_and_floor():
    cb, t = ReduceLROnPlateau(ReduceSpec(factor=0.5, patience=1, cooldown=1, min_lr=0.03)), FakeTrainer()
    lrs = []
    for epoch, loss in enumerate([1.0, 1.0, 1.0, 1.0, 1.0, 1.0]):
        cb.on_epoch_end(t, epoch, {"val_loss": loss})
        lrs.append(t.optimizer.learning_rate)
    assert lrs == pytest.approx([0.1, 0.05, 0.03, 0.03, 0.03, 0.03])  # Keras 3's sequence


def test_callbacks_in_a_run(tiny_spec, tmp_path):
    spec = tiny_spec(epochs=30)
    text = spec.read_text().replace("  epochs: 30\n", "  epochs: 30\n  callbacks:\n"
                                    "    - {type: early_stopping, monitor: loss, min_delta: 10, patience: 1}\n"
                                    "    - {type: checkpoint, monitor: val_accuracy, save_best_only: true}\n")
    spec.write_text(text)
    result = jobs.train(spec, run_dir=tmp_path / "run")
    assert len(result.history) == 2, "min_delta 10 means no epoch improves: stop after patience"
    assert (tmp_path / "run" / "best.npz").exists()
    assert load_arrays(tmp_path / "run" / "best.npz").keys() == load_arrays(tmp_path / "run" / "weights.npz").keys()


def test_reduce_lr_state_survives_resume(tiny_spec, tmp_path):
    from tests.train.test_loop import StopAfter

    spec = tiny_spec(epochs=6)
    spec.write_text(spec.read_text().replace("  epochs: 6\n", "  epochs: 6\n  callbacks:\n"
                                             "    - {type: reduce_lr_on_plateau, monitor: loss, min_delta: 10, patience: 1}\n"))
    whole = jobs.train(spec, run_dir=tmp_path / "whole")
    assert whole.history[-1]["learning_rate"] < whole.history[0]["learning_rate"]
    part = jobs.train(spec, run_dir=tmp_path / "part", callbacks=[StopAfter(50)])
    assert part.interrupted
    done = jobs.train(resume=tmp_path / "part")
    a, b = load_arrays(tmp_path / "whole" / "weights.npz"), load_arrays(tmp_path / "part" / "weights.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert [r["learning_rate"] for r in done.history] == [r["learning_rate"] for r in whole.history]

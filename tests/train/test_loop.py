"""The trainer end to end: run directories, exact resume, stops, divergence, memory refusal."""
import csv
import json

import numpy as np
import pytest

import layerc
from layerc import jobs
from layerc.runs import load_arrays, load_checkpoint
from layerc.train.callbacks import Callback
from layerc.train.loop import TrainingError


class StopAfter(Callback):
    def __init__(self, batches):
        self.left = batches

    def on_batch_end(self, trainer, step, logs):
        self.left -= 1
        if self.left == 0:
            trainer.stop_requested = True


def test_run_directory_is_complete(tiny_spec, tmp_path):
    result = jobs.train(tiny_spec(epochs=3), run_dir=tmp_path / "run")
    run = result.run_dir
    for name in ["spec.yaml", "metrics.csv", "run.json", "weights.npz", "checkpoint.npz", "data.json"]:
        assert (run / name).exists(), name
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"} <= set(rows[0])
    info = json.loads((run / "run.json").read_text())
    assert info["seed"] == 7 and len(info["spec_sha256"]) == 64 and "numpy" in info["versions"]
    assert info["final_metrics"]["loss"] == pytest.approx(float(rows[-1]["loss"]), rel=1e-5)
    assert "accuracy" in info["test_metrics"]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert layerc.load_spec(run / "spec.yaml").train.epochs == 3


def test_same_seed_gives_bit_identical_weights(tiny_spec, tmp_path):
    a = jobs.train(tiny_spec(epochs=2), run_dir=tmp_path / "a")
    b = jobs.train(tiny_spec(epochs=2), run_dir=tmp_path / "b")
    wa, wb = load_arrays(a.run_dir / "weights.npz"), load_arrays(b.run_dir / "weights.npz")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert np.array_equal(wa[k], wb[k]), k


@pytest.mark.parametrize("stop_after", [7, 18, 40])  # mid-epoch, end of epoch 1, epoch 3 (18 steps an epoch)
def test_interrupted_then_resumed_equals_uninterrupted(tiny_spec, tmp_path, stop_after):
    spec = tiny_spec(epochs=4)
    whole = jobs.train(spec, run_dir=tmp_path / "whole")
    part = jobs.train(spec, run_dir=tmp_path / "part", callbacks=[StopAfter(stop_after)])
    assert part.interrupted
    arrays, meta = load_checkpoint(part.run_dir)
    assert meta["epoch"] * 18 + meta["step"] == stop_after
    done = jobs.train(resume=part.run_dir)
    assert not done.interrupted
    a, b = load_arrays(whole.run_dir / "weights.npz"), load_arrays(done.run_dir / "weights.npz")
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert open(whole.run_dir / "metrics.csv").read().split("\n")[0] == open(done.run_dir / "metrics.csv").read().split("\n")[0]
    rows_a = list(csv.DictReader(open(whole.run_dir / "metrics.csv")))
    rows_b = list(csv.DictReader(open(done.run_dir / "metrics.csv")))
    for ra, rb in zip(rows_a, rows_b):
        assert ra["loss"] == rb["loss"] and ra["val_accuracy"] == rb["val_accuracy"]


def test_resuming_a_finished_run_is_refused(tiny_spec, tmp_path):
    r = jobs.train(tiny_spec(epochs=1), run_dir=tmp_path / "r")
    with pytest.raises(Exception, match="finished already"):
        jobs.train(resume=r.run_dir)


def test_diverging_loss_stops_with_a_hint_and_keeps_the_last_checkpoint(tiny_spec, tmp_path):
    spec = tiny_spec(epochs=50, lr=1e30)
    with pytest.raises(TrainingError, match=r"epoch \d+, batch \d+.*learning rate"):
        jobs.train(spec, run_dir=tmp_path / "nan")
    ckpt = tmp_path / "nan" / "checkpoint.npz"
    if ckpt.exists():  # a checkpoint exists only if an epoch finished before the blow-up
        arrays, meta = load_checkpoint(tmp_path / "nan")
        assert all(np.isfinite(v).all() for k, v in arrays.items() if k.startswith("weights/"))


def test_too_big_for_memory_is_refused_before_allocating(tmp_path):
    spec = tmp_path / "huge.yaml"
    spec.write_text("input: {shape: [1000]}\nlayers:\n  - Dense: {units: 1000000000}\n"
                    "data: {format: npz, train: d.npz}\ntrain: {loss: mse}\n")
    with pytest.raises(jobs.ResourceError, match=r"training needs about .* the machine has"):
        jobs.train(spec, run_dir=tmp_path / "r")


def test_fit_api_mirrors_keras(tiny_spec):
    model = layerc.build(layerc.load_spec(tiny_spec(epochs=3)))
    data = np.load(tiny_spec.__closure__[0].cell_contents if False else (tiny_spec(epochs=3).parent / "data.npz"))
    history = model.fit(data["x"], data["y"], validation_split=0.25, verbose=0)
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0]
    assert set(model.evaluate(data["x"], data["y"])) == {"loss", "accuracy"}


def test_dataset_bigger_than_memory_is_refused_before_loading(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", np.zeros((1000, 10), np.float32))
    np.save(tmp_path / "y.npy", np.zeros(1000, np.int64))
    spec = tmp_path / "s.yaml"
    spec.write_text("input: {shape: [10]}\nlayers:\n  - Dense: {units: 2, activation: softmax}\n"
                    "data: {format: npy, train: {x: x.npy, y: y.npy}}\n"
                    "train: {loss: sparse_categorical_crossentropy}\n")
    monkeypatch.setattr(jobs, "available_memory", lambda: 30_000)  # a machine with 30 kB free
    loaded = []
    monkeypatch.setattr(jobs, "load_dataset", lambda *a, **k: loaded.append(1))
    with pytest.raises(jobs.ResourceError, match=r"data 42\.97 KB"):
        jobs.train(spec, run_dir=tmp_path / "r")
    assert not loaded

"""Issue 18's small things: metavars, plurals, summary figures, number formats, file modes, progress."""
import csv
import json
import os
import stat
import types
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from layerc.cli import app
from layerc.cli import progress, render
from layerc.cli.progress import ProgressDisplay, format_logs
from layerc.data import DataError
from layerc.data.idx import idx_header, read_idx
from layerc.runs import atomic_write
from layerc.spec.train import EarlyStopping as EarlyStoppingSpec
from layerc.train.callbacks import EarlyStopping

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.mark.parametrize("command,wanted", [
    ("train", ["SPEC", "KEY=VALUE", "RUN_DIR", "DIR"]),
    ("evaluate", ["SPEC", "FILE", "KEY=VALUE"]),
    ("predict", ["SPEC", "FILE", "N"]),
    ("summary", ["SPEC", "N"]),
])
def test_help_shows_meaningful_metavars(command, wanted):
    r = run(command, "--help")
    assert r.exit_code == 0
    words = set(r.output.replace("[", " ").replace("]", " ").replace("|", " ").split())
    assert set(wanted) <= words
    assert not {"TEXT", "PATH", "INTEGER"} & words


def test_one_epoch_is_singular():
    assert render.history_table([{"epoch": 1, "loss": 0.5, "seconds": 1.0}], None).caption.startswith("1 epoch,")
    assert render.history_table([{"epoch": 1, "loss": 0.5}] * 2, None).caption.startswith("2 epochs,")
    trainer = types.SimpleNamespace(stop_training=False, messages=[], note=lambda t: trainer.messages.append(t),
                                    model=None)
    stop = EarlyStopping(EarlyStoppingSpec(monitor="loss", patience=1))
    stop.on_epoch_end(trainer, 0, {"loss": 1.0})
    stop.on_epoch_end(trainer, 1, {"loss": 2.0})
    assert trainer.messages == ["early stopping: loss did not improve for 1 epoch"]


def test_interrupted_after_one_epoch_is_singular(tiny_spec, monkeypatch):
    from layerc import jobs

    result = jobs.TrainResult(Path("runs/x"), [{"epoch": 1}], interrupted="SIGINT")
    monkeypatch.setattr(jobs, "train", lambda *a, **k: result)
    r = run("train", str(tiny_spec()))
    assert r.exit_code == 130 and "after 1 full epoch;" in r.output


def small_spec(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("input: {shape: [8]}\nlayers:\n  - Dense: {units: 4}\n")
    return spec


def test_summary_macs_below_a_thousand_are_not_repeated(tmp_path):
    r = run("summary", str(small_spec(tmp_path)))
    assert r.exit_code == 0
    assert "MACs per sample: 32\n" in r.output and "32 (32)" not in r.output
    assert "(None, 4)" in r.output
    info = render.summary_totals({"total_params": 0, "total_bytes": 0, "trainable_params": 0, "trainable_bytes": 0,
                                  "non_trainable_params": 0, "non_trainable_bytes": 0,
                                  "macs_per_sample": 2_528_000, "batch_size": 1, "activation_bytes": 0})
    assert "2,528,000 (2.53 M)" in info.plain


def test_summary_json_shapes_are_lists(tmp_path):
    r = run("summary", "--format", "json", str(small_spec(tmp_path)))
    info = json.loads(r.output)
    assert info["layers"][0]["output_shape"] == [None, 4]
    assert [i["shape"] for i in info["inputs"].values()] == [[None, 8]]


def test_huge_losses_are_readable():
    assert render.number(5e21) == "5.0e+21" and render.number(-1e21) == "-1.0e+21"
    assert render.number(0.12345) == "0.1235"
    assert format_logs({"loss": 5e21, "mae": 1.5}) == "loss 5.0e+21  mae 1.5000"
    table = render.history_table([{"epoch": 1, "loss": 1e21, "val_loss": 5e21}], {"loss": 2.5e21})
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert "1.0e+21" in text and "5.0e+21" in text and "2.5e+21" in text and "000000000" not in text


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "f.json", b"{}")
        assert os.umask(umask) == umask  # left as it was
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == mode


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_piped_progress_prints_a_line_every_interval():
    console = Console(width=200, record=True, force_terminal=False)
    clock = FakeClock()
    display = ProgressDisplay(console, epochs=2, batch_size=10, live=False, interval=5.0, clock=clock)
    trainer = types.SimpleNamespace(step=0, messages=[])
    display.on_epoch_begin(trainer, 0, 10)
    for step in range(1, 11):
        clock.now += 2.0  # a batch every 2 s: a line at 6 s (batch 3) and 12 s (batch 6), 18 s (batch 9)
        display.on_batch_end(trainer, step, {"loss": 0.5, "accuracy": 0.75})
    display.on_epoch_end(trainer, 0, {"loss": 0.5, "accuracy": 0.75, "learning_rate": 0.01, "seconds": 20.0})
    lines = console.export_text().splitlines()
    assert lines == [
        "Epoch 1/2  batch 3/10  5 samples/s  loss 0.5000  accuracy 0.7500",
        "Epoch 1/2  batch 6/10  5 samples/s  loss 0.5000  accuracy 0.7500",
        "Epoch 1/2  batch 9/10  5 samples/s  loss 0.5000  accuracy 0.7500",
        "Epoch 1/2  loss 0.5000  accuracy 0.7500  lr 0.01  20.0s",
    ]


def test_piped_training_prints_progress_lines(tiny_spec, tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_INTERVAL", 0.0)
    r = run("train", str(tiny_spec(epochs=1)), "--run-dir", str(tmp_path / "run"))
    assert r.exit_code == 0, r.output
    assert "Epoch 1/1  batch 1/" in r.output and "samples/s  loss " in r.output
    assert "1 epoch," in r.output


def test_negative_idx_dimension_names_the_file_and_dimension(tmp_path):
    path = tmp_path / "bad-images-idx3-ubyte"
    header = b"\0\0\x08\x03" + np.array([5, -28, 28], ">i4").tobytes()
    path.write_bytes(header + bytes(5 * 28 * 28))
    for call in (lambda: idx_header(path), lambda: read_idx(path)):
        with pytest.raises(DataError) as e:
            call()
        assert str(path) in str(e.value) and "dimension 1 is -28" in str(e.value)


SERIES_SPEC = """\
name: series
seed: 3
input: {shape: [6]}
layers:
  - Dense: {units: 8, activation: tanh}
  - Dense: {units: 1}
data: {format: timeseries, train: s.csv, column: v, window: 6, test_split: 40, validation_split: 0.2,
       standardize: true, rescale: 0.5}
train:
  optimizer: {type: adam, learning_rate: 0.01}
  loss: mean_squared_error
  metrics: [mae, mse, rmse]
  batch_size: 16
  epochs: 2
"""


def test_series_metrics_are_in_the_data_units(tmp_path):
    from layerc import jobs
    from layerc.data import inverse_targets

    steps = np.arange(400)
    (tmp_path / "s.csv").write_text("t,v\n" + "".join(f"{i},{20 + 8 * np.sin(i / 9):.4f}\n" for i in steps))
    spec = tmp_path / "series.yaml"
    spec.write_text(SERIES_SPEC)
    result = jobs.train(spec, run_dir=tmp_path / "run")
    _, model, fitted = jobs.load_trained(spec, result.run_dir / "weights.npz")
    data = jobs.load_dataset(jobs.load_spec(spec), model)

    def errors(x, y):
        truth = inverse_targets(y.reshape(len(y), -1), fitted)[:, 0]
        return inverse_targets(model.predict(x).reshape(len(x), -1), fitted)[:, 0] - truth

    x, y = data.test
    error = errors(x, y)
    mae, mse = np.mean(np.abs(error)), np.mean(error ** 2)
    assert fitted["standardize"]["std"][0] / 0.5 > 5  # a target unit is over 5 degrees: far from 1
    for got in (result.test, jobs.evaluate(spec, result.run_dir / "weights.npz")):
        assert got["mae"] == pytest.approx(mae, rel=1e-4)
        assert got["mse"] == pytest.approx(mse, rel=1e-4)
        assert got["rmse"] == pytest.approx(np.sqrt(mse), rel=1e-4)
        pred = model.predict(x).reshape(len(y))
        assert got["loss"] == pytest.approx(np.mean((pred - y.reshape(-1)) ** 2), rel=1e-4)  # as trained
    run_info = json.loads((result.run_dir / "run.json").read_text())
    assert run_info["test_metrics"]["mae"] == pytest.approx(mae, rel=1e-4)
    val_mae = np.mean(np.abs(errors(*data.validation)))
    assert result.history[-1]["val_mae"] == pytest.approx(val_mae, rel=1e-4)
    with open(result.run_dir / "metrics.csv") as f:
        assert float(list(csv.DictReader(f))[-1]["val_mae"]) == pytest.approx(val_mae, rel=1e-4)
    assert any("data's own units" in m for m in result.messages)

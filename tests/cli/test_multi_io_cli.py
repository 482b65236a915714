"""`layerc train / evaluate / predict` of a model with two inputs and two outputs."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

import layerc
from layerc.cli import app
from layerc.runs import load_arrays
from tests.cli.test_errors import cli, one_line_error
from tests.train.test_multi_io import DATA, SPEC, data

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def two(tmp_path):
    x, y = data(200)
    np.savez(tmp_path / "two.npz", **x, **y)
    np.savez(tmp_path / "new.npz", a=x["a"][:5], b=x["b"][:5])
    (tmp_path / "two.yaml").write_text(SPEC + DATA)
    return tmp_path


@pytest.fixture
def trained(two):
    result = run("train", two / "two.yaml", "--run-dir", two / "run")
    assert result.exit_code == 0, result.output
    return two, result.output


def test_train_shows_and_records_every_outputs_metrics(trained):
    tmp, out = trained
    epochs = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert len(epochs) == 4
    for name in ("kind_loss", "size_loss", "kind_accuracy", "size_mae", "val_kind_accuracy", "val_size_mae"):
        assert f" {name} " in epochs[-1], name
    rows = list(csv.DictReader(open(tmp / "run" / "metrics.csv")))
    info = json.loads((tmp / "run" / "run.json").read_text())
    for key in ("kind_accuracy", "size_mae", "val_kind_accuracy", "val_size_mae"):
        assert info["final_metrics"][key] == pytest.approx(float(rows[-1][key]), rel=1e-5)
    assert set(info["test_metrics"]) == {"loss", "kind_loss", "size_loss", "kind_accuracy", "size_mae"}


def test_evaluate_gives_one_result_per_output(trained):
    tmp, _ = trained
    result = run("evaluate", tmp / "run")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp / "run" / "run.json").read_text())
    for key in ("kind_accuracy", "size_mae", "kind_loss", "size_loss"):
        (line,) = [row for row in result.output.splitlines() if f" {key} " in row]
        assert f"{info['test_metrics'][key]:.4f}" in line
    assert "(20 samples)" in result.output


def test_predict_writes_one_array_per_output(trained):
    tmp, _ = trained
    result = run("predict", tmp / "run", "--input", tmp / "new.npz", "--output", tmp / "out.npz")
    assert result.exit_code == 0, result.output
    model = layerc.build(layerc.load_spec(tmp / "run" / "spec.yaml"))
    model.set_weights([w for w in load_arrays(tmp / "run" / "weights.npz").values()])
    want = model.predict({k: v[:5] for k, v in data(200)[0].items()})
    with np.load(tmp / "out.npz") as got:
        assert sorted(got.files) == ["kind", "size"]
        assert np.allclose(got["kind"], want[0], atol=1e-6) and np.allclose(got["size"], want[1], atol=1e-6)
    result = run("predict", tmp / "run", "--input", tmp / "new.npz", "--output", tmp / "out.csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(open(tmp / "out.csv")))
    assert rows[0] == ["kind_predicted", "kind_p_0", "kind_p_1", "kind_p_2", "size"]
    assert len(rows) == 6 and [int(r[0]) for r in rows[1:]] == list(want[0].argmax(1))
    assert np.allclose([float(r[4]) for r in rows[1:]], want[1][:, 0], atol=1e-6)


def one_error(*args):
    *args, text = args
    one_line_error(*cli(*map(str, args)), text)


def test_predict_without_an_input_array_is_one_error(trained):
    tmp, _ = trained
    np.savez(tmp / "half.npz", a=np.zeros((3, 4)))
    one_error("predict", tmp / "run", "--input", tmp / "half.npz", "has no array 'b' for input 'b'")
    np.savez(tmp / "wide.npz", a=np.zeros((3, 5)), b=np.zeros((3, 3)))
    one_error("predict", tmp / "run", "--input", tmp / "wide.npz", "for input 'a': each sample has shape (5,)")


def test_bad_data_is_one_error(two):
    x, y = data(200)
    np.savez(two / "two.npz", a=x["a"], kind=y["kind"], size=y["size"])
    one_error("train", two / "two.yaml", "--run-dir", two / "r1", "has no array 'b' for input 'b'")
    np.savez(two / "two.npz", **x, kind=y["kind"])
    one_error("train", two / "two.yaml", "--run-dir", two / "r2", "has no array 'size' for output 'size'")
    np.savez(two / "two.npz", a=x["a"], b=x["b"][:, :2], **y)
    one_error("train", two / "two.yaml", "--run-dir", two / "r3", "train input 'b'")


def test_an_output_without_a_loss_is_a_located_error(two):
    (two / "two.yaml").write_text((SPEC + DATA).replace(", size: mse}", "}"))
    one_error("train", two / "two.yaml", "--run-dir", two / "run",
              f"{two / 'two.yaml'}:15:9: error: output 'size' has no loss")


def start(*args):
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.Popen([sys.executable, "-m", "layerc", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_then_resume_is_bit_exact(tmp_path):
    x, y = data(2000)
    np.savez(tmp_path / "two.npz", **x, **y)
    spec = tmp_path / "two.yaml"
    spec.write_text((SPEC + DATA).replace("epochs: 4", "epochs: 60"))
    whole = run("train", spec, "--run-dir", tmp_path / "whole", "-q")
    assert whole.exit_code == 0, whole.output
    proc = start("train", spec, "--run-dir", tmp_path / "run")
    end = time.time() + 60
    while not (tmp_path / "run" / "metrics.csv").exists():
        assert proc.poll() is None and time.time() < end, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    resumed = start("train", "--resume", tmp_path / "run")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    a, b = load_arrays(tmp_path / "whole" / "weights.npz"), load_arrays(tmp_path / "run" / "weights.npz")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    rows_a = list(csv.DictReader(open(tmp_path / "whole" / "metrics.csv")))
    rows_b = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [r["val_kind_accuracy"] for r in rows_a] == [r["val_kind_accuracy"] for r in rows_b]

"""A dataset layerc has never heard of, given as IDX or CSV paths in a spec, trains,
evaluates and predicts through the CLI with no code changes."""
import json

import numpy as np
from typer.testing import CliRunner

from layerc.cli import app

from .helpers import write_idx

runner = CliRunner()


def bars(n, rng):
    """8x8 images of a horizontal (0) or vertical (1) bar, with noise."""
    y = rng.integers(0, 2, n).astype(np.uint8)
    x = rng.integers(0, 60, (n, 8, 8)).astype(np.uint8)
    pos = rng.integers(1, 7, n)
    for i in range(n):
        if y[i]:
            x[i, :, pos[i]] = 255
        else:
            x[i, pos[i], :] = 255
    return x, y


def test_idx_paths_train_evaluate_predict(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "bars").mkdir()
    for split, n in (("train", 600), ("test", 200)):
        x, y = bars(n, rng)
        write_idx(tmp_path / "bars" / f"{split}-images.gz", x)
        write_idx(tmp_path / "bars" / f"{split}-labels.gz", y, gz=False)
    spec = tmp_path / "bars.yaml"
    spec.write_text("""\
name: bars
seed: 3
input: {shape: [8, 8, 1]}
layers:
  - Conv2D: {filters: 4, kernel_size: 3, activation: relu}
  - GlobalMaxPooling2D
  - Dense: {units: 2, activation: softmax}
data:
  format: idx
  train: {x: bars/train-images.gz, y: bars/train-labels.gz}
  test: {x: bars/test-images.gz, y: bars/test-labels.gz}
  rescale: 0.00392156862745098
  validation_split: 0.1
train: {optimizer: {type: adam, learning_rate: 0.02}, loss: sparse_categorical_crossentropy, metrics: [accuracy], epochs: 8}
""")
    r = runner.invoke(app, ["train", str(spec), "--run-dir", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["evaluate", str(spec), "--weights", str(tmp_path / "run" / "weights.npz"), "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.output)["accuracy"] > 0.9, r.output
    x, y = bars(20, rng)
    np.save(tmp_path / "new.npy", x)  # raw uint8 28x28-style images: rescaled and reshaped as in training
    r = runner.invoke(app, ["predict", str(spec), "--weights", str(tmp_path / "run" / "weights.npz"),
                            "--input", str(tmp_path / "new.npy"), "--output", str(tmp_path / "p.npy")])
    assert r.exit_code == 0, r.output
    assert (np.load(tmp_path / "p.npy").argmax(1) == y).mean() > 0.9


def test_csv_paths_with_named_labels_train_and_predict_raw_rows(tmp_path):
    rng = np.random.default_rng(1)
    rows = ["size,weight,kind"]
    for _ in range(400):
        kind = rng.integers(0, 3)
        size, weight = rng.normal([1, 3, 5][kind], 0.4), rng.normal([10, 30, 20][kind], 2)
        rows.append(f"{size:.3f},{weight:.2f},{['small', 'large', 'odd'][kind]}")
    (tmp_path / "things.csv").write_text("\n".join(rows) + "\n")
    spec = tmp_path / "things.yaml"
    spec.write_text("""\
name: things
input: {shape: [2]}
layers:
  - Dense: {units: 16, activation: relu}
  - Dense: {units: 3, activation: softmax}
data: {format: csv, train: things.csv, target: kind, labels: [small, large, odd], standardize: true, test_split: 0.2}
train: {optimizer: {type: adam, learning_rate: 0.03}, loss: sparse_categorical_crossentropy, metrics: [accuracy], epochs: 15}
""")
    r = runner.invoke(app, ["train", str(spec), "--run-dir", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert "test" in r.output
    (tmp_path / "new.csv").write_text("size,weight\n1.0,10\n3.1,29\n5.0,20.5\n")
    r = runner.invoke(app, ["predict", str(spec), "--weights", str(tmp_path / "run" / "weights.npz"),
                            "--input", str(tmp_path / "new.csv"), "--output", str(tmp_path / "p.csv")])
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "predicted,p_small,p_large,p_odd"
    assert [l.split(",")[0] for l in lines[1:]] == ["small", "large", "odd"]

"""`layerc evaluate --report` (issue 15, point 4): per-class precision, recall, F1, support,
averages and the confusion matrix, with class names; `--plot` draws the matrix."""
from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

import layerc
from layerc import jobs
from layerc.cli import app
from tests.cli.test_errors import cli  # through main(), as the console script runs
from layerc.train.report import (ReportError, class_ids, classification_report, confusion_figure,
                                 plot_confusion_matrix)

# 7 samples, 3 classes; worked out by hand:
#   confusion (rows true, columns predicted) [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
#   precision 1/2, 2/3, 2/2; recall 1/2, 2/2, 2/3; F1 1/2, 4/5, 4/5; support 2, 2, 3
TRUE = [0, 0, 1, 1, 2, 2, 2]
PRED = [0, 1, 1, 1, 2, 0, 2]


def test_hand_worked_example():
    r = classification_report(TRUE, PRED, 3, ["cat", "dog", "bird"])
    assert r["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert r["classes"] == ["cat", "dog", "bird"]
    got = [(c["class"], c["precision"], c["recall"], c["f1"], c["support"]) for c in r["per_class"]]
    want = [("cat", 1 / 2, 1 / 2, 1 / 2, 2), ("dog", 2 / 3, 1, 4 / 5, 2), ("bird", 1, 2 / 3, 4 / 5, 3)]
    for g, w in zip(got, want):
        assert g[0] == w[0] and g[4] == w[4] and g[1:4] == pytest.approx(w[1:4])
    assert r["accuracy"] == pytest.approx(5 / 7)
    assert r["macro_avg"] == pytest.approx({"precision": (1 / 2 + 2 / 3 + 1) / 3, "recall": (1 / 2 + 1 + 2 / 3) / 3,
                                            "f1": (1 / 2 + 4 / 5 + 4 / 5) / 3, "support": 7})
    assert r["weighted_avg"] == pytest.approx({"precision": (2 * 1 / 2 + 2 * 2 / 3 + 3 * 1) / 7,
                                               "recall": (2 * 1 / 2 + 2 * 1 + 3 * 2 / 3) / 7,
                                               "f1": (2 * 1 / 2 + 2 * 4 / 5 + 3 * 4 / 5) / 7, "support": 7})


def test_a_class_never_predicted_or_absent_scores_zero_not_nan():
    r = classification_report([0, 0, 1], [0, 0, 0], 3)
    assert r["classes"] == ["0", "1", "2"]
    assert [c["precision"] for c in r["per_class"]] == pytest.approx([2 / 3, 0, 0])
    assert [c["recall"] for c in r["per_class"]] == [1, 0, 0]
    assert [c["support"] for c in r["per_class"]] == [2, 1, 0]
    json.dumps(r)  # JSON-serialisable, no NaN


def test_class_ids_for_each_label_form():
    out = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert [a.tolist() for a in class_ids(np.array([0, 1]), out, "sparse")[:2]] == [[0, 1], [0, 2]]
    assert class_ids(np.eye(3)[[2, 2]], out, "categorical")[0].tolist() == [2, 2]
    true, pred, n = class_ids(np.array([[0], [1], [1]]), np.array([[0.2], [0.7], [0.4]]), "binary")
    assert (true.tolist(), pred.tolist(), n) == ([0, 1, 1], [0, 1, 0], 2)  # one sigmoid unit: two classes
    assert class_ids(np.array([1, 0]), np.array([[0.3], [-0.2]]), "binary", from_logits=True)[1].tolist() == [1, 0]
    with pytest.raises(ReportError, match="multi-label"):
        class_ids(np.zeros((2, 2)), np.zeros((2, 2)), "binary")


# ---- real short training runs -----------------------------------------------------------------

def _by_hand(true, pred, names):
    """The report's figures counted in plain Python, class by class."""
    rows = []
    for c, name in enumerate(names):
        tp = sum(1 for t, p in zip(true, pred) if t == c and p == c)
        predicted = sum(1 for p in pred if p == c)
        support = sum(1 for t in true if t == c)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"class": name, "precision": precision, "recall": recall, "f1": f1, "support": support})
    matrix = [[sum(1 for t, p in zip(true, pred) if t == i and p == j) for j in range(len(names))]
              for i in range(len(names))]
    return rows, matrix


MNIST = """\
layerc: 1
name: mnist-tiny
seed: 1
input: {shape: [28, 28]}
layers:
  - Flatten
  - Dense: {units: 10, activation: softmax}
data: {dataset: mnist, limit: 3000}
train: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy], epochs: 1, batch_size: 100}
"""


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "mnist.yaml").write_text(MNIST)
    return jobs.train(tmp / "mnist.yaml", run_dir=tmp / "run").run_dir


def test_mnist_report_equals_the_figures_counted_from_predictions(mnist_run):
    r = CliRunner().invoke(app, ["evaluate", str(mnist_run), "--report", "--format", "json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    spec, model, _ = jobs.load_trained(mnist_run, None)
    data = jobs.load_dataset(spec, model)
    x, y = data.test
    pred = model.predict(x).argmax(axis=1).tolist()
    rows, matrix = _by_hand(y.tolist(), pred, [str(d) for d in range(10)])
    assert got["classes"] == [str(d) for d in range(10)] and got["confusion_matrix"] == matrix
    for g, w in zip(got["per_class"], rows):
        assert g == pytest.approx(w)
    assert got["macro_avg"]["f1"] == pytest.approx(sum(w["f1"] for w in rows) / 10)
    assert got["weighted_avg"]["recall"] == pytest.approx(got["accuracy"])  # weighted recall is accuracy
    assert got["accuracy"] == pytest.approx(sum(matrix[i][i] for i in range(10)) / len(pred), abs=1e-6)
    assert sum(map(sum, matrix)) == got["samples"] == 10000


def test_the_terminal_report_shows_the_tables(mnist_run):
    r = CliRunner().invoke(app, ["evaluate", str(mnist_run), "--report"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "Classification report" in r.output and "macro avg" in r.output and "weighted avg" in r.output
    assert "Confusion matrix (rows: true class, columns: predicted)" in r.output
    plain = CliRunner().invoke(app, ["evaluate", str(mnist_run)])
    assert "Classification report" not in plain.output and "confusion" not in plain.output.lower()


SMS = """\
layerc: 1
name: sms-tiny
seed: 3
input: {shape: [40], dtype: int32}
layers:
  - Embedding: {input_dim: 2000, output_dim: 8}
  - GlobalAveragePooling1D
  - Dense: {units: 1, activation: sigmoid}
data: {dataset: sms_spam, vocab_size: 2000, max_length: 40, limit: 1500}
train: {optimizer: {type: adam, learning_rate: 0.01}, loss: binary_crossentropy, metrics: [accuracy], epochs: 2}
"""


def test_sms_binary_report_names_ham_and_spam(tmp_path):
    (tmp_path / "sms.yaml").write_text(SMS)
    run = jobs.train(tmp_path / "sms.yaml", run_dir=tmp_path / "run").run_dir
    got = jobs.evaluate(run, report=True)
    spec, model, _ = jobs.load_trained(run, None)
    x, y = jobs.load_dataset(spec, model).test
    pred = (model.predict(x)[:, 0] > 0.5).astype(int).tolist()
    rows, matrix = _by_hand(y[:, 0].astype(int).tolist() if y.ndim == 2 else y.tolist(), pred, ["ham", "spam"])
    assert got["classes"] == ["ham", "spam"] and got["confusion_matrix"] == matrix
    for g, w in zip(got["per_class"], rows):
        assert g == pytest.approx(w)
    assert got["accuracy"] == pytest.approx(sum(matrix[i][i] for i in range(2)) / len(pred), abs=1e-6)


def test_csv_labels_name_the_classes(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 2))
    kinds = np.array(["cat", "dog", "bird"])[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.8)]
    (tmp_path / "t.csv").write_text("a,b,kind\n" + "".join(f"{a:.4f},{b:.4f},{k}\n" for (a, b), k in zip(x, kinds)))
    (tmp_path / "s.yaml").write_text(textwrap.dedent("""\
        layerc: 1
        input: {shape: [2]}
        layers:
          - Dense: {units: 3, activation: softmax}
        data: {format: csv, train: t.csv, target: kind, labels: [cat, dog, bird], test_split: 0.3}
        train: {optimizer: adam, loss: sparse_categorical_crossentropy, epochs: 1}
        """))
    run = jobs.train(tmp_path / "s.yaml", run_dir=tmp_path / "run").run_dir
    got = jobs.evaluate(run, report=True)
    assert got["classes"] == ["cat", "dog", "bird"] and [c["class"] for c in got["per_class"]] == got["classes"]
    assert sum(c["support"] for c in got["per_class"]) == got["samples"] == 90


def test_regression_is_refused_before_reading_data(tmp_path, monkeypatch):
    (tmp_path / "s.csv").write_text("t,v\n" + "".join(f"{i},{np.sin(i / 5):.4f}\n" for i in range(80)))
    (tmp_path / "r.yaml").write_text(textwrap.dedent("""\
        layerc: 1
        input: {shape: [5]}
        layers:
          - Dense: {units: 1}
        data: {format: timeseries, train: s.csv, column: v, window: 5, test_split: 10}
        train: {optimizer: adam, loss: mean_squared_error, epochs: 1}
        """))
    run = jobs.train(tmp_path / "r.yaml", run_dir=tmp_path / "run").run_dir
    from layerc.data import loader

    monkeypatch.setattr(loader, "load_data", lambda *a, **k: pytest.fail("data was read"))
    code, out = cli("evaluate", str(run), "--report")
    assert code == 1
    assert out.splitlines()[0] == ("error: --report is for classifiers; the loss mean_squared_error is a regression "
                           "loss (its metrics are the report)")


# ---- the plot ---------------------------------------------------------------------------------

def test_plot_is_a_png_heat_map_whose_cells_differ(tmp_path):
    import matplotlib.image

    report = classification_report([0] * 50 + [1] * 30 + [2] * 20, [0] * 50 + [1] * 25 + [0] * 5 + [2] * 20, 3,
                                   ["cat", "dog", "bird"])
    path = tmp_path / "cm.png"
    plot_confusion_matrix(report, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(path)[..., :3]
    assert img.std() > 0.05  # not a blank canvas
    fig = confusion_figure(report)
    fig.canvas.draw()  # lays the figure out as saving does
    ax = fig.axes[0]
    height = img.shape[0]
    assert (img.shape[1], height) == tuple(int(v) for v in fig.canvas.get_width_height())

    def colour(i, j):  # a point inside cell (true i, predicted j), clear of its count text
        x, y = ax.transData.transform((j + 0.38, i + 0.38))
        return img[int(height - y), int(x)]

    full, empty, some = colour(0, 0), colour(0, 1), colour(1, 0)
    assert np.abs(full - empty).sum() > 0.5  # 50 against 0: dark against light
    assert np.abs(some - empty).sum() > 0.01  # 5 against 0: still a different shade
    assert np.allclose(colour(0, 2), empty, atol=0.02)  # equal counts, equal colour


def test_cli_plot_writes_the_file(mnist_run, tmp_path):
    out = tmp_path / "cm.png"
    r = CliRunner().invoke(app, ["evaluate", str(mnist_run), "--plot", str(out), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    code, out = cli("evaluate", str(mnist_run), "--plot", str(tmp_path / "cm.gif"))
    assert code == 1 and out.splitlines()[0] == f"error: --plot {tmp_path / 'cm.gif'}: give a .png, .svg or .pdf file"


def test_without_matplotlib_one_line_says_what_to_install(mnist_run, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setattr(jobs, "evaluate", lambda *a, **k: pytest.fail("evaluated before the check"))
    code, out = cli("evaluate", str(mnist_run), "--plot", str(tmp_path / "cm.png"))
    assert code == 1
    assert out.splitlines()[0] == 'error: drawing needs matplotlib: pip install "layerc[plot]"'
    assert not (tmp_path / "cm.png").exists()

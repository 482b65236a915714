"""`layerc evaluate --report` of a model with several outputs (issue 17): one report per
output whose loss is a classifier's."""
import json

import numpy as np

import layerc
from layerc.runs import load_arrays
from layerc.train.report import class_ids, classification_report
from tests.cli.test_errors import cli, one_line_error
from tests.cli.test_multi_io_cli import run, trained, two  # noqa: F401 (fixtures)


def _expected(tmp):
    """The report of output `kind` computed from the run's weights on the test split."""
    from layerc.jobs import load_dataset

    spec = layerc.load_spec(tmp / "two.yaml")
    model = layerc.build(spec)
    model.set_weights(list(load_arrays(tmp / "run" / "weights.npz").values()))
    data = load_dataset(spec, model)
    x, y = data.test if data.test is not None else data.validation
    true, pred, n = class_ids(y[0], model.predict(x)[0], "sparse")
    return classification_report(true, pred, n)


def test_report_gives_each_classifying_output_its_report(trained):
    tmp, _ = trained
    result = run("evaluate", tmp / "run", "--report", "--format", "json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    assert set(got["reports"]) == {"kind"}  # `size` has a regression loss: its metrics are its report
    want = _expected(tmp)
    assert got["reports"]["kind"]["confusion_matrix"] == want["confusion_matrix"]
    assert got["reports"]["kind"]["classes"] == ["0", "1", "2"]
    assert sum(map(sum, want["confusion_matrix"])) == got["samples"]
    assert "size_mae" in got and "kind_accuracy" in got

    text = run("evaluate", tmp / "run", "--report")
    assert text.exit_code == 0, text.output
    assert "output kind" in text.output and "output size" not in text.output
    assert "Classification report" in text.output and "Confusion matrix" in text.output
    assert " size_mae " in text.output


def test_report_of_outputs_that_all_regress_is_one_error(trained):
    tmp, _ = trained
    one_line_error(*cli("evaluate", str(tmp / "two.yaml"), "--weights", str(tmp / "run" / "weights.npz"),
                        "--set", "train.loss.kind=mse", "--report"),
                   "every output of this model (kind, size) has a regression loss")


def test_plot_of_several_outputs_is_refused(trained):
    tmp, _ = trained
    one_line_error(*cli("evaluate", str(tmp / "run"), "--plot", str(tmp / "cm.svg")),
                   "--plot draws one confusion matrix and this model has several outputs")


def test_the_memory_estimate_counts_every_named_array(two):
    """An .npz read by name is sized from each input's and output's array (it counted none)."""
    from layerc.jobs import _estimate_data_bytes

    spec = layerc.load_spec(two / "two.yaml")
    with np.load(two / "two.npz") as f:
        values = sum(f[k][0].size for k in ("a", "b", "kind", "size"))  # per sample
        n = len(f["a"])
    assert _estimate_data_bytes(spec, layerc.build(spec)) == n * values * 4
    (two / "keyed.yaml").write_text((two / "two.yaml").read_text().replace(
        "  train: two.npz\n", "  train: keyed.npz\n  x_keys: {a: xa}\n  y_keys: {size: ys}\n"))
    with np.load(two / "two.npz") as f:
        np.savez(two / "keyed.npz", xa=f["a"], b=f["b"], kind=f["kind"], ys=f["size"])
    spec = layerc.load_spec(two / "keyed.yaml")
    assert _estimate_data_bytes(spec, layerc.build(spec)) == n * values * 4

"""`layerc runs compare` on real short training runs: the values read back are the run's own."""
import csv
import json
from pathlib import Path

import pytest

from layerc import jobs
from layerc.runs.compare import compare_runs, lower_is_better
from tests.cli.test_errors import cli

ROOT = Path(__file__).resolve().parents[2]
MLP = ROOT / "specs" / "mnist_mlp.yaml"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    common = ["data.limit=300", "train.batch_size=64"]
    one = jobs.train(MLP, overrides=common + ["train.epochs=2"], run_dir=base / "mlp" / "one").run_dir
    two = jobs.train(MLP, overrides=common + ["train.epochs=1", "layers.dense.units=64",
                                              "train.optimizer.learning_rate=0.01"],
                     run_dir=base / "mlp" / "two").run_dir
    return one, two


def history(run):
    with open(run / "metrics.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_compare_reads_the_runs_own_values(runs):
    one, two = runs
    result = compare_runs([one, two])
    # the spec values that differ, and only those: the overrides that were not common
    assert result["spec"] == {"layers.dense.units": [512, 64], "train.epochs": [2, 1],
                              "train.optimizer.learning_rate": [0.001, 0.01]}
    assert [r["epochs"] for r in result["runs"]] == [2, 1]
    assert [r["status"] for r in result["runs"]] == ["finished", "finished"]
    for i, run in enumerate(runs):
        rows = history(run)
        info = json.loads((run / "run.json").read_text())
        assert result["final"]["val_accuracy"][i] == rows[-1]["val_accuracy"]
        assert result["final"]["loss"][i] == pytest.approx(info["final_metrics"]["loss"], rel=1e-5)
        best = max(rows, key=lambda r: r["val_accuracy"])
        assert result["best"]["val_accuracy"][i] == {"value": best["val_accuracy"], "epoch": int(best["epoch"])}
        low = min(rows, key=lambda r: r["val_loss"])
        assert result["best"]["val_loss"][i]["value"] == low["val_loss"]
        assert result["test"]["accuracy"][i] == info["test_metrics"]["accuracy"]
        assert result["runs"][i]["seconds"] == pytest.approx(sum(r["seconds"] for r in rows))


def test_compare_cli_table_and_json(runs):
    one, two = runs
    code, out = cli("runs", "compare", str(one), str(two))
    assert code == 0, out
    assert "mlp/one" in out and "mlp/two" in out
    line = next(l for l in out.splitlines() if "layers.dense.units" in l)
    assert "512" in line and "64" in line
    assert any("best val_accuracy" in l and "(epoch" in l for l in out.splitlines())
    code, out = cli("runs", "compare", str(one), str(two), "--format", "json")
    assert code == 0 and json.loads(out)["spec"]["train.epochs"] == [2, 1]


def test_compare_of_the_same_spec_says_so(runs):
    one, _ = runs
    code, out = cli("runs", "compare", str(one), str(one))
    assert code == 0 and "spec values" in out and "same" in out


def test_compare_errors_are_one_line(runs, tmp_path):
    one, _ = runs
    code, out = cli("runs", "compare", str(one), str(tmp_path / "nope"))
    assert code == 1 and "no such run directory" in out and "Traceback" not in out
    code, out = cli("runs", "compare", str(one))
    assert code == 1 and "two runs or more" in out


def test_which_metrics_are_better_lower():
    assert lower_is_better("val_loss") and lower_is_better("mae") and lower_is_better("val_rmse")
    assert not lower_is_better("accuracy") and not lower_is_better("val_auc") and not lower_is_better("recall")

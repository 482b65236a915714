"""Real short training runs of the seed CNN (300 MNIST samples, 2 epochs) for the run tools."""
import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from layerc import jobs
from layerc.cli import app

from ..train.test_issue18_train import StopAfterEpoch

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "specs" / "mnist_cnn.yaml")
SHORT = ["--set", "data.limit=300", "--set", "train.epochs=2"]
runner = CliRunner()


def layerc(*args):
    """The CLI through Typer's runner: (exit code, output)."""
    r = runner.invoke(app, [str(a) for a in args])
    return r.exit_code, r.output


def printed_epochs(output: str) -> dict:
    """{epoch: {name: '0.1234'}} from train's plain per-epoch lines, as a person reads them."""
    epochs = {}
    for m in re.finditer(r"^Epoch (\d+)/\d+  (.*?)  lr ", output, re.M):
        pairs = m.group(2).split("  ")
        epochs[int(m.group(1))] = dict(p.split(" ") for p in pairs)
    return epochs


def printed_test(output: str) -> dict:
    """{metric: '0.1234'} from the Results table's test column."""
    return {m.group(1): m.group(2) for m in re.finditer(r"│ (\w+) +│ +[\d.]+ │ +[\d.]+ │ +([\d.]+) │", output)}


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Under one root: two finished runs (different learning rates), one interrupted after
    its first epoch and one diverged; and what `layerc train` printed for the finished ones."""
    root = tmp_path_factory.mktemp("runs")
    base = root / "mnist-cnn"
    runs = SimpleNamespace(root=root, printed={})
    runs.finished = base / "1-finished"
    code, out = layerc("train", SEED, *SHORT, "--run-dir", runs.finished)
    assert code == 0, out
    runs.printed[runs.finished] = out
    runs.faster = base / "2-faster"
    code, out = layerc("train", SEED, *SHORT, "--set", "train.optimizer.learning_rate=0.003", "--run-dir", runs.faster)
    assert code == 0, out
    runs.printed[runs.faster] = out
    runs.interrupted = base / "3-interrupted"
    result = jobs.train(SEED, overrides=SHORT[1::2], run_dir=runs.interrupted, callbacks=[StopAfterEpoch(1)])
    assert result.interrupted == "stop"
    runs.diverged = base / "4-diverged"
    with warnings.catch_warnings():  # the overflow on the way to the diverged loss
        warnings.simplefilter("ignore", RuntimeWarning)
        code, out = layerc("train", SEED, *SHORT, "--set", "train.optimizer.learning_rate=1e30", "--run-dir", runs.diverged)
    assert code == 1
    return runs

"""Bad sweep files: each kind located at its key or value (file:line:col), exit 1, before any trial."""
from __future__ import annotations

import sys

import pytest
from ..cli.test_errors import cli
from .conftest import SWEEP

GOOD = SWEEP.format(samples=2, epochs=2)
CASES = [
    # (what, edit of the good file, file:line:col, words in the message)
    ("misspelt space path", ("train.optimizer.learning_rate:", "train.optimiser.learning_rate:"), 8, 3,
     "train.optimiser is not in the spec (did you mean 'optimizer'?)"),
    ("no such layer", ("layers.dense.units", "layers.dense_9.units"), 9, 3, "no layer named 'dense_9'"),
    ("range outside the field's bounds", ("[1.0e-3, 1.0e-2]", "[-1.0, 1.0e-2]"), 8, 34,
     "positive low bound"),
    ("choice value outside the bounds", ("[4, 8]", "[4, 0]"), 9, 36, "choice value 0: units must be greater than 0"),
    ("empty choice", ("[4, 8]", "[]"), 9, 23, "choice needs at least one value"),
    ("distribution not fitting the field's type", ("{choice: [4, 8]}", "{uniform: [4, 8]}"), 9, 24,
     "whole numbers"),
    ("misspelt set key", ("train.epochs:", "train.epoch:"), 6, 7, "did you mean 'epochs'"),
    ("unknown distribution", ("{choice: [4, 8]}", "{choise: [4, 8]}"), 9, 24, "did you mean 'choice'"),
    ("bad mode", ("mode: max", "mode: maximum"), 3, 7, "'min', 'max'"),
    ("metric the runs do not log", ("metric: val_accuracy", "metric: val_acuracy"), 2, 9,
     "did you mean 'val_accuracy'"),
    ("grid over a range", ("samples: 2", "search: grid\nsamples: 2"), 9, 35, "search: grid"),
    ("missing spec file", ("spec: spec.yaml", "spec: nope.yaml"), 1, 7, "cannot read the spec"),
]


@pytest.mark.parametrize("what, edit, line, col, words", CASES, ids=[c[0] for c in CASES])
def test_bad_sweep_file_is_located(sweep_dir, what, edit, line, col, words):
    text = GOOD.replace(*edit)
    assert text != GOOD
    path = sweep_dir(text=text)
    code, out = cli("sweep", str(path), "--output", str(path.parent / "out"))
    assert code == 1, out
    first = out.strip().splitlines()[0]
    assert first.startswith(f"{path}:{line}:{col}: error: "), first
    assert words in first, first
    assert "Traceback" not in out
    assert not (path.parent / "out" / "trials").exists()  # refused before any trial


def test_good_sweep_file_loads(sweep_dir):
    from layerc.spec.sweep import load_sweep

    sweep = load_sweep(sweep_dir())
    assert sweep.file.space["layers.dense.units"].choice == [4, 8]
    assert sweep.fixed_overrides() == ["train.epochs=2"]


def test_without_ray_the_command_says_what_to_install(sweep_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, out = cli("sweep", str(sweep_dir()), "--output", str(sweep_dir().parent / "o"))
    assert code == 1
    assert "pip install 'layerc[sweep]'" in out and "Traceback" not in out


def test_ray_and_optuna_are_imported_by_the_sweep_command_only():
    from tests.modules import modules_after

    _, mods = modules_after("summary", "specs/mnist_mlp.yaml")
    assert not {m for m in mods if m.split(".")[0] in ("ray", "optuna")}
    assert "layerc.sweep" not in mods and "layerc.spec.sweep" not in mods


def test_trial_seeds_derive_from_the_sweep_seed():
    from layerc.sweep.trial import trial_seed

    values = [{"train.optimizer.learning_rate": 0.001 * i, "layers.dense.units": 8} for i in range(50)]
    seeds = [trial_seed(0, v) for v in values]
    assert seeds == [trial_seed(0, dict(reversed(v.items()))) for v in values]  # the same sweep, the same seeds
    assert len(set(seeds)) == 50 and seeds != [trial_seed(1, v) for v in values]
    assert all(0 <= s < 2**31 for s in seeds)


def test_the_readme_sweep_example_is_a_valid_sweep_of_the_seed_cnn(tmp_path):
    import re
    import shutil

    from layerc.spec.sweep import load_sweep
    from tests.modules import ROOT

    block, = [b for b in re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S) if "space:" in b]
    shutil.copy(ROOT / "specs" / "mnist_cnn.yaml", tmp_path / "mnist_cnn.yaml")
    (tmp_path / "sweep.yaml").write_text(block)
    sweep = load_sweep(tmp_path / "sweep.yaml")
    assert set(sweep.file.space) == {"train.optimizer.learning_rate", "layers.dense.units", "layers.dropout.rate"}
    assert sweep.file.search == "random" and sweep.file.scheduler == "asha"

"""`layerc init`: the templates validate, train on their built-in data, and files are kept safe."""
from pathlib import Path

import pytest

from layerc import jobs, templates
from layerc.check import check_file
from layerc.spec import load_spec
from tests.cli.test_errors import cli

NAMES = ["image-classifier", "tabular-classifier", "tabular-regressor", "text-classifier", "time-series-forecaster"]
DATASETS = {"image-classifier": "mnist", "tabular-classifier": "iris", "tabular-regressor": "diabetes",
            "text-classifier": "sms_spam", "time-series-forecaster": "melbourne_temperatures"}


def test_list_shows_every_template():
    assert templates.names() == NAMES
    code, out = cli("init", "--list")
    assert code == 0
    for name in NAMES:
        line = next(l for l in out.splitlines() if l.startswith(name))
        assert "out of the box" in line


@pytest.mark.parametrize("name", NAMES)
def test_every_template_validates_and_trains_one_short_epoch(name, tmp_path):
    path = tmp_path / f"{name}.yaml"
    code, out = cli("init", "--template", name, str(path))
    assert code == 0 and f"wrote {path}" in out
    assert check_file(path).status == 0
    spec = load_spec(path)
    assert spec.name == name and spec.data.dataset == DATASETS[name]
    assert path.read_text().count("#") >= 5  # the choices are explained
    result = jobs.train(path, overrides=["train.epochs=1", "data.limit=200"], run_dir=tmp_path / "run")
    assert len(result.history) == 1 and result.test  # trained and tested on the built-in data
    assert (tmp_path / "run" / "weights.npz").exists()


def test_init_names_the_spec_after_its_file_and_uses_the_default_template(tmp_path):
    path = tmp_path / "my model.yaml"
    code, out = cli("init", str(path))
    assert code == 0 and "'" in out  # the next command quotes the path with a space
    spec = load_spec(path)
    assert spec.name == "my-model" and spec.data.dataset == "mnist"


def test_init_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("mine\n")
    code, out = cli("init", "-t", "tabular-classifier", str(path))
    assert code == 1 and "exists; not overwriting it" in out and path.read_text() == "mine\n"
    code, out = cli("init", "-t", "tabular-classifier", str(path), "--force")
    assert code == 0 and load_spec(path).data.dataset == "iris"
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed


def test_init_errors_are_one_line(tmp_path):
    code, out = cli("init", "-t", "tabular-regresor", str(tmp_path / "x.yaml"))
    assert code == 1 and "did you mean 'tabular-regressor'" in out and not (tmp_path / "x.yaml").exists()
    code, out = cli("init", str(tmp_path / "no" / "x.yaml"))
    assert code == 1 and "is not a directory" in out
    code, out = cli("init", str(tmp_path))
    assert code == 1 and "is a directory" in out
    code, out = cli("init")
    assert code == 2 and "give the spec file" in out


def test_the_tabular_builtins_load_with_their_splits(tmp_path):
    import numpy as np

    from layerc import build

    for name, n_test in (("tabular-classifier", 30), ("tabular-regressor", 88)):
        path = templates.write(name, tmp_path / f"{name}.yaml")
        spec = load_spec(path)
        data = jobs.load_dataset(spec, build(spec))
        x, y = data.train
        assert len(data.test[1]) == n_test and x.shape[1] == spec.input.shape[0]
        assert abs(float(x.mean())) < 0.2  # standardised on the training part
        if name == "tabular-classifier":  # stratified: 10 of each species held out
            assert sorted(np.unique(data.test[1], return_counts=True)[1]) == [10, 10, 10]
        else:
            assert 25 <= float(np.min(data.test[1])) and float(np.max(data.test[1])) <= 346

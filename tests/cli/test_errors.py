"""Every error path of train/evaluate/predict: one clear line, non-zero exit, no traceback,
and nothing we load can run code."""
import pickle
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from layerc import jobs
from layerc.cli import app, main

runner = CliRunner()


def cli(*args):
    """Run through main() like the console script; returns (exit code, stderr+stdout)."""
    import io

    out, err = io.StringIO(), io.StringIO()
    from layerc import cli as cli_module

    old = cli_module.console._file, cli_module.err_console._file
    cli_module.console.file, cli_module.err_console.file = out, err
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code
    finally:
        cli_module.console._file, cli_module.err_console._file = old
    return code, out.getvalue() + err.getvalue()


@pytest.fixture
def trained(tiny_spec, tmp_path):
    spec = tiny_spec(epochs=1)
    run = jobs.train(spec, run_dir=tmp_path / "run").run_dir
    return spec, run


def one_line_error(code, text, *words):
    assert code not in (0, None), text
    assert "Traceback" not in text
    lines = [l for l in text.strip().splitlines() if l.strip() and "--debug" not in l]
    assert len(lines) == 1, text
    for w in words:
        assert w in lines[0], text


def test_missing_spec_file(tmp_path):
    one_line_error(*cli("train", str(tmp_path / "nope.yaml")), "nope.yaml")


def test_bad_override_path_and_value(tiny_spec):
    code, text = cli("train", str(tiny_spec()), "--set", "train.epocs=3")
    assert code == 1 and "--set train.epocs=3" in text and "did you mean 'epochs'?" in text
    code, text = cli("train", str(tiny_spec()), "--set", "train.epochs=many")
    assert code == 1 and "--set train.epochs=many: error: train.epochs must be a valid integer" in text


def test_bad_flag(tiny_spec):
    r = runner.invoke(app, ["train", str(tiny_spec()), "--epochs", "3"])
    assert r.exit_code == 2 and "No such option" in r.output


def test_weights_that_do_not_fit_the_spec(trained, tmp_path):
    spec, run = trained
    w = dict(np.load(run / "weights.npz"))
    w["dense/kernel"] = np.zeros((3, 3), np.float32)
    np.savez(tmp_path / "bad.npz", **w)
    one_line_error(*cli("evaluate", str(spec), "--weights", str(tmp_path / "bad.npz")),
                   "dense/kernel", "(3, 3)", "(12, 16)")
    del w["dense/kernel"]
    np.savez(tmp_path / "missing.npz", **w)
    one_line_error(*cli("evaluate", str(spec), "--weights", str(tmp_path / "missing.npz")), "no weight 'dense/kernel'")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    one_line_error(*cli("evaluate", str(spec), "--weights", str(tmp_path / "junk.npz")), "junk.npz")


class Boom:
    def __reduce__(self):
        return (print, ("PWNED",))


def test_pickled_files_are_refused_never_loaded(trained, tmp_path, capsys):
    spec, run = trained
    np.savez(tmp_path / "evil.npz", **{"dense/kernel": np.array([Boom()], dtype=object)})
    code, text = cli("evaluate", str(spec), "--weights", str(tmp_path / "evil.npz"))
    one_line_error(code, text, "pickled")
    np.save(tmp_path / "evil.npy", np.array([Boom()], dtype=object), allow_pickle=True)
    code, text = cli("predict", str(spec), "--weights", str(run / "weights.npz"), "--input", str(tmp_path / "evil.npy"))
    assert code and "Traceback" not in text and "pickle" in text.lower()
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Boom()))
    code, text = cli("predict", str(spec), "--weights", str(run / "weights.npz"), "--input", str(tmp_path / "evil.pkl"))
    assert code and "Traceback" not in text
    assert "PWNED" not in capsys.readouterr().out


def test_predict_shape_mismatch_names_both_shapes(trained, tmp_path):
    spec, run = trained
    np.save(tmp_path / "x.npy", np.zeros((5, 7), np.float32))
    code, text = cli("predict", str(spec), "--weights", str(run / "weights.npz"), "--input", str(tmp_path / "x.npy"))
    one_line_error(code, text, "(7,)" if "(7,)" in text else "7", "12")


def test_predict_and_evaluate_work(trained, tmp_path):
    spec, run = trained
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((5, 12)).astype(np.float32))
    code, text = cli("predict", str(spec), "--weights", str(run / "weights.npz"), "--input", str(tmp_path / "x.npy"),
                     "--output", str(tmp_path / "y.csv"))
    assert code == 0, text
    y = np.loadtxt(tmp_path / "y.csv", delimiter=",", skiprows=1, usecols=(1, 2, 3))
    assert y.shape == (5, 3) and np.allclose(y.sum(axis=1), 1, atol=1e-5)
    r = runner.invoke(app, ["evaluate", str(spec), "--weights", str(run / "weights.npz"), "--format", "json"])
    assert r.exit_code == 0 and '"accuracy"' in r.output


def test_names_cannot_escape_the_run_directory(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: ../../evil\ninput: {shape: [4]}\nlayers: [Flatten]\n")
    code, text = cli("validate", str(spec))
    assert code == 1 and "name" in text
    spec.write_text("input: {shape: [4]}\nlayers:\n  - Dense: {units: 2, name: a/b}\n")
    code, text = cli("validate", str(spec))
    assert code == 1 and "name" in text


def test_unreadable_spec_is_one_line(tmp_path, monkeypatch):
    spec = tmp_path / "s.yaml"
    spec.write_text("input: {shape: [4]}\nlayers: [Flatten]\n")
    def denied(path, *args, **kwargs):
        if Path(path) == spec:
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr("layerc.spec.validate.open", denied, raising=False)  # load_spec's bounded read
    code, text = cli("validate", str(spec))
    assert code == 2 and "permission denied" in text
    one_line_error(*cli("train", str(spec)), "Permission denied")


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "train", str(tmp_path / "nope.yaml")])


def test_evaluate_refuses_data_fitted_differently_from_the_run(trained, tmp_path):
    spec, run = trained
    import json

    fitted = json.loads((run / "data.json").read_text())
    fitted["poisoned"] = True
    (run / "data.json").write_text(json.dumps(fitted))
    one_line_error(*cli("evaluate", str(spec), "--weights", str(run / "weights.npz")), "data.json")

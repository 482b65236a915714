"""`layerc export` through the command line: run directories of real (short) training runs, a
spec alone, the format from the suffix, and every error as one line with nothing written."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from .onnx_helpers import onnx, session

import layerc
from layerc import jobs
from layerc.cli import main
from layerc.runs import load_weights

ROOT = Path(__file__).resolve().parents[2]

SMS = """\
name: sms
seed: 3
input: {shape: [12], dtype: int32}
layers:
  - Embedding: {input_dim: 40, output_dim: 8, mask_zero: true}
  - Bidirectional: {layer: {LSTM: {units: 6}}}
  - Dense: {units: 2, activation: softmax}
data: {format: text, train: sms.txt, vocab_size: 40, validation_split: 0.2}
train: {optimizer: adam, loss: sparse_categorical_crossentropy, batch_size: 16, epochs: 2}
"""


def cli(*args):
    """Run through main() like the console script; returns (exit code, stdout + stderr)."""
    from layerc import cli as cli_module

    out, err = io.StringIO(), io.StringIO()
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


@pytest.fixture(scope="module")
def sms_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sms")
    rng = np.random.default_rng(0)
    words = {"spam": ["win", "free", "prize", "cash", "now"], "ham": ["see", "you", "soon", "at", "home"]}
    lines = [f"{k}\t{' '.join(rng.choice(words[k], rng.integers(1, 11)))}" for k in rng.choice(["ham", "spam"], 96)]
    (tmp / "sms.txt").write_text("\n".join(lines) + "\n")
    (tmp / "sms.yaml").write_text(SMS)
    return tmp, jobs.train(tmp / "sms.yaml", run_dir=tmp / "run").run_dir


def test_export_a_run_directory_gives_the_trained_models_answers(sms_run, tmp_path):
    tmp, run = sms_run
    out = tmp_path / "sms.onnx"
    code, text = cli("export", str(run), "--output", str(out))
    assert code == 0, text
    assert text.strip() == f"wrote {out} (ONNX, opset 17; {layerc.build(layerc.load_spec(run / 'spec.yaml')).count_params():,} params)"
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["layerc.class_names"]) == json.loads((run / "data.json").read_text())["label_names"]
    assert meta["layerc.spec_sha256"] == json.loads((run / "run.json").read_text())["spec_sha256"]
    # the trained weights: the run's predictions on its own prepared texts
    spec, model, fitted = jobs.load_trained(run, None)
    from layerc.data.inputs import prepare_inputs

    texts = ["free cash now win prize", "see you at home", "soon", "win " * 14]
    x = prepare_inputs(texts, spec.data, fitted, model.input_shapes[0])
    assert (x == 0).any() and (x != 0).sum(axis=1).min() < 12 <= (x != 0).sum(axis=1).max()
    got = session(proto).run(None, {"input_layer": x})[0]
    np.testing.assert_allclose(got, model.predict(x), atol=1e-5, rtol=0)


def test_export_a_spec_alone_writes_its_seeded_initial_weights(tmp_path):
    out = tmp_path / "cnn.onnx"
    code, text = cli("export", str(ROOT / "specs" / "mnist_cnn.yaml"), "-o", str(out), "--opset", "19")
    assert code == 0, text
    proto = onnx.load(str(out))
    assert proto.opset_import[0].version == 19
    model = layerc.build(layerc.load_spec(ROOT / "specs" / "mnist_cnn.yaml"))
    x = np.random.default_rng(0).uniform(0, 1, (3, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(session(proto).run(None, {"input_layer": x})[0], model.predict(x), atol=1e-5, rtol=0)


def test_export_a_spec_with_weights_and_format_flag(tiny_spec, tmp_path):
    spec = tiny_spec(epochs=1)
    run = jobs.train(spec, run_dir=tmp_path / "run").run_dir
    out = tmp_path / "tiny.model"
    code, text = cli("export", str(spec), "--weights", str(run / "weights.npz"), "--format", "onnx", "-o", str(out))
    assert code == 0, text
    model = layerc.build(layerc.load_spec(spec))
    load_weights(run / "weights.npz", model)
    x = np.random.default_rng(1).normal(size=(5, 12)).astype(np.float32)
    np.testing.assert_allclose(session(onnx.load(str(out))).run(None, {"input_layer": x})[0], model.predict(x),
                               atol=1e-5, rtol=0)


def _only(tmp_path, *names):
    return sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_errors_are_one_line_and_write_nothing(tmp_path):
    seed = str(ROOT / "specs" / "mnist_cnn.yaml")
    cases = [
        (["-o", str(tmp_path / "m.bin")], "cannot tell the format from the suffix '.bin'"),
        (["-o", str(tmp_path / "m.onnx"), "--opset", "9"], "ONNX opset 9 is not supported; layerc writes opsets 17-21"),
        (["-o", str(tmp_path / "no" / "m.onnx")], "no such directory"),
        (["-o", str(tmp_path / "m.onnx"), "--weights", str(tmp_path / "none.npz")], "none.npz"),
    ]
    for args, message in cases:
        code, text = cli("export", seed, *args)
        assert code == 1 and message in text and "Traceback" not in text, text
        assert len([l for l in text.splitlines() if l.startswith("error:")]) == 1
    assert list(tmp_path.iterdir()) == []
    code, text = cli("export", seed, "-o", str(tmp_path / "m.onnx"), "--format", "tflite")
    assert code == 2  # Typer's usage error, naming the choices


def test_unsupported_layer_option_is_located_and_leaves_no_file(tmp_path):
    spec = tmp_path / "g.yaml"
    spec.write_text("input: {shape: [4, 3]}\nlayers:\n  - GRU: {units: 2, activation: selu}\n")
    code, text = cli("export", str(spec), "-o", str(tmp_path / "g.onnx"))
    assert code == 1 and text.startswith(f"{spec}:3:") and "'gru' (GRU)" in text and "activation selu" in text
    assert _only(tmp_path, "g.yaml")


def test_missing_onnx_says_which_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    code, text = cli("export", str(ROOT / "specs" / "mnist_mlp.yaml"), "-o", str(tmp_path / "m.onnx"))
    assert code == 1 and 'pip install "layerc[onnx]"' in text and "Traceback" not in text
    assert list(tmp_path.iterdir()) == []


def test_keras_format_dispatches_to_the_keras_module(tmp_path, monkeypatch):
    """`--format keras` / `.keras` go to layerc.interop.keras.save_keras (or say it is missing)."""
    import importlib.util
    import sys
    import types

    seed = str(ROOT / "specs" / "mnist_mlp.yaml")
    if importlib.util.find_spec("layerc.interop.keras") is None:
        code, text = cli("export", seed, "-o", str(tmp_path / "m.keras"))
        assert code == 1 and "Keras (.keras) export is not available" in text
    calls = []
    fake = types.ModuleType("layerc.interop.keras")
    fake.save_keras = lambda model, path: calls.append((model.name, Path(path).name))
    monkeypatch.setitem(sys.modules, "layerc.interop.keras", fake)
    assert cli("export", seed, "-o", str(tmp_path / "m.keras"))[0] == 0
    assert cli("export", seed, "-o", str(tmp_path / "m.h5"), "--format", "keras")[0] == 0
    assert calls == [("mnist-mlp", "m.keras"), ("mnist-mlp", "m.h5")]
    code, text = cli("export", seed, "-o", str(tmp_path / "m.keras"), "--opset", "18")
    assert code == 1 and "--opset applies to ONNX export only" in text

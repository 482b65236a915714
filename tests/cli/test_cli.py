"""The command line through Typer's CliRunner: exit codes and what a person reads."""
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from layerc.cli import app, main

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "specs" / "mnist_cnn.yaml")
runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_validate_ok():
    r = run("validate", SEED)
    assert r.exit_code == 0 and "ok (8 layers, 121,930 params)" in r.output


def test_validate_reports_located_errors_and_exits_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: {shape: [784]}\nlayers:\n  - Dense: {units: 3, activaton: relu}\n  - Dence: {units: 3}\n")
    r = run("validate", str(bad))
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert lines[0] == f"{bad}:3:23: error: unknown key 'activaton' for Dense (did you mean 'activation'?)"
    assert lines[1] == f"{bad}:4:5: error: unknown layer type 'Dence' (did you mean 'Dense'?)"


def test_validate_unreadable_exits_2(tmp_path):
    r = run("validate", SEED, str(tmp_path / "missing.yaml"))
    assert r.exit_code == 2 and "no such file" in r.output
    r = run("validate", str(tmp_path))
    assert r.exit_code == 2 and "directory" in r.output


def test_validate_json(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: {shape: [784]}\nlayers:\n  - Dense: {units: 0}\n")
    r = run("validate", "--format", "json", SEED, str(bad))
    assert r.exit_code == 1
    out = json.loads(r.output)
    assert out[0]["valid"] and not out[1]["valid"]
    (d,) = out[1]["diagnostics"]
    assert (d["line"], d["col"]) == (3, 20) and "greater than 0" in d["message"]


def test_summary_table():
    r = run("summary", SEED)
    assert r.exit_code == 0
    for text in ["conv2d (Conv2D)", "(None, 26, 26, 32)", "18,496", "Total params: 121,930 (476.29 KB)",
                 "Trainable params: 121,930 (476.29 KB)", "Non-trainable params: 0 (0.00 B)", "MACs per sample",
                 "Activation memory (batch 128)"]:
        assert text in r.output


def test_summary_json_and_graph_connections(tmp_path):
    spec = tmp_path / "g.yaml"
    spec.write_text("input: {shape: [8]}\nlayers:\n  - Dense: {units: 4, name: a}\n  - Dense: {units: 4}\n"
                    "  - Add: {inputs: [a, dense]}\n")
    r = run("summary", "--format", "json", str(spec))
    assert r.exit_code == 0
    info = json.loads(r.output)
    assert info["total_params"] == 56 and info["layers"][0]["type"] == "InputLayer"
    assert info["layers"][-1]["connected_to"] == ["a[0][0]", "dense[0][0]"]
    r = run("summary", str(spec))
    assert "Connected to" in r.output and "a[0][0]" in r.output


def test_summary_of_invalid_spec_is_one_clean_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: {shape: [784]}\nlayers:\n  - Conv2D: {filters: 3, kernel_size: 3}\n")
    r = run("summary", str(bad))
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"{bad}:3:5: error: layer 'conv2d' (Conv2D)" in r.output


def test_schema_is_json_schema_that_describes_layer_shorthand():
    r = run("schema")
    assert r.exit_code == 0
    schema = json.loads(r.output)
    assert schema["$schema"].startswith("https://json-schema.org/")
    forms = schema["properties"]["layers"]["items"]["anyOf"]
    assert "Flatten" in forms[0]["enum"]
    assert any(f.get("required") == ["Dense"] for f in forms)


def test_bad_flag_is_a_usage_error():
    r = run("summary", "--nope", SEED)
    assert r.exit_code == 2 and "No such option" in r.output


def test_main_turns_errors_into_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", str(tmp_path / "missing.yaml")])
    assert e.value.code != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "missing.yaml" in err


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and r.output.startswith("layerc ")

"""`layerc validate` with lints: text, --strict, suppressions, JSON, SARIF; `layerc lint`;
every shipped spec and README example clean under --strict."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from tests.modules import modules_after
import yaml
from typer.testing import CliRunner

from layerc.cli import app, main
from layerc.lint import RULES

from .helpers import pos

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
SPARSE = "train: {loss: sparse_categorical_crossentropy}\n"
UNFLATTENED = "input: {shape: [28, 28, 1]}\nlayers:\n  - Dense: {units: 10, activation: softmax}\n" + SPARSE
NOTE = ("input: {shape: [28, 28, 1]}\nlayers:\n  - Flatten\n  - Dense: {units: 128, activation: relu}\n"
        "  - Dense: {units: 10, activation: softmax}\ndata: {dataset: mnist, limit: 500}\n" + SPARSE)


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_warning_is_a_located_line_with_its_code_and_exit_0(tmp_path):
    spec = write(tmp_path, UNFLATTENED)
    r = run("validate", spec)
    assert r.exit_code == 0, r.output
    first, last = r.output.strip().splitlines()
    assert re.fullmatch(rf"{re.escape(str(spec))}:3:5: warning: Dense 'dense' gets \(None, 28, 28, 1\) .* \[LC202\]",
                        first), first
    assert last == f"{spec}: ok (1 layers, 20 params; 1 warning)"


def test_strict_fails_on_warnings_not_on_notes(tmp_path):
    warned, noted = write(tmp_path, UNFLATTENED, "w.yaml"), write(tmp_path, NOTE, "n.yaml")
    r = run("validate", "--strict", warned)
    assert r.exit_code == 1 and "fails --strict" in r.output and "[LC202]" in r.output
    r = run("validate", "--strict", noted)
    assert r.exit_code == 0 and f"{noted}:6:17: note: " in r.output and "[LC401]" in r.output
    assert r.output.strip().splitlines()[-1] == f"{noted}: ok (3 layers, 101,770 params; 1 note)"
    r = run("validate", "--strict", noted, ROOT / "specs" / "mnist_cnn.yaml")
    assert r.exit_code == 0
    r = run("validate", "--strict", noted, warned)
    assert r.exit_code == 1


def test_errors_keep_their_exit_codes_with_or_without_strict(tmp_path):
    bad = write(tmp_path, "input: {shape: [4]}\nlayers:\n  - Dence: {units: 3}\n")
    for args in (("validate", bad), ("validate", "--strict", bad)):
        assert run(*args).exit_code == 1
    assert run("validate", "--strict", tmp_path / "missing.yaml").exit_code == 2


def test_a_line_comment_silences_that_code_on_that_line_only(tmp_path):
    two = ("input: {shape: [28, 28, 1]}\nlayers:\n  - Dense: {units: 8}  # layerc: disable=LC202\n"
           "  - Dense: {units: 10, activation: softmax}\n" + SPARSE)
    r = run("validate", "--strict", write(tmp_path, two))
    assert r.exit_code == 1
    assert ":4:5: warning:" in r.output and ":3:5:" not in r.output
    both = two.replace("softmax}\n", "softmax}  # layerc: disable=LC101,LC202\n")
    assert run("validate", "--strict", write(tmp_path, both)).exit_code == 0
    other = two.replace("  - Dense: {units: 10, activation: softmax}", "  - Dense: {units: 10, activation: softmax}"
                        "  # layerc: disable=LC203")
    assert ":4:5: warning:" in run("validate", write(tmp_path, other)).output


def test_a_comment_inside_a_value_is_no_suppression(tmp_path):
    text = UNFLATTENED.replace("layers:", 'description: "a#layerc: disable=LC202"\nlayers:')
    assert "[LC202]" in run("validate", write(tmp_path, text)).output


def test_the_lint_key_silences_a_code_for_the_file(tmp_path):
    text = UNFLATTENED + "lint: {disable: [LC202]}\n"
    r = run("validate", "--strict", write(tmp_path, text))
    assert r.exit_code == 0 and "warning" not in r.output and "ok (1 layers" in r.output


def test_an_unknown_code_in_the_lint_key_is_a_located_error_with_the_nearest_code(tmp_path):
    text = UNFLATTENED + "lint:\n  disable: [LC202, LC2O2, deep-without-regularization]\n"
    spec = write(tmp_path, text)
    r = run("validate", spec)
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    line, col = pos(text, "LC2O2")
    assert lines[0] == (f"{spec}:{line}:{col}: error: lint.disable.1: unknown lint code 'LC2O2'; "
                        "did you mean 'LC202'?")
    line, col = pos(text, "deep-")
    assert lines[1] == (f"{spec}:{line}:{col}: error: lint.disable.2: unknown lint code "
                        "'deep-without-regularization'; write its code, 'LC203'")
    r = run("summary", spec)  # the key is part of the spec: every command refuses it
    assert r.exit_code == 1 and "unknown lint code 'LC2O2'" in r.output
    r = run("validate", write(tmp_path, UNFLATTENED + "lint: {disable: LC202}\n"))
    assert r.exit_code == 1 and "lint.disable" in r.output
    r = run("validate", write(tmp_path, UNFLATTENED + "lint: {ignore: [LC202]}\n"))
    assert r.exit_code == 1 and "unknown key 'ignore' for `lint` (known keys: disable)" in r.output


def test_the_schema_carries_the_lint_key_and_its_codes():
    r = run("schema")
    schema = json.loads(r.output)
    assert "lint" in schema["properties"]
    assert schema["$defs"]["LintSpec"]["properties"]["disable"]["items"]["enum"] == list(RULES)
    jsonschema.validate(yaml.safe_load(UNFLATTENED + "lint: {disable: [LC202]}\n"), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(UNFLATTENED + "lint: {disable: [LC2O2]}\n"), schema)


def test_json_carries_warnings_and_notes(tmp_path):
    spec = write(tmp_path, NOTE.replace("  - Flatten\n", "  - Dense: {units: 4}\n  - Flatten\n"))
    r = run("validate", "--format", "json", spec)
    assert r.exit_code == 0
    out, = json.loads(r.output)
    assert out["valid"] is True and out["warnings"] == 0 and out["notes"] == 1
    d, = out["diagnostics"]
    assert (d["severity"], d["code"], d["line"], d["col"]) == ("note", "LC401", 7, 17)
    r = run("validate", "--format", "json", "--strict", write(tmp_path, UNFLATTENED, "w.yaml"))
    out, = json.loads(r.output)
    assert r.exit_code == 1 and out["warnings"] == 1 and out["diagnostics"][0]["code"] == "LC202"


# The parts of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json, OASIS) that a log we write
# must satisfy, with its required properties, types and enums: written out here because the
# official file cannot be fetched in the test environment.
_MESSAGE = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
SARIF_SHAPE = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"]},
        "runs": {"type": "array", "items": {
            "type": "object", "required": ["tool"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {"driver": {
                    "type": "object", "required": ["name"],
                    "properties": {
                        "name": {"type": "string"}, "version": {"type": "string"},
                        "rules": {"type": "array", "uniqueItems": True, "items": {
                            "type": "object", "required": ["id"],
                            "properties": {
                                "id": {"type": "string"}, "name": {"type": "string"},
                                "shortDescription": _MESSAGE, "fullDescription": _MESSAGE,
                                "help": _MESSAGE,
                                "defaultConfiguration": {"type": "object", "properties": {
                                    "level": {"enum": ["none", "note", "warning", "error"]}}},
                            }}},
                    }}}},
                "results": {"type": "array", "items": {
                    "type": "object", "required": ["message"],
                    "properties": {
                        "ruleId": {"type": "string"},
                        "ruleIndex": {"type": "integer", "minimum": -1},
                        "level": {"enum": ["none", "note", "warning", "error"]},
                        "message": _MESSAGE,
                        "locations": {"type": "array", "items": {"type": "object", "properties": {
                            "physicalLocation": {
                                "type": "object", "anyOf": [{"required": ["artifactLocation"]},
                                                            {"required": ["address"]}],
                                "properties": {
                                    "artifactLocation": {"type": "object", "properties": {
                                        "uri": {"type": "string", "format": "uri-reference"}}},
                                    "region": {"type": "object", "properties": {
                                        "startLine": {"type": "integer", "minimum": 1},
                                        "startColumn": {"type": "integer", "minimum": 1}}},
                                }}}}},
                    }}},
            }}},
    },
}


def test_sarif_has_the_shape_of_sarif_2_1_0_with_rules_and_located_results(tmp_path):
    warned, noted = write(tmp_path, UNFLATTENED, "w.yaml"), write(tmp_path, NOTE, "n.yaml")
    bad = write(tmp_path, "input: {shape: [4]}\nlayers:\n  - Dence: {units: 3}\n", "bad.yaml")
    r = run("validate", "--format", "sarif", warned, noted, bad, tmp_path / "missing.yaml")
    assert r.exit_code == 2
    log = json.loads(r.output)
    jsonschema.validate(log, SARIF_SHAPE, format_checker=jsonschema.FormatChecker())
    run_, = log["runs"]
    rules = run_["tool"]["driver"]["rules"]
    assert [x["id"] for x in rules][1:] == list(RULES)
    for x in rules[1:]:
        assert x["help"]["text"] == RULES[x["id"]].explanation and x["name"] == RULES[x["id"]].name
        assert x["defaultConfiguration"]["level"] == RULES[x["id"]].severity
    got = [(res["ruleId"], res["level"], res["locations"][0]["physicalLocation"]) for res in run_["results"]]
    for rule_id, _, where in got:
        assert rules[[x["id"] for x in rules].index(rule_id)]["id"] == rule_id
    assert got[0] == ("LC202", "warning", {"artifactLocation": {"uri": warned.as_uri()},
                                           "region": {"startLine": 3, "startColumn": 5}})
    assert got[1] == ("LC401", "note", {"artifactLocation": {"uri": noted.as_uri()},
                                        "region": {"startLine": 6, "startColumn": 17}})
    assert got[2] == ("spec-error", "error", {"artifactLocation": {"uri": bad.as_uri()},
                                              "region": {"startLine": 3, "startColumn": 5}})
    assert got[3][:2] == ("spec-error", "error") and "region" not in got[3][2]
    for res in run_["results"]:
        assert run_["tool"]["driver"]["rules"][res["ruleIndex"]]["id"] == res["ruleId"]


def test_sarif_uris_are_relative_references_or_file_uris(tmp_path, monkeypatch):
    (tmp_path / "my specs").mkdir()
    write(tmp_path / "my specs", UNFLATTENED, "w 1.yaml")
    monkeypatch.chdir(tmp_path)
    log = json.loads(run("validate", "--format", "sarif", "my specs/w 1.yaml").output)
    where = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert where == {"uri": "my%20specs/w%201.yaml"}


def test_lints_of_a_long_chain_take_linear_time():
    import time

    import layerc
    from layerc.lint import lint

    spec = layerc.parse_spec("input: {shape: [4, 4]}\nlayers:\n" + "  - Dense: {units: 4}\n" * 3000
                             + "train: {loss: mse}\n")
    graph = layerc.build(spec).graph
    start = time.perf_counter()
    found = lint(spec, graph)
    assert time.perf_counter() - start < 10  # quadratic walks took minutes here
    assert len(found) == 3001 and {d.code for d in found} == {"LC202", "LC203"}


def test_sarif_of_clean_specs_has_no_results():
    r = run("validate", "--format", "sarif", "--strict", *sorted((ROOT / "specs").glob("*.yaml")))
    assert r.exit_code == 0 and json.loads(r.output)["runs"][0]["results"] == []


@pytest.mark.parametrize("code", sorted(RULES))
def test_lint_explain_says_why_and_how_to_fix(code):
    r = run("lint", "--explain", code)
    assert r.exit_code == 0
    head = r.output.splitlines()[0]
    assert head == f"{code} {RULES[code].name} ({RULES[code].severity}): {RULES[code].summary}"
    assert "Fix:" in r.output and len(r.output) > 250
    assert run("lint", "--explain", code.lower()).output == r.output
    assert run("lint", "--explain", RULES[code].name).output == r.output


def test_lint_list_and_the_bad_calls(capsys):
    r = run("lint", "--list")
    assert r.exit_code == 0 and [line.split()[0] for line in r.output.splitlines()] == list(RULES)
    for args, words in ((["lint", "--explain", "LC2O3"], "no lint code 'LC2O3'; did you mean 'LC203'?"),
                        (["lint"], "give --list, or --explain CODE")):
        with pytest.raises(SystemExit) as e:
            main(args)
        err = capsys.readouterr().err
        assert e.value.code == 2 and words in err and "Traceback" not in err


def test_the_readme_table_lists_every_code():
    text = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `(LC\d+)` \| (\w+) \| `([\w-]+)` \| (.+) \|$", text, re.M)
    assert [(c, lvl, name) for c, lvl, name, _ in rows] == [(r.code, r.severity, r.name) for r in RULES.values()]


SHIPPED = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "layerc" / "templates").glob("*.yaml"))


@pytest.mark.parametrize("spec", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_spec_is_clean_under_strict(spec):
    r = run("validate", "--strict", spec)
    assert r.exit_code == 0 and "warning" not in r.output and "note" not in r.output, r.output


def _readme_yaml_blocks():
    return re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_every_readme_yaml_example_is_clean_under_strict(tmp_path):
    blocks = _readme_yaml_blocks()
    full = [b for b in blocks if "layers:" in b]
    assert full and len(blocks) >= 2
    base = yaml.safe_load(full[0])
    for i, block in enumerate(blocks):
        if {"repos", "space"} & set(yaml.safe_load(block)):  # pre-commit's configuration, a sweep file
            continue
        if "layers:" not in block:  # a section on its own: shown in the first full spec
            block = yaml.safe_dump({**base, **yaml.safe_load(block)}, sort_keys=False)
        r = run("validate", "--strict", write(tmp_path, block, f"readme_{i}.yaml"))
        assert r.exit_code == 0 and "warning" not in r.output and "note" not in r.output, (block, r.output)


def test_validate_with_lints_still_loads_no_numpy():
    _, mods = modules_after("validate", "specs/mnist_cnn.yaml", "specs/sms_spam_lstm.yaml")
    assert "layerc.lint" in mods and "numpy" not in mods


def test_summary_does_not_load_the_lints():
    assert "layerc.lint" not in modules_after("summary", "specs/mnist_cnn.yaml")[1]

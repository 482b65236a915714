"""Every class of spec error is reported at the right line and column, with a useful message."""
from pathlib import Path

import pytest

import layerc
from layerc.spec import SpecError, parse_spec

ROOT = Path(__file__).resolve().parents[2]


def diags(text):
    with pytest.raises(SpecError) as e:
        parse_spec(text, "s.yaml")
    return [(d.line, d.col, d.message, d.hint) for d in e.value.diagnostics]


def one(text):
    (d,) = diags(text)
    return d


HEAD = "input: {shape: [784]}\nlayers:\n"


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_spec_validates_and_compiles(path):
    layerc.build(layerc.load_spec(path))


def test_seed_spec_from_the_issue_validates_as_written():
    spec = layerc.load_spec(ROOT / "specs" / "mnist_cnn.yaml")
    assert spec.layerc == 1 and spec.seed == 42 and spec.train.batch_size == 128
    assert [l.type for l in spec.layers] == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten",
                                             "Dense", "Dropout", "Dense"]
    assert spec.layers[0].kernel_size == (3, 3) and spec.layers[0].activation == "relu"


def test_three_layer_forms_are_equivalent():
    a = parse_spec(HEAD + "  - Dense: {units: 3}\n  - Flatten\n  - {type: Dropout, rate: 0.1}\n")
    b = parse_spec(HEAD + "  - {type: Dense, units: 3}\n  - Flatten:\n  - Dropout: {rate: 0.1}\n")
    assert a.layers == b.layers


def test_unknown_key_with_did_you_mean():
    line, col, msg, hint = one(HEAD + "  - Dense: {units: 3, activaton: relu}\n")
    assert (line, col) == (3, 23)
    assert "unknown key 'activaton' for Dense" in msg and hint == "did you mean 'activation'?"


def test_unknown_top_level_key():
    line, col, msg, hint = one(HEAD + "  - Dense: {units: 3}\nseeed: 4\n")
    assert (line, col) == (4, 1) and hint == "did you mean 'seed'?"


@pytest.mark.parametrize("layer,col,words", [
    ("Dense: {units: -3}", 20, ["units", "greater than 0", "-3"]),
    ("Dropout: {rate: 1.5}", 21, ["rate", "less than 1", "1.5"]),
    ("Dense: {units: three}", 20, ["units", "integer", "three"]),
    ("Dense: {units: 2.5}", 20, ["units", "integer"]),
    ("Dense: {units: 3, use_bias: maybe}", 33, ["use_bias", "maybe"]),
    ("Conv2D: {filters: 3, kernel_size: [3, 3, 3]}", 39, ["kernel_size"]),
])
def test_wrong_types_and_out_of_range_values(layer, col, words):
    line, c, msg, hint = one(HEAD + f"  - {layer}\n")
    assert (line, c) == (3, col)
    for w in words:
        assert w in msg


def test_bad_choice_suggests_the_near_one():
    line, col, msg, hint = one(HEAD + "  - Dense: {units: 3, activation: rleu}\n")
    assert (line, col) == (3, 35) and "activation must be one of" in msg and hint == "did you mean 'relu'?"


def test_unknown_layer_type_with_suggestion():
    line, col, msg, hint = one(HEAD + "  - Dense: {units: 3}\n  - Conv2d: {filters: 3, kernel_size: 3}\n")
    assert (line, col) == (4, 5) and "unknown layer type 'Conv2d'" in msg and hint == "did you mean 'Conv2D'?"


def test_missing_required_argument_points_at_the_layer():
    line, col, msg, hint = one(HEAD + "  - Dense: {activation: relu}\n")
    assert (line, col) == (3, 5) and msg == "Dense needs `units`"


def test_errors_in_several_places_are_all_reported_in_file_order():
    found = diags(HEAD + "  - Dense: {units: 0}\n  - Dropout: {rate: 2}\n  - Nope\ntrain: {loss: mse, epochs: 0}\n")
    assert [d[0] for d in found] == [3, 4, 5, 6]


def test_bidirectional_inner_layer_errors_are_located():
    line, col, msg, hint = one(HEAD + "  - Reshape: {target_shape: [28, 28]}\n"
                                      "  - Bidirectional: {layer: {LSTM: {units: 0}}}\n")
    assert (line, col) == (4, 43) and "units" in msg
    line, col, msg, hint = one(HEAD + "  - Bidirectional: {layer: {Dense: {units: 3}}}\n")
    assert "wraps an LSTM, GRU or SimpleRNN" in msg


def test_format_version():
    assert parse_spec("layerc: 1\n" + HEAD + "  - Flatten\n").layerc == 1
    line, col, msg, hint = one("layerc: 2\n" + HEAD + "  - Flatten\n")
    assert (line, col) == (1, 9) and "unknown format version 2" in msg


def test_input_forms():
    line, col, msg, hint = one("layers:\n  - Flatten\n")
    assert "exactly one of" in msg
    spec = parse_spec("inputs: {a: {shape: [3]}, b: {shape: [null, 4], dtype: int32}}\nlayers:\n  - Flatten: {inputs: a}\n")
    assert list(spec.input_specs()) == ["a", "b"]


def test_yaml_syntax_error_is_located():
    line, col, msg, hint = one("input: {shape: [784]\nlayers: []\n")
    assert line == 2 and "YAML syntax error" in msg


def test_python_tags_are_rejected_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    line, col, msg, hint = one(f"input: !!python/object/apply:os.system ['touch {marker}']\nlayers: [Flatten]\n")
    assert (line, col) == (1, 8) and "not allowed" in msg
    assert not marker.exists()


def test_alias_bomb_is_refused():
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
    for i, (k, prev) in enumerate(zip("bcdefgh", "abcdefg")):
        bomb += f"{k}: &{k} [" + ",".join([f"*{prev}"] * 10) + "]\n"
    line, col, msg, hint = one(bomb)
    assert "alias bomb" in msg


def test_duplicate_keys_are_an_error():
    line, col, msg, hint = one(HEAD + "  - Dense: {units: 3, units: 4}\n")
    assert (line, col) == (3, 23) and "duplicate key 'units'" in msg


@pytest.mark.parametrize("text,words", [
    ("", "empty"), ("- 1\n- 2\n", "mapping"), ("just a string", "mapping"), ("a: 1\n---\nb: 2\n", "more than one"),
    ("\x00\x01\x02", "binary"), (HEAD + "  - 3\n", "is written"), (HEAD + "  - {Dense: {units: 1}, Flatten: null}\n", "is written"),
    ("input: {shape: [784]}\nlayers: []\n", "at least 1"), ("input: {shape: [784]}\nlayers: Dense\n", "list"),
])
def test_malformed_documents(text, words):
    found = diags(text)
    assert found and words in " ".join(d[2] for d in found)


def test_overrides_go_through_the_same_validation():
    spec = layerc.load_spec(ROOT / "specs" / "mnist_cnn.yaml", ["train.epochs=3", "layers.5.Dense.units=128"])
    assert spec.train.epochs == 3 and spec.layers[5].units == 128
    with pytest.raises(SpecError) as e:
        layerc.load_spec(ROOT / "specs" / "mnist_cnn.yaml", ["layers.5.Dense.units=-1"])
    (d,) = e.value.diagnostics
    assert d.file == "--set layers.5.Dense.units=-1" and "greater than 0" in d.message
    for bad in ["train.epochs", "layers.99.Dense.units=3", "trian.epochs=2", "name.x=1"]:
        with pytest.raises(SpecError):
            layerc.load_spec(ROOT / "specs" / "mnist_cnn.yaml", [bad])


def test_non_utf8_file_is_a_diagnostic(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(SpecError) as e:
        layerc.load_spec(p)
    assert "UTF-8" in e.value.diagnostics[0].message


def test_exponent_floats_without_a_dot_are_numbers():
    spec = parse_spec(HEAD + "  - Flatten\ntrain: {loss: mse, optimizer: {type: adam, learning_rate: 1e-3}}\n")
    assert spec.train.optimizer.learning_rate == 0.001

"""Issue 18: the spec language's errors for what Keras users write, huge values, big inputs."""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from layerc.check import check_file
from layerc.spec import SpecError, load_spec, parse_spec
from layerc.spec.source import MAX_BYTES

ROOT = Path(__file__).resolve().parents[2]
BASE = "input: {shape: [4]}\nlayers:\n  - %s\n"


def errors(text):
    with pytest.raises(SpecError) as e:
        parse_spec(text, "s.yaml")
    return e.value.diagnostics


def one(text):
    diags = errors(text)
    assert len(diags) == 1, [d.format() for d in diags]
    return diags[0]


# -- point 6: what Keras users write ------------------------------------------------

def test_input_shape_on_first_layer_is_the_input():
    for layer in ["Dense: {units: 3, input_shape: [4]}", "{type: Dense, units: 3, input_shape: [4]}"]:
        spec = parse_spec(f"layers:\n  - {layer}\n  - Dense: {{units: 2}}\n")
        assert spec.input.shape == [4] and spec.layers[0].units == 3


def test_input_shape_and_input_both_is_located():
    d = one(BASE % "Dense: {units: 3, input_shape: [4]}")
    assert (d.line, d.col) == (3, 23) and "input_shape" in d.message and "not both" in d.message


def test_bad_input_shape_is_located_at_input_shape():
    d = one("layers:\n  - Dense: {units: 3, input_shape: [0]}\n")
    assert (d.line, d.col) == (2, 37), d.format()


def test_activation_case_suggests_same_word():
    d = one(BASE % "Dense: {units: 3, activation: Relu}")
    assert d.hint == "did you mean 'relu'?"


def test_layer_type_case_insensitive():
    assert one(BASE % "dense: {units: 3}").hint == "did you mean 'Dense'?"
    assert one(BASE % "conv2d: {filters: 3, kernel_size: 3}").hint == "did you mean 'Conv2D'?"


def test_quoted_int_gets_one_error_with_fix():
    d = one(BASE % "Dense: {units: '64'}")
    assert (d.line, d.col) == (3, 20) and "64 without quotes" in d.hint


@pytest.mark.parametrize("text", [
    BASE % "Conv2D: {filters: 3, kernel_size: (3, 3)}",
    "input: {shape: [8, 8, 1]}\nlayers:\n  - Conv2D:\n      filters: 3\n      kernel_size: (3, 3)\n",
])
def test_tuple_gets_one_error_with_fix(text):
    d = one(text)
    assert "kernel_size" in d.message and "[3, 3]" in d.hint


BAD = [
    "Dense: {units: 3, activation: Relu}", "Dense: {units: '64'}", "{type: [Dense]}", "Dense: 3",
    "Bidirectional: {layer: {Dense: {units: 3}}}", "Bidirectional: {layer: 3}", "Bidirectional: {layer: {}}",
    "Bidirectional: {layer: {type: 3}}", "Dense: {units: 3, kernel_regularizer: {l3: 1}}",
    "Dense: {units: 3, kernel_regularizer: 7}", "Conv2D: {filters: 3, kernel_size: [1, 2, 3]}",
    "Dense: {units: 3, inputs: 5}", "Reshape: {target_shape: -1}", "Dropout: {rate: 'x'}",
]
TRAIN = [
    "train: {loss: mse, optimizer: {}}", "train: {loss: mse, optimizer: 3}", "train: {loss: {type: 3}}",
    "train: {loss: mse, metrics: [{}]}", "train: {loss: mse, metrics: [3]}", "train: {loss: [mse]}",
    "train: {loss: mse, callbacks: [{type: nope}]}", "train: {loss: mse, callbacks: [[1]]}",
    "train: {loss: mse, optimizer: {adam: {learning_rate: {type: nope}}}}",
    "train: {loss: mse, optimizer: {adam: {learning_rate: [1]}}}",
    "data: {dataset: 3}", "data: {format: 3}", "data: {}", "data: 3", "input: 3", "inputs: [1]",
]


@pytest.mark.parametrize("text", [BASE % b for b in BAD] + [BASE % "Dense: {units: 3}" + t for t in TRAIN])
def test_no_pydantic_wording(text):
    for d in errors(text):
        line = d.format().lower()
        for word in ("input should be", "discriminator", "validation error", "pydantic"):
            assert word not in line, line


# -- point 20: huge values, unhashable types, many layers, names from file names -----

@pytest.mark.parametrize("value", ["1e400", "1" + "0" * 400, ".inf", "-.inf", ".nan"])
@pytest.mark.parametrize("where", [
    "Dense: {units: %s}", "Conv2D: {filters: %s, kernel_size: 3}", "Conv2D: {filters: 3, kernel_size: %s}",
    "Dropout: {rate: %s}", "Dense: {units: 3}\ntrain: {loss: mse, epochs: %s}",
    "Dense: {units: 3}\ntrain: {loss: mse, optimizer: {adam: {learning_rate: %s}}}",
])
def test_huge_numbers_are_located(tmp_path, value, where):
    path = tmp_path / "s.yaml"
    path.write_text("input: {shape: [8, 8, 1]}\nlayers:\n  - " + where % value + "\n")
    result = check_file(path)
    assert result.status == 1 and all(d.line for d in result.diagnostics), result.diagnostics


def test_unhashable_type_is_located_and_other_files_reported(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE % "{type: [Dense]}")
    good = tmp_path / "good.yaml"
    good.write_text(BASE % "Dense: {units: 3}")
    from layerc.cli import main
    import json
    proc = subprocess.run([sys.executable, "-m", "layerc", "validate", "--format", "json", str(bad), str(good)],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=60)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert [r["status"] for r in out] == ["invalid", "valid"]
    d = out[0]["diagnostics"][0]
    assert (d["line"], d["col"]) == (3, 6) and "layer type" in d["message"]


def test_type_inside_the_one_key_form_is_located():
    d = one(BASE % "Dense: {type: null, units: 3}")
    assert (d.line, d.col) == (3, 13) and "`type`" in d.message


def test_too_many_layers_is_refused_fast():
    text = "x: &d {Dense: {units: 2}}\nl: &l [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n" \
           "input: {shape: [4]}\nlayers: [%s]\n" % ", ".join(["*d"] * 20_000)
    t = time.perf_counter()
    d = errors(text)[0]
    assert time.perf_counter() - t < 5
    assert "20,000 layers" in d.message and d.line == 4


def test_name_from_file_with_space_is_made_valid(tmp_path):
    path = tmp_path / "my model.yaml"
    path.write_text(BASE % "Dense: {units: 3}")
    assert load_spec(path).name == "my-model"
    path = tmp_path / "2x..y.yaml"
    path.write_text(BASE % "Dense: {units: 3}")
    assert load_spec(path).name == "spec-2x-y"
    from layerc.runs import new_run_dir
    assert new_run_dir(tmp_path / "runs", load_spec(path).name).exists()


def test_explicit_bad_name_refused_at_validation():
    d = one("name: a/b\n" + BASE % "Dense: {units: 3}")
    assert d.line == 1


# -- point 16: bounded reads ---------------------------------------------------------

def _bounded(path, seconds=20):
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("r", check_file(path)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert "r" in out, f"check_file({path}) did not end in {seconds} s"
    return out["r"]


def test_dev_zero_ends():
    result = _bounded("/dev/zero")
    assert result.status == 1 and "larger than" in result.diagnostics[0].message


def test_fifo_endless_writer_ends(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"yes 'a: 1' > '{fifo}'"], stderr=subprocess.DEVNULL)
    try:
        result = _bounded(fifo)
        assert result.status == 1 and "larger than" in result.diagnostics[0].message
    finally:
        writer.kill()
        writer.wait()


def test_big_file_is_not_read_whole(tmp_path, monkeypatch):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:
        f.truncate(MAX_BYTES * 4)
    reads = []
    real_open = open

    class Spy:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def read(self, n=-1):
            reads.append(n)
            return self.f.read(n)

    import builtins
    monkeypatch.setattr(builtins, "open", lambda p, m="r", *a, **k: Spy(real_open(p, m, *a, **k))
                        if str(p) == str(path) else real_open(p, m, *a, **k))
    assert check_file(path).status == 1
    assert reads and all(0 <= n <= MAX_BYTES + 1 for n in reads)


# -- point 7: --set into short forms and layers by name -----------------------------

SEED = ROOT / "specs" / "mnist_cnn.yaml"


def set_error(*sets):
    with pytest.raises(SpecError) as e:
        load_spec(SEED, list(sets))
    (d,) = e.value.diagnostics
    return d


def test_set_reaches_into_short_forms():
    spec = load_spec(SEED, ["train.optimizer.learning_rate=0.01", "train.loss.from_logits=true"])
    assert spec.train.optimizer.type == "adam" and spec.train.optimizer.learning_rate == 0.01
    assert spec.train.loss.from_logits is True
    spec = load_spec(ROOT / "specs" / "sms_spam_lstm.yaml", ["train.metrics.1.thresholds=0.3"])
    assert spec.train.metrics[1].type == "precision" and spec.train.metrics[1].thresholds == 0.3


def test_set_addresses_layers_by_name():
    spec = load_spec(SEED, ["layers.dense_1.units=128", "layers.conv2d.filters=8", "layers.flatten.name=flat"])
    assert spec.layers[7].units == 128 and spec.layers[0].filters == 8 and spec.layers[4].name == "flat"
    spec = load_spec(SEED, ["layers.5.Dense.units=7", "layers.dense.units=9"])
    assert spec.layers[5].units == 9


def test_set_layer_by_explicit_name(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(BASE % "{type: Dense, units: 3, name: head}")
    assert load_spec(path, ["layers.head.units=5"]).layers[0].units == 5


def test_set_unknown_layer_name_did_you_mean():
    d = set_error("layers.dnse.units=3")
    assert d.format() == "--set layers.dnse.units=3: error: no layer named 'dnse' (did you mean 'dense'?)"


@pytest.mark.parametrize("flag,words", [
    ("layers.dense_1.units=-1", "greater than 0"), ("layers.conv2d_1.filters=abc", "integer"),
    ("train.optimizer.learning_rate=-1", "greater than 0"), ("layers.flatten.unitz=3", "unknown key 'unitz'"),
    ("train.loss.from_logits=maybe", "from_logits"),
])
def test_set_bad_value_blames_the_flag(flag, words):
    d = set_error(flag)
    assert d.file == f"--set {flag}" and d.line is None and words in d.message


# -- point 13: the spec package's share of start-up time -------------------------------

def test_import_is_cheap_and_validation_builds_only_used_layer_models():
    code = ("import sys\nimport layerc.spec\nassert 'pydantic' not in sys.modules, 'pydantic imported'\n"
            "layerc.spec.parse_spec('input: {shape: [4]}\\nlayers: [{Dense: {units: 3}}, Flatten]\\n')\n"
            "from layerc.spec.layers import LAYER_TYPES\n"
            "built = sorted(t for t, m in LAYER_TYPES.items() if type(m.__pydantic_validator__).__name__ "
            "!= 'MockValSer')\n"
            "assert built == ['Dense', 'Flatten'], built\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 0, proc.stderr

"""spec.diff: specs compared by meaning, layers matched by name and content, canonical form."""
import subprocess
import sys
from pathlib import Path

from layerc.spec import parse_spec
from layerc.spec.diff import canonical_settings, canonical_text, diff, differing_settings, differs

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
layerc: 1
name: m
input: {shape: [28, 28, 1]}
layers:
  - Conv2D: {filters: 32, kernel_size: [3, 3], activation: relu}
  - MaxPooling2D: {pool_size: [2, 2]}
  - Flatten
  - Dense: {units: 64, activation: relu}
  - Dense: {units: 10, activation: softmax}
data: {dataset: mnist, validation_split: 0.1}
train:
  optimizer: {type: adam, learning_rate: 0.001}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 12
"""

# the same model: other layer forms, key order, comments, input_shape, spelt-out defaults
REFORMATTED = """\
# a comment
name: m
layers:
  - {type: Conv2D, kernel_size: 3, filters: 32, activation: relu, strides: 1, input_shape: [28, 28, 1]}
  - MaxPooling2D      # pool_size 2 is the default
  - {type: Flatten}
  - Dense:
      activation: relu
      units: 64
      use_bias: true
  - Dense: {units: 10, activation: softmax, name: dense_1}
train:
  epochs: 12
  loss: sparse_categorical_crossentropy
  optimizer: adam
  metrics: [accuracy]
data: {validation_split: 0.1, dataset: mnist, shuffle: true}
"""


def spec(text):
    return parse_spec(text)


def edit(old, new, text=BASE):
    assert old in text
    return spec(text.replace(old, new))


def kinds(changes):
    return [(c.kind, c.path) for c in changes]


def test_reformatted_spec_is_no_change():
    a, b = spec(BASE), spec(REFORMATTED)
    assert diff(a, b) == [] and not differs(diff(a, b))
    assert canonical_text(a) == canonical_text(b)


def test_a_changed_argument_is_named_by_its_layer():
    changes = diff(spec(BASE), edit("units: 64", "units: 128"))
    assert kinds(changes) == [("changed", "dense.units")]
    assert (changes[0].old, changes[0].new) == (64, 128)
    changes = diff(spec(BASE), edit("units: 10, activation: softmax", "units: 10, activation: sigmoid"))
    assert kinds(changes) == [("changed", "dense_1.activation")]


def test_changed_settings_by_path_with_defaults_shown():
    changes = diff(spec(BASE), edit("validation_split: 0.1}", "validation_split: 0.1, shuffle: false}",
                                    BASE.replace("learning_rate: 0.001", "learning_rate: 0.01")
                                    .replace("epochs: 12", "epochs: 3")))
    got = {c.path: (c.old, c.new, c.note) for c in changes}
    assert got == {"data.shuffle": (True, False, "default"),
                   "train.optimizer.learning_rate": (0.001, 0.01, "default"),
                   "train.epochs": (12, 3, "")}


def test_a_layer_inserted_in_the_middle_is_one_addition_not_a_cascade():
    b = edit("  - Dense: {units: 10", "  - Dropout: {rate: 0.5}\n  - Dense: {units: 32, activation: relu}\n"
                                      "  - Dense: {units: 10")
    changes = diff(spec(BASE), b)
    assert [k for k in kinds(changes) if k[0] != "renamed"] == [("added", "dropout"), ("added", "dense_1")]
    added = changes[1]
    assert added.new == {"type": "Dense", "units": 32, "activation": "relu"}
    # the old head keeps its identity: its default name shifted, it did not change
    renamed = [c for c in changes if c.kind == "renamed"]
    assert [(c.old, c.new, c.note) for c in renamed] == [("dense_1", "dense_2", "default name shifted")]
    assert differs(changes)


def test_removed_layer():
    changes = diff(spec(BASE), edit("  - Dense: {units: 64, activation: relu}\n", ""))
    assert [k for k in kinds(changes) if k[0] != "renamed"] == [("removed", "dense")]
    assert changes[0].old == {"type": "Dense", "units": 64, "activation": "relu"}


def test_a_reorder_is_a_move():
    a = spec("input: {shape: [20]}\nlayers:\n  - Dense: {units: 8}\n  - Dropout: {rate: 0.5}\n"
             "  - BatchNormalization\n  - Dense: {units: 2}\n")
    b = spec("input: {shape: [20]}\nlayers:\n  - Dense: {units: 8}\n  - BatchNormalization\n"
             "  - Dropout: {rate: 0.5}\n  - Dense: {units: 2}\n")
    changes = diff(a, b)
    assert len(changes) == 1 and changes[0].kind == "moved" and changes[0].path in ("dropout", "batch_normalization")
    assert differs(changes)


def test_explicit_names_match_first_and_renames_show():
    a = spec("input: {shape: [20]}\nlayers:\n  - Dense: {units: 8, name: body}\n"
             "  - Dense: {units: 2, name: head}\n")
    b = spec("input: {shape: [20]}\nlayers:\n  - Dense: {units: 4, name: body}\n"
             "  - Dense: {units: 2, name: classifier}\n")
    assert kinds(diff(a, b)) == [("changed", "body.units"), ("renamed", "classifier")]
    assert differs(diff(a, b))
    # an explicit name equal to the default one is no change
    c = spec("input: {shape: [20]}\nlayers:\n  - Dense: {units: 8, name: dense}\n  - Dense: {units: 2}\n")
    d = spec("input: {shape: [20]}\nlayers:\n  - Dense: {units: 8}\n  - Dense: {units: 2}\n")
    assert diff(c, d) == []


def test_sizes_are_compared_by_meaning_not_spelling():
    assert diff(spec(BASE), edit("kernel_size: [3, 3]", "kernel_size: 3")) == []
    changes = diff(spec(BASE), edit("kernel_size: [3, 3]", "kernel_size: [3, 5]"))
    assert kinds(changes) == [("changed", "conv2d.kernel_size")] and changes[0].new == [3, 5]
    # an input shape is not a size pair
    one = spec("input: {shape: [4, 4]}\nlayers:\n  - Flatten\n")
    other = spec("input: {shape: [4]}\nlayers:\n  - Flatten\n")
    assert kinds(diff(one, other)) == [("changed", "input.shape")]


def test_canonical_text_is_one_setting_a_line_in_a_fixed_order():
    text = canonical_text(spec(BASE))
    lines = text.splitlines()
    assert "layers.dense.units: 64" in lines and "layers.dense_1: Dense" in lines
    assert "train.optimizer: adam" in lines and "train.metrics: [accuracy]" in lines
    assert "data: mnist" in lines and "input.shape: [28, 28, 1]" in lines
    assert not any("use_bias" in l or "learning_rate" in l for l in lines)  # defaults left out
    assert lines.index("layers.conv2d: Conv2D") < lines.index("layers.dense: Dense") < lines.index("data: mnist")
    assert canonical_settings(spec(BASE))["layers.conv2d.kernel_size"] == 3


def test_n_way_differing_settings():
    specs = [spec(BASE), spec(REFORMATTED), edit("units: 64", "units: 128")]
    assert differing_settings(specs) == {"layers.dense.units": [64, 64, 128]}
    specs.append(edit("  - Flatten\n", "  - Flatten\n  - Dropout: {rate: 0.2}\n"))
    got = differing_settings(specs)
    assert got["layers.dropout"] == [None, None, None, "Dropout"]
    assert got["layers.dropout.rate"] == [None, None, None, 0.2]


def test_every_reference_spec_has_a_canonical_form_and_equals_itself():
    from layerc.spec import load_spec

    for path in sorted((ROOT / "specs").glob("*.yaml")):
        s = load_spec(path)
        assert diff(s, s) == []
        assert canonical_text(s).count("\n") > 5


def test_diff_imports_no_numpy():
    code = ("import sys; from layerc.spec import parse_spec; from layerc.spec.diff import diff, canonical_text; "
            f"s = parse_spec({BASE!r}); diff(s, s); canonical_text(s); print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_widened_stack_is_two_changes_not_a_cascade():
    # mnist_mlp's own history: 784-256-128-10 became 784-512-256-10
    block = "  - Dense: {{units: {}}}\n  - BatchNormalization\n  - Activation: {{activation: relu}}\n  - Dropout: {{rate: 0.3}}\n"
    head = "input: {shape: [784]}\nlayers:\n  - Flatten\n"
    tail = "  - Dense: {units: 10, activation: softmax}\n"
    a = spec(head + block.format(256) + block.format(128) + tail)
    b = spec(head + block.format(512) + block.format(256) + tail)
    changes = diff(a, b)
    assert [(c.kind, c.path, c.old, c.new) for c in changes] == [
        ("changed", "dense.units", 256, 512), ("changed", "dense_1.units", 128, 256)]

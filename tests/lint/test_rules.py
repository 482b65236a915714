"""Every lint: a spec that triggers it at the right line:col, and a near miss that must not."""
from __future__ import annotations

import pytest

from layerc.lint import RULES, lint
from layerc.lint.capacity import SAMPLES, SERIES, TEST_SPLIT, training_samples

from .helpers import codes, lints, pos

SPARSE = "train: {loss: sparse_categorical_crossentropy}\n"

# code: (spec that triggers it, the text the warning points at, words of the message, near miss)
CASES = {
    "LC101": ("input: {shape: [4]}\nlayers:\n  - Dense: {units: 8, activation: relu}\n"
              "  - Dense: {units: 3}\n" + SPARSE,
              "Dense: {units: 3}", ["sparse_categorical_crossentropy expects probabilities", "'dense_1'",
                                    "linear", "from_logits: true"],
              "input: {shape: [4]}\nlayers:\n  - Dense: {units: 8, activation: relu}\n  - Dense: {units: 3}\n"
              "train: {loss: {type: sparse_categorical_crossentropy, from_logits: true}}\n"),
    "LC102": ("input: {shape: [4]}\nlayers:\n  - Dense: {units: 3, activation: softmax}\n"
              "train: {loss: {type: categorical_crossentropy, from_logits: true}}\n",
              "Dense", ["from_logits: true", "already applies softmax", "twice"],
              "input: {shape: [4]}\nlayers:\n  - Dense: {units: 3}\n"
              "train: {loss: {type: categorical_crossentropy, from_logits: true}}\n"),
    "LC103": ("input: {shape: [4]}\nlayers:\n  - Dense: {units: 8, activation: relu}\n  - Dropout: {rate: 0.1}\n"
              "  - Dense: {units: 1, activation: sigmoid, name: price}\n  - Dropout: {rate: 0.1}\n"
              "train: {loss: mse}\n",
              "Dense: {units: 1", ["mean_squared_error is a regression loss", "'price'", "sigmoid"],
              "input: {shape: [4]}\nlayers:\n  - Dense: {units: 8, activation: sigmoid}\n  - Dense: {units: 1}\n"
              "train: {loss: mse}\n"),
    "LC104": ("input: {shape: [4]}\nlayers:\n  - Dense: {units: 8, activation: relu}\n"
              "  - Dense: {units: 1, activation: softmax}\n",
              "Dense: {units: 1", ["softmax over one unit", "always 1"],
              "input: {shape: [4]}\nlayers:\n  - Dense: {units: 8, activation: relu}\n"
              "  - Dense: {units: 2, activation: softmax}\n"),
    "LC105": ("input: {shape: [4]}\nlayers:\n  - Dense: {units: 2, activation: softmax}\n"
              "train: {loss: binary_crossentropy}\n",
              "Dense", ["binary_crossentropy after softmax", "sigmoid"],
              "input: {shape: [4]}\nlayers:\n  - Dense: {units: 2, activation: sigmoid}\n"
              "train: {loss: binary_crossentropy}\n"),
    "LC106": ("input: {shape: [4]}\nlayers:\n  - Dense: {units: 1, activation: sigmoid}\n" + SPARSE,
              "Dense", ["one output unit per class", "has 1"],
              "input: {shape: [4]}\nlayers:\n  - Dense: {units: 2, activation: softmax}\n" + SPARSE),
    "LC201": ("input: {shape: [64, 64, 3]}\nlayers:\n  - Conv2D: {filters: 8, kernel_size: 3, activation: relu}\n"
              "  - Flatten\n  - Dense: {units: 10, activation: softmax}\n" + SPARSE,
              "Flatten", ["(None, 62, 62, 8)", "no pooling or stride", "30,752 features",
                          "'dense' after it has 307,530 parameters", "MaxPooling2D"],
              "input: {shape: [64, 64, 3]}\nlayers:\n  - Conv2D: {filters: 8, kernel_size: 3, activation: relu}\n"
              "  - MaxPooling2D\n  - Flatten\n  - Dense: {units: 10, activation: softmax}\n" + SPARSE),
    "LC202": ("input: {shape: [28, 28, 1]}\nlayers:\n  - Dense: {units: 10, activation: softmax}\n" + SPARSE,
              "Dense", ["(None, 28, 28, 1)", "giving (None, 28, 28, 10)", "Flatten"],
              "input: {shape: [28, 28, 1]}\nlayers:\n  - Flatten\n  - Dense: {units: 10, activation: softmax}\n"
              + SPARSE),
    "LC203": ("input: {shape: [8]}\nlayers:\n" + "  - Dense: {units: 16, activation: relu}\n" * 5
              + "  - Dense: {units: 1}\ntrain: {loss: mse}\n",
              "layers", ["6 weight layers", "neither BatchNormalization nor Dropout"],
              "input: {shape: [8]}\nlayers:\n" + "  - Dense: {units: 16, activation: relu}\n" * 5
              + "  - Dropout: {rate: 0.2}\n  - Dense: {units: 1}\ntrain: {loss: mse}\n"),
    "LC301": ("input: {shape: [80], dtype: int32}\nlayers:\n  - Embedding: {input_dim: 10000, output_dim: 16}\n"
              "  - GlobalAveragePooling1D\n  - Dense: {units: 1, activation: sigmoid}\n"
              "data: {dataset: sms_spam}\ntrain: {loss: binary_crossentropy}\n",
              "sms_spam", ["the data is text", "no layer reads its order", "LSTM"],
              "input: {shape: [80], dtype: int32}\nlayers:\n  - Embedding: {input_dim: 10000, output_dim: 16}\n"
              "  - LSTM: {units: 8}\n  - Dense: {units: 1, activation: sigmoid}\n"
              "data: {dataset: sms_spam}\ntrain: {loss: binary_crossentropy}\n"),
    "LC302": ("input: {shape: [28, 28]}\nlayers:\n  - LSTM: {units: 32}\n  - Dense: {units: 10, activation: softmax}\n"
              "data: {dataset: mnist}\n" + SPARSE,
              "LSTM", ["'lstm' (LSTM) reads image data row by row", "Conv2D"],
              "input: {shape: [28, 28, 1]}\nlayers:\n  - Conv2D: {filters: 8, kernel_size: 3}\n  - MaxPooling2D\n"
              "  - Flatten\n  - Dense: {units: 10, activation: softmax}\ndata: {dataset: mnist}\n" + SPARSE),
    "LC303": ("input: {shape: [20, 8]}\nlayers:\n  - GRU: {units: 16, return_sequences: true}\n"
              "  - Dense: {units: 3, activation: softmax}\n" + SPARSE,
              "GRU", ["'gru' returns sequences", "(None, 20, 3)", "GlobalAveragePooling1D"],
              "input: {shape: [20, 8]}\nlayers:\n  - GRU: {units: 16, return_sequences: true}\n"
              "  - GlobalAveragePooling1D\n  - Dense: {units: 3, activation: softmax}\n" + SPARSE),
    "LC401": ("input: {shape: [28, 28, 1]}\nlayers:\n  - Flatten\n  - Dense: {units: 128, activation: relu}\n"
              "  - Dense: {units: 10, activation: softmax}\ndata: {dataset: mnist, limit: 500}\n" + SPARSE,
              "mnist", ["101,770 trainable parameters for about 500 training samples", "203 per sample"],
              "input: {shape: [28, 28, 1]}\nlayers:\n  - Flatten\n  - Dense: {units: 128, activation: relu}\n"
              "  - Dense: {units: 10, activation: softmax}\ndata: {dataset: mnist, limit: 5000}\n" + SPARSE),
    "LC001": ("input: {shape: [4]}\nlayers:\n  - Dense: {units: 3}  # layerc: disable=LC1O1\n" + SPARSE,
              "LC1O1", ["names no lint code", "did you mean 'LC101'?"],
              "input: {shape: [4]}\nlayers:\n  - Dense: {units: 3}  # layerc: disable=LC101\n" + SPARSE),
}


def test_every_rule_has_a_case():
    assert set(CASES) == set(RULES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_the_rule_fires_at_the_fault(code):
    text, at, words, _ = CASES[code]
    found = [d for d in lints(text) if d.code == code]
    assert len(found) == 1, [d.format() for d in lints(text)]
    d = found[0]
    assert (d.file, d.line, d.col) == ("spec.yaml", *pos(text, at)), d.format()
    assert d.severity == RULES[code].severity
    for w in words:
        assert w in d.message, (w, d.message)
    assert d.format().endswith(f" [{code}]") and f": {d.severity}: " in d.format()


@pytest.mark.parametrize("code", sorted(CASES))
def test_the_near_miss_is_clean(code):
    near = CASES[code][3]
    assert codes(near) == [], [d.format() for d in lints(near)]


def test_the_loss_rules_look_through_dropout_and_an_activation_layer():
    text = ("input: {shape: [4]}\nlayers:\n  - Dense: {units: 3}\n  - Activation: {activation: softmax}\n"
            "  - Dropout: {rate: 0.1}\n" + SPARSE)
    assert codes(text) == []
    text = text.replace("softmax", "relu")
    d, = lints(text)
    assert d.code == "LC101" and (d.line, d.col) == pos(text, "Activation") and "'activation'" in d.message


def test_a_rule_checks_every_output_of_a_graph():
    text = ("inputs: {a: {shape: [4]}}\nlayers:\n  - Dense: {units: 3, activation: softmax, inputs: a, name: ok}\n"
            "  - Dense: {units: 3, inputs: a, name: raw}\noutputs: [ok, raw]\n" + SPARSE)
    d, = lints(text)
    assert d.code == "LC101" and "'raw'" in d.message and (d.line, d.col) == pos(text, "Dense", 1)


def test_large_images_are_fine_after_a_strided_convolution_and_small_ones_without():
    strided = CASES["LC201"][0].replace("kernel_size: 3,", "kernel_size: 3, strides: 2,")
    assert "LC201" not in codes(strided)
    small = CASES["LC201"][0].replace("[64, 64, 3]", "[32, 32, 3]")
    assert "LC201" not in codes(small)


def test_dense_over_sequence_steps_is_per_step_on_purpose():
    seq2seq = ("input: {shape: [20, 8]}\nlayers:\n  - LSTM: {units: 16, return_sequences: true}\n"
               "  - Dense: {units: 1}\ntrain: {loss: mse}\n")
    assert codes(seq2seq) == []
    flattened_later = ("input: {shape: [28, 28, 1]}\nlayers:\n  - Dense: {units: 4, activation: relu}\n"
                       "  - Flatten\n  - Dense: {units: 10, activation: softmax}\n" + SPARSE)
    assert codes(flattened_later) == []


def test_deep_stacks_count_recurrent_dropout_and_normalisation():
    deep = CASES["LC203"][0]
    assert "LC203" not in codes(deep.replace("  - Dense: {units: 1}", "  - LayerNormalization\n  - Dense: {units: 1}"))
    five = deep.replace("  - Dense: {units: 16, activation: relu}\n", "", 1)
    assert "LC203" not in codes(five)


def test_time_series_data_wants_a_sequence_layer_too():
    text = ("input: {shape: [30, 1]}\nlayers:\n  - Flatten\n  - Dense: {units: 16, activation: relu}\n"
            "  - Dense: {units: 1}\ndata:\n  dataset: melbourne_temperatures\ntrain: {loss: mse}\n")
    d, = lints(text)
    assert d.code == "LC301" and "a time series" in d.message
    assert (d.line, d.col) == pos(text, "melbourne_temperatures")
    conv = text.replace("  - Flatten\n", "  - Conv1D: {filters: 8, kernel_size: 3}\n  - Flatten\n")
    assert codes(conv) == []
    files = text.replace("  dataset: melbourne_temperatures\n",
                         "  format: timeseries\n  train: t.csv\n  column: Temp\n  window: 30\n")
    d, = lints(files)
    assert d.code == "LC301" and (d.line, d.col) == pos(files, "timeseries")


def test_the_built_in_sizes_match_the_datasets():
    from layerc.data.builtin import BUILTINS

    assert set(SAMPLES) | set(SERIES) == set(BUILTINS)
    for name, (rows, window, test) in SERIES.items():
        assert (BUILTINS[name]["window"], BUILTINS[name]["test_split"]) == (window, test)
    assert {k: v["test_split"] for k, v in BUILTINS.items() if k in SAMPLES and "test_split" in v} == TEST_SPLIT


def test_training_samples_follow_the_spec_settings():
    import layerc

    def n(data):
        return training_samples(layerc.parse_spec("input: {shape: [4]}\nlayers: [Flatten]\ndata: " + data).data)

    assert n("{dataset: mnist}") == 60_000
    assert n("{dataset: mnist, validation_split: 0.1}") == 54_000
    assert n("{dataset: mnist, limit: 300}") == 300
    assert n("{dataset: sms_spam}") == 4_459
    assert n("{dataset: melbourne_temperatures}") == 3_650 - 30 - 730
    assert n("{dataset: airline_passengers, window: 24, test_split: 12}") == 144 - 24 - 12
    assert n("{format: npy, train: {x: a.npy, y: b.npy}}") is None


def test_mutated_valid_specs_lint_without_crashing_and_every_finding_is_located():
    """The mutation fuzzer's specs that still compile (and every case above): the rules never
    raise, and each finding has a registered code, its rule's severity and a line:col."""
    import random
    from pathlib import Path

    import layerc
    from layerc.spec.diagnostics import SpecError
    from tests.spec.mutate import mutate

    root = Path(__file__).resolve().parents[2]
    texts = [p.read_text() for p in sorted((root / "specs").glob("*.yaml"))]
    rng, linted = random.Random(3), 0
    for text in [c[0] for c in CASES.values()] + [mutate(rng.choice(texts), rng) for _ in range(300)]:
        try:
            spec = layerc.parse_spec(text, "m.yaml")
            graph = layerc.build(spec).graph
        except (SpecError, RecursionError):
            continue
        linted += 1
        for d in lint(spec, graph):
            assert d.code in RULES and d.severity == RULES[d.code].severity
            assert d.file == "m.yaml" and d.line >= 1 and d.col >= 1, d.format()
    assert linted > 40

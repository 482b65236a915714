"""Text: the word tokenizer, vocabulary, OOV and padding ids, padding/truncation sides, label mapping."""
import json

import numpy as np
import pytest

from layerc.data import DataError, load_data, prepare_inputs
from layerc.data.text import build_vocabulary, encode, tokenize

LINES = "pos\tGood good movie!\nneg\tBad, bad BAD film.\npos\tGood fun\nneg\tdon't watch it\n"


def load(spec, tmp_path, input_shape=(None,), output_shape=(2,), loss="sparse_categorical_crossentropy"):
    return load_data({"format": "text", "train": "t.tsv", "shuffle": False, **spec}, spec_dir=tmp_path,
                     input_shape=input_shape, output_shape=output_shape, loss_name=loss, seed=0)


def test_tokenize():
    assert tokenize("Hello, WORLD! It's 2 o'clock_now...") == ["hello", "world", "it's", "2", "o'clock", "now"]
    assert tokenize("Hello World", lowercase=False) == ["Hello", "World"]


def test_vocabulary_by_frequency_then_alphabet():
    assert build_vocabulary([["b", "a", "c"], ["c", "a"], ["c"]], 10) == ["c", "a", "b"]
    assert build_vocabulary([["b", "a", "c"], ["c", "a"], ["c"]], 4) == ["c", "a"]


@pytest.mark.parametrize("padding, truncating, expect", [
    ("post", "post", [[2, 3, 1, 4], [2, 0, 0, 0]]),
    ("pre", "post", [[2, 3, 1, 4], [0, 0, 0, 2]]),
    ("post", "pre", [[3, 1, 4, 5], [2, 0, 0, 0]]),
    ("pre", "pre", [[3, 1, 4, 5], [0, 0, 0, 2]]),
])
def test_encode_sides(padding, truncating, expect):
    vocab = ["a", "b", "c", "d"]  # ids 2..5
    out = encode([["a", "b", "zz", "c", "d"], ["a"]], vocab, 4, padding, truncating)
    assert out.dtype == np.int32 and out.tolist() == expect


def test_load_text(tmp_path):
    (tmp_path / "t.tsv").write_text(LINES)
    ds = load({"vocab_size": 4}, tmp_path)
    x, y = ds.train
    assert ds.fitted["text"]["vocabulary"] == ["bad", "good"]  # 4 ids: pad, oov, bad, good
    assert x.tolist() == [[3, 3, 1, 0], [2, 2, 2, 1], [3, 1, 0, 0], [1, 1, 1, 0]]
    assert y.tolist() == [1, 0, 1, 0] and ds.fitted["label_names"] == ["neg", "pos"]
    assert ds.info["vocab_size"] == 4 and ds.info["max_length"] == 4


def test_max_length_from_model_and_mismatch(tmp_path):
    (tmp_path / "t.tsv").write_text(LINES)
    assert load({}, tmp_path, input_shape=(6,)).train[0].shape == (4, 6)
    with pytest.raises(DataError, match=r"max_length 3 gives samples of shape \(3,\) but the model's input shape is \(6,\)"):
        load({"max_length": 3}, tmp_path, input_shape=(6,))


def test_integer_labels_and_binary(tmp_path):
    (tmp_path / "t.tsv").write_text("1\ta b\n0\tc\n1\td\n")
    ds = load({}, tmp_path, output_shape=(1,), loss="binary_crossentropy")
    assert ds.train[1].tolist() == [[1.0], [0.0], [1.0]] and ds.fitted["label_names"] is None


def test_too_many_classes(tmp_path):
    (tmp_path / "t.tsv").write_text("a\tx\nb\ty\nc\tz\n")
    with pytest.raises(DataError, match="the labels have 3 classes .a, b, c. but the output layer has 2 units"):
        load({}, tmp_path)


def test_line_without_separator(tmp_path):
    (tmp_path / "t.tsv").write_text("pos\tok\nno tab here\n")
    with pytest.raises(DataError, match="t.tsv: line 2 has no TAB between the label and the text"):
        load({}, tmp_path)


def test_invalid_utf8(tmp_path):
    (tmp_path / "t.tsv").write_bytes(b"pos\tok\nneg\t\xff\xfe\n")
    with pytest.raises(DataError, match="line 2 is not valid UTF-8"):
        load({}, tmp_path)


def test_prepare_raw_lines(tmp_path):
    (tmp_path / "t.tsv").write_text(LINES)
    ds = load({"vocab_size": 4, "padding": "pre"}, tmp_path)
    fitted = json.loads(json.dumps(ds.fitted))
    out = prepare_inputs(["GOOD, bad and ugly", "good"], {"format": "text", "train": "t.tsv"}, fitted, (None,))
    assert out.tolist() == [[3, 2, 1, 1], [0, 0, 0, 3]]

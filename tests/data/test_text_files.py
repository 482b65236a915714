"""`format: text_files` (issue 21): .txt documents in one folder per class, with the text
format's vocabulary settings: the SMS Spam Collection as a folder gives the arrays (and the
trained weights) of the same messages as a labelled text file."""
from pathlib import Path

import numpy as np
import pytest
from layerc import jobs
from layerc.data import DataError, load_data
from layerc.spec.data import parse_data_spec

SMS = Path(__file__).resolve().parents[2] / "datasets" / "sms_spam" / "SMSSpamCollection"
SPEC = """\
name: sms
seed: 5
input: {{shape: [20]}}
layers:
  - Embedding: {{input_dim: 300, output_dim: 8, mask_zero: true}}
  - GlobalAveragePooling1D
  - Dense: {{units: 1, activation: sigmoid}}
data: {data}
train: {{optimizer: adam, loss: binary_crossentropy, metrics: [accuracy], batch_size: 32, epochs: 2}}
"""
SETTINGS = "vocab_size: 300, max_length: 20, validation_split: 0.2"


@pytest.fixture(scope="module")
def sms(tmp_path_factory):
    """The first 300 messages as sms/<label>/<line>.txt, and the same messages as a text file in
    the order the folder lists them (ham first, files sorted)."""
    root = tmp_path_factory.mktemp("sms")
    rows = [line.split("\t", 1) for line in SMS.read_text(encoding="utf-8").splitlines()[:300]]
    for i, (label, text) in enumerate(rows):
        (root / "sms" / label).mkdir(parents=True, exist_ok=True)
        (root / "sms" / label / f"{i:04d}.txt").write_text(text, encoding="utf-8")
    ordered = sorted(range(len(rows)), key=lambda i: (rows[i][0], i))
    (root / "sms.txt").write_text("".join(f"{rows[i][0]}\t{rows[i][1]}\n" for i in ordered), encoding="utf-8")
    return root


def load(data, root, **kw):
    spec = parse_data_spec({"vocab_size": 300, "max_length": 20, "validation_split": 0.2, **data, **kw})
    return load_data(spec, spec_dir=root, input_shape=(20,), output_shape=(1,), loss_name="binary_crossentropy",
                     seed=5)


def test_folder_gives_the_text_files_arrays(sms):
    folder = load({"format": "text_files", "train": "sms"}, sms)
    lines = load({"format": "text", "train": "sms.txt"}, sms)
    for key in ("train", "validation"):
        for a, b in zip(getattr(folder, key), getattr(lines, key)):
            np.testing.assert_array_equal(a, b)
    assert folder.fitted["text"]["vocabulary"] == lines.fitted["text"]["vocabulary"]
    assert folder.fitted["label_names"] == ["ham", "spam"]
    assert folder.train[0].dtype == np.int32 and folder.train[0].shape[1] == 20


def test_trains_to_the_weights_of_the_text_format(sms, tmp_path):
    (sms / "folder.yaml").write_text(SPEC.format(data=f"{{format: text_files, train: sms, {SETTINGS}}}"))
    (sms / "lines.yaml").write_text(SPEC.format(data=f"{{format: text, train: sms.txt, {SETTINGS}}}"))
    a = jobs.train(sms / "folder.yaml", run_dir=tmp_path / "a")
    b = jobs.train(sms / "lines.yaml", run_dir=tmp_path / "b")
    with np.load(a.run_dir / "weights.npz") as wa, np.load(b.run_dir / "weights.npz") as wb:
        for k in wa.files:
            assert np.array_equal(wa[k], wb[k]), k
    (tmp_path / "new.txt").write_text("WINNER! claim your free prize now\nsee you at lunch\n")
    out = tmp_path / "p.csv"
    jobs.predict(a.run_dir, input_path=tmp_path / "new.txt", output_path=out)
    assert out.read_text().splitlines()[0] == "predicted,p_ham,p_spam"


def test_vocabulary_settings_and_class_names(sms):
    ds = load({"format": "text_files", "train": "sms", "class_names": ["spam", "ham"], "lowercase": False,
               "padding": "pre"}, sms)
    assert ds.fitted["label_names"] == ["spam", "ham"]
    assert ds.fitted["text"]["lowercase"] is False and ds.fitted["text"]["padding"] == "pre"


def test_bad_documents_are_named(sms, tmp_path):
    import shutil

    root = tmp_path / "docs"
    shutil.copytree(sms / "sms", root)
    (root / "ham" / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (root / "spam" / "photo.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(DataError) as e:
        load({"format": "text_files", "train": str(root)}, sms)
    msg = str(e.value)
    assert "2 files cannot be used" in msg
    assert f"{root / 'ham' / 'latin1.txt'}: not UTF-8 text (byte 3)" in msg
    assert f"{root / 'spam' / 'photo.jpg'}: not a txt file" in msg
    skipped = load({"format": "text_files", "train": str(root), "bad_files": "skip"}, sms)
    assert skipped.info["notes"] == [f"skipped 2 files that cannot be used (bad_files: skip), e.g. "
                                     f"{root / 'ham' / 'latin1.txt'}: not UTF-8 text (byte 3)"]
    (root / "empty").mkdir()
    with pytest.raises(DataError, match="holds no files"):
        load({"format": "text_files", "train": str(root), "bad_files": "skip"}, sms)
    with pytest.raises(DataError, match="reads a folder"):
        load({"format": "text_files", "train": "sms.txt"}, sms)


def test_validate_checks_the_embedding_against_the_vocabulary(sms, tmp_path):
    from layerc.cli import main

    spec = sms / "small.yaml"
    spec.write_text(SPEC.format(data="{format: text_files, train: sms, vocab_size: 500, max_length: 20}"))
    with pytest.raises(SystemExit) as e:
        main(["validate", str(spec)])
    assert e.value.code == 1

"""Streaming `format: text_files` (issue 21, point 3): a folder of documents built from the
SMS Spam Collection trains streamed with the in-memory run's weights bit for bit, streams on
its own when over the memory budget, resumes mid-epoch exactly after a kill, and keeps a flat
peak memory whatever the number of documents (the vocabulary is counted one document at a
time, and training reads, tokenises and pads each batch's files as it goes)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from layerc import jobs
from layerc.data import text_files
from layerc.data.stream import Streamed
from tests.data.test_stream_images import same_weights, stop_kill_resume

SMS = Path(__file__).resolve().parents[2] / "datasets" / "sms_spam" / "SMSSpamCollection"
SPEC = """\
name: docs
seed: 7
input: {{shape: [{length}]}}
layers:
  - Embedding: {{input_dim: 500, output_dim: 8, mask_zero: true}}
  - GlobalAveragePooling1D
  - Dropout: {{rate: 0.2}}
  - Dense: {{units: 2, activation: softmax}}
data: {{format: text_files, train: docs, vocab_size: 500, validation_split: 0.2, test_split: 0.1}}
train: {{optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy], batch_size: {batch},
         epochs: {epochs}}}
"""


def messages():
    return [line.split("\t", 1) for line in SMS.read_text(encoding="utf-8").splitlines()]


def documents(folder, n, per=1):
    """n documents in folder/ham and folder/spam: document i holds `per` consecutive messages of
    the collection (cycling through it), labelled by the first one."""
    rows = messages()
    for label in ("ham", "spam"):
        (folder / label).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        picked = [rows[(i * per + j) % len(rows)] for j in range(per)]
        (folder / picked[0][0] / f"{i:06d}.txt").write_text("\n".join(t for _, t in picked), encoding="utf-8")


def write_spec(tmp_path, n=400, per=1, length=20, batch=8, epochs=2, name="s.yaml"):
    if not (tmp_path / "docs").exists():
        documents(tmp_path / "docs", n, per)
    path = tmp_path / name
    path.write_text(SPEC.format(length=length, batch=batch, epochs=epochs))
    return path


def kinds(seen):
    return lambda trainer, run, data: seen.append([type(p[0]) for p in (data.train, data.validation, data.test)])


def without_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_streamed_documents_train_to_the_in_memory_weights(tmp_path):
    spec = write_spec(tmp_path)
    seen = []
    memory = jobs.train(spec, run_dir=tmp_path / "memory", on_start=kinds(seen))
    streamed = jobs.train(spec, overrides=["data.stream=true"], run_dir=tmp_path / "streamed", on_start=kinds(seen))
    assert seen == [[np.ndarray] * 3, [Streamed] * 3]
    assert same_weights(tmp_path / "memory", tmp_path / "streamed")
    assert without_seconds(memory.history) == without_seconds(streamed.history)
    assert memory.test == streamed.test
    fitted = [json.loads((tmp_path / r / "data.json").read_text()) for r in ("memory", "streamed")]
    assert fitted[0] == fitted[1] and len(fitted[0]["text"]["vocabulary"]) == 498  # the same vocabulary
    assert jobs.evaluate(tmp_path / "streamed") == jobs.evaluate(tmp_path / "memory")


def test_streamed_rows_are_the_in_memory_rows_with_the_default_length(tmp_path):
    """No max_length and a model of any length: the longest training document sets it, counted in
    the one vocabulary pass; each streamed batch holds the in-memory array's rows."""
    from layerc.data import load_data

    documents(tmp_path / "docs", 120, per=3)
    data = {"format": "text_files", "train": "docs", "vocab_size": 200, "validation_split": 0.25,
            "padding": "pre", "truncating": "pre"}
    kw = dict(spec_dir=tmp_path, input_shape=(None,), output_shape=(2,),
              loss_name="sparse_categorical_crossentropy", seed=3)
    memory = load_data(data, **kw)
    streamed = load_data({**data, "stream": True}, **kw)
    assert streamed.fitted == memory.fitted and memory.fitted["text"]["max_length"] > 20
    for key in ("train", "validation"):
        x, y = getattr(streamed, key)
        assert isinstance(x, Streamed) and x.shape == getattr(memory, key)[0].shape
        np.testing.assert_array_equal(x[np.arange(len(x))], getattr(memory, key)[0])
        np.testing.assert_array_equal(x[5:17], getattr(memory, key)[0][5:17])
        np.testing.assert_array_equal(y, getattr(memory, key)[1])


def test_bad_documents_are_found_when_listed_and_skipped_alike(tmp_path):
    from layerc.data import DataError, load_data

    documents(tmp_path / "docs", 60)
    (tmp_path / "docs" / "ham" / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    data = {"format": "text_files", "train": "docs", "vocab_size": 100, "max_length": 10, "stream": True}
    kw = dict(spec_dir=tmp_path, input_shape=(10,), output_shape=(2,),
              loss_name="sparse_categorical_crossentropy", seed=3)
    with pytest.raises(DataError, match=r"1 file cannot be used, .*latin1\.txt: not UTF-8 text \(byte 3\)"):
        load_data(data, **kw)
    streamed = load_data({**data, "bad_files": "skip"}, **kw)
    memory = load_data({**data, "bad_files": "skip", "stream": False}, **kw)
    assert streamed.info["notes"] == memory.info["notes"] and len(streamed.train[0]) == 60
    np.testing.assert_array_equal(np.asarray(streamed.train[0]), memory.train[0])


def test_documents_over_the_memory_budget_stream_instead_of_being_refused(tmp_path, monkeypatch):
    spec = write_spec(tmp_path, n=400, per=4, length=200)
    seen = []
    # the model needs 220 KB to train; the documents, read, tokenised and padded in memory, 850 KB more
    monkeypatch.setenv("LAYERC_MEMORY_BUDGET", "600K")
    jobs.train(spec, run_dir=tmp_path / "r", on_start=kinds(seen))
    assert seen == [[Streamed] * 3]
    with pytest.raises(jobs.ResourceError, match=r"memory budget \(LAYERC_MEMORY_BUDGET\) is 600.00 KB"):
        jobs.train(spec, overrides=["data.stream=false"], run_dir=tmp_path / "r2")


def test_the_vocabulary_pass_reads_each_training_document_once(tmp_path, monkeypatch):
    from layerc.data import load_data

    documents(tmp_path / "docs", 100)
    reads = []
    real = text_files.read_document
    monkeypatch.setattr(text_files, "read_document", lambda p: reads.append(p) or real(p))
    data = {"format": "text_files", "train": "docs", "vocab_size": 100, "max_length": 10, "stream": True,
            "validation_split": 0.2}
    load_data(data, spec_dir=tmp_path, input_shape=(10,), output_shape=(2,),
              loss_name="sparse_categorical_crossentropy", seed=3)
    # listing checks the 100 files; the vocabulary pass reads the 80 training ones; no batch is read yet
    assert len(reads) == 180 and len(set(reads[100:])) == 80


def test_killed_mid_streamed_epoch_then_resumed_gives_the_same_weights(tmp_path):
    spec = write_spec(tmp_path, n=2500, per=3, length=60, batch=4, epochs=3)
    whole = jobs.train(spec, overrides=["data.stream=true"], run_dir=tmp_path / "whole").run_dir
    stop_kill_resume(spec, tmp_path / "run", whole, steps=450)


PEAK = """\
import json, sys
from pathlib import Path
from layerc import jobs
jobs.train(sys.argv[1], overrides=["data.validation_split=0.0", "data.test_split=null", *sys.argv[3:]],
           run_dir=sys.argv[2])
hwm = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")][0]
print(json.dumps(int(hwm.split()[1]) * 1024))
"""


def peak(folder, n, *overrides, env=None):
    spec = write_spec(folder, n=n, per=60, length=64, batch=32, epochs=1)
    p = subprocess.run([sys.executable, "-c", PEAK, str(spec), str(folder / f"run{len(overrides)}"), *overrides],
                       capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="VmHWM is Linux's")
def test_peak_memory_does_not_grow_with_the_number_of_documents(tmp_path):
    """Documents of 60 messages (about 4.5 KB of text, 1,000 words): 4x the documents add their
    text, and far more as token lists, to an in-memory run; a streamed one holds a few batches."""
    sizes, peaks = (300, 1200), []
    for n in sizes:
        (tmp_path / f"n{n}").mkdir()
        peaks.append(peak(tmp_path / f"n{n}", n, env={"LAYERC_MEMORY_BUDGET": "3M"}))  # streams on its own
    text_growth = sum(f.stat().st_size for f in (tmp_path / "n1200" / "docs").rglob("*.txt")) - \
        sum(f.stat().st_size for f in (tmp_path / "n300" / "docs").rglob("*.txt"))
    assert text_growth > 3_000_000
    assert peaks[1] - peaks[0] < text_growth / 4, (peaks, text_growth)

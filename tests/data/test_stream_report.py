"""`layerc evaluate` and `evaluate --report` on a streamed split (issue 21, point 3): the split is
read batch by batch, never decoded whole, and the loss, metrics, per-class figures and confusion
matrix are those of the in-memory split (image folders and text folders alike)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from layerc import jobs
from layerc.data.stream import Streamed
from tests.data import test_stream_images as images
from tests.data import test_text_stream as texts


@pytest.fixture
def never_whole(monkeypatch):
    """Streamed splits that fail when anything decodes them whole (np.asarray(x))."""
    def whole(self, dtype=None, copy=None):
        raise AssertionError(f"a streamed split of {len(self)} samples was decoded whole")

    monkeypatch.setattr(Streamed, "__array__", whole)


def test_a_streamed_image_split_reports_the_in_memory_figures(tmp_path, monkeypatch, never_whole):
    monkeypatch.setenv("LAYERC_CACHE_DIR", "off")
    spec = images.write_spec(tmp_path, n=150, epochs=1)
    run = jobs.train(spec, run_dir=tmp_path / "run").run_dir
    memory = jobs.evaluate(run, report=True)
    streamed = jobs.evaluate(run, overrides=["data.stream=true"], report=True)
    assert streamed == memory
    assert memory["samples"] == 15 and sum(map(sum, memory["confusion_matrix"])) == 15
    assert jobs.evaluate(run, overrides=["data.stream=true"]) == jobs.evaluate(run)


def test_a_streamed_text_split_reports_the_in_memory_figures(tmp_path, never_whole):
    spec = texts.write_spec(tmp_path, n=600, per=2, length=30, batch=16, epochs=2)
    run = jobs.train(spec, run_dir=tmp_path / "run").run_dir
    memory = jobs.evaluate(run, report=True)
    streamed = jobs.evaluate(run, overrides=["data.stream=true"], report=True)
    assert streamed == memory
    assert memory["classes"] == ["ham", "spam"] and memory["samples"] == 60
    assert memory["per_class"][0]["support"] + memory["per_class"][1]["support"] == 60


CLI = """\
import atexit, sys
from layerc.cli import main
from layerc.data.stream import Streamed

loads, load = [], Streamed.load
Streamed.load = lambda self, index: loads.append(len(index)) or load(self, index)
Streamed.__array__ = lambda self, dtype=None, copy=None: sys.exit("a streamed split was decoded whole")
atexit.register(lambda: print("batches read:", len(loads), "largest:", max(loads, default=0), file=sys.stderr))
main(sys.argv[1:])
"""


def test_evaluate_report_over_the_memory_budget_streams_and_prints_the_same_report(tmp_path):
    """The CLI, run as a user would: with documents over LAYERC_MEMORY_BUDGET, evaluate streams on
    its own, reads batches only, and its JSON report is the one the in-memory evaluation gives."""
    spec = texts.write_spec(tmp_path, n=400, per=4, length=200, batch=8, epochs=1)
    run = jobs.train(spec, run_dir=tmp_path / "run").run_dir

    def report(**env):
        p = subprocess.run([sys.executable, "-c", CLI, "evaluate", str(run), "--report", "--format", "json"],
                           capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", **env}, timeout=120)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout), p.stderr.strip().splitlines()[-1]

    memory, read = report()
    assert read == "batches read: 0 largest: 0"
    streamed, read = report(LAYERC_MEMORY_BUDGET="600K")  # the model fits; the documents in memory (850 KB) not
    assert read == "batches read: 10 largest: 8"  # 40 test documents, 8 a batch: the loss's pass, the report's
    assert streamed == memory and len(memory["confusion_matrix"]) == 2
    assert np.sum(memory["confusion_matrix"]) == memory["samples"] == 40


def test_predict_over_a_folder_decodes_a_batch_of_files_at_a_time(tmp_path, monkeypatch):
    """`layerc predict RUN --input folder/` reads the folder batch by batch (the model's batches),
    gives the predictions of the whole folder decoded at once, and still lists every bad file in
    one error before writing anything."""
    from layerc.data import images as reader
    from layerc.data.errors import DataError

    monkeypatch.setenv("LAYERC_CACHE_DIR", "off")
    spec = images.write_spec(tmp_path, n=150, epochs=1)  # batch_size 8
    run = jobs.train(spec, run_dir=tmp_path / "run").run_dir
    _, model, _ = jobs.load_trained(run, None)
    files = sorted((tmp_path / "photos").rglob("*.png"))
    whole = np.stack([reader.decode_image(p, jobs.load_trained(run, None)[0].data) for p in files])
    decoded, real = [], reader.decode_all
    monkeypatch.setattr(reader, "decode_all", lambda paths, spec: decoded.append(len(paths)) or real(paths, spec))
    out = tmp_path / "p.csv"
    y = jobs.predict(run, input_path=tmp_path / "photos", output_path=out)
    assert max(decoded) == 8 and sum(decoded) == 150
    np.testing.assert_array_equal(y, model.predict(whole * np.float32(0.00392156862745098)))
    assert len(out.read_text().splitlines()) == 151
    out.unlink()
    for i in (3, 140):  # bad files in the first batch and in the last
        files[i].write_bytes(files[i].read_bytes()[:60])
    with pytest.raises(DataError, match=f"input: 2 files cannot be used, so fix or remove them: {files[3]}: "
                                        f"cannot be decoded .*; {files[140]}: cannot be decoded"):
        jobs.predict(run, input_path=tmp_path / "photos", output_path=out)
    assert not out.exists()

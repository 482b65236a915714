"""Streaming and caching of `format: images` end to end: a folder of PNG files trains streamed
with the in-memory run's weights, streams on its own when over the memory budget, decodes once
into the cache, resumes mid-epoch exactly, and keeps a flat peak memory whatever the file count."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from layerc import jobs
from layerc.data import images
from layerc.data.errors import DataError
from layerc.data.stream import Streamed
from layerc.runs import load_arrays, load_checkpoint

Image = pytest.importorskip("PIL.Image")

SPEC = """\
name: folder
seed: 5
input: {{shape: [{side}, {side}, 1]}}
layers:
  - Conv2D: {{filters: 4, kernel_size: 3, activation: relu}}
  - MaxPooling2D: {{pool_size: 2}}
  - Flatten
  - Dropout: {{rate: 0.25}}
  - Dense: {{units: 3, activation: softmax}}
data:
  format: images
  train: photos
  image_size: [{side}, {side}]
  color_mode: grayscale
  rescale: 0.00392156862745098
  validation_split: 0.2
  test_split: 0.1
train: {{optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy], batch_size: {batch}, epochs: {epochs}}}
"""


def photos(folder, n, side=16, seed=0):
    """n PNG files in three class folders, a little learnable (the class sets the brightness)."""
    rng = np.random.default_rng(seed)
    for c in "abc":
        (folder / c).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        c = i % 3
        pixels = np.clip(rng.normal(60 + 70 * c, 40, (side, side)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "abc"[c] / f"{i:06d}.png")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def write_spec(tmp_path, n=150, side=16, batch=8, epochs=2, name="s.yaml"):
    if not (tmp_path / "photos").exists():
        photos(tmp_path / "photos", n, side)
    path = tmp_path / name
    path.write_text(SPEC.format(side=side, batch=batch, epochs=epochs))
    return path


def same_weights(a, b):
    wa, wb = load_arrays(a / "weights.npz"), load_arrays(b / "weights.npz")
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def kinds(seen):
    return lambda trainer, run, data: seen.append([type(p[0]) for p in (data.train, data.validation, data.test)])


def test_streamed_run_ends_with_the_in_memory_weights(tmp_path):
    spec = write_spec(tmp_path)
    seen = []
    memory = jobs.train(spec, run_dir=tmp_path / "memory", on_start=kinds(seen))
    streamed = jobs.train(spec, overrides=["data.stream=true"], run_dir=tmp_path / "streamed", on_start=kinds(seen))
    assert seen == [[np.ndarray] * 3, [Streamed] * 3]
    assert same_weights(tmp_path / "memory", tmp_path / "streamed")
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in memory.history] == \
        [{k: v for k, v in h.items() if k != "seconds"} for h in streamed.history]
    assert memory.test == streamed.test
    fitted = [json.loads((tmp_path / r / "data.json").read_text()) for r in ("memory", "streamed")]
    assert fitted[0] == fitted[1]  # evaluate may load the run either way
    assert jobs.evaluate(tmp_path / "streamed") == jobs.evaluate(tmp_path / "memory")


def test_data_over_the_memory_budget_streams_instead_of_being_refused(tmp_path, monkeypatch):
    spec = write_spec(tmp_path)
    seen = []
    monkeypatch.setenv("LAYERC_MEMORY_BUDGET", "200K")  # the model (139 KB) fits, with the decoded images (150 KB) not
    jobs.train(spec, run_dir=tmp_path / "r", on_start=kinds(seen))
    assert seen == [[Streamed] * 3]
    with pytest.raises(jobs.ResourceError, match=r"memory budget \(LAYERC_MEMORY_BUDGET\) is 200.00 KB"):  # stream: false keeps the old refusal
        jobs.train(spec, overrides=["data.stream=false"], run_dir=tmp_path / "r2")
    monkeypatch.setenv("LAYERC_MEMORY_BUDGET", "lots")
    with pytest.raises(DataError, match="LAYERC_MEMORY_BUDGET='lots' is not a size"):
        jobs.train(spec, run_dir=tmp_path / "r3")


def test_stream_is_refused_for_data_read_whole(tmp_path):
    from layerc.spec.diagnostics import SpecError

    spec = tmp_path / "npz.yaml"
    spec.write_text("input: {shape: [4]}\nlayers:\n  - Dense: {units: 2, activation: softmax}\n"
                    "data: {format: npz, train: d.npz, stream: true}\ntrain: {loss: sparse_categorical_crossentropy}\n")
    with pytest.raises(SpecError, match=r"npz\.yaml:4:7: .*`stream` applies to format: images"):
        jobs.train(spec, run_dir=tmp_path / "r")


def test_a_second_run_loads_the_decoded_cache_and_a_changed_file_decodes_again(tmp_path, monkeypatch, cache_dir):
    spec = write_spec(tmp_path, epochs=1)
    calls = []
    real = images.decode_image
    monkeypatch.setattr(images, "decode_image", lambda p, spec: calls.append(p) or real(p, spec))
    jobs.train(spec, run_dir=tmp_path / "a")
    assert len(calls) == 150 and len(list(cache_dir.glob("*.npy"))) == 1
    calls.clear()
    jobs.train(spec, run_dir=tmp_path / "b")
    assert calls == [] and same_weights(tmp_path / "a", tmp_path / "b")
    changed = tmp_path / "photos" / "b" / "000004.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(changed)
    os.utime(changed, ns=(10**18, 10**18))
    jobs.train(spec, run_dir=tmp_path / "c")
    assert len(calls) == 150 and len(list(cache_dir.glob("*.npy"))) == 1
    assert not same_weights(tmp_path / "a", tmp_path / "c")


def start(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "layerc", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COLUMNS": "120", **(env or {})})


def test_stopped_mid_streamed_epoch_and_killed_then_resumed_gives_the_same_weights(tmp_path):
    spec = write_spec(tmp_path, n=900, batch=4, epochs=3)
    whole = jobs.train(spec, overrides=["data.stream=true"], run_dir=tmp_path / "whole").run_dir
    stop_kill_resume(spec, tmp_path / "run", whole, steps=162)


def stop_kill_resume(spec, run, whole, steps):
    """Streamed training stopped (SIGTERM) inside its second epoch, resumed and killed
    outright (SIGKILL) in its third, resumed again: it must end with the weights of `whole`."""
    proc = start("train", str(spec), "--set", "data.stream=true", "--run-dir", str(run))
    while proc.poll() is None and not (run / "metrics.csv").exists():  # the first epoch's end
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # stops after the next batch, of the second epoch
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    _, meta = load_checkpoint(run)
    assert meta["epoch"] == 1 and 0 < meta["step"] < steps  # stopped inside a streamed epoch
    proc = start("train", "--resume", str(run))  # resumed mid-epoch, then killed outright
    while proc.poll() is None and load_checkpoint(run)[1]["epoch"] < 2:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert load_checkpoint(run)[1]["epoch"] == 2
    proc = start("train", "--resume", str(run))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert same_weights(whole, run)


PEAK = """\
import json, sys
from pathlib import Path
from layerc import jobs
jobs.train(sys.argv[1], overrides=["data.stream=true", "data.validation_split=0.0", "data.test_split=null"],
           run_dir=sys.argv[2])
hwm = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")][0]
print(json.dumps(int(hwm.split()[1]) * 1024))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="VmHWM is Linux's")
def test_peak_memory_does_not_grow_with_the_number_of_files(tmp_path):
    """48x48 images, 9 KB decoded each: 4x the files would add 15 MB held in memory."""
    peaks, sizes = [], (500, 2000)
    for n in sizes:
        folder = tmp_path / f"n{n}"
        folder.mkdir()
        spec = write_spec(folder, n=n, side=48, batch=32, epochs=1)
        p = subprocess.run([sys.executable, "-c", PEAK, str(spec), str(folder / "run")], capture_output=True,
                           text=True, env={**os.environ, "LAYERC_MEMORY_BUDGET": "8M"}, timeout=300)
        assert p.returncode == 0, p.stderr
        peaks.append(json.loads(p.stdout.strip().splitlines()[-1]))
    decoded_growth = (sizes[1] - sizes[0]) * 48 * 48 * 4
    assert peaks[1] - peaks[0] < decoded_growth / 4, (peaks, decoded_growth)


def test_resuming_on_a_folder_whose_files_changed_in_number_is_refused(tmp_path):
    from layerc.train.callbacks import Callback
    from layerc.train.loop import TrainingError

    class StopAt(Callback):
        def on_batch_end(self, trainer, step, logs):
            trainer.stop_requested = step == 3

    spec = write_spec(tmp_path)
    out = jobs.train(spec, overrides=["data.stream=true"], run_dir=tmp_path / "r", callbacks=[StopAt()])
    assert out.interrupted and load_checkpoint(tmp_path / "r")[1]["samples"] == 108
    photos(tmp_path / "more", 3, seed=9)
    for c in "abc":  # three more files, one a class: the split and the order would silently change
        next((tmp_path / "more" / c).iterdir()).rename(tmp_path / "photos" / c / f"new-{c}.png")
    with pytest.raises(TrainingError, match="trained on 108 samples and the data now has 110"):
        jobs.train(resume=tmp_path / "r")

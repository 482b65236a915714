"""Image decoding in worker processes (layerc/data/workers.py): the same arrays, bad-file lists
and weights as decoding in this process, and workers that never outlive their job."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from layerc import jobs
from layerc.data import cache, images, workers
from layerc.data.errors import DataError
from layerc.data.stream import Streamed, image_settings

from .test_stream_images import photos, same_weights, write_spec

Image = pytest.importorskip("PIL.Image")
SETTINGS = dict(image_size=[12, 12], color_mode="grayscale", interpolation="bilinear",
                crop_to_aspect_ratio=False, pad_to_aspect_ratio=False)


@pytest.fixture
def on(monkeypatch):
    """Workers for any number of files (two of them), stopped after the test."""
    monkeypatch.setenv("LAYERC_DECODE_PROCESSES", "2")
    monkeypatch.setattr(workers, "MIN_FILES", 0)
    workers.shutdown()
    yield
    workers.shutdown()


def decoder():
    from types import SimpleNamespace

    return images.ImageDecoder(image_settings(SimpleNamespace(**SETTINGS)))


def folder_with_bad_files(tmp_path, n=90):
    photos(tmp_path / "photos", n, side=16)
    files = sorted(str(p) for p in (tmp_path / "photos").rglob("*.png"))
    with open(files[7], "r+b") as f:
        f.truncate(os.path.getsize(files[7]) * 2 // 3)  # the header reads, the pixels do not
    with open(files[50], "wb") as f:
        f.write(b"no image")
    return files


def test_workers_decode_what_this_process_decodes_and_list_the_same_bad_files(tmp_path, on, monkeypatch):
    files = folder_with_bad_files(tmp_path)
    x, kept, bad = cache.decode_all(files, decoder(), skip=(images.BadFile,))
    assert workers._pool is not None and workers._pool.alive == 2
    monkeypatch.setenv("LAYERC_DECODE_PROCESSES", "0")
    here = cache.decode_all(files, decoder(), skip=(images.BadFile,))
    assert np.array_equal(x, here[0]) and kept == here[1] and bad == here[2]
    assert kept == [i for i in range(len(files)) if i not in (7, 50)]
    assert [p for p, _ in bad] == [files[7], files[50]] and "cannot be decoded" in bad[0][1]
    assert x.shape == (88, 12, 12, 1) and x.dtype == np.float32


def test_the_workers_do_the_decoding(tmp_path, on, monkeypatch):
    files = folder_with_bad_files(tmp_path)[:20]
    expected = cache.decode_all(files, decoder(), skip=(images.BadFile,))
    monkeypatch.setattr(images, "decode_image", lambda *a: pytest.fail("decoded in the job's process"))
    x, kept, bad = cache.decode_all(files, decoder(), skip=(images.BadFile,))
    assert np.array_equal(x, expected[0]) and (kept, bad) == expected[1:]


def test_a_bad_file_met_while_streaming_is_the_error_this_process_gives(tmp_path, on, monkeypatch):
    files = folder_with_bad_files(tmp_path)
    streamed = Streamed(files, decoder(), (12, 12, 1), np.float32)
    with pytest.raises(DataError) as remote:
        streamed[0:10]
    monkeypatch.setenv("LAYERC_DECODE_PROCESSES", "0")
    with pytest.raises(DataError) as here:
        streamed[0:10]
    assert str(remote.value) == str(here.value) and str(remote.value).startswith(f"{files[7]}: cannot be decoded")


def test_a_worker_that_dies_is_not_used_again_and_its_files_are_decoded_here(tmp_path, on):
    files = folder_with_bad_files(tmp_path)[:6]
    expected = cache.decode_all(files, decoder(), skip=(images.BadFile,))
    pool = workers._pool
    for proc in pool.started:
        proc.kill()
        proc.wait()
    for _ in pool.started:  # one chunk: each call finds one of them gone
        x, kept, bad = cache.decode_all(files, decoder(), skip=(images.BadFile,))
        assert np.array_equal(x, expected[0]) and (kept, bad) == expected[1:]
    assert pool.alive == 0 and workers.pool(10 ** 6) is None  # threads from now on, without waiting
    start = time.monotonic()
    for _ in range(3):
        x, kept, bad = cache.decode_all(files, decoder(), skip=(images.BadFile,))
        assert np.array_equal(x, expected[0]) and (kept, bad) == expected[1:]
    assert time.monotonic() - start < 2


def test_streamed_training_with_workers_ends_with_the_in_memory_weights(tmp_path, on):
    spec = write_spec(tmp_path)
    jobs.train(spec, run_dir=tmp_path / "memory")
    jobs.train(spec, overrides=["data.stream=true"], run_dir=tmp_path / "streamed")
    assert workers._pool is not None and workers._pool.alive == 2  # the workers decoded the batches
    assert same_weights(tmp_path / "memory", tmp_path / "streamed")


def test_a_worker_ignores_ctrl_c(tmp_path, on):
    files = folder_with_bad_files(tmp_path)[:6]
    expected = cache.decode_all(files, decoder(), skip=(images.BadFile,))
    for proc in workers._pool.started:
        proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    assert all(proc.poll() is None for proc in workers._pool.started)
    x, kept, bad = cache.decode_all(files, decoder(), skip=(images.BadFile,))
    assert np.array_equal(x, expected[0]) and workers._pool.alive == 2


JOB = """\
import sys
from layerc.data import workers
pool = workers.pool(10 ** 6)
print(" ".join(str(p.pid) for p in pool.started), flush=True)
sys.stdin.read()
"""


def gone(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.split()[1] == "Z" for line in f if line.startswith("State:"))  # exited, not reaped
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_workers_exit_when_their_job_is_killed(monkeypatch):
    monkeypatch.setenv("LAYERC_DECODE_PROCESSES", "2")
    job = subprocess.Popen([sys.executable, "-c", JOB], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    pids = [int(p) for p in job.stdout.readline().split()]
    assert len(pids) == 2 and not any(gone(p) for p in pids)
    job.kill()
    job.wait()
    deadline = time.monotonic() + 20
    while not all(gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(gone(p) for p in pids)


def test_workers_check_headers_as_this_process_does(tmp_path, on, monkeypatch):
    files = folder_with_bad_files(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    files.insert(3, str(tmp_path / "empty.png"))
    monkeypatch.setattr(workers, "CHUNK", 16)
    here = images.check_headers(files)
    assert [p for p, _ in here] == [files[3], files[51]]  # the truncated file's header reads
    monkeypatch.setattr(images, "open_image", lambda *a: pytest.fail("checked in the job's process"))
    assert workers.check_headers(decoder(), files, threads=2) == here

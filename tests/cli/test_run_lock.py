"""Issue 18 point 18: one `layerc train` at a time on a run directory."""
import os
import subprocess
import sys
import time

import pytest

from layerc import jobs
from layerc.runs import LOCK, RunError, run_lock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock")


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "layerc", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})


def test_two_processes_started_together_on_one_run_dir(tiny_spec, tmp_path):
    spec, run = tiny_spec(epochs=400), tmp_path / "run"
    procs = [start("train", str(spec), "--run-dir", str(run), "-q") for _ in range(2)]
    end = time.time() + 120
    while all(p.poll() is None for p in procs):
        assert time.time() < end, "neither process was refused"
        time.sleep(0.05)
    loser = next(p for p in procs if p.poll() is not None)
    winner = next(p for p in procs if p is not loser)
    _, loser_err = loser.communicate()
    assert winner.poll() is None  # refused at once, while the other still trains
    winner.kill()
    winner.wait()
    assert loser.returncode == 1, loser_err
    assert f"in use by another layerc train (process {winner.pid})" in " ".join(loser_err.split())
    assert "Traceback" not in loser_err


def test_resume_while_training_is_refused_and_a_dead_holder_does_not_block(tiny_spec, tmp_path):
    spec, run = tiny_spec(epochs=400), tmp_path / "run"
    first = start("train", str(spec), "--run-dir", str(run), "-q")
    end = time.time() + 60
    while not (run / "checkpoint.npz").exists():
        assert first.poll() is None and time.time() < end, first.communicate()
        time.sleep(0.02)
    t = time.time()
    second = subprocess.run([sys.executable, "-m", "layerc", "train", "--resume", str(run)],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1 and f"process {first.pid}" in " ".join(second.stderr.split())
    assert time.time() - t < 30
    first.kill()
    first.wait()
    assert (run / LOCK).read_text().strip() == str(first.pid)  # stale: its holder is dead
    with run_lock(run):
        assert (run / LOCK).read_text().strip() == str(os.getpid())


def test_the_lock_is_released_after_an_in_process_run(tiny_spec, tmp_path):
    run = jobs.train(tiny_spec(epochs=1), run_dir=tmp_path / "run").run_dir
    with run_lock(run):
        with pytest.raises(RunError, match=f"process {os.getpid()}"):
            with run_lock(run):
                pass


def test_a_holder_that_has_not_written_its_pid_yet_is_named_once_it_has(tmp_path):
    """The holder writes its pid just after taking the lock: a process refused in between
    read an empty file, or the dead previous holder's pid (seen under load: "process
    unknown"); it now reads again until the file names a live process."""
    import fcntl
    import threading

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK).write_text(f"{dead.pid}\n")  # left by a run that ended
    fd = os.open(tmp_path / LOCK, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a second open file description: run_lock is refused

    def write_pid():
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    writer = threading.Timer(0.3, write_pid)
    writer.start()
    try:
        with pytest.raises(RunError, match=f"process {os.getpid()}\\)"):
            with run_lock(tmp_path):
                pass
        os.ftruncate(fd, 0)  # a holder that never writes: named unknown, within a bounded wait
        t = time.time()
        with pytest.raises(RunError, match="process unknown"):
            with run_lock(tmp_path):
                pass
        assert time.time() - t < 5
    finally:
        writer.join()
        os.close(fd)

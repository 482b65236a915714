"""Real processes: Ctrl-C saves and exits cleanly; SIGKILL at random moments never loses the run."""
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from layerc import jobs
from layerc.runs import load_arrays, load_checkpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def start(*args):
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.Popen([sys.executable, "-m", "layerc", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for(path, proc, timeout=60):
    end = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, "timed out"
        time.sleep(0.02)


def same_weights(a, b):
    wa, wb = load_arrays(a / "weights.npz"), load_arrays(b / "weights.npz")
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_a_checkpoint_and_resume_finishes_identically(tiny_spec, tmp_path, sig, code):
    spec = tiny_spec(epochs=40)
    whole = jobs.train(spec, run_dir=tmp_path / "whole").run_dir
    run = tmp_path / "run"
    proc = start("train", str(spec), "--run-dir", str(run))
    wait_for(run / "metrics.csv", proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and f"Resume with: layerc train --resume {run}" in out
    load_checkpoint(run)
    resumed = start("train", "--resume", str(run))
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert same_weights(whole, run)


def kill_cycle(spec, run, kills, seed=1):
    """Start or resume training, SIGKILL it after a random delay, `kills` times, checking the
    checkpoint after each; then let it finish. Returns the checkpoints seen (epoch, step)."""
    rng = random.Random(seed)
    seen = []
    for k in range(kills + 1):
        resuming = (run / "checkpoint.npz").exists()
        proc = start("train", "--resume", str(run)) if resuming else start("train", str(spec), "--run-dir", str(run))
        if k == kills:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            return seen
        time.sleep(rng.uniform(0.5, 2.0))
        if proc.poll() is not None:  # finished before this kill: a faster machine
            assert proc.returncode == 0, proc.communicate()
            return seen
        proc.kill()
        proc.wait()
        if (run / "checkpoint.npz").exists():
            arrays, meta = load_checkpoint(run)  # always loads: never torn
            assert all(np.isfinite(v).all() for key, v in arrays.items() if key.startswith("weights/"))
            seen.append((meta["epoch"], meta["step"]))
    return seen


def test_sigkill_at_random_moments_never_loses_the_run(tiny_spec, tmp_path):
    spec = tiny_spec(epochs=150)
    x = np.random.default_rng(0).standard_normal((4000, 12)).astype(np.float32)  # longer epochs
    np.savez(tmp_path / "data.npz", x=x, y=(x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5))
    whole = jobs.train(spec, run_dir=tmp_path / "whole").run_dir
    run = tmp_path / "run"
    seen = kill_cycle(spec, run, kills=5)
    assert len(seen) >= 2 and seen == sorted(seen), seen  # progress survives every kill
    assert same_weights(whole, run)

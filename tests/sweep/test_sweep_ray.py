"""Sweeps that run: embedded Ray, and a two-node loopback cluster (placement, a killed
node, Ctrl-C and --resume). Skipped without ray; tiny data, 2-3 epochs, small Dense models."""
from __future__ import annotations

import csv
import json
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from .conftest import ROOT, SWEEP, env  # noqa: E402

RUN_FILES = ("spec.yaml", "metrics.csv", "run.json", "weights.npz", "checkpoint.npz", "data.json")


def _sweep(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "layerc", "sweep", *map(str, args)], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def _trials(out: Path) -> dict:
    return {p.name: json.loads((p / "trial.json").read_text()) for p in sorted((out / "trials").iterdir())}


def _check_complete(out: Path, n: int, epochs: int):
    trials = _trials(out)
    assert len(trials) == n
    for name in trials:
        folder = out / "trials" / name
        assert all((folder / f).is_file() for f in RUN_FILES), sorted(p.name for p in folder.iterdir())
        run = json.loads((folder / "run.json").read_text())
        assert run["status"] == "finished" and run["epochs_done"] == epochs
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert len(rows) == n and all(r["status"] == "finished" and r["epochs"] == str(epochs) for r in rows)
    return trials, rows


def test_embedded_two_trial_sweep(sweep_dir, tmp_path):
    from layerc.cli.sweep import results_table  # noqa: F401  (the CLI module imports without ray running)

    out = tmp_path / "out"
    text = SWEEP.format(samples=2, epochs=2).replace("resources: {cpus_per_trial: 1}",
                                                      "resources: {cpus_per_trial: 2}\nscheduler: asha")
    r = _sweep(sweep_dir(text=text), "--output", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    trials = _trials(out)
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert len(trials) == len(rows) == 2
    for row in rows:  # ASHA may stop the worse trial after its first epoch; its epochs are kept
        folder = out / "trials" / row["trial"]
        epochs = len(list(csv.DictReader((folder / "metrics.csv").open())))
        assert row["epochs"] == str(epochs) and (folder / "checkpoint.npz").is_file()
        assert row["status"] == ("finished" if epochs == 2 else "stopped early")
        assert (folder / "weights.npz").is_file() == (epochs == 2)
    assert rows[0]["status"] == "finished" or rows[1]["status"] == "finished"
    assert all(t["threads"] == {"layerc": 2, "openblas": 2} for t in trials.values())  # cpus_per_trial
    assert "running (train.optimizer.learning_rate=" in r.stdout  # plain lines when piped
    assert f"layerc train {out / 'best.yaml'}" in r.stdout
    info = json.loads((out / "sweep.json").read_text())
    assert info["status"] == "finished" and info["best"] == rows[0]["trial"]
    assert float(rows[0]["best_val_accuracy"]) >= float(rows[1]["best_val_accuracy"])
    assert {t["seed"] for t in trials.values()} == {int(r["seed"]) for r in rows} and len(rows) == 2
    for t in trials.values():  # the sampled values and the sweep's seed-derived seed are in the run's spec
        spec = (out / "trials" / t["trial"] / "spec.yaml").read_text()
        assert f"seed: {t['seed']}" in spec and f"units: {t['values']['layers.dense.units']}" in spec
    from layerc.spec import load_spec

    best = load_spec(out / "best.yaml")  # ready for layerc train
    assert best.train.epochs == 2


def test_max_concurrent_one_runs_one_trial_at_a_time(sweep_dir, tmp_path):
    """On 2 cores 2 trials would overlap; --max-concurrent 1 must hold for random and grid
    search (Tune ignores its max_concurrent_trials for a variant generator passed in; optuna
    goes through Tune's own ConcurrencyLimiter)."""
    text = SWEEP.format(samples=3, epochs=2)
    r = _sweep(sweep_dir(text=text), "--output", tmp_path / "out", "--max-concurrent", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    running, most = set(), 0
    for line in r.stdout.splitlines():
        trial, _, state = line.partition(": ")
        if state.startswith("running ("):
            running.add(trial)
        elif state.startswith(("done", "failed")):
            running.discard(trial)
        most = max(most, len(running))
    assert most == 1 and len(_trials(tmp_path / "out")) == 3, r.stdout


def test_cluster_places_trials_on_both_nodes(cluster, sweep_dir, tmp_path):
    out = tmp_path / "out"  # ~5 s trials: both run at once (a short one would end first and lend its actor)
    text = SWEEP.format(samples=2, epochs=10) + "search: optuna\n"
    r = _sweep(sweep_dir(text=text.replace("{train.epochs:", "{train.batch_size: 4, train.epochs:"), rows=8000),
               "--output", out, "--address", cluster.address)
    assert r.returncode == 0, r.stdout + r.stderr
    trials, _ = _check_complete(out, 2, 10)
    assert all(t["threads"] == {"layerc": 1, "openblas": 1} for t in trials.values())
    nodes = {t["attempts"][-1]["node"] for t in trials.values()}
    assert nodes == set(cluster.ids.values())  # one trial on the head, one on the second node


def test_interrupted_sweep_resumes_without_rerunning_finished_trials(cluster, sweep_dir, tmp_path):
    out, path = tmp_path / "out", sweep_dir(samples=3, epochs=2)
    p = subprocess.Popen([sys.executable, "-m", "layerc", "sweep", str(path), "--output", str(out), "--address",
                          cluster.address, "--max-concurrent", "1"], cwd=ROOT, env=env(),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:  # stopped once Tune has a trial complete (its files alone can come a moment before that)
        deadline, seen = time.time() + 180, []
        while time.time() < deadline and p.poll() is None and not any(": done" in line for line in seen):
            if select.select([p.stdout], [], [], 0.2)[0]:
                seen.append(p.stdout.readline())
        assert list(out.glob("trials/*/weights.npz")), "no trial finished: " + "".join(seen)
        p.send_signal(signal.SIGINT)
        text = "".join(seen) + p.communicate(timeout=120)[0]
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, text
    assert f"Resume with: layerc sweep --resume {out}" in text
    done = {f.parent.name: f.stat().st_mtime_ns for f in out.glob("trials/*/weights.npz")}
    assert json.loads((out / "sweep.json").read_text())["status"] == "interrupted"
    text = path.read_text()
    path.write_text(text.replace("samples: 3", "samples: 4"))
    r = _sweep("--resume", out, "--address", cluster.address)
    assert r.returncode == 1 and "the sweep file changed since the sweep" in r.stderr, r.stderr
    path.write_text(text)
    r = _sweep("--resume", out, "--address", cluster.address)
    assert r.returncode == 0, r.stdout + r.stderr
    trials, _ = _check_complete(out, 3, 2)
    for name, mtime in done.items():  # finished before the stop: not trained again
        assert (out / "trials" / name / "weights.npz").stat().st_mtime_ns == mtime
        assert len(trials[name]["attempts"]) == 1


def test_killed_worker_node_the_sweep_finishes_and_the_trial_is_retried(cluster, sweep_dir, tmp_path):
    """Last in this module: it kills the second node."""
    # ~0.5 s epochs (8,000 rows, batch 4): the trial is still running when its node goes, however
    # late the kill comes after its first epoch (with 300 rows all 25 epochs took under a second)
    out, epochs = tmp_path / "out", 12
    text = SWEEP.format(samples=2, epochs=epochs).replace("{train.epochs:", "{train.batch_size: 4, train.epochs:")
    p = subprocess.Popen([sys.executable, "-m", "layerc", "sweep", str(sweep_dir(text=text, rows=8000)),
                          "--output", str(out), "--address", cluster.address], cwd=ROOT, env=env(),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    worker = cluster.ids["worker"]
    try:
        deadline = time.time() + 180
        on_worker = []
        while time.time() < deadline and p.poll() is None and not on_worker:
            on_worker = [f for f in out.glob("trials/*/metrics.csv")
                         if json.loads((f.parent / "trial.json").read_text())["attempts"][-1]["node"] == worker]
            time.sleep(0.1)
        assert on_worker, "no trial reported an epoch from the second node"
        cluster.kill("worker")
        text = p.communicate(timeout=240)[0]
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, text
    trials, _ = _check_complete(out, 2, epochs)
    lost = trials[on_worker[0].parent.name]
    assert [a["node"] for a in lost["attempts"]] == [worker, cluster.ids["head"]]  # retried on the head


def test_an_address_where_no_cluster_answers_is_one_line(sweep_dir, tmp_path):
    from .conftest import free_ports

    r = _sweep(sweep_dir(), "--output", tmp_path / "out", "--address", f"127.0.0.1:{free_ports(1)[0]}", timeout=120)
    assert r.returncode == 1 and "no Ray cluster answers at 127.0.0.1:" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()

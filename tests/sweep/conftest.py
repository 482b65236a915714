"""A tiny spec and data for sweeps, and a two-node Ray cluster on loopback started by the tests.

The cluster's nodes are `ray start --block` subprocesses in sessions of their own, each
with its own ports and temp dir; they are stopped by their process group ids (never
`ray stop`, which would stop every Ray on the machine), also when a test fails.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")

SPEC = """\
name: tiny-sweep
seed: 7
input: {shape: [12]}
layers:
  - Dense: {units: 8, activation: relu}
  - Dropout: {rate: 0.2}
  - Dense: {units: 3, activation: softmax}
data: {format: npz, train: data.npz, validation_split: 0.2}
train:
  optimizer: adam
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  batch_size: 32
  epochs: 2
  tensorboard: false
"""

SWEEP = """\
spec: spec.yaml
metric: val_accuracy
mode: max
samples: {samples}
seed: 3
set: {{train.epochs: {epochs}}}
space:
  train.optimizer.learning_rate: {{loguniform: [1.0e-3, 1.0e-2]}}
  layers.dense.units: {{choice: [4, 8]}}
resources: {{cpus_per_trial: 1}}
"""


@pytest.fixture
def sweep_dir(tmp_path):
    """A folder with spec.yaml, data.npz (300 samples, or `rows`) and a writer for sweep.yaml."""

    def data(rows):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((rows, 12)).astype(np.float32)
        y = ((x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)).astype(np.int64)
        np.savez(tmp_path / "data.npz", x=x, y=y)

    data(300)
    (tmp_path / "spec.yaml").write_text(SPEC)

    def write(samples=2, epochs=2, text=None, name="sweep.yaml", rows=None):
        if rows is not None:
            data(rows)
        path = tmp_path / name
        path.write_text(text if text is not None else SWEEP.format(samples=samples, epochs=epochs))
        return path

    return write


_TOKEN = secrets.token_hex(32)  # this test cluster's own token (Ray's token auth), never a file


def env() -> dict:
    """The environment of the nodes and of the drivers that join them."""
    e = dict(os.environ, PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0",
             RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=_TOKEN,
             RAY_health_check_period_ms="500", RAY_health_check_failure_threshold="3",
             RAY_health_check_initial_delay_ms="500")
    return e


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Cluster:
    def __init__(self, tmp: Path):
        self.tmp, self.nodes, self.address = tmp, {}, None

    def start_node(self, name: str, head: bool):
        ports = free_ports(9)
        # worker ports below the ephemeral range the free ports above come from
        base = 11000 + (os.getpid() % 90) * 200 + (0 if head else 100)
        args = [str(RAY), "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                f"--temp-dir={self.tmp / name}", "--disable-usage-stats",
                f"--node-manager-port={ports[1]}", f"--object-manager-port={ports[2]}",
                f"--dashboard-agent-listen-port={ports[3]}", f"--dashboard-agent-grpc-port={ports[4]}",
                f"--runtime-env-agent-port={ports[5]}", f"--metrics-export-port={ports[6]}",
                f"--min-worker-port={base}", f"--max-worker-port={base + 99}",
                "--object-store-memory=100000000"]
        if head:
            self.address = f"127.0.0.1:{ports[0]}"
            args += ["--head", f"--port={ports[0]}", "--include-dashboard=false"]
        else:
            args += [f"--address={self.address}"]
        log = open(self.tmp / f"{name}.log", "wb")
        self.nodes[name] = subprocess.Popen(args, env=env(), stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.nodes[name].node_manager_port = ports[1]

    def wait_for_nodes(self, n: int, timeout=90) -> dict:
        """Node ids by node name, once n nodes are alive (asked through a short-lived driver)."""
        script = ("import ray, json; ray.init(address=%r, log_to_driver=False, logging_level='ERROR');"
                  "print(json.dumps([[x['NodeID'], x['NodeManagerPort']] for x in ray.nodes() if x['Alive']]))")
        deadline = time.time() + timeout
        while time.time() < deadline:
            for name, p in self.nodes.items():
                if p.poll() is not None:
                    raise RuntimeError(f"ray node {name} exited: {(self.tmp / f'{name}.log').read_text()[-2000:]}")
            try:
                r = subprocess.run([sys.executable, "-c", script % self.address], env=env(), capture_output=True,
                                   text=True, timeout=30)
            except subprocess.TimeoutExpired:
                continue
            if r.returncode == 0:
                import json

                alive = {port: node for node, port in json.loads(r.stdout.strip().splitlines()[-1])}
                if len(alive) >= n:
                    return {name: alive.get(p.node_manager_port) for name, p in self.nodes.items()}
            time.sleep(1)
        raise RuntimeError(f"the ray cluster did not come up with {n} nodes")

    def kill(self, name: str):
        p = self.nodes[name]
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=30)

    def stop(self):
        for name in list(self.nodes)[::-1]:
            p = self.nodes[name]
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(timeout=5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
            try:
                os.killpg(p.pid, signal.SIGKILL)  # what is left of its group (raylet, workers)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and a second node on 127.0.0.1, one CPU each; stopped by their pids at the end."""
    pytest.importorskip("ray")
    c = Cluster(tmp_path_factory.mktemp("ray"))
    try:
        c.start_node("head", head=True)
        time.sleep(2)
        c.start_node("worker", head=False)
        c.ids = c.wait_for_nodes(2)
        yield c
    finally:
        c.stop()

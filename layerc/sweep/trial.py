"""One trial, as Ray Tune runs it: an ordinary layerc run whose files go back to the driver.

The run directory is written on the trial's own node (a temporary folder) by the usual
`RunRecorder`; after every epoch the files that changed are sent to the `Collector`, an
actor pinned to the machine that started the sweep, which writes them atomically under
`DIR/trials/<trial>/`. No shared filesystem is needed, and a trial that ASHA stops or a
node that dies leaves the files of its last finished epoch in DIR.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath

from ..train.callbacks import Callback

TRIAL_INFO = "trial.json"
_SKIPPED = ("train.lock",)


def trial_seed(sweep_seed: int, values: dict) -> int:
    """The spec seed of a trial: fixed by the sweep's seed and the trial's sampled values
    (Tune's trial ids are random with some searchers, so they cannot be the key)."""
    key = json.dumps(values, sort_keys=True)
    digest = hashlib.sha256(f"layerc-sweep/{sweep_seed}/{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


class Collector:
    """Writes trials' files under `root/trials/`, on the driver's machine (a Ray actor there)."""

    def __init__(self, root: str):
        self.root = Path(root) / "trials"
        self.root.mkdir(parents=True, exist_ok=True)

    def start(self, trial: str, info: dict) -> None:
        """A trial (or its retry) begins: clear what an earlier attempt left, keep its record."""
        folder = self._folder(trial)
        attempts = []
        if (folder / TRIAL_INFO).is_file():
            try:
                attempts = json.loads((folder / TRIAL_INFO).read_text()).get("attempts", [])
            except (OSError, ValueError, AttributeError):
                attempts = []
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        info = {**info, "attempts": [*attempts, {"node": info["node"], "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}]}
        self._write(folder / TRIAL_INFO, json.dumps(info, indent=2).encode())

    def put(self, trial: str, files: dict) -> None:
        folder = self._folder(trial)
        for name, data in files.items():
            rel = PurePosixPath(name)
            if rel.is_absolute() or ".." in rel.parts or rel.name == TRIAL_INFO:
                raise ValueError(f"refused file name {name!r} from trial {trial}")
            path = folder.joinpath(*rel.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._write(path, data)

    def _folder(self, trial: str) -> Path:
        if not trial.replace("_", "").isalnum():
            raise ValueError(f"refused trial name {trial!r}")
        return self.root / trial

    @staticmethod
    def _write(path, data):
        from ..runs import atomic_write

        atomic_write(path, data)


class _Sender(Callback):
    """After each epoch (after the RunRecorder wrote it): changed files to the collector,
    then the epoch's metrics to Tune. The last planned epoch is reported after the final
    files (weights.npz, run.json) are sent: Tune may end the trial at its last report."""

    def __init__(self, run_dir: Path, collector, trial: str, node: str):
        self.run_dir, self.collector, self.trial, self.node = run_dir, collector, trial, node
        self.sent: dict[str, tuple] = {}
        self.held = None

    def send(self):
        import ray

        files = {}
        for path in sorted(self.run_dir.rglob("*")):
            if not path.is_file() or path.name in _SKIPPED or path.name.endswith(".tmp"):
                continue
            stat = path.stat()
            key, mark = path.relative_to(self.run_dir).as_posix(), (stat.st_size, stat.st_mtime_ns)
            if self.sent.get(key) != mark:
                files[key], self.sent[key] = path.read_bytes(), mark
        if files:
            ray.get(self.collector.put.remote(self.trial, files))

    def report(self, epoch, logs):
        from ray import tune

        tune.report({**{k: float(v) for k, v in logs.items() if _number(v)}, "epoch": epoch,
                     "node_id": self.node})

    def on_epoch_end(self, trainer, epoch, logs):  # epoch counts from 0
        self.send()
        if epoch + 1 >= trainer.spec.epochs:
            self.held = (epoch + 1, dict(logs))
        else:
            self.report(epoch + 1, logs)

    def finish(self):
        self.send()
        if self.held is not None:
            self.report(*self.held)


def run_trial(config: dict, *, setup: dict):
    """Ray Tune's function trainable: train the spec with this trial's values."""
    import ray
    from ray import tune

    from .. import jobs
    from ..spec import parse_spec
    from ..spec.sweep import override

    threads = limit_threads(setup["cpus"])
    trial = tune.get_context().get_trial_id()
    node = ray.get_runtime_context().get_node_id()
    values = {k: config[k] for k in setup["keys"]}
    seed = trial_seed(setup["seed"], values)
    overrides = [*setup["fixed"], *(override(k, v) for k, v in values.items()), f"seed={seed}"]
    collector = setup["collector"]
    ray.get(collector.start.remote(trial, {"trial": trial, "values": values, "seed": seed, "node": node,
                                           "threads": threads, "overrides": overrides}))
    spec = parse_spec(setup["spec_text"], setup["spec_path"], overrides)
    spec._path = Path(setup["spec_path"])  # data files are found beside it, as for `layerc train`
    work = Path(tempfile.mkdtemp(prefix="layerc-trial-"))
    try:
        sender = _Sender(work / "run", collector, trial, node)
        jobs._train(spec, setup["spec_path"], overrides, resume=None, info=None, callbacks=[sender],
                    on_start=None, epochs=None, run_dir=work / "run")
        sender.finish()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def limit_threads(n: int) -> dict:
    """This process's compute threads: layerc's batch split and OpenBLAS, to `n`; returns
    the counts now in force."""
    os.environ["LAYERC_NUM_THREADS"] = str(n)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(n)
    from ..core import parallel

    blas = parallel._openblas()
    if blas:
        blas[1](n)
    return {"layerc": parallel.n_threads(), "openblas": blas[0]() if blas else None}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)

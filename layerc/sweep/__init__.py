"""`layerc sweep`: hyperparameter sweeps on Ray Tune.

Ray Tune does the searching, scheduling, placement and retries; each trial is an ordinary
layerc run (see `trial.py`). Ray and optuna are imported inside `run_sweep` only.
"""
from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from ..runs import new_run_dir, write_json
from ..spec.diagnostics import SpecError, did_you_mean

INSTALL = "pip install 'layerc[sweep]'"
EXPERIMENT = "tune"  # DIR/tune/: Ray Tune's own experiment state, for --resume


class SweepError(Exception):
    """A sweep that cannot start or continue (one line for the user)."""


@dataclass
class SweepResult:
    dir: Path
    rows: list
    best: dict | None
    interrupted: bool = False


def run_sweep(sweep_path=None, *, output=None, address=None, resume=None, max_concurrent=None,
              on_event=None) -> SweepResult:
    """Run (or, with `resume`, continue) a sweep; returns its trials, best first.

    Args:
        output: the sweep directory (default sweeps/<spec name>/<time>/).
        address: an existing Ray cluster's HOST:PORT (default: Ray on this machine).
        resume: a sweep directory to continue with Tune's restore (finished trials stay).
        max_concurrent: at most this many trials at once.
        on_event: called with (kind, trial id, data) as trials start, report and end.
    """
    from ..spec.sweep import load_sweep

    if resume is not None:
        root = Path(resume)
        sweep_path, before = _resumed_sweep_file(root, sweep_path)
    sweep = load_sweep(sweep_path)
    digests = {"sweep_sha256": _sha(sweep.path.read_bytes()), "spec_sha256": _sha(sweep.spec_text.encode())}
    if resume is not None:
        for key, what in (("sweep_sha256", "sweep file"), ("spec_sha256", "spec")):
            if before.get(key) != digests[key]:
                raise SweepError(f"the {what} changed since the sweep in {root} started; --resume continues "
                                 "the same sweep (start a new one for the changed file)")
    spec = _check_metric(sweep)
    planned = spec.train.epochs
    tune_mods = _import_ray(sweep.file.search)
    if address is not None:
        _check_reachable(address)
    if resume is None:
        root = Path(output) if output else new_run_dir(Path("sweeps"), spec.name)
        root.mkdir(parents=True, exist_ok=True)
        if (root / EXPERIMENT).exists():
            raise SweepError(f"{root} holds a sweep already; continue it with --resume {root}")
    root = root.resolve()
    summary = {"sweep_file": str(Path(sweep_path).resolve()), "spec": str(sweep.spec_path.resolve()),
               **digests, **sweep.file.model_dump(mode="json"), "address": address, "started": _now()}
    write_json(root / "sweep.json", {**summary, "status": "running"})
    return _run(tune_mods, sweep, root, planned, summary, address, resume is not None, max_concurrent, on_event)


def _run(mods, sweep, root, planned, summary, address, resuming, max_concurrent, on_event):
    import ray
    from ray import tune
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from . import events as events_mod
    from .results import trial_rows, write_results
    from .trial import Collector, run_trial

    f = sweep.file
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    init = dict(address=address, log_to_driver=False, configure_logging=True, logging_level="ERROR")
    if address is None:
        init.update(num_cpus=os.cpu_count(), include_dashboard=False)
    ray.init(**init)
    try:
        node = ray.get_runtime_context().get_node_id()
        collector = ray.remote(num_cpus=0)(Collector).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False)).remote(str(root))
        setup = {"spec_text": sweep.spec_text, "spec_path": str(sweep.spec_path.resolve()),
                 "fixed": sweep.fixed_overrides(), "keys": list(f.space), "seed": f.seed,
                 "cpus": f.resources.cpus_per_trial, "collector": collector}
        trainable = tune.with_resources(tune.with_parameters(run_trial, setup=setup),
                                        {"cpu": f.resources.cpus_per_trial})
        events_mod.listener, events_mod.trials = on_event, []
        run_config = tune.RunConfig(name=EXPERIMENT, storage_path=str(root), verbose=0,
                                    callbacks=[events_mod.Events(f.space, f.metric)],
                                    failure_config=tune.FailureConfig(max_failures=f.max_failures),
                                    checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False))
        if resuming:
            tuner = tune.Tuner.restore(str(root / EXPERIMENT), trainable, resume_unfinished=True,
                                       restart_errored=True)
        else:
            tuner = tune.Tuner(trainable, param_space=_space(f, tune), run_config=run_config,
                               tune_config=_tune_config(f, planned, max_concurrent, mods))
        before = signal.getsignal(signal.SIGINT)
        try:
            tuner.fit()
            # Tune stops gracefully at the first SIGINT, saving its state, and then puts the
            # previous handler back (its own stays installed after a run that ends normally)
            interrupted = signal.getsignal(signal.SIGINT) is before
        finally:
            signal.signal(signal.SIGINT, before)
        states = {t.trial_id: t.status for t in events_mod.trials}
    finally:
        ray.shutdown()
    rows = trial_rows(root, f.metric, f.mode, planned, states, interrupted)
    summary.update(ended=_now(), status="interrupted" if interrupted else "finished")
    best = write_results(root, rows, summary, f.metric)
    return SweepResult(root, rows, best, interrupted)


def _space(f, tune) -> dict:
    make = {"uniform": tune.uniform, "loguniform": tune.loguniform, "choice": tune.choice,
            "randint": lambda lo, hi: tune.randint(lo, hi + 1)}  # the file's high bound is included
    if f.search == "grid":
        return {k: tune.grid_search(d.args) for k, d in f.space.items()}
    return {k: make[d.kind](d.args) if d.kind == "choice" else make[d.kind](*d.args) for k, d in f.space.items()}


def _tune_config(f, planned, max_concurrent, mods):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if f.search == "optuna":  # a Searcher: Tune limits it with max_concurrent_trials
        search, limit = mods["OptunaSearch"](seed=f.seed), max_concurrent
    else:  # Tune ignores max_concurrent_trials for a generator passed in: it takes its own limit
        search, limit = BasicVariantGenerator(random_state=f.seed, max_concurrent=max_concurrent or 0), None
    scheduler = FIFOScheduler() if f.scheduler == "fifo" else ASHAScheduler(
        time_attr="training_iteration", max_t=max(planned, 1), grace_period=1, reduction_factor=2)
    return tune.TuneConfig(metric=f.metric, mode=f.mode, num_samples=1 if f.search == "grid" else f.samples,
                           search_alg=search, scheduler=scheduler, max_concurrent_trials=limit,
                           reuse_actors=True)


def _import_ray(search: str) -> dict:
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        raise SweepError(f"`layerc sweep` runs on Ray Tune, which is not installed: {INSTALL}") from None
    mods = {}
    if search == "optuna":
        try:
            import optuna  # noqa: F401
            from ray.tune.search.optuna import OptunaSearch
        except ImportError:
            raise SweepError(f"search: optuna needs optuna, which is not installed: {INSTALL}") from None
        mods["OptunaSearch"] = OptunaSearch
    return mods


def _check_metric(sweep):
    """The spec (with `set:`) built, and the sweep's metric among the names its runs log."""
    from .. import build
    from ..spec import parse_spec
    from ..train.metrics import make_metrics

    spec = parse_spec(sweep.spec_text, str(sweep.spec_path), sweep.fixed_overrides())
    if spec.train is None:
        raise SpecError([sweep.diagnostic(("spec",), "the spec has no `train:` section to sweep")])
    model = build(spec)
    outputs = model.output_names
    names = ["loss"]
    for out in outputs:
        prefix = f"{out}_" if len(outputs) > 1 else ""
        names += [f"{out}_loss"] if len(outputs) > 1 else []
        loss = spec.train.loss_for(out)
        names += [prefix + m.name for m in make_metrics(spec.train.metrics_for(out), loss.type if loss else None, None)]
    data = spec.data
    has_val = data is not None and (getattr(data, "validation_split", 0) or getattr(data, "validation", None))
    logged = names + ([f"val_{n}" for n in names] if has_val else [])
    if sweep.file.metric not in logged:
        raise SpecError([sweep.diagnostic(("metric",), f"the runs do not log {sweep.file.metric!r}; they log "
                                          f"{', '.join(logged)}", did_you_mean(sweep.file.metric, logged))])
    return spec


def _resumed_sweep_file(root: Path, given):
    try:
        info = json.loads((root / "sweep.json").read_text())
    except (OSError, ValueError):
        raise SweepError(f"{root} is not a sweep directory (no readable sweep.json)") from None
    if not (root / EXPERIMENT).is_dir():
        raise SweepError(f"{root} holds no Ray Tune state ({EXPERIMENT}/) to resume")
    path = Path(given) if given else Path(info.get("sweep_file", ""))
    if not path.is_file():
        raise SweepError(f"the sweep file {str(path)!r} of {root} is gone; give it: layerc sweep FILE --resume {root}")
    return path, info


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT that answers, before Ray retries a dead address for minutes."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        if address == "auto" or "://" in address:
            return  # Ray's own forms: the local cluster, a Ray Client address
        raise SweepError(f"--address is HOST:PORT (the head's `ray start --head --port`); got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise SweepError(f"no Ray cluster answers at {address} ({e.strerror or e}); start one with "
                         f"`ray start --head --port={port}` or leave out --address to run on this machine") from None


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")

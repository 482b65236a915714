"""What the CLI commands do, as library functions: train, evaluate, predict.

The CLI parses arguments and renders; everything that touches files, data, models and
the trainer happens here.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import build, load_spec
from .runs import (CHECKPOINT, WEIGHTS, RunError, RunRecorder, load_checkpoint, load_weights, read_weights,
                   new_run_dir, save_checkpoint, write_json, atomic_write, check_writable, run_lock,
                   stop_now, weight_shapes)
from .spec.diagnostics import Diagnostic, SpecError
from .core.base import elements
from .summary import readable_size

FITTED = "data.json"


class ResourceError(Exception):
    """The job would need more memory than the machine has."""


@dataclass
class TrainResult:
    run_dir: Path
    history: list
    interrupted: str | None = None  # the signal's name when stopped by one
    abandoned: bool = False  # stopped at once by a second Ctrl-C: the last epoch's checkpoint stands
    test: dict | None = None
    messages: list = field(default_factory=list)


# -- data -----------------------------------------------------------------------------------
def load_dataset(spec, model, stream: bool = False):
    """The spec's `data:` section loaded for the model's input and output shapes.

    What is fitted on the training data (vocabulary, statistics) is refitted the same
    way each time: the split and the seed are fixed, so evaluate sees what train saw.
    With `stream`, samples stay in their files and are decoded batch by batch (data/stream.py)."""
    from .data import load_data

    if spec.data is None:
        raise SpecError([_diag(spec, (), "the spec has no `data:` section to train or evaluate on")])
    if len(model.input_names) != 1 or len(model.output_names) != 1:
        return _load_named(spec, model)
    data = spec.data.single() if hasattr(spec.data, "single") else spec.data  # CSV columns by name
    if stream:
        data = data.model_copy(update={"stream": True})
    from .data.peek import data_diagnostics

    if diags := data_diagnostics(spec, model):  # located, before any data is read
        raise SpecError(diags)
    spec_dir = Path(spec._path).parent if spec._path else Path.cwd()
    return load_data(data, spec_dir=spec_dir, input_shape=model.input_shapes[0],
                     output_shape=model.output_shapes[0], loss_name=_loss_name(spec),
                     seed=spec.seed, dtype=spec.dtype)


def _load_named(spec, model):
    """The data of a model with several inputs or outputs: an .npz with an array for each."""
    from .data import load_named_data

    from .data.errors import Located

    if getattr(spec.data, "format", None) not in ("npz", "csv"):
        key = "format" if hasattr(spec.data, "format") else "dataset"
        raise SpecError([_diag(spec, ("data", key), "a model with several inputs or outputs reads `format: npz`, "
                                                    "one array per input and per output, named after them, or "
                                                    "`format: csv` with the columns of each")])
    spec_dir = Path(spec._path).parent if spec._path else Path.cwd()
    losses = {n: spec.train.loss_for(n).type if spec.train else None for n in model.output_names}
    try:
        return load_named_data(spec.data, spec_dir=spec_dir, model=model, losses=losses, seed=spec.seed,
                               dtype=spec.dtype)
    except Located as e:
        raise SpecError([_diag(spec, e.path, str(e))]) from None


def _loss_name(spec):
    return spec.train.one_loss().type if spec.train else None


def _diag(spec, path, message):
    smap = spec._source
    return smap.diagnostic(path, message) if smap else Diagnostic(message)


# -- memory ---------------------------------------------------------------------------------
def available_memory() -> int | None:
    """Bytes the machine can still give (MemAvailable, or the cgroup limit if smaller)."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            avail = min(avail or math.inf, int(limit))
    except OSError:
        pass
    return avail


def training_memory(model, batch_size: int, data_bytes: int = 0) -> dict:
    """Estimated bytes to train: weights, gradients and optimizer slots (x4 the
    parameters), activations kept for backprop (x3 for the forward values, their
    gradients and scratch), and the dataset."""
    item = 8 if model.spec.dtype == "float64" else 4
    params = model.count_params() * item
    acts = sum(elements(n.output_shape) for n in model.nodes) * batch_size * item
    # values a layer keeps besides its output (attention's [heads, T, S] scores and probabilities)
    acts += sum(getattr(n.layer, "scratch_elements", lambda s: 0)(n.input_shape)
                for n in model.nodes) * batch_size * item
    parts = {"parameters and optimizer state": 4 * params, "activations": 3 * acts, "data": data_bytes}
    return {"parts": parts, "total": sum(parts.values())}


def check_memory(model, batch_size: int, data_bytes: int = 0):
    from .data.stream import memory_budget

    estimate = training_memory(model, batch_size, data_bytes)
    machine = available_memory()
    avail = memory_budget(machine)
    if avail is not None and estimate["total"] > avail:
        parts = ", ".join(f"{k} {readable_size(v)}" for k, v in estimate["parts"].items() if v)
        has = (f"the machine has {readable_size(avail)} available" if avail == machine
               else f"the memory budget (LAYERC_MEMORY_BUDGET) is {readable_size(avail)}")
        raise ResourceError(f"training needs about {readable_size(estimate['total'])} ({parts}); "
                            f"{has}. Lower the batch size, "
                            "the model's size, or `data.limit`.")
    return estimate


# -- train ----------------------------------------------------------------------------------
def train(spec_path=None, *, overrides=(), run_root="runs", run_dir=None, resume=None,
          callbacks=(), on_start=None, epochs=None, init_weights=None) -> TrainResult:
    """Train a spec into a run directory, or resume the run in `resume`.

    The run directory is locked for the whole job: a second `train` on it is refused.

    Args:
        on_start: called with (trainer, run_dir, dataset) before the first batch.
        epochs: with `resume`, train to this many epochs in all (extends a finished run).
        init_weights: a weights .npz (or a run directory) to start a new run from: layers
            whose names match are loaded, the others keep their initial weights.
    """
    if resume is not None:
        resume = Path(resume)
        info = _read_run_info(resume)
        check_writable(resume)
        with run_lock(resume):
            for stale in resume.glob(".*.tmp"):  # left by a process killed mid-write
                stale.unlink(missing_ok=True)
            spec = _resumed_spec(resume, info, epochs)
            return _train(spec, spec_path, overrides, resume, info, callbacks, on_start, epochs)
    if epochs is not None:
        raise RunError("epochs= extends a resumed run; for a new run set train.epochs in the spec")
    spec = load_spec(spec_path, overrides)
    return _train(spec, spec_path, overrides, None, None, callbacks, on_start, None,
                  run_root=run_root, run_dir=run_dir, init_weights=init_weights)


def _train(spec, spec_path, overrides, resume, info, callbacks, on_start, epochs, *,
           run_root="runs", run_dir=None, init_weights=None) -> TrainResult:
    from .data.timeseries import target_scale
    from .runs.tensorboard import event_logger
    from .train.loop import Diverged, Interrupted, Trainer

    if spec.train is None:
        raise SpecError([_diag(spec, (), "the spec has no `train:` section (optimizer, loss, epochs ...)")])
    model = build(spec)
    check_memory(model, spec.train.batch_size)  # before touching any data file
    data_bytes = _estimate_data_bytes(spec, model)
    stream = _streams(spec, model, data_bytes)  # a read-ahead of a few batches, not the data, in memory
    check_memory(model, spec.train.batch_size, 0 if stream else data_bytes)
    data = load_dataset(spec, model, stream=stream)
    init_note = _load_init_weights(model, init_weights) if init_weights is not None else None

    with contextlib.ExitStack() as stack:
        if resume is None:
            run_dir = Path(run_dir) if run_dir else new_run_dir(Path(run_root), model.name)
            run_dir.mkdir(parents=True, exist_ok=True)
            check_writable(run_dir)
            stack.enter_context(run_lock(run_dir))
            if (run_dir / CHECKPOINT).exists():
                raise RunError(f"{run_dir} already holds a run; resume it with --resume {run_dir}")
            atomic_write(run_dir / "spec.yaml", _resolved_yaml(spec).encode())
            write_json(run_dir / FITTED, data.fitted)
            info = _run_info(spec, spec_path, overrides)
            if init_note is not None:
                info["init_weights"] = {"path": str(Path(init_weights).resolve()), "report": init_note}
            write_json(run_dir / "run.json", info)
        else:
            run_dir = resume
        recorder = RunRecorder(run_dir, info)
        events, events_note = event_logger(run_dir, spec.train, _resolved_yaml(spec))
        if events is not None:  # before the recorder: an epoch's events precede its checkpoint
            stack.callback(events.close)
        trainer = Trainer(model, spec.train, callbacks=[*([events] if events else []), recorder, *callbacks],
                          target_scale=target_scale(data.fitted))
        trainer.details.append(events_note)
        if any(getattr(m, "scale", 1.0) != 1.0 for m in trainer.metrics):
            trainer.note("the targets are scaled for training: the loss is on the scaled targets, "
                         "mae/mse/rmse are in the data's own units")
        if init_note is not None:
            trainer.note(init_note)
        for note in data.info.get("notes", ()):  # files left out of the data (bad_files: skip)
            trainer.note(note)
        if resume is not None:
            arrays, meta = load_checkpoint(run_dir)
            trainer.load_state(arrays, meta)
            if epochs is not None:
                _extend(run_dir, spec, info, trainer, meta, epochs)
            elif meta.get("finished"):
                raise RunError(f"{run_dir} finished already ({trainer.epoch} epoch{'' if trainer.epoch == 1 else 's'}); "
                               "nothing to resume "
                               f"(extend it with --set train.epochs=N)")
        if on_start:
            on_start(trainer, run_dir, data)
        result = TrainResult(run_dir, trainer.history, messages=trainer.messages)
        with _stop_on_signals(trainer) as received:
            try:
                try:
                    trainer.fit(*data.train, validation_data=data.validation, seed=spec.seed)
                except Interrupted:
                    save_checkpoint(run_dir, trainer)
                    result.interrupted = received[0] if received else "stop"
                    _record_status(run_dir, info, "interrupted")
                    return result
                if data.test is not None:
                    result.test = trainer.evaluate(*data.test)
                    info["test_metrics"] = result.test
                _record_status(run_dir, info, "finished")
                save_checkpoint(run_dir, trainer, finished=True)
            except _Abandoned:  # files are written atomically: the last checkpoint on disk is whole
                result.interrupted, result.abandoned = "SIGINT", True
                _record_status(run_dir, info, "interrupted")
                return result
            except Exception as e:
                with contextlib.suppress(OSError):  # the error that stopped training is the one to report
                    _record_status(run_dir, info, "diverged" if isinstance(e, Diverged) else "failed", e)
                raise
        result.history = trainer.history
        return result


def _record_status(run_dir: Path, info: dict, status: str, error: Exception | None = None) -> None:
    """run.json's `status` (finished, interrupted, diverged, failed) and the error that ended it."""
    info["status"] = status
    info.pop("error", None)
    if error is not None:
        info["error"] = str(error).strip() or type(error).__name__
    write_json(run_dir / "run.json", info)


def _load_init_weights(model, path) -> str:
    """Load the layers of a weights file whose names match the model's (fine-tuning).

    A layer is loaded when the file has all its weights; a same-named layer with another
    shape is an error (rename the layer to train it from scratch). Returns the report."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS
    arrays = read_weights(path, weight_shapes(model), check_shapes=False)  # only the model's names
    loaded, skipped = [], []
    for node in model.build().weight_nodes():
        if not node.layer.weights:
            continue
        keys = {k: f"{node.name}/{k}" for k in node.layer.weights}
        if not all(name in arrays for name in keys.values()):
            skipped.append(node.name)
            continue
        for k, name in keys.items():
            store, a = node.layer.weights[k], arrays[name]
            if a.shape != store.shape:
                raise RunError(f"{path}: weight {name} has shape {a.shape}; this spec's layer needs "
                               f"{store.shape} (rename the layer to train it from scratch)")
        for k, name in keys.items():
            node.layer.weights[k][...] = arrays[name]
        loaded.append(node.name)
    if not loaded:
        raise RunError(f"{path}: no layer of this spec is in it (layer names must match)")
    return (f"init weights: loaded {len(loaded)} layers from {path}"
            + (f"; skipped {len(skipped)} not in it: {', '.join(skipped)}" if skipped else ""))


def _resumed_spec(run_dir: Path, info: dict, epochs):
    """The run's spec.yaml, refused if it differs from what the run started with."""
    spec = load_spec(run_dir / "spec.yaml")
    digest = hashlib.sha256(_resolved_yaml(spec).encode()).hexdigest()
    if digest != info["spec_sha256"]:
        where = _first_difference(info["spec_resolved"], spec._raw) if "spec_resolved" in info else None
        raise RunError(f"{run_dir}/spec.yaml was edited after the run started"
                       f"{f' ({where})' if where else ''}; resume refuses a changed spec "
                       "(only --set train.epochs=N may extend a run)")
    if epochs is not None:
        spec = load_spec(run_dir / "spec.yaml", [f"train.epochs={int(epochs)}"])
    spec._path = Path(info.get("spec_path") or run_dir / "spec.yaml")
    return spec


def _first_difference(old, new, path=()) -> str | None:
    """The first key path where two YAML documents differ, as `a.b.0.c: old -> new`."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in [*old, *(k for k in new if k not in old)]:
            if k not in new or k not in old:
                side = "removed" if k not in new else "added"
                return f"{'.'.join(map(str, (*path, k)))} {side}"
            found = _first_difference(old[k], new[k], (*path, k))
            if found:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list):
        for i, (a, b) in enumerate(zip(old, new)):
            found = _first_difference(a, b, (*path, i))
            if found:
                return found
        if len(old) != len(new):
            return f"{'.'.join(map(str, path)) or 'the document'}: {len(old)} items -> {len(new)}"
        return None
    if old != new:
        return f"{'.'.join(map(str, path)) or 'the document'}: {old!r} -> {new!r}"
    return None


def _extend(run_dir: Path, spec, info: dict, trainer, meta: dict, epochs: int) -> None:
    """Record a run's new epoch count (spec.yaml, run.json) before training on to it.

    Exact: the schedules count optimizer steps, never the total epochs, so a run trained to
    2 epochs and extended to 4 ends bit for bit where a 4-epoch run ends. A run that early
    stopping ended is refused (its weights may be the restored best ones)."""
    done = trainer.epoch
    old = len(meta["history"]) if meta.get("finished") else None
    if epochs <= done:
        raise RunError(f"{run_dir} has trained {done} epochs already; train.epochs={epochs} does not extend it")
    planned = info.get("epochs")
    if old is not None and planned is not None and old < planned:
        raise RunError(f"{run_dir} was ended by early stopping after {old} of {planned} epochs; "
                       "extending it would not continue the same run")
    atomic_write(run_dir / "spec.yaml", _resolved_yaml(spec).encode())
    info.setdefault("extended", []).append({"from_epochs": planned, "to_epochs": epochs,
                                            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    info.update(epochs=epochs, spec_sha256=hashlib.sha256(_resolved_yaml(spec).encode()).hexdigest(),
                spec_resolved=spec._raw)
    write_json(run_dir / "run.json", info)


class _Abandoned(BaseException):
    """A second Ctrl-C: stop at once, keeping the last checkpoint written."""


@contextlib.contextmanager
def _stop_on_signals(trainer):
    """SIGINT/SIGTERM ask the trainer to stop at the next batch boundary (a checkpoint is
    saved there); a second SIGINT stops at once, wherever the job is (a file being written
    is finished first), with the last checkpoint on disk. Later ones are ignored so that
    the stop itself finishes."""
    received: list[str] = []

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if received and signum == signal.SIGINT:
            if "abandoned" not in received:
                received.append("abandoned")
                stop_now(_Abandoned())
            return
        received.append(name)
        trainer.stop_requested = True

    old = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no handlers, nothing to restore
        pass
    try:
        yield received
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _streams(spec, model, data_bytes: int | None = None) -> bool:
    """Whether the data is read from disk as training goes: `data.stream`, else (a format that
    reads one file a sample) when the job would not fit the memory budget with the data decoded
    in memory (what is refused for the other formats)."""
    from .data.stream import memory_budget
    from .spec.data import STREAMED_FORMATS

    given = getattr(spec.data, "stream", None)
    if given is not None or getattr(spec.data, "format", None) not in STREAMED_FORMATS:
        return bool(given)
    budget = memory_budget(available_memory())
    if data_bytes is None:
        data_bytes = _estimate_data_bytes(spec, model)
    batch = spec.train.batch_size if spec.train else 32
    return budget is not None and training_memory(model, batch, data_bytes)["total"] > budget


def _estimate_data_bytes(spec, model) -> int:
    """The loaded dataset's size, from file headers and row counts (nothing loaded)."""
    from .data import estimate_bytes

    if spec.data is None:
        return 0
    spec_dir = Path(spec._path).parent if spec._path else Path.cwd()
    several = len(model.input_names) > 1 or len(model.output_names) > 1
    names = (model.input_names, model.output_names) if several else None
    return estimate_bytes(spec.data, spec_dir=spec_dir, input_shape=model.input_shapes[0], dtype=spec.dtype,
                          names=names)


def _resolved_yaml(spec) -> str:
    header = "# resolved spec written by layerc (overrides applied)\n"
    return header + yaml.safe_dump(spec._raw, sort_keys=False, allow_unicode=True)


def _run_info(spec, spec_path, overrides) -> dict:
    import numpy
    import pydantic

    from . import __version__

    text = _resolved_yaml(spec)
    return {
        "spec": spec.name,
        "spec_path": str(Path(spec_path).resolve()) if spec_path else None,
        "overrides": list(overrides),
        "seed": spec.seed,
        "spec_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "spec_resolved": spec._raw,
        "epochs": spec.train.epochs if spec.train else None,
        "versions": {"layerc": __version__, "numpy": numpy.__version__, "pydantic": pydantic.__version__,
                     "python": platform.python_version()},
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _read_run_info(run_dir: Path) -> dict:
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run directory")
    try:
        info = json.loads((run_dir / "run.json").read_text())
    except FileNotFoundError:
        raise RunError(f"{run_dir} is not a layerc run directory (no run.json)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunError(f"{run_dir}/run.json is corrupt") from None
    if not isinstance(info, dict):
        raise RunError(f"{run_dir}/run.json is corrupt (not a JSON object)")
    if not isinstance(info.get("spec_sha256"), str):
        raise RunError(f"{run_dir}/run.json is corrupt (no spec_sha256)")
    if not isinstance(info.get("spec_path"), (str, type(None))):
        raise RunError(f"{run_dir}/run.json is corrupt (spec_path is not a string)")
    return info


# -- evaluate and predict --------------------------------------------------------------------
def resolve_run(spec_or_run, weights=None, data_state=None):
    """(spec path, weights path, data state path) from a run directory, or a spec and `--weights`.

    A run directory gives its spec.yaml and weights.npz (a `weights` given beside it wins); the
    data state is `data_state` when given, else the data.json beside the weights (it may not exist).
    """
    spec_or_run = Path(spec_or_run)
    if spec_or_run.is_dir():
        spec_path = spec_or_run / "spec.yaml"
        if not spec_path.is_file():
            raise RunError(f"{spec_or_run} is not a layerc run directory (no spec.yaml)")
        weights = Path(weights) if weights is not None else spec_or_run / WEIGHTS
        if not weights.is_file():
            raise RunError(f"{spec_or_run} holds no {WEIGHTS} (has its training finished?); "
                           "give --weights FILE, e.g. a checkpoint's weights")
    else:
        spec_path = spec_or_run
        if weights is None:
            raise RunError(f"{spec_or_run}: give the trained weights with --weights FILE, "
                           "or a run directory in place of the spec")
        weights = Path(weights)
    if weights.suffix.lower() in (".keras", ".h5", ".hdf5"):
        raise RunError(f"{weights} is a Keras file; import it into layerc weights first "
                       f"(layerc reads its own {WEIGHTS})")
    state = Path(data_state) if data_state is not None else weights.parent / FITTED
    return spec_path, weights, state


def load_trained(spec_path, weights, overrides=(), data_state=None):
    """(spec, model, fitted data state) for a spec and a weights file from a run.

    The weights are loaded (and checked against the spec) before any data is read. A spec with
    a `data:` section needs the fitted state (`data_state`, else the data.json beside the
    weights): without it the inputs could not be prepared as in training."""
    run_dir = Path(spec_path) if Path(spec_path).is_dir() else None
    spec_path, weights, state = resolve_run(spec_path, weights, data_state)
    spec = load_spec(spec_path, overrides)
    if run_dir is not None and (run_dir / "run.json").exists():  # data paths are the original spec's
        spec._path = Path(_read_run_info(run_dir).get("spec_path") or spec_path)
    model = build(spec)
    load_weights(weights, model)
    fitted = None
    if state.is_file():
        try:
            fitted = json.loads(state.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RunError(f"{state} is corrupt") from None
    elif data_state is not None:
        raise RunError(f"data state file {state} not found")
    elif spec.data is not None:
        raise RunError(f"the spec's data section is prepared with state fitted in training (vocabulary, "
                       f"scaling) but there is no {FITTED} beside the weights (looked for {state}); give the run's with --data-state FILE")
    return spec, model, fitted


def evaluate(spec_path, weights=None, overrides=(), data_state=None, report=False) -> dict:
    """Test-set loss and metrics of trained weights (the data's test split); mae/mse/rmse in the data's units.

    With `report`, a classifier's per-class figures and confusion matrix too (train/report.py)."""
    from .data.timeseries import target_scale
    from .train.loop import Trainer

    spec, model, fitted = load_trained(spec_path, weights, overrides, data_state)
    if spec.train is None:
        raise SpecError([_diag(spec, (), "the spec has no `train:` section (it names the loss and metrics)")])
    if report:
        from .train.report import check_classifier, classifying_outputs

        if len(model.output_names) == 1:
            check_classifier(spec.train.one_loss().type)  # before reading any data
        else:
            classifying_outputs(model.output_names, spec.train)
    data = load_dataset(spec, model, stream=_streams(spec, model))
    now = {k: v for k, v in data.fitted.items() if k in (fitted or {}) or k != "raw_inputs"}  # older runs
    if fitted is not None and _canonical(now) != _canonical(fitted):
        raise RunError(f"the data's preprocessing fitted now differs from the run's {FITTED} "
                       "(vocabulary or statistics): evaluate with the run's own spec.yaml")
    split, part = ("test", data.test) if data.test is not None else ("validation", data.validation)
    if part is None:
        raise RunError("the data has no test or validation split to evaluate on")
    metrics = Trainer(model, spec.train, target_scale=target_scale(data.fitted)).evaluate(*part)
    result = {"split": split, "samples": int(len(part[1][0] if isinstance(part[1], list) else part[1])), **metrics}
    if report:
        from .data.builtin import CLASS_NAMES
        from .train.report import split_report

        if len(model.output_names) > 1:  # one report per classifying output
            from .train.report import output_reports

            result["reports"] = output_reports(model, spec.train, *part)
            return result
        names = data.info.get("label_names") or CLASS_NAMES.get(data.fitted.get("dataset"))
        for key, value in split_report(model, spec.train, *part, data.fitted, names).items():
            result.setdefault(key, value)  # a spec's own accuracy metric stays as it was
    return result


def _canonical(fitted) -> str:
    from .runs import _jsonable

    return json.dumps(json.loads(json.dumps(fitted, default=_jsonable)), sort_keys=True)


def predict(spec_path, weights=None, input_path="-", output_path=None, overrides=(), batch_size=None,
            data_state=None, prepared=False):
    """Model outputs for an input file (.npy, .npz, .csv or text lines; "-" reads standard input)."""
    from .data.inputs import inverse_targets, prepare_inputs, read_input_bytes, read_input_file

    if output_path is not None:
        _check_output(Path(output_path))  # before any work
    spec, model, fitted = load_trained(spec_path, weights, overrides, data_state)
    if len(model.input_names) > 1 or len(model.output_names) > 1:
        return _predict_named(spec, model, fitted or {}, input_path, output_path, batch_size)
    if output_path is not None and Path(output_path).suffix == ".npz":
        raise RunError(f"{output_path}: a model with one output writes its predictions to .npy or .csv")
    if (fitted or {}).get("format") == "images" and not prepared:
        return _predict_images(spec, model, fitted, input_path, output_path, batch_size)
    if str(input_path) == "-":
        import sys

        raw = read_input_bytes(sys.stdin.buffer.read())
    else:
        raw = read_input_file(Path(input_path))
    if (raw.size == 0 if hasattr(raw, "size") else not raw):
        raise RunError(f"{'standard input' if str(input_path) == '-' else input_path}: holds no inputs")
    x = prepare_inputs(raw, spec.data, fitted or {}, model.input_shapes[0], prepared=prepared)
    y = inverse_targets(model.predict(x, batch_size=batch_size), fitted or {})
    if output_path is not None:
        write_output(Path(output_path), y, output_columns(spec, model, fitted or {}, y))
    return y


def _predict_images(spec, model, fitted, input_path, output_path, batch_size):
    """predict for image files (one image, a folder, or a list of paths), prepared as in training;
    the CSV has the file first on each row."""
    import numpy as np

    from .data.images import predict_inputs
    from .data.prepare import fit_to_input

    if str(input_path) == "-":
        raise RunError("image inputs are files: give --input photo.jpg, a folder, or a list file of paths")
    size = batch_size or (spec.train.batch_size if spec.train else 32)  # model.predict's batches, read as it goes
    files, batches = predict_inputs(input_path, fitted, size)
    y = np.concatenate([model.predict(fit_to_input(x, model.input_shapes[0], "input"), batch_size=size)
                        for x in batches])
    if output_path is not None:
        header, rows = output_columns(spec, model, fitted, y)
        table = (["file", *header], [[f, *row] for f, row in zip(files, rows)])
        write_output(Path(output_path), y, table)
    return y


def _predict_named(spec, model, fitted, input_path, output_path, batch_size) -> dict:
    """predict for several inputs or outputs: an .npz with one array per input in, one array
    per output out ({output: array}; an .npz by output name, or CSV columns prefixed by it)."""
    import sys

    import numpy as np

    from .data import named
    from .data.inputs import inverse_targets
    from .data.prepare import loss_task

    stdin = str(input_path) == "-"
    raw = named.read_inputs(input_path, sys.stdin.buffer.read() if stdin else None, fitted)  # .npz, or a CSV
    xs = named.prepare(raw, fitted, model, "standard input" if stdin else str(input_path))
    ys = model.predict(xs, batch_size=batch_size)
    outs = {n: inverse_targets(y, {}) for n, y in zip(model.output_names, ys if len(model.output_names) > 1 else [ys])}
    if output_path is None:
        return outs
    path = Path(output_path)
    if str(path) != "-" and path.suffix == ".npz":
        import io

        buf = io.BytesIO()
        np.savez(buf, **outs)
        atomic_write(path, buf.getvalue())
        return outs
    if str(path) != "-" and path.suffix == ".npy":
        raise RunError(f"{path}: a model with several outputs writes its predictions to .npz or .csv")
    header, columns = [], []
    for name, y in outs.items():
        state = (fitted.get("outputs") or {}).get(name) or {}
        task = state.get("task") or loss_task(spec.train.loss_for(name).type)
        h, rows = output_columns(spec, model, {"task": task, "label_names": state.get("label_names")}, y, name)
        header += [f"{name}_{c}" for c in h] if h[0] == "predicted" else h  # a classifier's columns
        columns.append(rows)
    write_output(path, None, (header, [sum(r, []) for r in zip(*columns)]))
    return outs


def output_columns(spec, model, fitted: dict, y, name=None) -> tuple[list[str], list]:
    """(header, rows) of a predictions table: the predicted class by name and each class's
    probability for classifiers, else one column per output value named after the output."""
    import numpy as np

    from .data.prepare import BINARY, CATEGORICAL, SPARSE, loss_task

    task = fitted.get("task") or loss_task(_loss_name(spec))
    flat = np.asarray(y).reshape(len(y), -1)
    if task in (SPARSE, CATEGORICAL, BINARY) and np.asarray(y).ndim == 2:
        probs = np.concatenate([1 - flat, flat], axis=1) if task == BINARY and flat.shape[1] == 1 else flat
        names = list(fitted.get("label_names") or [])
        names += [str(i) for i in range(len(names), probs.shape[1])]
        picked = probs.argmax(axis=1)
        return (["predicted"] + [f"p_{n}" for n in names[:probs.shape[1]]],
                [[names[c]] + list(p) for c, p in zip(picked, probs)])
    column = (fitted.get("timeseries") or {}).get("column")
    base = column if isinstance(column, str) else (name or model.output_names[0])
    header = [base] if flat.shape[1] == 1 else [f"{base}_{i}" for i in range(flat.shape[1])]
    return header, [list(r) for r in flat]


def write_output(path: Path, y, table=None) -> None:
    """Predictions to .npy (the array), .csv (a header, then a row per sample) or "-" (CSV on stdout)."""
    import io
    import sys

    import numpy as np

    _check_output(path)
    if str(path) != "-" and path.suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, y)
        atomic_write(path, buf.getvalue())
        return
    header, rows = table or ([f"y_{i}" for i in range(int(np.prod(y.shape[1:])))], y.reshape(len(y), -1))
    lines = [",".join(header)] + [",".join(_cell(v) for v in row) for row in rows]
    text = "\n".join(lines) + "\n"
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write(path, text.encode())


def _check_output(path: Path) -> None:
    if str(path) != "-" and path.suffix not in (".npy", ".csv", ".npz"):
        raise RunError(f"{path}: write predictions to a .npy or .csv file (.npz with several outputs), "
                       "or - for standard output")


def _cell(v) -> str:
    if isinstance(v, str):
        return f'"{v}"' if any(c in v for c in ',"\n') else v
    return f"{float(v):.8g}"


# -- export ----------------------------------------------------------------------------------
def export(spec_or_run, output, weights=None, format=None, opset=None) -> tuple[str, object]:
    """Write a spec's model to an ONNX or Keras file; returns (format, model).

    A run directory gives its spec.yaml and weights.npz; a spec with `--weights` those weights;
    a spec alone its seeded initial weights (Keras's `model.save` before `fit`). Class names
    for the file's metadata come from the data state beside the weights (label_names)."""
    from .interop import export as export_model, export_format

    output = Path(output)
    fmt = export_format(output, format)  # before any work
    if not output.parent.is_dir():
        raise RunError(f"{output.parent}: no such directory for the exported file")
    state = None
    spec_path = Path(spec_or_run)
    if spec_path.is_dir() or weights is not None:
        spec_path, weights, state = resolve_run(spec_or_run, weights)
    spec = load_spec(spec_path)
    model = build(spec)
    if weights is not None:
        load_weights(weights, model)
    from .train.adapt import check_adapted

    check_adapted(model)  # statistics still to adapt from training data: a located error
    classes = None
    if state is not None and state.is_file():
        try:
            classes = json.loads(state.read_text()).get("label_names")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            raise RunError(f"{state} is corrupt") from None
    classes = classes or getattr(spec.data, "labels", None)
    export_model(model, output, fmt, opset, class_names=classes)
    return fmt, model


# -- diff --------------------------------------------------------------------------------------
class SourceError(Exception):
    """A spec to compare that cannot be read (a missing file, a bad git revision)."""


def read_spec_source(arg: str) -> tuple[str, str]:
    """(text, label) of a spec given as a file path or as `REV:path` (read with `git show`,
    the path relative to the current folder, or absolute)."""
    import subprocess

    from .spec.source import MAX_BYTES

    path = Path(arg)
    rev, sep, rel = arg.partition(":")
    if path.exists() or not sep or not rev or not rel:
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_BYTES + 1)
        except FileNotFoundError:
            raise SourceError(f"{arg}: no such file") from None
        except IsADirectoryError:
            raise SourceError(f"{arg}: is a directory, not a spec file") from None
        except OSError as e:
            raise SourceError(f"{arg}: cannot read: {e.strerror or e}") from None
    else:
        where = Path(rel)
        cwd = where.parent if where.is_absolute() else Path.cwd()
        target = f"./{where.name}" if where.is_absolute() else f"./{rel}"
        while not cwd.is_dir() and cwd != cwd.parent:  # a file deleted since: its nearest folder
            target, cwd = f"./{cwd.name}/{target[2:]}", cwd.parent
        try:
            done = subprocess.run(["git", "show", f"{rev}:{target}"], cwd=cwd, capture_output=True, timeout=60)
        except FileNotFoundError:
            raise SourceError(f"{arg}: reading a revision needs git, which is not installed") from None
        except subprocess.TimeoutExpired:
            raise SourceError(f"{arg}: git show did not answer in 60 s") from None
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip().splitlines()
            raise SourceError(f"{arg}: git show failed: {why[0] if why else f'exit {done.returncode}'}")
        raw = done.stdout
    if len(raw) > MAX_BYTES:
        raise SourceError(f"{arg}: larger than the {MAX_BYTES >> 20} MB a spec may be")
    try:
        return raw.decode("utf-8-sig"), arg
    except UnicodeDecodeError as e:
        raise SpecError([Diagnostic(f"the file is not UTF-8 text (byte {e.start})", arg)]) from None


def spec_totals(spec) -> dict:
    """Total parameters and MACs per sample of a validated spec (compiled, nothing allocated)."""
    model = build(spec)
    return {"params": model.count_params(), "macs": sum(n.macs for n in model.nodes)}


def diff_specs(a: str, b: str) -> dict:
    """Compare two specs (paths or `REV:path`) by meaning: the changes, and the parameter and
    MAC totals before and after. Raises SourceError or SpecError (located)."""
    from .spec import diff as spec_diff
    from .spec import parse_spec

    specs, errors = [], []
    for arg in (a, b):
        try:
            text, label = read_spec_source(arg)
            spec = parse_spec(text, label)
            specs.append((spec, spec_totals(spec)))
        except SpecError as e:
            errors += e.diagnostics
    if errors:
        raise SpecError(errors)
    (sa, ta), (sb, tb) = specs
    changes = spec_diff.diff(sa, sb)
    return {"a": a, "b": b, "same": not spec_diff.differs(changes), "changes": [c.to_dict() for c in changes],
            "params": [ta["params"], tb["params"]], "macs": [ta["macs"], tb["macs"]]}

"""The `layerc` command line: parses arguments, calls the library, renders."""
from __future__ import annotations

import json
import os
import sys
from enum import Enum

# The CLI is our own process: skip pydantic's scan of installed plugins (entry points),
# which costs more start-up time than validating a spec.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

app = typer.Typer(
    name="layerc",
    help="Keras-style neural networks written as YAML: validate, summarise, train, evaluate, predict.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# Logs and pipes get room for wide tables instead of Rich's default 80 columns.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
console = Console(highlight=False, soft_wrap=True, width=_WIDTH, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH, emoji=False)
_state = {"debug": False}


class Format(str, Enum):
    text = "text"
    json = "json"


class CliError(Exception):
    """A user-facing failure: one line, non-zero exit."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _version(value: bool):
    if value:
        from .. import __version__

        console.print(f"layerc {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
):
    _state["debug"] = debug


@app.command()
def validate(
    specs: List[Path] = typer.Argument(..., metavar="SPEC", help="Spec files to check."),
    format: Format = typer.Option(Format.text, "--format", help="text, or json for editors and CI."),
):
    """Check spec files: YAML, schema, graph and shapes. Exit 0 valid, 1 invalid, 2 unreadable."""
    from ..check import check_file
    from . import render

    results = [check_file(p) for p in specs]
    if format == Format.json:
        console.print_json(json.dumps([r.to_dict() for r in results]))
    else:
        for r in results:
            if r.status == 0:
                m = r.model
                console.print(f"[bold]{r.file}[/]: [green]ok[/] ({len(m.nodes)} layers, "
                              f"{m.count_params():,} params)")
            else:
                console.print(render.diagnostics(r.diagnostics))
    raise typer.Exit(max(r.status for r in results))


@app.command()
def summary(
    spec: Path = typer.Argument(..., metavar="SPEC", help="Spec file."),
    format: Format = typer.Option(Format.text, "--format", help="text, or json."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, metavar="N",
                                             help="Batch for the activation-memory estimate (default: train.batch_size)."),
):
    """Print the layer table: output shapes, parameter counts, MACs and memory."""
    from ..summary import summarize
    from . import render

    model = _load_model(spec)
    info = summarize(model, batch_size)
    if format == Format.json:
        console.print_json(json.dumps(info))
        return
    console.print(render.summary_table(info))
    console.print(render.summary_totals(info))


@app.command()
def schema():
    """Print the JSON Schema of the spec language (for editors' YAML language servers)."""
    from ..spec.schema import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@app.command()
def train(
    spec: Optional[Path] = typer.Argument(None, metavar="SPEC", help="Spec file (not needed with --resume)."),
    set_: List[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Override a spec value: key.path=value (YAML). Repeatable."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", metavar="DIR", help="Run directory (default runs/<name>/<time>/)."),
    resume: Optional[Path] = typer.Option(None, "--resume", metavar="RUN_DIR", help="Continue the run in this directory."),
    init_weights: Optional[Path] = typer.Option(None, "--init-weights", metavar="FILE|RUN_DIR",
                                                help="Start from these weights (.npz or a run directory), by layer name."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final results."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also say what was set up or left out (TensorBoard files)."),
):
    """Train a spec on its data; checkpoints every epoch; Ctrl-C saves and stops."""
    from .. import jobs
    from .progress import ProgressDisplay
    from . import render

    if spec is None and resume is None:
        raise CliError("give a spec file to train, or --resume RUN_DIR", 2)
    epochs = None
    if resume is not None and spec is not None:
        raise CliError("give either a spec file or --resume RUN_DIR (a resumed run trains its own spec.yaml)", 2)
    if resume is not None and set_:
        key, _, value = set_[-1].partition("=")
        if len(set_) > 1 or key.strip() != "train.epochs" or not value.strip().isdigit():
            raise CliError("--set cannot change a run being resumed (its spec is fixed in spec.yaml), "
                           "except --set train.epochs=N to extend it", 2)
        epochs = int(value)
    if resume is not None and init_weights is not None:
        raise CliError("--init-weights starts a new run; a resumed run has its own weights", 2)
    display = None
    started = []  # the trainer, once training has begun

    def on_start(trainer, run, data):
        nonlocal display
        started.append(trainer)
        n_train = len(data.train[1])
        n_val = len(data.validation[1]) if data.validation is not None else 0
        what = "resuming" if resume else "training"
        console.print(f"[bold]{what}[/] {trainer.model.name}: {n_train:,} training samples"
                      f"{f', {n_val:,} validation' if n_val else ''}; run directory {run}")
        for text in trainer.messages if quiet else ():
            console.print(text)
        for text in trainer.details if verbose else ():
            console.print(text, style="dim", markup=False)
        if not quiet:
            display = ProgressDisplay(console, trainer.spec.epochs, trainer.spec.batch_size,
                                      live=console.is_terminal)
            trainer.callbacks.append(display)

    def late_sigint(signum, frame):  # jobs.train restores this one when it returns
        if started and started[0].stop_requested:
            return  # a stop is under way: let it print its resume command
        raise KeyboardInterrupt

    import signal

    old_sigint = signal.signal(signal.SIGINT, late_sigint)
    try:
        try:
            result = jobs.train(spec, overrides=() if resume else set_, run_dir=run_dir, resume=resume,
                                on_start=on_start, epochs=epochs, init_weights=init_weights)
        finally:
            if display is not None:
                display.close()
        _report_train(result)
    finally:
        stopping = started and started[0].stop_requested  # then the process ends: ignore more Ctrl-C
        signal.signal(signal.SIGINT, signal.SIG_IGN if stopping else old_sigint)


def _report_train(result):
    from . import render

    if result.abandoned:
        has = (result.run_dir / "checkpoint.npz").exists()
        console.print(f"[yellow]stopped at once by a second SIGINT[/]; "
                      + (f"the last checkpoint is kept. Resume with: layerc train --resume {result.run_dir}"
                         if has else "no checkpoint had been written yet: train again to start over"))
        raise typer.Exit(130)
    if result.interrupted:
        done = result.history[-1]["epoch"] if result.history else 0
        console.print(f"[yellow]stopped by {result.interrupted}[/] after {done} full epoch{'' if done == 1 else 's'}; checkpoint saved. "
                      f"Resume with: layerc train --resume {result.run_dir}")
        raise typer.Exit(130 if result.interrupted == "SIGINT" else 143)
    console.print(render.history_table(result.history, result.test))
    console.print(f"weights: {result.run_dir / 'weights.npz'}")


@app.command()
def evaluate(
    spec: Path = typer.Argument(..., metavar="SPEC|RUN_DIR",
                                help="Spec file, or a run directory (its spec.yaml and weights.npz)."),
    weights: Optional[Path] = typer.Option(None, "--weights", metavar="FILE", help="Weights file (a run's weights.npz)."),
    data_state: Optional[Path] = typer.Option(None, "--data-state", metavar="FILE",
                                              help="The run's fitted data state (default: data.json beside the weights)."),
    set_: List[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Override a spec value: key.path=value."),
    format: Format = typer.Option(Format.text, "--format", help="text, or json."),
):
    """Test-set loss and metrics of trained weights."""
    from .. import jobs
    from . import render

    metrics = jobs.evaluate(spec, weights, overrides=set_, data_state=data_state)
    if format == Format.json:
        console.print_json(json.dumps(metrics))
    else:
        console.print(render.metrics_table(metrics))


@app.command()
def predict(
    spec: Path = typer.Argument(..., metavar="SPEC|RUN_DIR",
                                help="Spec file, or a run directory (its spec.yaml and weights.npz)."),
    weights: Optional[Path] = typer.Option(None, "--weights", metavar="FILE", help="Weights file (a run's weights.npz)."),
    input: str = typer.Option(..., "--input", metavar="FILE",
                              help="Inputs: .npy, .npz, .csv, .txt (one text per line), or - for stdin."),
    output: str = typer.Option("-", "--output", metavar="FILE", help="Predictions to .csv, .npy, or - for stdout (CSV)."),
    data_state: Optional[Path] = typer.Option(None, "--data-state", metavar="FILE",
                                              help="The run's fitted data state (default: data.json beside the weights)."),
    prepared: bool = typer.Option(False, "--prepared", help="Inputs already prepared: skip the data section's preparation."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, metavar="N"),
):
    """Model outputs for new inputs, prepared as the training data was (a CSV with a header)."""
    from .. import jobs

    y = jobs.predict(spec, weights, input, output, batch_size=batch_size, data_state=data_state,
                     prepared=prepared)
    if output != "-":
        err_console.print(f"wrote {len(y):,} predictions of shape {y.shape[1:]} to {output}")


from . import runs as _runs  # noqa: E402 (it uses the console and errors above)

app.add_typer(_runs.app, name="runs")
app.command()(_runs.plot)


def _load_model(path: Path):
    """Load and compile a spec, or exit with its diagnostics."""
    from ..check import check_file
    from . import render

    result = check_file(path)
    if result.status != 0:
        err_console.print(render.diagnostics(result.diagnostics))
        raise typer.Exit(result.status)
    return result.model


def main(argv: Optional[list] = None):
    """Entry point: run the app; turn errors into one clear line unless --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    # --debug is taken anywhere before a `--` (after the subcommand too): moved to the front
    cut = args.index("--") if "--" in args else len(args)
    _state["debug"] = "--debug" in args[:cut]
    if _state["debug"]:
        args = ["--debug"] + [a for a in args[:cut] if a != "--debug"] + args[cut:]
    try:
        app(args=args, standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise SystemExit(130)
    except Exception as e:  # the last line of defence: no traceback without --debug
        if _state["debug"]:
            raise
        from ..spec.diagnostics import SpecError

        if isinstance(e, SpecError):
            from . import render

            err_console.print(render.diagnostics(e.diagnostics))
            raise SystemExit(1)
        code = getattr(e, "code", 1) if isinstance(e, CliError) else 1
        from rich.markup import escape

        err_console.print(f"[bold red]error:[/] {escape(_one_line(e))}")  # keeps `layerc[plot]`
        if not isinstance(e, CliError):
            err_console.print("(run with --debug for the traceback)", style="dim")
        raise SystemExit(code)


def _one_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    known = (CliError, OSError, ValueError, MemoryError)
    if type(e).__name__ in ("RunError", "DataError", "ResourceError", "TrainingError", "Diverged", "InputError"):
        return text
    return text if isinstance(e, known) else f"{type(e).__name__}: {text}"

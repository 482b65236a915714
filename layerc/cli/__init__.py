"""The `layerc` command line: parses arguments, calls the library, renders."""
from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from . import fast
from .fast import console, err_console  # noqa: F401 (the commands' modules import them from here)

app = typer.Typer(
    name="layerc",
    help="Keras-style neural networks written as YAML: validate, summarise, train, evaluate, predict.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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


class CheckFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"


@app.command()
def validate(
    specs: List[Path] = typer.Argument(..., metavar="SPEC", help="Spec files to check."),
    format: CheckFormat = typer.Option(CheckFormat.text, "--format",
                                       help="text, json for editors and CI, or sarif for code scanning."),
    strict: bool = typer.Option(False, "--strict", help="Lint warnings fail too (exit 1); notes never do."),
):
    """Check spec files: YAML, schema, graph, shapes and lints. Exit 0 valid, 1 invalid, 2 unreadable."""
    raise typer.Exit(fast.validate(specs, format.value, strict))


@app.command()
def lint(
    explain: Optional[str] = typer.Option(None, "--explain", metavar="CODE", help="Why a lint exists and how to fix it."),
    list_: bool = typer.Option(False, "--list", help="List the lint codes."),
):
    """The lints `layerc validate` runs: --list their codes, --explain CODE one of them."""
    from ..lint import RULES, explain as explanation

    if explain is not None:
        code = explain.strip().upper()
        by_name = {r.name: c for c, r in RULES.items()}
        code = by_name.get(explain.strip(), code)
        if code not in RULES:
            from ..spec.diagnostics import did_you_mean

            raise CliError(f"no lint code {explain!r}; {did_you_mean(code, RULES) or 'see layerc lint --list'}", 2)
        sys.stdout.write(explanation(code))
    elif list_:
        for r in RULES.values():
            sys.stdout.write(f"{r.code}  {r.severity:<7}  {r.name}: {r.summary}\n")
    else:
        raise CliError("give --list, or --explain CODE (`layerc validate` runs the lints)", 2)


class SummaryFormat(str, Enum):
    text = "text"
    json = "json"
    mermaid = "mermaid"
    dot = "dot"


@app.command()
def summary(
    spec: Path = typer.Argument(..., metavar="SPEC", help="Spec file."),
    format: SummaryFormat = typer.Option(SummaryFormat.text, "--format",
                                         help="text, json, or the layer graph as mermaid (GitHub Markdown) or dot."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, metavar="N",
                                             help="Batch for the activation-memory estimate (default: train.batch_size)."),
):
    """Print the layer table: output shapes, parameter counts, MACs and memory."""
    code = fast.summary(spec, format.value, batch_size)
    if code:
        raise typer.Exit(code)


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
        n_train = len(data.train[0][0] if isinstance(data.train[0], list) else data.train[0])
        n_val = data.info.get("sizes", {}).get("validation", 0) if data.validation is not None else 0
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
    report: bool = typer.Option(False, "--report", help="Per-class precision, recall, F1 and the confusion matrix."),
    plot: Optional[Path] = typer.Option(None, "--plot", metavar="FILE",
                                        help="Draw the confusion matrix (.png, .svg, .pdf); implies --report."),
):
    """Test-set loss and metrics of trained weights."""
    from .. import jobs
    from . import render

    if plot is not None:
        from ..train.report import check_plot, plot_confusion_matrix

        check_plot(plot)  # before any work: the format, and matplotlib installed
    metrics = jobs.evaluate(spec, weights, overrides=set_, data_state=data_state, report=report or plot is not None)
    if plot is not None and "reports" in metrics:
        raise CliError("--plot draws one confusion matrix and this model has several outputs: "
                       "use --report (or --report --format json)", 2)
    if plot is not None:
        plot_confusion_matrix(metrics, plot)
    if format == Format.json:
        console.print_json(json.dumps(metrics))
    else:
        reports = metrics.pop("reports", {})  # several outputs: one report each
        console.print(render.metrics_table(metrics))
        if report and not reports:
            console.print(render.report_tables(metrics))
        for name, one in reports.items():
            console.print(f"[bold]output {name}[/]", markup=True)
            console.print(render.report_tables(one))
    if plot is not None:
        err_console.print(f"wrote the confusion matrix to {plot}")


@app.command()
def predict(
    spec: Path = typer.Argument(..., metavar="SPEC|RUN_DIR",
                                help="Spec file, or a run directory (its spec.yaml and weights.npz)."),
    weights: Optional[Path] = typer.Option(None, "--weights", metavar="FILE", help="Weights file (a run's weights.npz)."),
    input: str = typer.Option(..., "--input", metavar="FILE",
                              help="Inputs: .npy, .npz, .csv, .txt (one text per line), or - for stdin; "
                                   "for an images spec: an image, a folder of them, or a list file of paths."),
    output: str = typer.Option("-", "--output", metavar="FILE", help="Predictions to .csv, .npy (.npz with several outputs), or - for stdout (CSV)."),
    data_state: Optional[Path] = typer.Option(None, "--data-state", metavar="FILE",
                                              help="The run's fitted data state (default: data.json beside the weights)."),
    prepared: bool = typer.Option(False, "--prepared", help="Inputs already prepared: skip the data section's preparation."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, metavar="N"),
):
    """Model outputs for new inputs, prepared as the training data was (a CSV with a header)."""
    from .. import jobs

    y = jobs.predict(spec, weights, input, output, batch_size=batch_size, data_state=data_state,
                     prepared=prepared)
    if output != "-" and isinstance(y, dict):  # several outputs: one array each
        shapes = ", ".join(f"{k} {v.shape[1:]}" for k, v in y.items())
        err_console.print(f"wrote {len(next(iter(y.values()))):,} predictions ({shapes}) to {output}")
    elif output != "-":
        err_console.print(f"wrote {len(y):,} predictions of shape {y.shape[1:]} to {output}")


@app.command(name="import")
def import_(
    model: Path = typer.Argument(..., metavar="MODEL.keras|CONFIG.json",
                                 help="A Keras 3 .keras file, or a model config .json (then --weights)."),
    weights: Optional[Path] = typer.Option(None, "--weights", metavar="FILE.weights.h5",
                                           help="Keras weights (model.save_weights) for a config .json."),
    output: Path = typer.Option(..., "--output", "-o", metavar="DIR", help="Directory for spec.yaml and weights.npz."),
):
    """Turn a Keras model into DIR/spec.yaml and DIR/weights.npz (read safely, never run)."""
    from rich.markup import escape

    from ..interop.keras import KerasError, import_to_dir

    try:
        result = import_to_dir(model, output, weights)
    except KerasError as e:
        raise CliError(str(e)) from None
    m = result.model
    console.print(f"wrote {output / 'spec.yaml'} ({len(m.nodes)} layers, {m.count_params():,} params)"
                  + (f" and {output / 'weights.npz'}" if result.weights else "; no weights given: the spec's "
                     "seeded initial weights apply"))
    for note in result.notes:
        console.print(f"note: {escape(note)}")


class ExportFormat(str, Enum):
    onnx = "onnx"
    keras = "keras"


@app.command()
def export(
    spec: Path = typer.Argument(..., metavar="SPEC|RUN_DIR",
                                help="Spec file, or a run directory (its spec.yaml and weights.npz)."),
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE", help="The file to write: .onnx or .keras."),
    weights: Optional[Path] = typer.Option(None, "--weights", metavar="FILE",
                                           help="Weights file (default: a run's weights.npz; a spec alone: its seeded initial weights)."),
    format: Optional[ExportFormat] = typer.Option(None, "--format", help="onnx or keras (default: from the output's suffix)."),
    opset: Optional[int] = typer.Option(None, "--opset", metavar="N", help="ONNX opset (default 17)."),
):
    """Write the model, with its weights, to an ONNX or Keras file."""
    from .. import jobs

    fmt, model = jobs.export(spec, output, weights, format.value if format else None, opset)
    what = f"ONNX, opset {opset or 17}" if fmt == "onnx" else "Keras"
    console.print(f"wrote {output} ({what}; {model.count_params():,} params)")


def _load_model(path: Path):
    """Load and compile a spec, or exit with its diagnostics."""
    model, code = fast.load_model(path)
    if model is None:
        raise typer.Exit(code)
    return model


def main(argv: Optional[list] = None):
    """Entry point: run the app; turn errors into one clear line unless --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    fast.skip_plugin_loader()
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
        raise SystemExit(report_error(e))


def report_error(e: Exception) -> int:
    """Print an error as one clear line (a spec's diagnostics as such); returns the exit code."""
    from ..spec.diagnostics import SpecError

    if isinstance(e, SpecError):
        from . import render

        err_console.print(render.diagnostics(e.diagnostics))
        return 1
    code = getattr(e, "code", 1) if isinstance(e, CliError) else 1
    from rich.markup import escape  # a message's own brackets ("layerc[onnx]") are text

    err_console.print(f"[bold red]error:[/] {escape(_one_line(e))}")
    if not isinstance(e, CliError):
        err_console.print("(run with --debug for the traceback)", style="dim")
    return code


def _one_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    known = (CliError, OSError, ValueError, MemoryError)
    if type(e).__name__ in ("RunError", "DataError", "ResourceError", "TrainingError", "Diverged", "InputError"):
        return text
    return text if isinstance(e, known) else f"{type(e).__name__}: {text}"


# commands in modules of their own (registered here, after the shared objects they import)
from . import runs as _runs  # noqa: E402
from .compare import compare as _compare  # noqa: E402
from .diff import diff as _diff  # noqa: E402
from .init import init as _init  # noqa: E402
from .sweep import sweep as _sweep  # noqa: E402

app.command(name="diff")(_diff)
app.command(name="init")(_init)
app.command(name="sweep")(_sweep)
app.add_typer(_runs.app, name="runs")
_runs.app.command(name="compare")(_compare)
app.command()(_runs.plot)

"""The `layerc` command line: parses arguments, calls the library, renders."""
from __future__ import annotations

import json
import sys
from enum import Enum
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
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
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
    specs: List[Path] = typer.Argument(..., help="Spec files to check."),
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
    spec: Path = typer.Argument(..., help="Spec file."),
    format: Format = typer.Option(Format.text, "--format", help="text, or json."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1,
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
    args = sys.argv[1:] if argv is None else argv
    _state["debug"] = "--debug" in args
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
        code = getattr(e, "code", 1) if isinstance(e, CliError) else 1
        err_console.print(f"[bold red]error:[/] {_one_line(e)}")
        if not isinstance(e, CliError):
            err_console.print("(run with --debug for the traceback)", style="dim")
        raise SystemExit(code)


def _one_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text if isinstance(e, (CliError, OSError, ValueError)) else f"{type(e).__name__}: {text}"

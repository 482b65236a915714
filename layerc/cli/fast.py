"""`layerc summary` and `layerc validate` without Typer: their bodies, and a fast path for them.

Start-up is most of what these two commands cost, and Typer (with Click) is a tenth of
it. `layerc/__main__.py` loads this module without running `layerc/cli/__init__.py` (which
builds the Typer app) and calls `run(argv)`. `run` answers only plain calls: a known
command, its arguments and the options of `OPTIONS` with valid values. Anything else
(`--help`, `--debug`, `--`, an unknown or repeated option, a bad value) returns None and
the Typer app, the one definition of the CLI, answers it with its own messages. The Typer
commands call the same bodies, and tests/cli/test_fast_path.py checks `OPTIONS` against
the app and the outputs of both paths against each other.
"""
from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path

# The CLI is our own process: skip pydantic's scan of installed plugins (entry points),
# which costs more start-up time than validating a spec.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
PLUGIN_LOADER = "pydantic.plugin._loader"


def skip_plugin_loader():
    """With every pydantic plugin disabled, pydantic's plugin loader answers "no plugins"
    (`get_plugins()` returns an empty tuple) yet imports importlib.metadata (a twentieth of
    `layerc summary`) to do so: stand in for that module with one giving the same answer.
    tests/cli/test_fast_path.py checks that `get_plugins` is all pydantic takes from it."""
    if os.environ["PYDANTIC_DISABLE_PLUGINS"] in ("__all__", "1", "true") and PLUGIN_LOADER not in sys.modules:
        import types

        loader = types.ModuleType(PLUGIN_LOADER, "pydantic's plugin loader with every plugin disabled")
        loader.get_plugins = tuple
        sys.modules[PLUGIN_LOADER] = loader

from rich.console import Console  # noqa: E402

from ..__main__ import cli_module  # noqa: E402

# Logs and pipes get room for wide tables instead of Rich's default 80 columns.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
console = Console(highlight=False, soft_wrap=True, width=_WIDTH, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH, emoji=False)

# command -> (arguments: 1 or "+", {option: its choices, int (a count >= 1) or None (a flag)})
OPTIONS = {
    "summary": (1, {"--format": ("text", "json", "mermaid", "dot"), "--batch-size": int}),
    "validate": ("+", {"--format": ("text", "json", "sarif"), "--strict": None}),
}
_DEFAULTS = {"summary": {"format": "text", "batch_size": None}, "validate": {"format": "text", "strict": False}}


def run(argv: list) -> int | None:
    """The exit code of `layerc ARGV` if this fast path answers it, else None (ask Typer)."""
    parsed = parse(argv)
    if parsed is None:
        return None
    command, args, options = parsed
    skip_plugin_loader()
    gc.disable()  # until the spec is loaded: imports and pydantic's models make no garbage worth a scan
    try:
        if command == "summary":
            return summary(Path(args[0]), **options)
        return validate([Path(a) for a in args], **options)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as e:  # as `layerc.cli.main` reports it: one line, no traceback
        from . import report_error  # the Typer app's module, only on this rare path

        return report_error(e)
    finally:
        gc.unfreeze()  # into the oldest generation, collectable again
        gc.enable()  # also after an error before the spec loaded


def parse(argv: list):
    """(command, arguments, options) of a plain call of a command in OPTIONS, else None."""
    if not argv or argv[0] not in OPTIONS:
        return None
    n_args, table = OPTIONS[argv[0]]
    args, options = [], dict(_DEFAULTS[argv[0]])
    seen = set()
    rest = iter(argv[1:])
    for word in rest:
        if not word.startswith("-") or word == "-":
            args.append(word)
            continue
        name, eq, value = word.partition("=")
        if name not in table or name in seen:
            return None
        seen.add(name)
        kind = table[name]
        key = name[2:].replace("-", "_")
        if kind is None:
            if eq:
                return None
            options[key] = True
            continue
        if not eq:
            value = next(rest, None)
        if value is None:
            return None
        if kind is int:
            if not (value.isascii() and value.isdigit()) or int(value) < 1:
                return None
            options[key] = int(value)
        elif value in kind:
            options[key] = value
        else:
            return None
    if not args or (n_args == 1 and len(args) != 1):
        return None
    return argv[0], args, options


def collect_later():
    """After `run` turned the collector off for the imports, turn it back on with the objects
    made so far frozen (left out of its scans until `run` returns): the modules and models
    are not garbage, and the first collection would scan them all."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def load_model(path: Path):
    """(model, 0) of a spec file that loads and compiles, else (None, status) with its
    diagnostics printed."""
    from ..check import check_file

    result = check_file(path)
    collect_later()
    if result.status != 0:
        err_console.print(cli_module("render").diagnostics(result.diagnostics))
        return None, result.status
    return result.model, 0


def summary(spec: Path, format: str = "text", batch_size: int | None = None) -> int:
    """`layerc summary`: the layer table (or JSON, or a diagram); returns the exit code."""
    model, code = load_model(spec)
    if model is None:
        return code
    if format in ("mermaid", "dot"):
        from ..diagram import diagram

        sys.stdout.write(diagram(model, format))  # not through Rich: no markup, no wrapping
        return 0
    from ..summary import summarize

    info = summarize(model, batch_size)
    if format == "json":
        console.print_json(json.dumps(info))
        return 0
    render = cli_module("render")
    console.print(render.summary_table(info))
    console.print(render.summary_totals(info))
    return 0


def validate(specs: list, format: str = "text", strict: bool = False) -> int:
    """`layerc validate`: each file's diagnostics and verdict; returns the exit code."""
    from ..check import check_file

    results = [check_file(p, lint=True) for p in specs]
    collect_later()
    if format == "json":
        console.print_json(json.dumps([r.to_dict() for r in results]))
    elif format == "sarif":
        from .. import __version__
        from ..lint.sarif import sarif

        sys.stdout.write(json.dumps(sarif(results, __version__), indent=2) + "\n")
    else:
        render = cli_module("render")
        for r in results:
            if r.diagnostics:
                console.print(render.diagnostics(r.diagnostics))
            if r.status == 0:
                m, n, notes = r.model, r.count("warning"), r.count("note")
                warned = "".join(f"; {k} {what}{'' if k == 1 else 's'}"
                                 for k, what in ((n, "warning"), (notes, "note")) if k)
                verdict = "[red]fails --strict[/]" if strict and n else "[green]ok[/]"
                console.print(f"[bold]{r.file}[/]: {verdict} ({len(m.nodes)} layers, "
                              f"{m.count_params():,} params{warned})")
    code = max(r.status for r in results)
    return max(code, 1) if strict and any(r.count("warning") for r in results) else code

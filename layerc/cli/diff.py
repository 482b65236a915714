"""`layerc diff`: two specs compared by meaning, or one spec's canonical form for git."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from . import Format

_MARK = {"added": ("+", "green"), "removed": ("-", "red"), "changed": ("~", "yellow"),
         "moved": ("↕", "cyan"), "renamed": ("=", "dim")}


def diff(
    a: Optional[str] = typer.Argument(None, metavar="A", help="Spec file, or REV:path (read with git show)."),
    b: Optional[str] = typer.Argument(None, metavar="B", help="Spec file, or REV:path."),
    format: Format = typer.Option(Format.text, "--format", help="text, or json."),
    textconv: Optional[Path] = typer.Option(None, "--textconv", metavar="FILE",
                                            help="Print FILE's canonical form (for git's diff.<driver>.textconv)."),
):
    """Compare two specs by meaning, with the effect on params and MACs. Exit 0 same, 1 different, 2 error."""
    from . import CliError, console, err_console

    if textconv is not None:
        if a is not None or b is not None:
            raise CliError("--textconv takes one FILE and no A B", 2)
        sys.stdout.write(canonical_or_raw(textconv))
        return
    if a is None or b is None:
        raise CliError("give two specs to compare: layerc diff A B (each a file or REV:path)", 2)
    from .. import jobs
    from ..spec.diagnostics import SpecError
    from . import render

    try:
        result = jobs.diff_specs(a, b)
    except SpecError as e:
        err_console.print(render.diagnostics(e.diagnostics))
        raise typer.Exit(2)
    except jobs.SourceError as e:
        raise CliError(str(e), 2) from None
    if format == Format.json:
        console.print_json(json.dumps(result))
    else:
        console.print(diff_report(result))
    raise typer.Exit(0 if result["same"] else 1)


def canonical_or_raw(path: Path) -> str:
    """A spec file's canonical text; a file that is no valid spec is given back as it is, so
    that a textconv never breaks `git diff` (unreadable bytes are replaced)."""
    from ..spec import SpecError, parse_spec
    from ..spec.diff import canonical_text

    from ..spec.source import MAX_BYTES

    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)  # bounded: a spec is never larger
    except OSError as e:
        from . import CliError

        raise CliError(f"{path}: cannot read: {e.strerror or e}", 2) from None
    text = raw.decode("utf-8-sig", errors="replace")
    try:
        return canonical_text(parse_spec(text, str(path)))
    except SpecError:
        return text if text.endswith("\n") or not text else text + "\n"


def _value(v, note: str = "") -> str:
    from ..spec.diff import show

    return show(v) + (" (default)" if note == "default" else "")


def diff_report(result: dict):
    """The changes as lines a reviewer reads (a Rich Group): settings, layers, params and MACs."""
    from rich.console import Group
    from rich.text import Text

    lines = [Text.assemble((result["a"], "bold"), " -> ", (result["b"], "bold"))]
    changes = result["changes"]
    if result["same"]:
        lines.append(Text("no change in meaning", style="green"))
    for section, is_layer in (("settings", False), ("layers", True)):
        mine = [c for c in changes if c["layer"] == is_layer]
        if mine:
            lines.append(Text(section, style="bold"))
        for c in mine:
            mark, style = _MARK[c["kind"]]
            lines.append(Text.assemble(f"  {mark} ", (_line(c), style)))
    for what, (old, new) in (("params", result["params"]), ("MACs", result["macs"])):
        change = f" ({new - old:+,})" if new != old else ""
        lines.append(Text(f"{what}: {old:,} -> {new:,}{change}", style="bold" if change else ""))
    return Group(*lines)


def _line(c: dict) -> str:
    kind, path, note = c["kind"], c["path"], c["note"]
    if kind == "changed":
        after = " (the default)" if note == "to the default" else ""
        return f"{path}: {_value(c['old'], note)} -> {_value(c['new'])}{after}"
    if kind == "added":
        return f"{path} added" + (f" ({note})" if note else "") + f": {_value(c['new'])}"
    if kind == "removed":
        return f"{path} removed" + (f" ({note})" if note else "") + f": {_value(c['old'])}"
    if kind == "moved":
        return f"{path} moved: layer {c['old']} -> {c['new']}"
    return f"{c['old']} is now {c['new']} ({note})"

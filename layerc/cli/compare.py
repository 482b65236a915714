"""`layerc runs compare`: training runs side by side."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List

import typer

from . import Format


def compare(
    runs: List[Path] = typer.Argument(..., metavar="RUN", help="Run directories (two or more)."),
    format: Format = typer.Option(Format.text, "--format", help="text, or json."),
):
    """Runs side by side: the spec values that differ, final and best metrics, epochs, time."""
    from ..runs.compare import compare_runs
    from . import console

    result = compare_runs(runs)
    if format == Format.json:
        console.print_json(json.dumps(result))
    else:
        console.print(compare_table(result))


def _label(run: str) -> str:
    parts = Path(run).parts
    return "/".join(parts[-2:])


def _number(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return f"{int(v):,}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _duration(s) -> str:
    if s is None:
        return "—"
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def compare_table(result: dict):
    """A Rich Table, one column a run; rows: facts, the differing spec values, final, best and
    test metrics (the best value of each metric row in bold)."""
    from rich.table import Table

    from ..runs.compare import lower_is_better
    from ..spec.diff import show

    runs = result["runs"]
    table = Table(show_header=True, header_style="bold")
    table.add_column("")
    for r in runs:
        table.add_column(_label(r["run"]), justify="right")
    table.add_row("spec", *[r["spec_name"] or "—" for r in runs])
    table.add_row("status", *[r["status"] for r in runs])
    table.add_row("epochs", *[str(r["epochs"]) + (f" of {r['planned_epochs']}" if r["planned_epochs"] not in
                                                   (None, r["epochs"]) else "") for r in runs])
    table.add_row("time", *[_duration(r["seconds"]) for r in runs], end_section=True)
    for path, values in result["spec"].items():
        table.add_row(path, *["—" if v is None else show(v) for v in values])
    if result["spec"]:
        table.rows[-1].end_section = True
    else:
        table.add_row("spec values", *["same"] * len(runs), end_section=True)
    for part, title in (("final", "final"), ("best", "best"), ("test", "test")):
        for metric, values in result[part].items():
            nums = [v["value"] if isinstance(v, dict) else v for v in values]
            known = [v for v in nums if v is not None]
            top = (min if lower_is_better(metric) else max)(known) if len(known) > 1 else None
            cells = []
            for v, n in zip(values, nums):
                text = _number(n) + (f" (epoch {v['epoch']})" if isinstance(v, dict) else "")
                cells.append(f"[bold]{text}[/]" if top is not None and n == top else text)
            table.add_row(f"{title} {metric}", *cells)
        if result[part]:
            table.rows[-1].end_section = True
    return table

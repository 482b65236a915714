"""`layerc runs list|show` and `layerc plot`: past runs as tables and learning curves."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table
from rich.text import Text

from . import CliError, Format, console, err_console

app = typer.Typer(help="List, inspect and compare run directories.", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]})

_STATUS_STYLE = {"finished": "green", "running": "cyan", "interrupted": "yellow", "diverged": "red",
                 "failed": "red", "unknown": "dim"}


@app.command("list")
def list_runs(
    root: Path = typer.Argument(Path("runs"), metavar="ROOT", help="Folder of run directories (default runs/)."),
    sort: Optional[str] = typer.Option(None, "--sort", metavar="METRIC",
                                       help="Best first by a metrics.csv column (its best epoch, e.g. val_accuracy), "
                                            "test_<metric>, epochs or duration."),
    format: Format = typer.Option(Format.text, "--format", help="text, or json."),
):
    """One row per run, newest first: status, epochs, best validation metric, test metrics, time."""
    from ..runs.listing import find_runs, sort_runs

    runs, notes = find_runs(root)
    if sort:
        runs = sort_runs(runs, sort)
    if format == Format.json:
        rows = [r.to_dict() for r in runs]
        if sort:
            for row, r in zip(rows, runs):
                best = r.best(sort)
                row["sort"] = {"metric": sort, "value": best[0], "epoch": best[1]} if best else None
        console.print_json(json.dumps(rows))
    elif runs:
        console.print(runs_table(runs, sort))
    else:
        console.print(f"no runs under {root}", markup=False)
    for note in notes:
        err_console.print(note, style="dim", markup=False)


@app.command("show")
def show(
    run: Path = typer.Argument(..., metavar="RUN", help="A run directory (runs/<name>/<time>)."),
    format: Format = typer.Option(Format.text, "--format", help="text, or json."),
):
    """A run's spec summary, metrics per epoch and files."""
    from ..check import check_file
    from ..summary import summarize
    from . import render

    r = read_runs([run])[0]
    checked = check_file(run / "spec.yaml") if (run / "spec.yaml").is_file() else None
    info = summarize(checked.model) if checked is not None and checked.status == 0 else None
    files = run_files(run)
    if format == Format.json:
        console.print_json(json.dumps({**r.to_dict(), "history": r.history, "summary": info,
                                       "files": [{"name": n, "bytes": b} for n, b in files]}))
        return
    console.print(run_header(r))
    if info is not None:
        console.print(render.summary_table(info))
        console.print(render.summary_totals(info))
    elif checked is not None:
        console.print(render.diagnostics(checked.diagnostics))
    else:
        console.print("[dim]no spec.yaml[/]")
    if r.history:
        console.print(epochs_table(r.history))
    console.print(files_table(files))


def plot(
    runs: List[Path] = typer.Argument(..., metavar="RUN", help="Run directories; several are overlaid."),
    metric: Optional[str] = typer.Option(None, "--metric", metavar="NAMES",
                                         help="Comma-separated metrics, one panel each (default: all logged), e.g. loss,accuracy."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE",
                                          help="Write a .png, .svg or .pdf; without it the curves are drawn in the terminal."),
):
    """Learning curves: a panel per metric, training (solid) and validation (dashed) lines."""
    from ..runs.plot import save_plot, select_metrics, terminal_plot

    found = read_runs(runs)
    metrics = select_metrics(found, metric.split(",") if metric else None)
    if output is not None:
        save_plot(found, metrics, output)
        err_console.print(f"wrote {output}", markup=False)
        return
    tty = console.is_terminal
    sys.stdout.write(terminal_plot(found, metrics, width=min(console.width, 160) if tty else 100, color=tty) + "\n")
    sys.stdout.flush()
    if not tty:
        err_console.print("(a text plot: give --output curves.png for an image)")


def read_runs(paths: List[Path]) -> list:
    from ..runs.listing import is_run_dir, read_run

    for p in paths:
        if not p.is_dir():
            raise CliError(f"{p}: no such run directory")
        if not is_run_dir(p):
            raise CliError(f"{p} is not a layerc run directory (no run.json, metrics.csv or checkpoint); "
                           "list them with: layerc runs list")
    return [read_run(p) for p in paths]


def run_files(run: Path) -> list[tuple[str, int]]:
    """(name, bytes) of a run's files; a folder (TensorBoard's train/) counts its files' bytes."""
    out = []
    for p in sorted(run.iterdir()):
        try:
            if p.name.startswith("."):
                continue
            if p.is_dir():
                out.append((p.name + "/", sum(f.stat().st_size for f in p.rglob("*") if f.is_file())))
            elif p.is_file():
                out.append((p.name, p.stat().st_size))
        except OSError:  # vanished or unreadable meanwhile: not worth failing `show` for
            continue
    return out


# -- renderables ----------------------------------------------------------------------------------
def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"


def _epochs(r) -> str:
    planned = r.epochs_planned
    return str(r.epochs_done) if planned in (None, r.epochs_done) else f"{r.epochs_done}/{planned}"


def _best(r, key: str | None) -> str:
    from .render import number

    key = key or r.headline()
    best = r.best(key) if key else None
    return "-" if best is None else f"{key} {number(best[0])} (epoch {best[1]})"


def _test(r) -> str:
    from .render import number

    return ", ".join(f"{k} {number(v)}" for k, v in r.test.items()) or "-"


def runs_table(runs: list, sort: str | None = None) -> Table:
    """`runs list`: a row per run."""
    by_column = sort if sort and any(sort in row for r in runs for row in r.history) else None
    table = Table(title_justify="left")
    for name, justify in (("run", "left"), ("run id", "left"), ("status", "left"), ("epochs", "right"),
                          (f"best {by_column}" if by_column else "best validation", "left"), ("test", "left"),
                          ("time", "right")):
        table.add_column(name, justify=justify, no_wrap=name != "test")
    notes = any(r.notes or r.info.get("error") for r in runs)
    if notes:
        table.add_column("note", style="dim")
    for r in runs:
        cells = [Text(r.name), Text(r.run_id), Text(r.status, style=_STATUS_STYLE.get(r.status, "")), _epochs(r),
                 _best(r, by_column), _test(r), duration(r.seconds)]
        if notes:
            cells.append(Text("; ".join([*r.notes, *([r.info["error"]] if isinstance(r.info.get("error"), str) else [])])))
        table.add_row(*cells)
    return table


def run_header(r) -> Text:
    out = Text()
    out.append(f"{r.name} {r.run_id}", style="bold")
    out.append(f"  {r.path}\n")
    out.append("status: ")
    out.append(r.status, style=_STATUS_STYLE.get(r.status, ""))
    out.append(f"   epochs: {_epochs(r)}   time: {duration(r.seconds)}   started: {r.started or '-'}\n")
    out.append(f"best: {_best(r, None)}   test: {_test(r)}")
    for line in [*r.notes, *([r.info["error"]] if isinstance(r.info.get("error"), str) else [])]:
        out.append(f"\nnote: {line}", style="yellow")
    return out


def epochs_table(history: list) -> Table:
    from .render import number

    columns = list(dict.fromkeys(k for row in history for k in row))
    table = Table(title="Metrics per epoch", title_justify="left")
    for c in columns:
        table.add_column(c, justify="right")
    for row in history:
        cells = []
        for c in columns:
            v = row.get(c)
            cells.append("-" if v is None else str(v) if c == "epoch" else f"{v:.3g}" if c == "learning_rate"
                         else f"{v:.1f}s" if c == "seconds" else number(v))
        table.add_row(*cells)
    return table


def files_table(files: list) -> Table:
    from ..summary import readable_size

    table = Table(title="Files", title_justify="left")
    table.add_column("file")
    table.add_column("size", justify="right")
    for name, size in files:
        table.add_row(name, readable_size(size))
    return table

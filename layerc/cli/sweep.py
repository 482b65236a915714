"""`layerc sweep`: a hyperparameter sweep on Ray Tune, shown as a live table."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from . import CliError, console


def sweep(
    sweep_file: Optional[Path] = typer.Argument(None, metavar="SWEEP.yaml",
                                                help="Sweep file (not needed with --resume)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="DIR",
                                          help="Sweep directory (default sweeps/<spec name>/<time>/)."),
    address: Optional[str] = typer.Option(None, "--address", metavar="HOST:PORT",
                                          help="An existing Ray cluster (default: Ray on this machine's cores)."),
    resume: Optional[Path] = typer.Option(None, "--resume", metavar="DIR",
                                          help="Continue the sweep in DIR; finished trials are kept."),
    max_concurrent: Optional[int] = typer.Option(None, "--max-concurrent", min=1, metavar="N",
                                                 help="At most N trials at once (default: as the CPUs allow)."),
):
    """Tune a spec over a search space: each trial an ordinary run under DIR/trials/."""
    from ..sweep import SweepError, run_sweep

    if sweep_file is None and resume is None:
        raise CliError("give a sweep file, or --resume DIR", 2)
    if resume is not None and output is not None:
        raise CliError("--resume continues in its own directory; --output does not go with it", 2)
    board = Board(console.is_terminal)
    try:
        with board:
            result = run_sweep(sweep_file, output=output, address=address, resume=resume,
                               max_concurrent=max_concurrent, on_event=board.event)
    except SweepError as e:
        raise CliError(str(e)) from None
    console.print(results_table(result.rows))
    finished = sum(r["status"] in ("finished", "stopped early") for r in result.rows)
    if result.best is not None:
        console.print(f"best: {result.best['trial']} ({result.best['best']:.6g}); "
                      f"train it with: layerc train {result.dir / 'best.yaml'}")
    console.print(f"sweep directory: {result.dir} (leaderboard.csv, best.yaml, sweep.json, trials/)")
    if result.interrupted:
        console.print(f"[yellow]stopped[/]; {finished} finished trial{'' if finished == 1 else 's'} kept. "
                      f"Resume with: layerc sweep --resume {result.dir}")
        raise typer.Exit(130)


class Board:
    """The trials as they go: a Rich Live table in a terminal, one plain line per event when piped."""

    def __init__(self, live: bool):
        self.trials: dict[str, dict] = {}
        self.live = None
        if live:
            from rich.live import Live

            self.live = Live(self.table(), console=console, refresh_per_second=2, transient=True)

    def __enter__(self):
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)
        return False

    def event(self, kind: str, trial: str, data: dict):
        row = self.trials.setdefault(trial, {"state": "pending", "values": {}, "epoch": None, "metric": None})
        row["state"] = {"start": "running", "result": "running", "complete": "done", "error": "failed"}[kind]
        row.update({k: v for k, v in data.items() if v is not None})
        if self.live is not None:
            self.live.update(self.table())
        elif kind != "result":
            values = ", ".join(f"{k}={_short(v)}" for k, v in row["values"].items())
            done = f" after {row['epoch']} epochs, metric {_short(row['metric'])}" if row["epoch"] else ""
            console.print(f"{trial}: {row['state']}" + (f" ({values})" if kind == "start" else done), markup=False)
        else:
            console.print(f"{trial}: epoch {row['epoch']}, metric {_short(row['metric'])}", markup=False)

    def table(self) -> Table:
        table = Table(title="sweep", title_justify="left")
        keys = list(dict.fromkeys(k for r in self.trials.values() for k in r["values"]))
        for name in ("trial", "state", *keys, "epoch", "metric"):
            table.add_column(name, justify="right" if name in ("epoch", "metric") else "left")
        for trial, r in self.trials.items():
            table.add_row(trial, r["state"], *(_short(r["values"].get(k)) for k in keys),
                          _short(r["epoch"]), _short(r["metric"]))
        return table


def results_table(rows: list) -> Table:
    """The leaderboard: one row per trial, best first."""
    table = Table(title="leaderboard", title_justify="left")
    keys = list(dict.fromkeys(k for r in rows for k in r["values"]))
    for name in ("trial", *keys, "best", "epochs", "status"):
        table.add_column(name, justify="right" if name in ("best", "epochs") else "left")
    for r in rows:
        table.add_row(r["trial"], *(_short(r["values"].get(k)) for k in keys), _short(r["best"]),
                      str(r["epochs"]), r["status"])
    return table


def _short(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else escape(str(v))

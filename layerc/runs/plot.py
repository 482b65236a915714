"""Learning curves of runs: one panel per metric, training and validation lines, runs overlaid.

As an image file with matplotlib (the Agg renderer, no display needed) or as text for a
terminal with plotext. Both are optional (`pip install "layerc[plot]"`) and imported here only.
"""
from __future__ import annotations

import io
from pathlib import Path

from . import RunError, atomic_write
from .listing import Run, direction

INSTALL = 'pip install "layerc[plot]"'
FORMATS = (".png", ".svg", ".pdf")
SPLITS = (("train", ""), ("validation", "val_"))


def select_metrics(runs: list[Run], requested: list[str] | None = None) -> list[str]:
    """The panels to draw: the requested metrics (val_ prefix optional), else every one logged."""
    logged = list(dict.fromkeys(name for run in runs for name in run.metric_names()))
    if not logged:
        raise RunError(f"{runs[0].path if len(runs) == 1 else 'these runs'}: no finished epoch to plot "
                       "(metrics.csv has no rows)")
    if not requested:
        return logged
    wanted = list(dict.fromkeys(m.strip().removeprefix("val_") for m in requested if m.strip()))
    missing = [m for m in wanted if m not in logged]
    if missing or not wanted:
        raise RunError(f"no run logged {missing[0] if missing else 'that'!r}; the runs logged: {', '.join(logged)}")
    return wanted


def labels(runs: list[Run]) -> list[str]:
    """A legend name per run: its run id, with the spec name when the runs' specs differ."""
    names = [r.run_id if len({x.name for x in runs}) == 1 else f"{r.name} {r.run_id}" for r in runs]
    return names if len(set(names)) == len(names) else [str(r.path) for r in runs]


def series(run: Run, key: str) -> tuple[list[int], list[float]]:
    rows = [(row["epoch"], row[key]) for row in run.history if isinstance(row.get(key), float)]
    return [r[0] for r in rows], [r[1] for r in rows]


def _lines(runs: list[Run], metric: str):
    """(run index, split, label, epochs, values) for each line of a panel."""
    names = labels(runs)
    for i, run in enumerate(runs):
        for split, prefix in SPLITS:
            xs, ys = series(run, prefix + metric)
            if xs:
                yield i, split, split if len(runs) == 1 else f"{names[i]} {split}", xs, ys


def save_plot(runs: list[Run], metrics: list[str], path: Path) -> None:
    """Draw the curves into a .png, .svg or .pdf file (written atomically).

    Each run has its colour (matplotlib's C0, C1, ...); training lines are solid, validation
    lines dashed; each line's SVG group id is `<split>-<metric>-<run index>`."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise RunError(f"{path}: write the plot to a {', '.join(FORMATS)} file")
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise RunError(f"plotting to a file needs matplotlib: {INSTALL}") from None
    fig = Figure(figsize=(4.6 * len(metrics), 3.4), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for i, split, label, xs, ys in _lines(runs, metric):
            (line,) = ax.plot(xs, ys, "-" if split == "train" else "--", color=f"C{i % 10}", marker="o",
                              markersize=3, label=label)
            line.set_gid(f"{split}-{metric}-{i}")
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lower()[1:])
    atomic_write(path, buf.getvalue())


def terminal_plot(runs: list[Run], metrics: list[str], width: int = 100, height: int | None = None,
                  color: bool = True) -> str:
    """The same curves drawn with text (plotext): one panel per metric, stacked."""
    try:
        import plotext
    except ImportError:
        raise RunError(f"plotting in the terminal needs plotext: {INSTALL} (or give --output FILE)") from None
    fig = plotext.figure
    fig.clear()
    if len(metrics) > 1:
        fig.subplots(len(metrics), 1)
    for row, metric in enumerate(metrics, 1):
        panel = fig.subplot(row, 1) if len(metrics) > 1 else fig
        panel.title(metric)
        top = []
        for _, _, label, xs, ys in _lines(runs, metric):
            line = panel.signal(xs, ys, marker="braille")
            line.label(label)
            line.lines()
            panel.draw(line)
            top.append((max(xs), max(ys), min(ys)))
        if top:  # in the corner the curves head away from: top right for a loss, bottom right for accuracy
            x, high, low = max(t[0] for t in top), max(t[1] for t in top), min(t[2] for t in top)
            lower = direction(metric) > 0
            panel.legend(x=x, y=high if lower else low, ha="right", va="top" if lower else "bottom", relative=True)
        panel.label("epoch")
    plotext.terminal.limit(False, False)  # our width, not the terminal's (or 80 in a pipe)
    fig.plot_size(width, height or 20 * len(metrics))
    text = fig.build().string(colorless=not color)
    fig.clear()
    return text

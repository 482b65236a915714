"""Rich renderables for the CLI. Each function takes data and returns something to print."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text

from ..compiler import keras_shape
from ..summary import readable_size


_SEVERITY_STYLE = {"warning": "bold yellow", "note": "bold cyan"}


def diagnostics(diags) -> Text:
    """`file:line:col: error: message (hint)` lines (a lint's with ` [code]`), coloured."""
    out = Text()
    for d in diags:
        where = d.file if d.line is None else f"{d.file}:{d.line}:{d.col}"
        out.append(where, style="bold")
        out.append(": ")
        out.append(f"{d.severity}:", style=_SEVERITY_STYLE.get(d.severity, "bold red"))
        out.append(f" {d.message}")
        if d.hint:
            out.append(f" ({d.hint})", style="cyan")
        if d.code:
            out.append(f" [{d.code}]", style="dim")
        out.append("\n")
    out.rstrip()
    return out


def summary_table(info: dict) -> Table:
    """The layer table, as Keras's model.summary() draws it, with a MACs column."""
    table = Table(title=f'Model: "{info["name"]}"', title_justify="left", show_lines=False)
    table.add_column("Layer (type)", no_wrap=True)
    table.add_column("Output Shape", no_wrap=True)
    table.add_column("Param #", justify="right")
    table.add_column("MACs", justify="right", style="dim")
    if not info["sequential"]:
        table.add_column("Connected to")
    for row in info["layers"]:
        shape = keras_shape(row["output_shape"][1:])
        cells = [f'{row["name"]} ({row["type"]})', shape, f'{row["params"]:,}', _count(row["macs"])]
        if not info["sequential"]:
            cells.append("\n".join(row["connected_to"]) or "-")
        table.add_row(*cells)
    return table


def summary_totals(info: dict) -> Text:
    lines = [
        ("Total params", info["total_params"], info["total_bytes"]),
        ("Trainable params", info["trainable_params"], info["trainable_bytes"]),
        ("Non-trainable params", info["non_trainable_params"], info["non_trainable_bytes"]),
    ]
    out = Text()
    for label, n, size in lines:
        out.append(f" {label}: ", style="bold")
        out.append(f"{n:,} ({readable_size(size)})\n")
    out.append(" MACs per sample: ", style="bold")
    macs = info["macs_per_sample"]
    out.append(f"{macs:,} ({_count(macs)})\n" if macs >= 1000 else f"{macs:,}\n")
    out.append(f' Activation memory (batch {info["batch_size"]}): ', style="bold")
    out.append(readable_size(info["activation_bytes"]))
    return out


def _count(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def history_table(history: list, test: dict | None) -> Table:
    """The final table: last epoch's training and validation figures, and the test set's."""
    table = Table(title="Results", title_justify="left")
    table.add_column("metric")
    table.add_column("train", justify="right")
    table.add_column("validation", justify="right")
    table.add_column("test", justify="right")
    last = history[-1] if history else {}
    names = [k for k in last if not k.startswith("val_") and k not in ("epoch", "seconds", "learning_rate")]
    for k in names:
        table.add_row(k, _fmt(last.get(k)), _fmt(last.get(f"val_{k}")), _fmt((test or {}).get(k)))
    seconds = sum(row.get("seconds", 0) for row in history)
    table.caption = f"{plural(len(history), 'epoch')}, {seconds:.1f}s of training"
    return table


REPORT_KEYS = ("classes", "per_class", "macro_avg", "weighted_avg", "confusion_matrix")


def metrics_table(metrics: dict) -> Table:
    table = Table(title=f"Evaluation on the {metrics['split']} split ({metrics['samples']:,} samples)",
                  title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        if k not in ("split", "samples", *REPORT_KEYS):
            table.add_row(k, _fmt(v))
    return table


def report_tables(report: dict):
    """The classification report (per class and averaged) and the confusion matrix, as sklearn
    prints them: rows are true classes, columns predicted ones."""
    from rich.console import Group

    table = Table(title="Classification report", title_justify="left")
    table.add_column("class")
    for name in ("precision", "recall", "f1", "support"):
        table.add_column(name, justify="right")
    for row in report["per_class"]:
        table.add_row(row["class"], *(f"{row[k]:.4f}" for k in ("precision", "recall", "f1")), f"{row['support']:,}")
    table.add_section()
    for label, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        avg = report[key]
        table.add_row(label, *(f"{avg[k]:.4f}" for k in ("precision", "recall", "f1")), f"{avg['support']:,}")
    matrix = Table(title="Confusion matrix (rows: true class, columns: predicted)", title_justify="left")
    matrix.add_column("true \\ predicted", style="bold")
    for name in report["classes"]:
        matrix.add_column(name, justify="right")
    for name, row in zip(report["classes"], report["confusion_matrix"]):
        matrix.add_row(name, *(f"{v:,}" for v in row))
    return Group(table, matrix)


def _fmt(v) -> str:
    return "-" if v is None else number(v)


def number(v: float) -> str:
    """A loss or metric: 0.0123 with four decimals, 5.0e+21 in scientific notation when huge."""
    return f"{v:.4f}" if abs(v) < 1e6 else f"{v:.1e}"


def plural(n: int, word: str) -> str:
    """`1 epoch`, `2 epochs`."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")
